#include "engine/repo/snapshot.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/err.h"

const char *snap_kind_name(uint8_t kind)
{
	switch (kind) {
	case SNAP_STREAM: return "stream";
	case SNAP_FILES: return "files";
	case SNAP_WAL: return "wal";
	case SNAP_PG_BASE: return "pg-base";
	case SNAP_PG_DUMP: return "pg-dump";
	}
	return "unknown";
}

const char *snap_meta_get(const snapshot *s, const char *key)
{
	for (size_t i = 0; i < s->nmeta; i++)
		if (strcmp(s->meta[i].key, key) == 0)
			return s->meta[i].value;
	return NULL;
}

const char *snap_node_type_name(uint8_t t)
{
	switch (t) {
	case NODE_STREAM: return "stream";
	case NODE_FILE: return "file";
	case NODE_DIR: return "dir";
	case NODE_SYMLINK: return "symlink";
	case NODE_CHARDEV: return "chardev";
	case NODE_BLOCKDEV: return "blockdev";
	}
	return "unknown";
}

/* Format 1's node table, decoded whole: its nodes, and all their chunk IDs one after another. */
struct snap_table {
	snap_node *nodes;
	size_t n;
	uint8_t (*ids)[CRYPTO_ID_LEN];
};

static void table_free(struct snap_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->nodes[i].path);
		free(t->nodes[i].link);
	}
	free(t->nodes);
	free(t->ids);
	free(t);
}

static void list_ref_put(buf *out, const list_ref *l)
{
	buf_u8(out, l->level);
	buf_u64(out, l->count);
	buf_put(out, l->id, CRYPTO_ID_LEN);
}

static void list_ref_get(rd *in, list_ref *l)
{
	l->level = rd_u8(in);
	l->count = rd_u64(in);
	const uint8_t *id = rd_take(in, CRYPTO_ID_LEN);
	if (id)
		memcpy(l->id, id, CRYPTO_ID_LEN);
}

/* An empty list is count 0, level 0 and a zero root ID, nothing else. */
static bool list_ref_empty_ok(const list_ref *l)
{
	static const uint8_t zero[CRYPTO_ID_LEN];
	return l->count != 0 || (l->level == 0 && memcmp(l->id, zero, CRYPTO_ID_LEN) == 0);
}

int snap_encode(const snapshot *s, buf *out)
{
	if (s->table != NULL || (s->format != SNAP_FORMAT_LISTS && s->format != SNAP_FORMAT_NODES))
		return err_set(DRE_EINVAL, "internal: a format %u snapshot is never written", s->format);
	buf_u8(out, s->format);
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
	buf_u64(out, s->nnodes);
	buf_u32(out, (uint32_t)s->nmeta);
	for (size_t i = 0; i < s->nmeta; i++) {
		buf_str16(out, s->meta[i].key);
		size_t vlen = strlen(s->meta[i].value);
		buf_u32(out, (uint32_t)vlen);
		buf_put(out, s->meta[i].value, vlen);
	}
	list_ref_put(out, &s->nodes);
	list_ref_put(out, &s->chunks);
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
	table_free(s->table);
	memset(s, 0, sizeof *s);
}

static void decode_meta(rd *in, snapshot *s)
{
	uint32_t nmeta = rd_u32(in);
	if (in->failed || nmeta > (in->len - in->off) / 6) {
		in->failed = true;
		return;
	}
	s->meta = calloc(nmeta ? nmeta : 1, sizeof *s->meta);
	if (s->meta == NULL)
		in->failed = true;
	for (uint32_t i = 0; i < nmeta && !in->failed; i++) {
		s->meta[i].key = rd_str16(in);
		uint32_t vlen = rd_u32(in);
		const uint8_t *v = rd_take(in, vlen);
		s->nmeta = i + 1;
		if (v == NULL || (s->meta[i].value = strndup((const char *)v, vlen)) == NULL)
			in->failed = true;
	}
}

/* Format 1: the node table with every chunk list inside the object. */
static void decode_table(rd *in, snapshot *s)
{
	uint32_t nnodes = rd_u32(in);
	struct snap_table *t = calloc(1, sizeof *t);
	size_t ids_cap = 0;
	if (t == NULL || in->failed || nnodes > (in->len - in->off) / 40) {
		free(t);
		in->failed = true;
		return;
	}
	s->table = t;
	t->nodes = calloc(nnodes ? nnodes : 1, sizeof *t->nodes);
	if (t->nodes == NULL)
		in->failed = true;
	for (uint32_t i = 0; i < nnodes && !in->failed; i++) {
		snap_node *n = &t->nodes[i];
		t->n = i + 1;
		n->type = rd_u8(in);
		n->path = rd_str16(in);
		n->mode = rd_u32(in);
		n->uid = rd_u32(in);
		n->gid = rd_u32(in);
		n->mtime_ns = (int64_t)rd_u64(in);
		n->size = rd_u64(in);
		const uint8_t *h = rd_take(in, 16);
		if (h)
			memcpy(n->xxh128, h, 16);
		n->link = rd_str16(in);
		if (n->link && n->link[0] == '\0') {
			free(n->link);
			n->link = NULL;
		}
		n->nchunks = rd_u32(in);
		const uint8_t *c = rd_take(in, (size_t)n->nchunks * CRYPTO_ID_LEN);
		if (c == NULL || n->path == NULL || n->type < NODE_STREAM || n->type > NODE_SYMLINK) {
			in->failed = true;
			break;
		}
		if (!array_room(&t->ids, &ids_cap, s->chunks_total + n->nchunks, CRYPTO_ID_LEN, 1024)) {
			in->failed = true;
			break;
		}
		memcpy(t->ids + s->chunks_total, c, (size_t)n->nchunks * CRYPTO_ID_LEN);
		s->chunks_total += n->nchunks;
	}
	s->nnodes = t->n;
}

int snap_decode(const char *key, const uint8_t *p, size_t len, snapshot *s)
{
	rd in = rd_make(p, len);
	memset(s, 0, sizeof *s);
	s->format = rd_u8(&in);
	if (s->format < SNAP_FORMAT_TABLE || s->format > SNAP_FORMAT_NODES)
		return err_set(DRE_EUNSUPP, "snapshot %s has format %u, this dre reads %d to %d", key, s->format,
			       SNAP_FORMAT_TABLE, SNAP_FORMAT_NODES);
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
	if (s->format != SNAP_FORMAT_TABLE) { /* formats 2 and 3 differ only in their node records */
		s->nnodes = rd_u64(&in);
		decode_meta(&in, s);
		list_ref_get(&in, &s->nodes);
		list_ref_get(&in, &s->chunks);
		/* the lists' counts are the header's: a reader can trust either */
		if (s->nodes.count != s->nnodes || s->chunks.count != s->chunks_total ||
		    s->nodes.level >= LIST_MAX_LEVELS || s->chunks.level >= LIST_MAX_LEVELS ||
		    !list_ref_empty_ok(&s->nodes) || !list_ref_empty_ok(&s->chunks))
			in.failed = true;
	} else {
		uint64_t claimed = s->chunks_total;
		decode_meta(&in, s);
		s->chunks_total = 0; /* counted again from the table */
		decode_table(&in, s);
		if (s->chunks_total != claimed)
			in.failed = true;
	}
	if (in.failed || in.off != len || s->name == NULL || s->host == NULL) {
		snap_free(s);
		return err_set(DRE_ECORRUPT, "corrupt snapshot %s: malformed contents", key);
	}
	return 0;
}

/* ---- node records (formats 2 and 3) ---- */

/* The fixed part of a record: everything but the path, the target and format 3's attributes. */
#define NODE_FIXED_V2 57
#define NODE_FIXED_V3 (NODE_FIXED_V2 + 38)
#define XATTR_VALUE_MAX 65536 /* Linux's XATTR_SIZE_MAX */

int snap_xattr_append(uint8_t *out, size_t cap, size_t *used, const char *name, const void *value, size_t len)
{
	size_t nlen = strlen(name);
	if (nlen == 0 || nlen > SNAP_XATTR_NAME_MAX)
		return err_set(DRE_EINVAL, "extended attribute name of %zu bytes", nlen);
	if (len > XATTR_VALUE_MAX)
		return err_set(DRE_EINVAL, "extended attribute %s has %zu bytes, more than %d", name, len,
			       XATTR_VALUE_MAX);
	if (2 + nlen + 4 + len > cap - *used)
		return err_set(DRE_EINVAL, "extended attribute %s (%zu bytes) does not fit in the node's record", name,
			       len);
	uint8_t *p = out + *used;
	put_le16(p, (uint16_t)nlen), p += 2;
	memcpy(p, name, nlen), p += nlen;
	put_le32(p, (uint32_t)len), p += 4;
	if (len)
		memcpy(p, value, len);
	*used += 2 + nlen + 4 + len;
	return 0;
}

int snap_xattr_next(const snap_node *n, size_t *pos, char name[SNAP_XATTR_NAME_MAX + 1], const uint8_t **value,
		    size_t *len)
{
	if (*pos >= n->xattr_len)
		return 0;
	const uint8_t *p = n->xattrs + *pos;
	size_t nlen = get_le16(p);
	memcpy(name, p + 2, nlen);
	name[nlen] = '\0';
	*len = get_le32(p + 2 + nlen);
	*value = p + 2 + nlen + 4;
	*pos += 2 + nlen + 4 + *len;
	return 1;
}

int snap_node_encode(uint8_t format, const snap_node *n, uint8_t *out, size_t cap, size_t *len)
{
	size_t plen = strlen(n->path), llen = n->link ? strlen(n->link) : 0;
	if (plen == 0 || plen > SNAP_PATH_MAX)
		return err_set(DRE_EINVAL, "path %s is longer than %d bytes", n->path, SNAP_PATH_MAX);
	if (llen > SNAP_PATH_MAX)
		return err_set(DRE_EINVAL, "the target of symlink %s is longer than %d bytes", n->path, SNAP_PATH_MAX);
	if (format != SNAP_FORMAT_NODES && (n->type > NODE_SYMLINK || n->nxattr != 0))
		return err_set(DRE_EINVAL, "internal: %s cannot be written in snapshot format %u", n->path, format);
	size_t need = (format == SNAP_FORMAT_NODES ? NODE_FIXED_V3 + n->xattr_len : NODE_FIXED_V2) + plen + llen;
	if (need > cap)
		return err_set(DRE_EINVAL, "the record of %s would have %zu bytes, more than %zu", n->path, need, cap);
	uint8_t *p = out;
	*p++ = n->type;
	put_le16(p, (uint16_t)plen), p += 2;
	memcpy(p, n->path, plen), p += plen;
	put_le32(p, n->mode), p += 4;
	put_le32(p, n->uid), p += 4;
	put_le32(p, n->gid), p += 4;
	put_le64(p, (uint64_t)n->mtime_ns), p += 8;
	put_le64(p, n->size), p += 8;
	memcpy(p, n->xxh128, 16), p += 16;
	put_le16(p, (uint16_t)llen), p += 2;
	memcpy(p, n->link ? n->link : "", llen), p += llen;
	put_le64(p, n->nchunks), p += 8;
	if (format == SNAP_FORMAT_NODES) {
		put_le64(p, (uint64_t)n->ctime_ns), p += 8;
		put_le64(p, n->dev), p += 8;
		put_le64(p, n->ino), p += 8;
		put_le32(p, n->nlink), p += 4;
		put_le64(p, n->rdev), p += 8;
		put_le16(p, n->nxattr), p += 2;
		if (n->xattr_len)
			memcpy(p, n->xattrs, n->xattr_len), p += n->xattr_len;
	}
	*len = (size_t)(p - out);
	return 0;
}

int snap_path_of(const char *path, char *out, size_t cap)
{
	size_t o = 0;
	const char *s = path;
	while (*s) {
		while (*s == '/')
			s++;
		const char *e = strchrnul(s, '/');
		size_t len = (size_t)(e - s);
		if (len == 0)
			break;
		if (len == 2 && s[0] == '.' && s[1] == '.')
			return err_set(DRE_EINVAL, "path %s contains '..': give the directory itself instead", path);
		if (!(len == 1 && s[0] == '.')) {
			if (o + len + 2 > cap)
				return err_set(DRE_EINVAL, "path %s is too long", path);
			if (o)
				out[o++] = '/';
			memcpy(out + o, s, len);
			o += len;
		}
		s = e;
	}
	out[o] = '\0';
	return 0;
}

/* A u16-length string into a buffer of SNAP_PATH_MAX + 1: false when too long or holding a NUL. */
static bool rd_name(rd *in, char *out)
{
	uint16_t n = rd_u16(in);
	const uint8_t *p = rd_take(in, n);
	if (p == NULL || n > SNAP_PATH_MAX || memchr(p, 0, n) != NULL)
		return false;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

/* Format 3's attribute block: count entries, each a name of 1..255 bytes without NUL, names in strictly
 * increasing byte order, values of at most 64 KiB, filling the record exactly. */
static bool rd_xattrs(rd *in, snap_node *n)
{
	const uint8_t *prev = NULL;
	size_t prev_len = 0;
	n->xattrs = in->p + in->off;
	size_t start = in->off;
	for (uint16_t i = 0; i < n->nxattr; i++) {
		uint16_t nlen = rd_u16(in);
		const uint8_t *name = rd_take(in, nlen);
		uint32_t vlen = rd_u32(in);
		if (name == NULL || rd_take(in, vlen) == NULL || nlen == 0 || nlen > SNAP_XATTR_NAME_MAX ||
		    memchr(name, 0, nlen) != NULL || vlen > XATTR_VALUE_MAX)
			return false;
		if (prev != NULL) {
			int c = memcmp(prev, name, prev_len < nlen ? prev_len : nlen);
			if (c > 0 || (c == 0 && prev_len >= nlen))
				return false;
		}
		prev = name, prev_len = nlen;
	}
	n->xattr_len = in->off - start;
	return !in->failed;
}

int snap_node_decode(uint8_t format, const uint8_t *p, size_t len, snap_node *n, char *path, char *link)
{
	rd in = rd_make(p, len);
	memset(n, 0, sizeof *n);
	n->type = rd_u8(&in);
	bool ok = rd_name(&in, path);
	n->path = path;
	n->mode = rd_u32(&in);
	n->uid = rd_u32(&in);
	n->gid = rd_u32(&in);
	n->mtime_ns = (int64_t)rd_u64(&in);
	n->size = rd_u64(&in);
	const uint8_t *h = rd_take(&in, 16);
	if (h)
		memcpy(n->xxh128, h, 16);
	ok = ok && rd_name(&in, link);
	n->link = link[0] ? link : NULL;
	n->nchunks = rd_u64(&in);
	uint8_t last_type = NODE_SYMLINK;
	if (format == SNAP_FORMAT_NODES) {
		n->ctime_ns = (int64_t)rd_u64(&in);
		n->dev = rd_u64(&in);
		n->ino = rd_u64(&in);
		n->nlink = rd_u32(&in);
		n->rdev = rd_u64(&in);
		n->nxattr = rd_u16(&in);
		ok = ok && rd_xattrs(&in, n);
		last_type = NODE_BLOCKDEV;
	}
	bool no_content = n->type != NODE_STREAM && n->type != NODE_FILE;
	bool device = n->type == NODE_CHARDEV || n->type == NODE_BLOCKDEV;
	if (!ok || in.failed || in.off != len || path[0] == '\0' || n->type < NODE_STREAM || n->type > last_type ||
	    (n->link != NULL) != (n->type == NODE_SYMLINK) || (no_content && (n->nchunks != 0 || (last_type == NODE_BLOCKDEV && n->size != 0))) ||
	    (!device && n->rdev != 0) || (n->type == NODE_STREAM && n->nxattr != 0))
		return err_set(DRE_ECORRUPT, "a malformed node record");
	return 0;
}

/* ---- walking a snapshot ---- */

struct snap_walk {
	const snapshot *s;
	chunk_index *own_idx;
	bool chunks;
	uint64_t nodes_seen, ids_seen, bytes_seen;
	uint64_t left; /* chunk IDs of the current node not taken yet */
	/* format 2 */
	list_reader nodes, ids;
	char path[SNAP_PATH_MAX + 1], link[SNAP_PATH_MAX + 1];
	char what_nodes[80], what_ids[80];
};

int snap_walk_open(repo *r, const chunk_index *idx, const snapshot *s, bool chunks, snap_walk **out)
{
	snap_walk *w = calloc(1, sizeof *w);
	if (w == NULL)
		return err_set(DRE_ENOMEM, "cannot walk snapshot %s", s->name);
	w->s = s;
	w->chunks = chunks;
	int rc = 0;
	if (s->table == NULL && idx == NULL) {
		char cache[4200];
		rc = index_new(&w->own_idx);
		if (rc == 0)
			rc = index_load(r, w->own_idx, index_cache_path(r, cache, sizeof cache), NULL, NULL, NULL);
		idx = w->own_idx;
	}
	if (s->table == NULL) {
		char hex[65];
		hex_encode(s->id, CRYPTO_ID_LEN, hex);
		snprintf(w->what_nodes, sizeof w->what_nodes, "the node list of snapshot %.8s", hex);
		snprintf(w->what_ids, sizeof w->what_ids, "the chunk list of snapshot %.8s", hex);
		if (rc == 0)
			rc = list_reader_open(&w->nodes, r, idx, LIST_NODES, &s->nodes, w->what_nodes);
		if (rc == 0 && chunks)
			rc = list_reader_open(&w->ids, r, idx, LIST_CHUNKS, &s->chunks, w->what_ids);
	}
	if (rc < 0) {
		snap_walk_free(w);
		return rc;
	}
	*out = w;
	return 0;
}

void snap_walk_free(snap_walk *w)
{
	if (w == NULL)
		return;
	list_reader_free(&w->nodes);
	list_reader_free(&w->ids);
	index_free(w->own_idx);
	free(w);
}

int snap_walk_chunk(snap_walk *w, uint8_t id[CRYPTO_ID_LEN])
{
	if (!w->chunks || w->left == 0)
		return err_set(DRE_EINVAL, "internal: no chunk left to walk");
	if (w->s->table) {
		memcpy(id, w->s->table->ids[w->ids_seen], CRYPTO_ID_LEN);
	} else {
		const uint8_t *e;
		size_t len;
		int rc = list_reader_next(&w->ids, &e, &len);
		TRY(rc);
		if (rc == 0)
			return err_set(DRE_ECORRUPT, "%s is damaged: it ends before its nodes' chunks do", w->what_ids);
		memcpy(id, e, CRYPTO_ID_LEN);
	}
	w->ids_seen++;
	w->left--;
	return 0;
}

/* The end of the nodes: every count the header gives must have matched. */
static int walk_end(snap_walk *w)
{
	const snapshot *s = w->s;
	char hex[65];
	hex_encode(s->id, CRYPTO_ID_LEN, hex);
	if (w->nodes_seen != s->nnodes || w->ids_seen != s->chunks_total || w->bytes_seen != s->size)
		return err_set(DRE_ECORRUPT, "snapshot %.8s is damaged: its nodes hold %" PRIu64 " chunks and %" PRIu64
					     " bytes, its header says %" PRIu64 " and %" PRIu64,
			       hex, w->ids_seen, w->bytes_seen, s->chunks_total, s->size);
	if (w->chunks && s->table == NULL) {
		const uint8_t *e;
		size_t len;
		int rc = list_reader_next(&w->ids, &e, &len);
		TRY(rc);
		if (rc == 1)
			return err_set(DRE_ECORRUPT, "%s is damaged: it holds more chunks than its nodes", w->what_ids);
	}
	return 0;
}

int snap_walk_next(snap_walk *w, snap_node *n)
{
	uint8_t skip[CRYPTO_ID_LEN];
	while (w->chunks && w->left > 0)
		TRY(snap_walk_chunk(w, skip));
	if (!w->chunks)
		w->ids_seen += w->left, w->left = 0;
	if (w->s->table) {
		if (w->nodes_seen == w->s->table->n)
			return walk_end(w);
		*n = w->s->table->nodes[w->nodes_seen];
	} else {
		const uint8_t *e;
		size_t len;
		int rc = list_reader_next(&w->nodes, &e, &len);
		TRY(rc);
		if (rc == 0)
			return walk_end(w);
		if (snap_node_decode(w->s->format, e, len, n, w->path, w->link) < 0)
			return err_set(DRE_ECORRUPT, "%s is damaged: node %" PRIu64 " is malformed", w->what_nodes,
				       w->nodes_seen);
	}
	if (n->nchunks > w->s->chunks_total - w->ids_seen)
		return err_set(DRE_ECORRUPT, "snapshot %s is damaged: node %s claims more chunks than it holds",
			       w->s->name, n->path);
	if (n->type == NODE_STREAM) /* a stream has no time of its own: every reader gives it the push's start */
		n->mtime_ns = w->s->time_ns;
	w->nodes_seen++;
	w->bytes_seen += n->size;
	w->left = n->nchunks;
	return 1;
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

/* size: what a listing said, or UINT64_MAX to ask the store */
static int snap_load_key(repo *r, const char *key, uint64_t size, snapshot *out)
{
	uint8_t *plain = NULL;
	size_t len = 0;
	const char *hex = strrchr(key, '/');
	if (size == UINT64_MAX)
		TRY(repo_get_object(r, 'S', key, &plain, &len));
	else
		TRY(repo_get_object_sized(r, 'S', key, size, &plain, &len));
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
	return snap_load_key(r, key, UINT64_MAX, out);
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
	int rc = snap_load_key(lc->r, key, size, &s); /* one GET per snapshot: the listing gave the size */
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

bool snap_id_prefix_text(const char *s)
{
	size_t n = strlen(s);
	if (n < 4 || n > 2 * CRYPTO_ID_LEN)
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
	uint64_t size;
};

static int match_key(void *arg, const char *key, uint64_t size)
{
	struct prefix_match *m = arg;
	const char *hex = key + strlen("snapshots/");
	if (strncmp(hex, m->prefix, strlen(m->prefix)) == 0 && strlen(key) < sizeof m->key) {
		m->matches++;
		m->size = size;
		snprintf(m->key, sizeof m->key, "%s", key);
	}
	return 0;
}

int snap_find(repo *r, const char *what, int64_t before_ns, snapshot *out)
{
	snap_list l;
	size_t pick = SIZE_MAX;

	/* an ID prefix is matched against object names, so a damaged snapshot is reported as damaged, by name */
	if (snap_id_prefix_text(what)) {
		struct prefix_match m = {what, 0, "", 0};
		TRY(store_list(r->st, "snapshots/", match_key, &m));
		if (m.matches > 1)
			return err_set(DRE_EINVAL, "snapshot ID prefix %s is ambiguous (%zu snapshots match)", what,
				       m.matches);
		if (m.matches == 1)
			return snap_load_key(r, m.key, m.size, out);
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
	char small[129], *hex = len <= 64 ? small : malloc(2 * len + 1); /* an attribute's value: up to 64 KiB */
	if (hex == NULL)
		return json_null();
	hex_encode(p, len, hex);
	json_t *j = json_string(hex);
	if (hex != small)
		free(hex);
	return j;
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

void *snap_node_json(const snap_node *n)
{
	json_t *j = json_object();
	json_object_set_new(j, "type", json_string(snap_node_type_name(n->type)));
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
	json_object_set_new(j, "nchunks", json_integer((json_int_t)n->nchunks));
	if (n->ctime_ns != 0 || n->ino != 0) { /* format 3 */
		json_object_set_new(j, "ctime", json_time(n->ctime_ns));
		json_object_set_new(j, "dev", json_integer((json_int_t)n->dev));
		json_object_set_new(j, "ino", json_integer((json_int_t)n->ino));
		json_object_set_new(j, "nlink", json_integer(n->nlink));
	}
	if (n->type == NODE_CHARDEV || n->type == NODE_BLOCKDEV)
		json_object_set_new(j, "rdev", json_integer((json_int_t)n->rdev));
	if (n->nxattr > 0) {
		json_t *x = json_object();
		char name[SNAP_XATTR_NAME_MAX + 1];
		const uint8_t *value;
		size_t pos = 0, len;
		while (snap_xattr_next(n, &pos, name, &value, &len) == 1)
			json_object_set_new(x, name, json_hex(value, len));
		json_object_set_new(j, "xattrs", x);
	}
	return j;
}
