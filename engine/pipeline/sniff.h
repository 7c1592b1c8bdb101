/*
 * sniff.h — recognising, from a stream's first bytes, input that was compressed before dre saw it. Compressed
 * data changes throughout when a little of what it holds changes, so it deduplicates against nothing: every push
 * stores it whole. The usual culprit is pg_dump's custom format, which compresses by default.
 */
#ifndef DRE_SNIFF_H
#define DRE_SNIFF_H

#include <stddef.h>
#include <stdint.h>

/* NULL when p (the first n bytes of a stream, n ≥ 16 unless the stream is shorter) looks uncompressed; else a
 * warning that names the format and gives the fix. */
const char *sniff_compressed(const uint8_t *p, size_t n);

#endif
