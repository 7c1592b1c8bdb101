/*
 * prune.pml — a SPIN model of dre's deletion protocol, format-spec.md §16.3 (locks §16.1, plans §16.2), checked
 * by tests/e2e/model.sh. The property is §16.4's: no committed snapshot names a chunk that is gone.
 *
 * The store. Every object is a bit; every put, delete and listing is one atomic step of its own, so SPIN explores
 * every interleaving of them. Sets are bit masks (the printf lines of a trail print masks).
 *   packs    K0 (bit 0) holds chunk C and is referenced only by snapshot S0, which Forget deletes at some point
 *            (then K0 is dead); KQ (bit 1) holds chunk D, referenced by snapshot SK, never forgotten; N0, N1
 *            (bits 2, 3) are the fresh packs push 0 and push 1 write (each holding C). One chunk per pack; C
 *            may so be in up to three packs at once.
 *   index    slot 0 is I0 = {K0, KQ}; slot 1+i is push i's object {N_i}; slots from 3 are the replacements
 *            prunes write in R5 (an object never changes: a replacement is a new slot).
 *   snaps    S0 (bit 0), SK (bit 1), and push i's snapshot S_i (bit 2+i), which references C.
 *   plans    slot 2p+r is the plan of prune p's run r (r = 1: the same prune run again after it was killed).
 *   locks    wlock: live write locks, one bit per push; dlock: live delete locks, one bit per prune.
 *
 * Steps, mapped to §16.3 (and to engine/pipeline/push.c, engine/lifecycle/prune.c):
 *   Push i   W1  write lock put; LIST prune/ and read every plan (seen; their packs are excluded); load the index
 *            W2  deduplicate C against a pack that W1's index locates it in and no plan excludes, or store it
 *                anew in a pack of its own, N_i (chosen nondeterministically: a push may store a known chunk
 *                again, as two pushes storing the same new chunk do); w2 is the pack relied on. A file taken
 *                from a parent snapshot without reading it (push.c's node_reuse, format version 5) relies on the
 *                packs of its chunks the same way: index_use finds each in W1's index outside excluded packs and
 *                counts its pack as relied on, or the file is read and stored as here
 *            W3  (push_guard) LIST prune/: a plan not read in W1 naming the W2 pack fails the push ("busy") —
 *                before the index put {N_i} (when it wrote N_i) and before the snapshot put S_i
 *            W4  after the snapshot put: LIST prune/ under the same rule (plan_guard_check), then LIST packs/:
 *                the W2 pack must be there (plan_guard_check_packs); on a failure delete S_i and fail; else
 *                COMMITTED (the bit `committed`)
 *   Prune p  with delete locks (PRUNES2): lock put, LIST locks/, another live delete lock -> remove own, fail
 *            R1  LIST prune/ and read every plan (adopted: their packs are avoided as locations, the plans are
 *                deleted in R5); load the index; LIST packs/; walk the snapshots; LIST locks/ (packs before
 *                locks). C's location is a pack holding it that R1's index names, one outside the adopted plans
 *                when there is one (chosen nondeterministically: the engine takes one, and since issue 15 one in a
 *                listed pack when there is one, by reading the index again: a choice among these, so its
 *                behaviours are a subset of the model's, which also tries the unlisted ones). Doomed: dead = listed,
 *                indexed, not the location of a referenced chunk; orphan = listed, in no index object, doomed
 *                only when the locks/ listing showed no live write lock. Missing = indexed, not listed. §16.3 is
 *                silent on a referenced chunk located only in a pack the listing lacks (or in none): the prune
 *                stops, as engine/lifecycle/prune.c does (missing_check, mark); R1_NOSTOP goes on instead.
 *            R2  nothing doomed, nothing missing, no plan adopted: the prune ends. Else, when a doomed pack is
 *                not named by an adopted plan, a plan put naming those (engine: write_plan)
 *            R3  the grace wait is no step: the model has no time, so nothing is forced between R2 and R4
 *            R4  LIST index/ and read the new objects (fresh); LIST locks/; LIST snapshots/ and walk the new
 *                ones. A doomed pack is kept when it is an orphan that a fresh object names, an orphan while a
 *                live write lock exists (R1 or R4), or when it holds C, a new snapshot references C and no fresh
 *                object locates C in a pack not doomed ("elsewhere")
 *            R5  with delete locks, its own lock still there and no other live one (else fail); delete the doomed
 *                packs not kept, one step each; for each index object read in R1 that names a deleted or missing
 *                pack: the replacement put with its other entries (none left, or the old one gone already: no
 *                put), then the old one deleted; then its own plan and the adopted ones deleted; the delete lock
 *                removed
 *   Forget   deletes S0, one step at any time (its delete lock is left out: that only adds interleavings)
 *   Crashes  every process may be killed before any of its writes (a kill between two reads leaves the same
 *            store as one before the next write; a holder that finds its lock lost, §16.1, stops as if killed).
 *            A killed push's write lock disappears at once (it goes stale; sooner only adds interleavings); a
 *            killed prune leaves its plan and, with RESTART, runs once more from the start, adopting it. The
 *            delete lock of a killed prune disappears likewise.
 *
 * Abstracted away: chunk IDs and pack contents beyond one chunk per pack, list blobs, repacking (reason 2; with
 * one chunk a pack is all live or all dead), multipart uploads, WAL; reading the objects a listing shows is part
 * of the listing step; time: grace, refresh and staleness are nondeterminism, not clocks. Without STALE a live
 * write lock is always seen; with STALE the prune's lock listings may take every write lock for stale (as when
 * its holder is paused past the stale age or clocks differ); the writer's check of its own lock (W3) is then
 * taken to have passed before the pause, so it is left out.
 *
 * Properties, asserted in every state by Monitor:
 *   SAFE      each committed snapshot (and SK) references a chunk held by a pack that exists and that a live
 *             index object names;
 *   INDEX_OK  a live index object names a deleted pack only while a live plan names that pack (else a later
 *             push deduplicates against a pack that is gone, and fails W4). Not asserted with ONLY_SAFE.
 *
 * Configurations (-D): by default two pushes, one prune, Forget; RESTART: a killed prune runs once more.
 *   PRUNES2      one push and two prunes with delete locks (each may run again with RESTART); with PUSHES2
 *                too, two pushes and two prunes (for counterexamples only: with RESTART and STALE it exceeds
 *                130M states)
 *   STALE        write locks may look stale to the prune: the residual risk §16.4 documents for orphans
 *                (INDEX_OK fails; with R4_LISTED SAFE holds, 16.5M states)
 *   STALE_DLOCK  (with PRUNES2) a prune past its R5 lock check may be paused and its delete lock look stale to
 *                the other prune: SAFE fails (the other residual risk §16.4 documents)
 *   R4_LISTED    §16.3 R4 as specified (tests/e2e/model.sh passes it everywhere): R4 also lists packs/ after
 *                index/, and a fresh object's location of C counts as "elsewhere" only in a pack that listing
 *                shows and that is not planned (engine/lifecycle/prune.c: fresh_location_sound). Without it, STALE makes
 *                SAFE fail: a mutant.
 *   R4_LOCATION  an earlier engine/lifecycle/prune.c R4 (mark): a fresh location anywhere counts (kept for reference;
 *                fails SAFE with STALE)
 * Mutants, each of which must violate an assertion:
 *   NO_W4           commit right after the snapshot put
 *   NO_W4_PACKS     W4 is the LIST prune/ alone: a whole prune (plan put, deletes, plan deleted) between a push's
 *                   W1 and its W3/W4 goes unseen
 *   W4_PACKS_FIRST  W4 lists packs/ before prune/ (§16.4 needs them in the other order)
 *   NO_RESCAN       no R4 listings of index/ and snapshots/
 *   NO_W1_EXCL      W1 excludes no planned pack
 *   NO_ORPHAN_LOCK  orphans doomed and deleted whatever the write locks
 *   R1_LOCKS_FIRST  R1 lists locks/ before packs/
 *   ADOPT_ALL       the adopted plans' packs are deleted unless R4 keeps them (not classified afresh by R1)
 *   R1_NOSTOP       R1 marks a referenced chunk at a location the listing lacks and goes on
 *   NO_DLOCK        (with PRUNES2) no delete locks
 */

#if defined(PRUNES2) && defined(PUSHES2)
#define NPUSH 2
#define NPRUNE 2
#elif defined(PRUNES2)
#define NPUSH 1
#define NPRUNE 2
#else
#define NPUSH 2
#define NPRUNE 1
#endif

/* packs */
#define K0 0
#define KQ 1
#define NP(i) (2 + (i))
#define CPACKS 13 /* packs holding chunk C: K0, N0, N1 */
#define DPACKS 2  /* KQ */
#define ALLPACKS 15
/* chunks */
#define CH_C 1
#define CH_D 2
/* snapshots: S0 = bit 0, SK = bit 1, S_i = bit 2+i; all but SK reference C */
#define SNAP_C 13
#define SNAP_D 2

#define NIDX 8
#define NPLAN 4

byte packs = 3;         /* K0, KQ exist */
byte idx_c[NIDX];       /* contents (pack mask), written once per slot */
byte idx_live = 1;      /* which slots exist: I0 */
byte nidx = 3;          /* next free replacement slot */
byte plan_c[NPLAN];     /* planned packs per plan slot, written once */
byte plan_live = 0;
byte snaps = 3;         /* S0, SK */
byte committed = 0;     /* pushes whose W4 passed */
byte wlock = 0;         /* live write locks */
byte dlock = 0;         /* live delete locks */
byte inr5 = 0;          /* prunes past their R5 lock check (STALE_DLOCK: their locks may look stale) */

/* union of the contents of the index slots in mask m */
#define IS(m, s) ((((m) >> (s)) & 1) -> idx_c[s] : 0)
#define IDXU(m) (IS(m,0) | IS(m,1) | IS(m,2) | IS(m,3) | IS(m,4) | IS(m,5) | IS(m,6) | IS(m,7))
#define LOC IDXU(idx_live)
/* union of the planned packs of the plan slots in mask m */
#define PS(m, s) ((((m) >> (s)) & 1) -> plan_c[s] : 0)
#define PLU(m) (PS(m,0) | PS(m,1) | PS(m,2) | PS(m,3))
/* chunks held by the packs in mask m */
#define CHUNKS(m) ((((m) & CPACKS) != 0 -> CH_C : 0) | (((m) & DPACKS) != 0 -> CH_D : 0))
/* chunks referenced by the snapshots in mask m */
#define REFS(m) ((((m) & SNAP_C) != 0 -> CH_C : 0) | (((m) & SNAP_D) != 0 -> CH_D : 0))

/* chunks stored: in a pack that exists and that a live index object names */
#define STORED CHUNKS(packs & LOC)
#define SAFE (((committed != 0) -> ((STORED & CH_C) != 0) : 1) && ((STORED & CH_D) != 0))
#ifdef ONLY_SAFE
#define INDEX_OK 1
#else
#define INDEX_OK ((LOC & ~packs & ~PLU(plan_live) & ALLPACKS) == 0)
#endif

/* the process may be killed before this write (a crash between two reads is the same as one before the next
 * write: reads leave nothing behind) */
#define WRITE(s) if :: goto crash :: s fi

proctype Monitor()
{
end:	atomic {
		!(SAFE && INDEX_OK) ->
		if
		:: !SAFE -> printf("SAFE violated: a committed snapshot names a chunk that is gone\n")
		:: else -> printf("INDEX_OK violated: an index object locates a chunk in a deleted pack no plan names\n")
		fi;
		assert(false)
	}
}

proctype Forget()
{
	d_step { snaps = snaps & ~1; printf("forget: deletes S0\n") }
}

/* W3 and W4's LIST prune/: a plan not read in W1 names the pack of W2 */
#define NEWPLAN ((PLU(plan_live & ~seen) & w2) != 0)
#define W4_PLANS \
	atomic { \
		if \
		:: NEWPLAN -> printf("push %d W4: LIST prune/: a new plan names %d\n", i, w2); goto w4fail \
		:: else -> printf("push %d W4: LIST prune/: no new plan names %d\n", i, w2) \
		fi \
	}
/* W4's LIST packs/: the pack of W2 is there */
#define W4_PACKS \
	atomic { \
		if \
		:: (w2 & ~packs) != 0 -> printf("push %d W4: LIST packs/: %d is gone\n", i, w2); goto w4fail \
		:: else -> printf("push %d W4: LIST packs/: %d is there\n", i, w2) \
		fi \
	}

proctype Push(byte i)
{
	byte seen;	/* plan slots read in W1 */
	byte loc;	/* packs holding C that W1's index locates, minus the excluded ones */
	byte w2;	/* the pack relied on */

	/* W1 */
	d_step { wlock = wlock | (1 << i); printf("push %d W1: write lock put\n", i) };
	d_step {
		seen = plan_live;
#ifndef NO_W1_EXCL
		loc = PLU(plan_live);
#endif
		printf("push %d W1: LIST prune/: plans (slot mask) %d, excluding packs %d\n", i, seen, loc)
	};
	atomic {
		loc = LOC & ~loc & CPACKS;
		printf("push %d W1: index loaded: C located in packs %d\n", i, loc);
		/* W2: deduplicate C against any pack that locates it, or write a pack of its own */
		if
		:: (loc >> K0) & 1 -> w2 = 1 << K0
		:: (loc >> NP(0)) & 1 -> w2 = 1 << NP(0)
		:: (loc >> NP(1)) & 1 -> w2 = 1 << NP(1)
		:: w2 = 1 << NP(i)	/* stores C anew, located or not */
		fi;
		loc = 0
	};
	if
	:: w2 == 1 << NP(i) ->
		WRITE(d_step { packs = packs | w2; printf("push %d W2: pack put %d\n", i, w2) });
		/* W3, then the index put */
		atomic {
			if
			:: NEWPLAN -> printf("push %d W3: LIST prune/: a new plan names %d: busy\n", i, w2); goto busy
			:: else -> printf("push %d W3: LIST prune/: no new plan names %d\n", i, w2)
			fi
		};
		WRITE(d_step { idx_c[1 + i] = w2; idx_live = idx_live | (1 << (1 + i)); printf("push %d: index put\n", i) })
	:: else -> printf("push %d W2: deduplicates C against pack %d\n", i, w2)
	fi;
	/* W3, then the snapshot put */
	atomic {
		if
		:: NEWPLAN -> printf("push %d W3: LIST prune/: a new plan names %d: busy\n", i, w2); goto busy
		:: else -> printf("push %d W3: LIST prune/: no new plan names %d\n", i, w2)
		fi
	};
	WRITE(d_step { snaps = snaps | (1 << (2 + i)); printf("push %d: snapshot put\n", i) });
	/* W4 */
#ifndef NO_W4
#if defined(W4_PACKS_FIRST)
	W4_PACKS;
	W4_PLANS;
#elif defined(NO_W4_PACKS)
	W4_PLANS;
#else
	W4_PLANS;
	W4_PACKS;
#endif
#endif
	d_step { committed = committed | (1 << i); printf("push %d: COMMITTED\n", i) };
	goto done;
w4fail:
	WRITE(atomic { snaps = snaps & ~(1 << (2 + i)); printf("push %d W4: snapshot deleted, fails\n", i) });
busy:
done:
crash:
	atomic { wlock = wlock & ~(1 << i); seen = 0; w2 = 0; printf("push %d: ends, write lock gone\n", i) }
}

/* R1's and R4's LIST locks/: with STALE every write lock may look stale */
#ifdef STALE
#define WLOCKS(x) if :: x = (wlock != 0) :: x = 0 fi
#else
#define WLOCKS(x) x = (wlock != 0)
#endif
#ifdef NO_ORPHAN_LOCK
#define LOCKS_SEEN(x) x = 0
#else
#define LOCKS_SEEN(x) WLOCKS(x)
#endif
/* R4: where a fresh index object's location of C counts as "elsewhere" (§16.3: a pack not doomed; R4_LISTED: and
 * listed in R4; R4_LOCATION, as engine/lifecycle/prune.c: any pack), and the doomed packs kept when no location does
 * (§16.3: every one holding C; R4_LOCATION: C's location in R1's index only) */
#if defined(R4_LISTED)
#define R4_ELSEWHERE (~del & listed)
#elif defined(R4_LOCATION)
#define R4_ELSEWHERE ALLPACKS
#else
#define R4_ELSEWHERE (~del)
#endif
#ifdef R4_LOCATION
#define R4_KEEP cl
#else
#define R4_KEEP (IDXU(known1 | fresh) & CPACKS)
#endif
#define R1_LOCKS \
	atomic {	/* not d_step: STALE chooses */ \
		LOCKS_SEEN(wl); \
		printf("prune %d R1: LIST locks/: write lock seen %d\n", p, wl) \
	}

proctype Prune(byte p)
{
	byte rn = 0;	/* 1: the restarted run */
	byte adopt;	/* plan slots adopted in R1 */
	byte avoid;	/* the packs they name */
	byte known1;	/* index slots read in R1 */
	byte fresh;	/* index slots first read in R4 */
	byte listed;	/* packs listed in R1 (R4_LISTED: then in R4) */
	byte walked;	/* snapshots walked */
	byte refd;	/* chunks referenced by the snapshots walked in R1, then by the new ones walked in R4 */
	byte cl;	/* C's location in R1's index */
	byte doom;	/* packs doomed in R1 (adopted ones too) */
	byte orph;	/* of which orphans */
	byte gone;	/* packs deleted or missing: the index objects read in R1 that name one are rewritten */
	bool wl;	/* a live write lock was seen (R1 or R4) */
	byte del;	/* packs it deletes */
	byte dl;	/* of which not yet deleted */
	byte rew;	/* index slots it rewrites */
	byte pl;	/* plan slots it deletes */
	byte s;
	byte t;

start:
#if defined(PRUNES2) && !defined(NO_DLOCK)
	atomic { dlock = dlock | (1 << p); printf("prune %d: delete lock put\n", p) };
	if
	:: (dlock & ~(1 << p)) != 0 -> d_step { dlock = dlock & ~(1 << p); printf("prune %d: another delete lock: fails\n", p) }; goto end
	:: else
#ifdef STALE_DLOCK
	:: (dlock & ~(1 << p)) != 0 && (dlock & ~(1 << p) & ~inr5) == 0 ->
		printf("prune %d: LIST locks/: the other delete lock looks stale\n", p)
#endif
	fi;
#endif
	/* R1 */
	atomic { adopt = plan_live; avoid = PLU(adopt); printf("prune %d R1: LIST prune/: adopts plans %d (packs %d)\n", p, adopt, avoid) };
	d_step { known1 = idx_live; printf("prune %d R1: index loaded: slots %d\n", p, known1) };
#ifdef R1_LOCKS_FIRST
	R1_LOCKS;
#endif
	d_step { listed = packs; printf("prune %d R1: LIST packs/: %d\n", p, listed) };
	d_step { walked = snaps; refd = REFS(snaps); printf("prune %d R1: walks snapshots %d\n", p, walked) };
#ifndef R1_LOCKS_FIRST
	R1_LOCKS;
#endif
	atomic {
		/* C's location: a pack holding C that R1's index names, outside the adopted plans when there is one */
		t = IDXU(known1) & CPACKS;
		if
		:: (t & ~avoid) != 0 -> t = t & ~avoid
		:: else
		fi;
		if
		:: (t >> K0) & 1 -> cl = 1 << K0
		:: (t >> NP(0)) & 1 -> cl = 1 << NP(0)
		:: (t >> NP(1)) & 1 -> cl = 1 << NP(1)
		:: t == 0 -> cl = 0
		fi;
		t = 0;
		/* a referenced chunk that no index object locates, or only in a pack the store lacks: prune stops */
#ifndef R1_NOSTOP
		if
		:: (refd & CH_C) != 0 && (cl & listed) == 0 ->
			printf("prune %d R1: C is referenced and located in no listed pack (%d): stops\n", p, cl); goto finish
		:: else
		fi;
#endif
		/* dead: listed, indexed, not the location of a referenced chunk (KQ: SK references D) */
		doom = listed & IDXU(known1) & ~DPACKS;
		if
		:: (refd & CH_C) != 0 -> doom = doom & ~cl
		:: else
		fi;
		/* orphan: listed, in no index object, doomed only when no live write lock was seen */
		if
		:: wl -> orph = 0
		:: else -> orph = listed & ~IDXU(known1) & ALLPACKS
		fi;
		doom = doom | orph;
		gone = IDXU(known1) & ~listed & ALLPACKS;	/* missing */
#ifdef ADOPT_ALL
		doom = doom | avoid;
#endif
		printf("prune %d R1: C at %d; doomed: dead %d, orphan %d; missing %d\n", p, cl, doom & ~orph, orph, gone)
	};
	/* R2 */
	if
	:: doom == 0 && gone == 0 && adopt == 0 -> atomic { printf("prune %d R2: nothing to do\n", p); goto finish }
	:: else -> pl = adopt
	fi;
	if
	:: (doom & ~avoid) != 0 ->
		WRITE(d_step {
			plan_c[2 * p + rn] = doom & ~avoid; plan_live = plan_live | (1 << (2 * p + rn));
			pl = pl | (1 << (2 * p + rn));
			printf("prune %d R2: plan put (slot %d): packs %d\n", p, 2 * p + rn, doom & ~avoid)
		})
	:: else -> printf("prune %d R2: no plan (the adopted plans name every doomed pack)\n", p)
	fi;
	/* R3: the grace wait is no step: nothing is forced between R2 and R4 */
	/* R4 */
#ifndef NO_RESCAN
	d_step { fresh = idx_live & ~known1; printf("prune %d R4: LIST index/: new slots %d\n", p, fresh) };
#ifdef R4_LISTED
	d_step { listed = packs; printf("prune %d R4: LIST packs/: %d\n", p, listed) };
#endif
#endif
	atomic {	/* not d_step: STALE chooses */
#ifdef NO_ORPHAN_LOCK
		wl = 0;
#else
		if
		:: wl
		:: else -> WLOCKS(wl)
		fi;
#endif
		printf("prune %d R4: LIST locks/: write lock seen (R1 or R4) %d\n", p, wl)
	};
#ifndef NO_RESCAN
	d_step { refd = REFS(snaps & ~walked); walked = walked | snaps; printf("prune %d R4: walks snapshots %d, new references %d\n", p, walked, refd) };
#else
	refd = 0;
#endif
	atomic {
		del = doom;
		/* kept: an orphan that a fresh index object names, or any orphan while a write lock lives ... */
		if
		:: wl -> del = del & ~orph
		:: else -> del = del & ~(orph & IDXU(fresh))
		fi;
		/* ... or, when a new snapshot references C and no fresh index object locates it outside the doomed
		 * packs, a pack holding C (R4_LOCATION: only C's location in R1's index, as engine/lifecycle/prune.c's mark) */
		if
		:: (refd & CH_C) != 0 && (IDXU(fresh) & CPACKS & R4_ELSEWHERE) == 0 -> del = del & ~R4_KEEP
		:: else
		fi;
		gone = (gone | del) & ALLPACKS;
		/* the index objects read in R1 that name a deleted or missing pack */
		rew = 0;
		s = 0;
		do
		:: s == NIDX -> break
		:: s < NIDX ->
			if
			:: ((known1 >> s) & 1) && (idx_c[s] & gone) != 0 -> rew = rew | (1 << s)
			:: else
			fi;
			s++
		od;
		s = 0; t = 0; walked = 0; refd = 0; doom = 0; orph = 0; adopt = 0; avoid = 0; fresh = 0; cl = 0; wl = 0;
		printf("prune %d R4: deletes packs %d, rewrites index slots %d\n", p, del, rew)
	};
#if defined(PRUNES2) && !defined(NO_DLOCK)
	/* R5: its own lock still there and no other live delete lock */
	if
	:: (dlock & ~(1 << p)) != 0 || (dlock & (1 << p)) == 0 ->
		d_step { dlock = dlock & ~(1 << p); printf("prune %d R5: delete lock check fails\n", p) }; goto end
#ifndef STALE_DLOCK
	:: else
#else
	:: else -> d_step { inr5 = inr5 | (1 << p); printf("prune %d R5: delete lock check passes\n", p) }
	:: (dlock & ~(1 << p)) != 0 && (dlock & ~(1 << p) & ~inr5) == 0 ->
		d_step { inr5 = inr5 | (1 << p); printf("prune %d R5: LIST locks/: the other delete lock looks stale\n", p) }
#endif
	fi;
#endif
	/* R5: delete the packs, one step each (t: the lowest left) */
	dl = del;
	do
	:: dl != 0 -> WRITE(d_step { t = dl & (0 - dl); packs = packs & ~t; dl = dl & ~t; printf("prune %d R5: deletes pack %d\n", p, t); t = 0 })
	:: else -> break
	od;
	/* R5: rewrite the index objects: the replacement put (if it has entries left and the old one is still
	 * there), then the old object's delete (s: the lowest slot left, t: its entries that stay) */
	do
	:: rew != 0 ->
		WRITE(d_step {
			s = 0;
			do
			:: (rew >> s) & 1 -> break
			:: else -> s++
			od;
			t = idx_c[s] & ~gone;
			if
			:: t != 0 && ((idx_live >> s) & 1) ->
				assert(nidx < NIDX);
				idx_c[nidx] = t; idx_live = idx_live | (1 << nidx);
				printf("prune %d R5: index put (slot %d) %d replacing slot %d\n", p, nidx, t, s);
				nidx++
			:: else
			fi;
			t = 0
		});
		WRITE(d_step { idx_live = idx_live & ~(1 << s); rew = rew & ~(1 << s); printf("prune %d R5: deletes index slot %d\n", p, s); s = 0 })
	:: else -> break
	od;
	/* R5: delete its own and the adopted plans */
	do
	:: pl != 0 -> WRITE(d_step { t = pl & (0 - pl); plan_live = plan_live & ~t; pl = pl & ~t; printf("prune %d R5: deletes plan (slot mask %d)\n", p, t); t = 0 })
	:: else -> break
	od;
finish:
	atomic {
		dlock = dlock & ~(1 << p); inr5 = inr5 & ~(1 << p);
		adopt = 0; avoid = 0; known1 = 0; fresh = 0; listed = 0; walked = 0; refd = 0; cl = 0; doom = 0;
		orph = 0; gone = 0; wl = 0; del = 0; pl = 0;
		printf("prune %d: done\n", p)
	};
	goto end;
crash:
	atomic {
		dlock = dlock & ~(1 << p); inr5 = inr5 & ~(1 << p);	/* a killed prune's lock goes stale */
		adopt = 0; avoid = 0; known1 = 0; fresh = 0; listed = 0; walked = 0; refd = 0; cl = 0; doom = 0;
		orph = 0; gone = 0; wl = 0; del = 0; dl = 0; rew = 0; pl = 0; s = 0; t = 0;
		printf("prune %d: killed\n", p)
	};
#ifdef RESTART
	if
	:: rn == 0 -> atomic { rn = 1; printf("prune %d: runs again\n", p); goto start }
	:: else
	fi;
#endif
end:
	skip
}

init
{
	byte k = 0;
	atomic {
		idx_c[0] = (1 << K0) | (1 << KQ);
		run Monitor();
		run Forget();
		do
		:: k < NPUSH -> run Push(k); k++
		:: k == NPUSH -> break
		od;
		k = 0;
		do
		:: k < NPRUNE -> run Prune(k); k++
		:: k == NPRUNE -> break
		od;
		k = 0
	}
}
