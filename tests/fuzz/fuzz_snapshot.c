/* fuzz_snapshot — snapshot object plaintext (both formats, format-spec.md §10) and node records (§10.3).
 * Input: one byte choosing the parser, then its bytes. A snapshot that decodes is also printed as JSON and, in
 * format 1, walked (the node table and every chunk ID), as `dre cat snapshot` and restore would. */
#include <jansson.h>
#include <stdlib.h>

#include "engine/repo/snapshot.h"
#include "tests/fuzz/fuzz.h"

static void walk(const snapshot *s)
{
	chunk_index *idx;
	snap_walk *w;
	fuzz_check(index_new(&idx), "making an index");
	if (snap_walk_open(fuzz_repo(), idx, s, true, &w) == 0) {
		snap_node n;
		while (snap_walk_next(w, &n) == 1)
			json_decref(snap_node_json(&n));
		snap_walk_free(w);
	}
	index_free(idx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1) {
		static char path[SNAP_PATH_MAX + 1], link[SNAP_PATH_MAX + 1];
		snap_node n;
		uint8_t format = data[0] & 2 ? SNAP_FORMAT_NODES : SNAP_FORMAT_LISTS;
		if (snap_node_decode(format, data + 1, size - 1, &n, path, link) == 0)
			json_decref(snap_node_json(&n));
		return 0;
	}
	snapshot s;
	if (snap_decode("snapshots/fuzz", data + 1, size - 1, &s) < 0)
		return 0;
	json_decref(snap_summary_json(&s));
	for (size_t i = 0; i < s.nmeta; i++)
		(void)snap_meta_get(&s, s.meta[i].key);
	if (s.table != NULL)
		walk(&s);
	snap_free(&s);
	return 0;
}
