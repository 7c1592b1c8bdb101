/*
 * select.h — which snapshots a command considers, by the tags, host and source paths a push recorded
 * (`snapshots`, `forget` and `restore` with --tag, --host and --path). The meaning is restic's:
 *
 *   tags    each entry is a group "a,b": a snapshot matches a group when it carries every tag of it, and the
 *           filter when it matches any group (so --tag a,b means a and b, --tag a --tag b means a or b). The
 *           empty group "" matches the snapshots that carry no tag at all.
 *   hosts   the snapshot's host is any of them.
 *   paths   every one of them is among the snapshot's "paths" (what a files push was given), compared after
 *           removing trailing slashes: "/srv/models/" is "/srv/models". A snapshot without paths (a stream)
 *           matches no --path.
 *
 * A filter with no entries matches every snapshot. The filter borrows its strings.
 */
#ifndef DRE_SELECT_H
#define DRE_SELECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/repo/repo.h"
#include "engine/repo/snapshot.h"

/* The longest tag (format-spec.md §10; engine_check_tag): 1 to 255 bytes, no comma and no control character. */
#define SNAP_TAG_MAX 255

typedef struct snap_filter {
	const char **tags; /* tag groups: comma-separated tags, all required; any group will do */
	size_t ntags;
	const char **hosts; /* any of these hosts */
	size_t nhosts;
	const char **paths; /* all of these among the snapshot's paths */
	size_t npaths;
} snap_filter;

/* Checks what a user gave: every tag of every group valid (engine_check_tag; the empty group aside), no empty
 * host or path.
 * DRE_EINVAL names the bad entry. */
int snap_filter_check(const snap_filter *f);
/* True when f is NULL or has no entries. */
bool snap_filter_empty(const snap_filter *f);
/* Whether s is one f selects (see above). A meta value that is not a JSON array of strings counts as absent. */
bool snap_filter_match(const snap_filter *f, const snapshot *s);
/* The filter as the options that give it ("--tag a,b --host h --path /srv"), for messages; cut at cap. */
void snap_filter_describe(const snap_filter *f, char *out, size_t cap);

/* The strings of meta key (SNAP_META_TAGS, SNAP_META_PATHS) of s as a new jansson array (json_t * as void *,
 * like snap_summary_json); an empty array when s has none or the value is not a JSON array of strings. NULL only
 * when out of memory. */
void *snap_meta_strings(const snapshot *s, const char *key);

/*
 * snap_find (snapshot.h) with a filter: what is a name, and the result the newest snapshot of that name taken at
 * or before before_ns (-1: any time) that f selects; or what is an ID prefix, and the snapshot it names must be
 * one f selects. what NULL: any name. DRE_ENOTFOUND says what was asked for, naming the filter when it is what
 * left nothing; an ambiguous prefix is DRE_EINVAL. With f empty this is snap_find. The result is a copy
 * (snap_free it).
 */
int snap_find_filtered(repo *r, const char *what, int64_t before_ns, const snap_filter *f, snapshot *out);

#endif
