/*
 * plan.h — prune plans, "prune/<hex>" (envelope type 'P', format-spec.md §16.2): the packs one prune is about
 * to delete, and the writer's side of the protocol that keeps committed snapshots whole beside it (§16.3).
 */
#ifndef DRE_PLAN_H
#define DRE_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/repo/index.h"
#include "engine/repo/repo.h"

enum plan_reason { PLAN_DEAD = 1, PLAN_REPACKED = 2, PLAN_ORPHAN = 3 };

typedef struct plan_pack {
	uint8_t id[CRYPTO_ID_LEN];
	uint8_t reason;
} plan_pack;

typedef struct prune_plan {
	char key[80]; /* "prune/<hex>" */
	int64_t created_ns;
	plan_pack *packs;
	size_t n;
} prune_plan;

/* Writes p under a fresh key (create-once); p->key gets it. */
int plan_write(repo *r, prune_plan *p);
int plan_read(repo *r, const char *key, uint64_t size, prune_plan *out);
void plan_free(prune_plan *p);

/* Every plan in the store (a damaged one is an error: its packs must not be relied on). */
typedef struct plan_set {
	prune_plan *items;
	size_t n;
} plan_set;
int plan_load_all(repo *r, plan_set *out);
void plan_set_free(plan_set *s);
/* Whether the set holds a plan of this key. */
bool plan_set_has(const plan_set *s, const char *key);

/*
 * A writer's view (§16.3): W1 reads every plan and excludes its packs from idx before the index is loaded;
 * W3/W4 check that no plan it did not read names a pack it relied on (idx tracks them), and W4 then that every
 * pack it relied on still exists (a prune may have finished, plan and all, during the run). DRE_EBUSY names the
 * plan or the pack.
 */
typedef struct plan_guard {
	plan_set seen;
} plan_guard;
int plan_guard_start(repo *r, chunk_index *idx, plan_guard *g);
int plan_guard_check(repo *r, const chunk_index *idx, const plan_guard *g);
int plan_guard_check_packs(repo *r, const chunk_index *idx);
void plan_guard_free(plan_guard *g);

#endif
