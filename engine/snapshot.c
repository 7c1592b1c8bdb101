#include "engine/snapshot.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/err.h"

#define SNAP_FORMAT 1

const char *snap_kind_name(uint8_t kind)
{
	switch (kind) {
	case SNAP_STREAM: return "stream";
	case SNAP_FILES: return "files";
	case SNAP_WAL: return "wal";
	case SNAP_PG_BASE: return "pg-base";
	}
	return "unknown";
}

static const char *node_type_name(uint8_t t)
{
	switch (t) {
	case NODE_STREAM: return "stream";
	case NODE_FILE: return "file";
	case NODE_DIR: return "dir";
	case NODE_SYMLINK: return "symlink";
	}
	return "unknown";
}

int snap_encode(const snapshot *s, buf *out)
{
	buf_u8(out, SNAP_FORMAT);
	buf_u8(out, s->kind);
	buf_u16(out, 0);
	buf_u64(out, (uint64_t)s->time_ns);
	buf_u64(out, (uint64_t)s->end_time_ns);
	buf_str16(out, s->name);
	buf_str16(out, s->host);
	buf_u64(out, s->size);
	buf_u64(out, s->stored_new);
	buf_u64(out, s->chunks_total);
	buf_u64(out, s->chunks_new);
	buf_u32(out, (uint32_t)s->nmeta);
	for (size_t i = 0; i < s->nmeta; i++) {
		buf_str16(out, s->meta[i].key);
		size_t vlen = strlen(s->meta[i].value);
		buf_u32(out, (uint32_t)vlen);
		buf_put(out, s->meta[i].value, vlen);
	}
	buf_u32(out, (uint32_t)s->nnodes);
	for (size_t i = 0; i < s->nnodes; i++) {
		const snap_node *n = &s->nodes[i];
		buf_u8(out, n->type);
		buf_str16(out, n->path);
		buf_u32(out, n->mode);
		buf_u32(out, n->uid);
		buf_u32(out, n->gid);
		buf_u64(out, (uint64_t)n->mtime_ns);
		buf_u64(out, n->size);
		buf_put(out, n->xxh128, 16);
		buf_str16(out, n->link ? n->link : "");
		buf_u32(out, n->nchunks);
		buf_put(out, n->chunks, (size_t)n->nchunks * CRYPTO_ID_LEN);
	}
	return buf_check(out, "a snapshot");
}

void snap_free(snapshot *s)
{
	if (s == NULL)
		return;
	free(s->name);
	free(s->host);
	for (size_t i = 0; i < s->nmeta; i++) {
		free(s->meta[i].key);
		free(s->meta[i].value);
	}
	free(s->meta);
	for (size_t i = 0; i < s->nnodes; i++) {
		free(s->nodes[i].path);
		free(s->nodes[i].link);
		free(s->nodes[i].chunks);
	}
	free(s->nodes);
	memset(s, 0, sizeof *s);
}

int snap_decode(const char *key, const uint8_t *p, size_t len, snapshot *s)
{
	rd in = rd_make(p, len);
	memset(s, 0, sizeof *s);
	uint8_t format = rd_u8(&in);
	if (format != SNAP_FORMAT)
		return err_set(DRE_EUNSUPP, "snapshot %s has format %u, this dre reads %d", key, format, SNAP_FORMAT);
	s->kind = rd_u8(&in);
	rd_u16(&in);
	s->time_ns = (int64_t)rd_u64(&in);
	s->end_time_ns = (int64_t)rd_u64(&in);
	s->name = rd_str16(&in);
	s->host = rd_str16(&in);
	s->size = rd_u64(&in);
	s->stored_new = rd_u64(&in);
	s->chunks_total = rd_u64(&in);
	s->chunks_new = rd_u64(&in);
	uint32_t nmeta = rd_u32(&in);
	if (!in.failed && nmeta <= (len - in.off) / 6) {
		s->meta = calloc(nmeta ? nmeta : 1, sizeof *s->meta);
		if (s->meta == NULL)
			in.failed = true;
		for (uint32_t i = 0; i < nmeta && !in.failed; i++) {
			s->meta[i].key = rd_str16(&in);
			uint32_t vlen = rd_u32(&in);
			const uint8_t *v = rd_take(&in, vlen);
			s->nmeta = i + 1;
			if (v == NULL || (s->meta[i].value = strndup((const char *)v, vlen)) == NULL)
				in.failed = true;
		}
	} else {
		in.failed = true;
	}
	uint32_t nnodes = rd_u32(&in);
	if (!in.failed && nnodes <= (len - in.off) / 40) {
		s->nodes = calloc(nnodes ? nnodes : 1, sizeof *s->nodes);
		if (s->nodes == NULL)
			in.failed = true;
		for (uint32_t i = 0; i < nnodes && !in.failed; i++) {
			snap_node *n = &s->nodes[i];
			s->nnodes = i + 1;
			n->type = rd_u8(&in);
			n->path = rd_str16(&in);
			n->mode = rd_u32(&in);
			n->uid = rd_u32(&in);
			n->gid = rd_u32(&in);
			n->mtime_ns = (int64_t)rd_u64(&in);
			n->size = rd_u64(&in);
			const uint8_t *h = rd_take(&in, 16);
			if (h)
				memcpy(n->xxh128, h, 16);
			n->link = rd_str16(&in);
			if (n->link && n->link[0] == '\0') {
				free(n->link);
				n->link = NULL;
			}
			n->nchunks = rd_u32(&in);
			const uint8_t *c = rd_take(&in, (size_t)n->nchunks * CRYPTO_ID_LEN);
			if (c == NULL || n->type < NODE_STREAM || n->type > NODE_SYMLINK) {
				in.failed = true;
				break;
			}
			n->chunks = malloc(n->nchunks ? (size_t)n->nchunks * CRYPTO_ID_LEN : 1);
			if (n->chunks == NULL) {
				in.failed = true;
				break;
			}
			memcpy(n->chunks, c, (size_t)n->nchunks * CRYPTO_ID_LEN);
		}
	} else {
		in.failed = true;
	}
	if (in.failed || in.off != len || s->name == NULL || s->host == NULL) {
		snap_free(s);
		return err_set(DRE_ECORRUPT, "corrupt snapshot %s: malformed contents", key);
	}
	return 0;
}

int snap_save(repo *r, snapshot *s)
{
	buf b = {0};
	char key[80];
	TRY(crypto_random(s->id, sizeof s->id));
	repo_object_key("snapshots/", s->id, key);
	int rc = snap_encode(s, &b);
	if (rc == 0)
		rc = repo_put_object(r, 'S', key, b.data, b.len, STORE_PUT_CREATE_ONCE);
	buf_free(&b);
	return rc;
}

static int snap_load_key(repo *r, const char *key, snapshot *out)
{
	uint8_t *plain = NULL;
	size_t len = 0;
	const char *hex = strrchr(key, '/');
	TRY(repo_get_object(r, 'S', key, &plain, &len));
	int rc = snap_decode(key, plain, len, out);
	free(plain);
	if (rc == 0 && (hex == NULL || !hex_decode(hex + 1, out->id, CRYPTO_ID_LEN))) {
		snap_free(out);
		rc = err_set(DRE_ECORRUPT, "snapshot object %s has a malformed name", key);
	}
	return rc;
}

int snap_load(repo *r, const uint8_t id[CRYPTO_ID_LEN], snapshot *out)
{
	char key[80];
	repo_object_key("snapshots/", id, key);
	return snap_load_key(r, key, out);
}

struct list_ctx {
	repo *r;
	snap_list *l;
	size_t cap;
	void (*warn)(void *, const char *);
	void *warn_arg;
};

static int list_one(void *arg, const char *key, uint64_t size)
{
	struct list_ctx *lc = arg;
	snapshot s;
	(void)size;
	int rc = snap_load_key(lc->r, key, &s);
	if (rc == DRE_ECORRUPT || rc == DRE_EUNSUPP || rc == DRE_ENOTFOUND) {
		lc->l->damaged++;
		if (lc->warn)
			lc->warn(lc->warn_arg, err_msg());
		return 0;
	}
	TRY(rc);
	if (!array_room(&lc->l->items, &lc->cap, lc->l->n, sizeof *lc->l->items, 16)) {
		snap_free(&s);
		return err_set(DRE_ENOMEM, "cannot list snapshots");
	}
	lc->l->items[lc->l->n++] = s;
	return 0;
}

static int snap_cmp_time(const void *a, const void *b)
{
	const snapshot *x = a, *y = b;
	if (x->time_ns != y->time_ns)
		return x->time_ns < y->time_ns ? -1 : 1;
	return memcmp(x->id, y->id, CRYPTO_ID_LEN);
}

int snap_list_load(repo *r, snap_list *out, void (*warn)(void *arg, const char *msg), void *warn_arg)
{
	struct list_ctx lc = {r, out, 0, warn, warn_arg};
	memset(out, 0, sizeof *out);
	int rc = store_list(r->st, "snapshots/", list_one, &lc);
	if (rc < 0) {
		snap_list_free(out);
		return err_ctx(rc, "listing snapshots");
	}
	if (out->n > 1)
		qsort(out->items, out->n, sizeof *out->items, snap_cmp_time);
	return 0;
}

void snap_list_free(snap_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		snap_free(&l->items[i]);
	free(l->items);
	memset(l, 0, sizeof *l);
}

static bool is_hex_prefix(const char *s)
{
	size_t n = strlen(s);
	if (n < 4 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

struct prefix_match {
	const char *prefix;
	size_t matches;
	char key[80];
};

static int match_key(void *arg, const char *key, uint64_t size)
{
	struct prefix_match *m = arg;
	(void)size;
	const char *hex = key + strlen("snapshots/");
	if (strncmp(hex, m->prefix, strlen(m->prefix)) == 0 && strlen(key) < sizeof m->key) {
		m->matches++;
		snprintf(m->key, sizeof m->key, "%s", key);
	}
	return 0;
}

int snap_find(repo *r, const char *what, int64_t before_ns, snapshot *out)
{
	snap_list l;
	size_t pick = SIZE_MAX;

	/* an ID prefix is matched against object names, so a damaged snapshot is reported as damaged, by name */
	if (is_hex_prefix(what)) {
		struct prefix_match m = {what, 0, ""};
		TRY(store_list(r->st, "snapshots/", match_key, &m));
		if (m.matches > 1)
			return err_set(DRE_EINVAL, "snapshot ID prefix %s is ambiguous (%zu snapshots match)", what,
				       m.matches);
		if (m.matches == 1)
			return snap_load_key(r, m.key, out);
	}
	TRY(snap_list_load(r, &l, NULL, NULL));
	for (size_t i = 0; i < l.n; i++) /* sorted oldest first: the last match is the newest */
		if (strcmp(l.items[i].name, what) == 0 && (before_ns < 0 || l.items[i].time_ns <= before_ns))
			pick = i;
	if (pick == SIZE_MAX) {
		bool any_name = false;
		size_t damaged = l.damaged;
		for (size_t i = 0; i < l.n; i++)
			any_name |= strcmp(l.items[i].name, what) == 0;
		snap_list_free(&l);
		if (any_name)
			return err_set(DRE_ENOTFOUND, "no snapshot named %s was taken at or before the time given", what);
		return err_set(DRE_ENOTFOUND, "no snapshot named or with ID %s%s. HINT: 'dre snapshots' lists them",
			       what, damaged ? " (some snapshot objects are damaged: run 'dre check')" : "");
	}
	*out = l.items[pick];
	memset(&l.items[pick], 0, sizeof l.items[pick]);
	snap_list_free(&l);
	return 0;
}

static json_t *json_time(int64_t ns)
{
	char text[64];
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;
	gmtime_r(&t, &tm);
	size_t n = strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(text + n, sizeof text - n, ".%09lldZ", (long long)(ns % 1000000000));
	return json_string(text);
}

static json_t *json_hex(const uint8_t *p, size_t len)
{
	char hex[129];
	hex_encode(p, len, hex);
	return json_string(hex);
}

void *snap_summary_json(const snapshot *s)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_hex(s->id, CRYPTO_ID_LEN));
	json_object_set_new(o, "name", json_string(s->name));
	json_object_set_new(o, "kind", json_string(snap_kind_name(s->kind)));
	json_object_set_new(o, "time", json_time(s->time_ns));
	json_object_set_new(o, "end_time", json_time(s->end_time_ns));
	json_object_set_new(o, "host", json_string(s->host));
	json_object_set_new(o, "size", json_integer((json_int_t)s->size));
	json_object_set_new(o, "stored_new", json_integer((json_int_t)s->stored_new));
	json_object_set_new(o, "chunks", json_integer((json_int_t)s->chunks_total));
	json_object_set_new(o, "chunks_new", json_integer((json_int_t)s->chunks_new));
	json_object_set_new(o, "dedup_ratio",
			    json_real(s->stored_new ? (double)s->size / (double)s->stored_new : 0.0));
	json_object_set_new(o, "files", json_integer((json_int_t)s->nnodes));
	if (s->nmeta) {
		json_t *m = json_object();
		for (size_t i = 0; i < s->nmeta; i++)
			json_object_set_new(m, s->meta[i].key, json_string(s->meta[i].value));
		json_object_set_new(o, "meta", m);
	}
	return o;
}

int snap_to_json(const snapshot *s, bool with_chunks, char **out)
{
	json_t *o = snap_summary_json(s);
	json_t *nodes = json_array();
	for (size_t i = 0; i < s->nnodes; i++) {
		const snap_node *n = &s->nodes[i];
		json_t *j = json_object();
		json_object_set_new(j, "type", json_string(node_type_name(n->type)));
		json_object_set_new(j, "path", json_string(n->path));
		json_object_set_new(j, "mode", json_integer(n->mode));
		json_object_set_new(j, "uid", json_integer(n->uid));
		json_object_set_new(j, "gid", json_integer(n->gid));
		json_object_set_new(j, "mtime", json_time(n->mtime_ns));
		json_object_set_new(j, "size", json_integer((json_int_t)n->size));
		if (n->type == NODE_STREAM || n->type == NODE_FILE)
			json_object_set_new(j, "xxh3_128", json_hex(n->xxh128, 16));
		if (n->link)
			json_object_set_new(j, "link", json_string(n->link));
		json_object_set_new(j, "nchunks", json_integer(n->nchunks));
		if (with_chunks) {
			json_t *c = json_array();
			for (uint32_t k = 0; k < n->nchunks; k++)
				json_array_append_new(c, json_hex(n->chunks[k], CRYPTO_ID_LEN));
			json_object_set_new(j, "chunks", c);
		}
		json_array_append_new(nodes, j);
	}
	json_object_set_new(o, "nodes", nodes);
	*out = json_dumps(o, JSON_INDENT(2) | JSON_ENSURE_ASCII);
	json_decref(o);
	if (*out == NULL)
		return err_set(DRE_ENOMEM, "cannot render the snapshot as JSON");
	return 0;
}
