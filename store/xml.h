/*
 * xml.h — the few S3 response documents dre reads (listings, errors, multipart uploads), parsed with expat.
 *
 * xml_parse() calls fn at the end of every element with the element's path from the root (path[0] is the
 * root element's name, path[depth - 1] its own) and the text it held directly. Namespaces are not expanded:
 * S3's xmlns="http://s3.amazonaws.com/doc/2006-03-01/" leaves names as "ListBucketResult", "Contents", "Key".
 */
#ifndef DRE_XML_H
#define DRE_XML_H

#include <stddef.h>

#define XML_MAX_DEPTH 16

typedef int (*xml_elem_fn)(void *arg, const char *const *path, int depth, const char *text, size_t len);

/* Returns 0; fn's negative return, which stops the parse; or DRE_ECORRUPT for a malformed document, deeper
 * nesting than XML_MAX_DEPTH or an element text over 64 KiB (what names the document in the message). */
int xml_parse(const char *doc, size_t len, const char *what, xml_elem_fn fn, void *arg);

/* Whether path (depth elements) is exactly the names given (NULL-terminated list). */
int xml_path_is(const char *const *path, int depth, const char *const *names);

#endif
