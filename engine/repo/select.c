/*
 * select.c — choosing snapshots by tag, host and source path (select.h).
 */
#include "engine/repo/select.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "engine/engine.h" /* engine_check_tag: what a push accepts as a tag */
#include "engine/repo/bytes.h"
#include "store/err.h"

static int check_group(const char *group)
{
	char tag[SNAP_TAG_MAX + 2];
	if (*group == '\0')
		return 0; /* the snapshots without tags */
	for (const char *p = group;; p++) {
		size_t len = strcspn(p, ",");
		if (len == 0)
			return err_set(DRE_EINVAL, "tag list '%s' has an empty tag", group);
		if (len > SNAP_TAG_MAX)
			return err_set(DRE_EINVAL, "a tag of '%s' is longer than %d bytes", group, SNAP_TAG_MAX);
		memcpy(tag, p, len);
		tag[len] = '\0';
		TRY(engine_check_tag(tag));
		p += len;
		if (*p == '\0')
			return 0;
	}
}

int snap_filter_check(const snap_filter *f)
{
	for (size_t i = 0; i < f->ntags; i++)
		TRY(check_group(f->tags[i]));
	for (size_t i = 0; i < f->nhosts; i++)
		if (*f->hosts[i] == '\0')
			return err_set(DRE_EINVAL, "the host name is empty");
	for (size_t i = 0; i < f->npaths; i++)
		if (*f->paths[i] == '\0')
			return err_set(DRE_EINVAL, "the path is empty");
	return 0;
}

bool snap_filter_empty(const snap_filter *f)
{
	return f == NULL || f->ntags + f->nhosts + f->npaths == 0;
}

/* The meta value of key as a JSON array of strings; NULL when absent or anything else. */
static json_t *meta_array(const snapshot *s, const char *key)
{
	const char *text = snap_meta_get(s, key);
	json_t *a = text ? json_loads(text, 0, NULL) : NULL;
	size_t i;
	json_t *v;
	if (a != NULL && !json_is_array(a)) {
		json_decref(a);
		return NULL;
	}
	json_array_foreach(a, i, v)
	{
		if (!json_is_string(v)) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

void *snap_meta_strings(const snapshot *s, const char *key)
{
	json_t *a = meta_array(s, key);
	return a != NULL ? a : json_array();
}

static bool has_string(const json_t *a, const char *s, size_t len)
{
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v)
	{
		if (json_string_length(v) == len && memcmp(json_string_value(v), s, len) == 0)
			return true;
	}
	return false;
}

/* Every tag of the comma-separated group is in tags (an array, possibly empty); "" when tags is empty. */
static bool group_matches(const char *group, const json_t *tags)
{
	if (*group == '\0')
		return json_array_size(tags) == 0;
	for (const char *p = group;; p++) {
		size_t len = strcspn(p, ",");
		if (!has_string(tags, p, len))
			return false;
		p += len;
		if (*p == '\0')
			return true;
	}
}

/* Length of path without its trailing slashes; "/" (or "//") stays one slash. */
static size_t trimmed_len(const char *path, size_t len)
{
	while (len > 1 && path[len - 1] == '/')
		len--;
	return len;
}

static bool has_path(const json_t *paths, const char *want)
{
	size_t wlen = trimmed_len(want, strlen(want)), i;
	json_t *v;
	json_array_foreach(paths, i, v)
	{
		const char *p = json_string_value(v);
		size_t plen = trimmed_len(p, json_string_length(v));
		if (plen == wlen && memcmp(p, want, wlen) == 0)
			return true;
	}
	return false;
}

static bool tags_match(const snap_filter *f, const snapshot *s)
{
	json_t *tags = meta_array(s, SNAP_META_TAGS);
	json_t *none = tags ? NULL : json_array();
	bool any = false;
	for (size_t i = 0; !any && i < f->ntags; i++)
		any = group_matches(f->tags[i], tags ? tags : none);
	json_decref(tags);
	json_decref(none);
	return any;
}

static bool paths_match(const snap_filter *f, const snapshot *s)
{
	json_t *paths = meta_array(s, SNAP_META_PATHS);
	bool all = paths != NULL;
	for (size_t i = 0; all && i < f->npaths; i++)
		all = has_path(paths, f->paths[i]);
	json_decref(paths);
	return all;
}

bool snap_filter_match(const snap_filter *f, const snapshot *s)
{
	if (snap_filter_empty(f))
		return true;
	if (f->nhosts > 0) {
		bool any = false;
		for (size_t i = 0; !any && i < f->nhosts; i++)
			any = s->host != NULL && strcmp(s->host, f->hosts[i]) == 0;
		if (!any)
			return false;
	}
	if (f->ntags > 0 && !tags_match(f, s))
		return false;
	return f->npaths == 0 || paths_match(f, s);
}

static void describe(char *out, size_t cap, size_t *used, const char *opt, const char *const *v, size_t n)
{
	for (size_t i = 0; i < n && *used < cap; i++) {
		int w = snprintf(out + *used, cap - *used, "%s--%s %s", *used ? " " : "", opt, *v[i] ? v[i] : "''");
		*used += w > 0 ? (size_t)w : 0;
	}
}

void snap_filter_describe(const snap_filter *f, char *out, size_t cap)
{
	size_t used = 0;
	if (cap == 0)
		return;
	out[0] = '\0';
	if (f == NULL)
		return;
	describe(out, cap, &used, "tag", f->tags, f->ntags);
	describe(out, cap, &used, "host", f->hosts, f->nhosts);
	describe(out, cap, &used, "path", f->paths, f->npaths);
}

static bool id_has_prefix(const snapshot *s, const char *prefix)
{
	char hex[2 * CRYPTO_ID_LEN + 1];
	hex_encode(s->id, CRYPTO_ID_LEN, hex);
	return strncmp(hex, prefix, strlen(prefix)) == 0;
}

/* What snap_find_filtered found in the list: items[pick], or why nothing. */
struct pick {
	size_t pick, named, in_time;
};

static int pick_by_id(const snap_list *l, const char *what, const snap_filter *f, struct pick *p)
{
	size_t matches = 0, at = 0;
	for (size_t i = 0; i < l->n; i++)
		if (id_has_prefix(&l->items[i], what))
			matches++, at = i;
	if (matches > 1)
		return err_set(DRE_EINVAL, "snapshot ID prefix %s is ambiguous (%zu snapshots match)", what, matches);
	if (matches == 1 && !snap_filter_match(f, &l->items[at])) {
		char opts[512];
		snap_filter_describe(f, opts, sizeof opts);
		return err_set(DRE_ENOTFOUND, "snapshot %s (%s) does not match %s", what, l->items[at].name, opts);
	}
	if (matches == 1)
		p->pick = at;
	return 0;
}

static int not_found(const snap_list *l, const char *what, int64_t before_ns, const snap_filter *f,
		     const struct pick *p)
{
	char opts[512];
	const char *when = before_ns >= 0 ? " taken at or before the time given" : "";
	snap_filter_describe(f, opts, sizeof opts);
	if (what == NULL)
		return err_set(DRE_ENOTFOUND, "no snapshot%s matches %s", when, opts);
	if (p->in_time > 0)
		return err_set(DRE_ENOTFOUND, "no snapshot named %s%s matches %s. HINT: 'dre snapshots %s' lists them",
			       what, when, opts, what);
	if (p->named > 0)
		return err_set(DRE_ENOTFOUND, "no snapshot named %s was taken at or before the time given", what);
	return err_set(DRE_ENOTFOUND, "no snapshot named or with ID %s%s. HINT: 'dre snapshots' lists them", what,
		       l->damaged ? " (some snapshot objects are damaged: run 'dre check')" : "");
}

int snap_find_filtered(repo *r, const char *what, int64_t before_ns, const snap_filter *f, snapshot *out)
{
	snap_list l;
	struct pick p = {SIZE_MAX, 0, 0};
	if (what != NULL && snap_filter_empty(f))
		return snap_find(r, what, before_ns, out);
	TRY(snap_filter_check(f));
	TRY(snap_list_load(r, &l, NULL, NULL));
	int rc = what != NULL && snap_id_prefix_text(what) ? pick_by_id(&l, what, f, &p) : 0;
	bool by_id = p.pick != SIZE_MAX;
	/* sorted oldest first: the last match is the newest */
	for (size_t i = 0; rc == 0 && !by_id && i < l.n; i++) {
		const snapshot *s = &l.items[i];
		if (what != NULL && strcmp(s->name, what) != 0)
			continue;
		p.named++;
		if (before_ns >= 0 && s->time_ns > before_ns)
			continue;
		p.in_time++;
		if (snap_filter_match(f, s))
			p.pick = i;
	}
	if (rc == 0 && p.pick == SIZE_MAX)
		rc = not_found(&l, what, before_ns, f, &p);
	if (rc == 0) {
		*out = l.items[p.pick];
		memset(&l.items[p.pick], 0, sizeof l.items[p.pick]);
	}
	snap_list_free(&l);
	return rc;
}
