# dre — build, test, demo and benchmarks.
#
#   make            build ./dre
#   make test       install missing build dependencies, build, run every test
#   make asan       the same tests against an AddressSanitizer + UBSan build (build-asan/)
#   make demo       build, push and restore a generated dump on a repository of the demo's own (~/.cache/dre/demo)
#   make bench      `dre bench`: speed of each stage and of whole push/restore on generated data
#   make bench-s3   push/restore on local and S3 stores side by side (starts a Ceph gateway)
#   make bench-wal  wal-push latency per 16 MiB segment, dre against pgBackRest, and pg-backup speed
#   make bench-compare  dre, restic and borg on the same dumps and model files (installs restic, borgbackup)
#   make bench-index  the index at 10 million chunks: load from the cache and from the store, RAM per chunk,
#                   lookups (bench/README.md)
#   make bench-lifecycle  prune of a repository of 1.2 million chunks (time, peak RSS), forget and prune of a month
#                   of daily dumps, copy to a second repository (installs faketime; bench/README.md)
#   make bench-drill  pg-dump (row counts' cost) and restore drills of a dump and of a base backup to a time, on
#                   a private PostgreSQL 15 database of 1.1 GB (bench/drillbench; bench/README.md)
#   make bench-skip  unchanged files: a 10,000-file 5 GiB tree pushed again, ten model files of which one changed,
#                   pg-backup of a 5 GB pgbench cluster after its writes; dre skipping them against --force-read,
#                   restic and pgBackRest incremental (installs both; about 12 minutes; bench/skip.sh, bench/README.md)
#   make install    PREFIX=/usr/local, DESTDIR=: $(PREFIX)/bin/dre, the manual page dre.1 made from dre's own help
#                   (contrib/man/mkman) in $(PREFIX)/share/man/man1, contrib/ in $(PREFIX)/share/doc/dre/contrib
#   make uninstall  removes exactly what install put there
#   make tsan       the threaded pipeline's tests (push, restore, prune, copy with several workers) against a
#                   ThreadSanitizer build (build-tsan/, tests/tsan/run)
#   make lint       cppcheck and clang-tidy over the sources, configured by .clang-tidy and tests/lint/ (build-lint/)
#   make test-repeat  the suite ROUNDS (2) times, each round two runs at once, every second one beside a CPU hog per
#                   core: which tests fail only under load (tests/repeat). `DRE_TEST_JOBS=2 make test`: two at once
#   make torture    crash torture: dre SIGKILLed TORTURE_KILLS (1000) times at named points and random moments of push,
#                   forget, prune, copy, wal-push, wal-fetch; then check and byte-for-byte restores (tests/torture/)
#   make fuzz       libFuzzer targets of every parser of untrusted bytes (clang, build-fuzz/), each run FUZZ_SECONDS
#                   (default 300) on a copy of its corpus; a crash is saved in tests/fuzz/regress/ (tests/fuzz/fuzz.h)
#   make fuzz-ci    the same build, every corpus and regression input replayed, then each target FUZZ_SECONDS (10)
#   make faults-long  store faults (tests/e2e/faults.sh) in long mode: 40 rounds of every command at six fault rates
#                   on a local repository, 10 at three on S3 through tests/s3/faultproxy.py (CI runs a short one)
#
# Layering (enforced by what each object may include): chunker/ depends on nothing,
# store/ on nothing but libc/libcurl, engine/ on both, cli/ only on engine/.

CC      ?= cc
BUILD   ?= build
CFLAGS  ?= -O2 -g
# override: `make asan` passes CFLAGS on the command line, which must add to these, not replace them
override CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -pthread -I. -I$(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
override LDLIBS += -lzstd -lcrypto -lxxhash -luring -ljansson -lcurl -lexpat -linih -lpq -pthread

CHUNKER_SRC := $(wildcard chunker/*.c)
STORE_SRC   := $(wildcard store/*.c)
ENGINE_SRC  := $(wildcard engine/*.c engine/*/*.c)
CLI_SRC     := $(wildcard cli/*.c)
LIB_SRC     := $(CHUNKER_SRC) $(STORE_SRC) $(ENGINE_SRC)
LIB_OBJ     := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ     := $(CLI_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
UNIT_BIN    := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all deps test asan demo bench bench-s3 bench-wal bench-compare bench-index bench-lifecycle bench-drill clean unit \
	install uninstall

all: dre $(BUILD)/dre-gendump

dre: $(BUILD)/dre
	cp $< $@

$(BUILD)/dre: $(CLI_OBJ) $(BUILD)/libdre.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libdre.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c tests/unit/unit.h $(BUILD)/libdre.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libdre.a $(LDLIBS)

$(BUILD)/dre-gendump: bench/gendump.c $(BUILD)/libdre.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libdre.a $(LDLIBS)

$(BUILD)/dre-indexbench: bench/indexbench.c $(BUILD)/libdre.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libdre.a $(LDLIBS)

$(BUILD)/dre-genmodel: bench/genmodel.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $<

unit: $(UNIT_BIN)

# Test programs run two at a time: most of an end-to-end test's time is spent waiting (fsync, a PostgreSQL
# start, the S3 gateway), so two keep the 2-core machines this is written for busy (tests/run --jobs).
TEST_JOBS ?= $(or $(DRE_TEST_JOBS),2)

# Installs (apt) whatever build or test dependency is missing; a no-op when all are present.
deps:
	@tests/install-deps

test: deps
	$(MAKE) all unit
	tests/run --build $(BUILD) --jobs $(TEST_JOBS)

asan: deps
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	        LDFLAGS="-fsanitize=address,undefined" build-asan/dre build-asan/dre-gendump unit
	tests/run --build build-asan --jobs $(TEST_JOBS)

demo: deps all
	bench/demo

bench: deps all
	./dre bench --size 1024

# push and restore on a local directory and on S3 (a Ceph gateway, directly and behind an emulated wide-area link)
bench-s3: deps all
	bench/s3bench --size 1024

# archive_command latency on a private PostgreSQL 15 cluster (dre wal-push against pgbackrest archive-push),
# then base backups: speed and what the next ones store
bench-wal: deps all
	bench/walbench
	bench/pgbackupbench

bench-compare: deps all $(BUILD)/dre-genmodel
	bench/compare --size 1024

# the index of a repository of 10 million chunks, written as pushes would in a temporary repository: load from
# the local cache and from the store alone, bytes of RAM per chunk, index_find ns (bench/README.md)
bench-index: deps all $(BUILD)/dre-indexbench
	$(BUILD)/dre-indexbench

# forget, prune and copy on temporary local repositories: prune at 1.2 million chunks (2 KiB chunks), a month of
# daily dumps pushed a day apart (faketime), forget --keep-daily 7 --keep-weekly 4, prune, copy (bench/README.md)
bench-lifecycle: deps all
	bench/lifecycle.sh --build $(BUILD)

# pg-dump with and without row counts, then drills (dump, base backup + WAL to a time) with each phase's time
bench-drill: deps all
	DRE=$(BUILD)/dre bench/drillbench

# unchanged files taken from the parent snapshot without reading them: dre against dre --force-read, restic and
# pgBackRest on the same tree, model directory and PostgreSQL cluster (bench/skip.sh; bench/README.md)
.PHONY: bench-skip
bench-skip: deps all $(BUILD)/dre-genmodel
	bench/skip.sh --build $(BUILD)

clean:
	rm -rf build build-asan build-fuzz dre

# The manual page, from the help of the binary itself: every command it lists gets its section.
$(BUILD)/dre.1: $(BUILD)/dre contrib/man/mkman
	contrib/man/mkman $(BUILD)/dre >$@.tmp
	mv $@.tmp $@

# install: the systemd units and their example config name /usr/local/bin/dre; the installed copies name
# $(BINDIR)/dre. Kubernetes manifests name the path inside their image and are copied as they are.
PREFIX  ?= /usr/local
BINDIR  := $(PREFIX)/bin
MAN1DIR := $(PREFIX)/share/man/man1
DOCDIR  := $(PREFIX)/share/doc/dre
CONTRIB := $(sort $(wildcard contrib/*/*))

install: $(BUILD)/dre $(BUILD)/dre.1
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MAN1DIR)
	install -m 0755 $(BUILD)/dre $(DESTDIR)$(BINDIR)/dre
	install -m 0644 $(BUILD)/dre.1 $(DESTDIR)$(MAN1DIR)/dre.1
	@set -e; for f in $(CONTRIB); do \
		d=$(DESTDIR)$(DOCDIR)/$$f; mode=0644; [ ! -x $$f ] || mode=0755; \
		echo "install -m $$mode $$f $$d"; install -d $$(dirname $$d); \
		case $$f in \
		contrib/systemd/*.service | contrib/systemd/*.timer | contrib/systemd/*.example) \
			sed 's|/usr/local/bin/dre|$(BINDIR)/dre|g' $$f >$$d.tmp; \
			chmod $$mode $$d.tmp; mv $$d.tmp $$d ;; \
		*) install -m $$mode $$f $$d ;; \
		esac; \
	done

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/dre $(DESTDIR)$(MAN1DIR)/dre.1 $(CONTRIB:%=$(DESTDIR)$(DOCDIR)/%)
	@for d in $(sort $(dir $(CONTRIB))) contrib/ ""; do \
		[ ! -d $(DESTDIR)$(DOCDIR)/$$d ] || rmdir --ignore-fail-on-non-empty $(DESTDIR)$(DOCDIR)/$$d; done

# ---- fuzzing (tests/fuzz/fuzz.h): the library and two files of cli/ (args.c, config.c) built by clang with ASan, UBSan and
# libFuzzer's coverage into build-fuzz/, one binary per tests/fuzz/fuzz_*.c; tests/fuzz/run runs them.
.PHONY: fuzz fuzz-ci fuzz-build fuzz-bins
FUZZ_BUILD   := build-fuzz
FUZZ_CFLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))

fuzz-build: deps
	$(MAKE) -j2 BUILD=$(FUZZ_BUILD) CC=clang CFLAGS="$(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link" fuzz-bins

fuzz-bins: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/%)

# what the targets call in cli/ (the argument and --config parsers) needs nothing else of cli/
$(BUILD)/libdrecli.a: $(BUILD)/cli/args.o $(BUILD)/cli/config.o
	rm -f $@
	ar rcs $@ $^

$(BUILD)/fuzz/%: tests/fuzz/%.c $(BUILD)/tests/fuzz/fuzz.o tests/fuzz/fuzz.h $(BUILD)/libdrecli.a $(BUILD)/libdre.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $< $(BUILD)/tests/fuzz/fuzz.o $(BUILD)/libdrecli.a $(BUILD)/libdre.a $(LDLIBS)

# the seed helper (tests/fuzz/seed): a real repository's objects, decrypted, in the form each target reads
$(BUILD)/dre-fuzzseed: tests/fuzz/seed.c $(BUILD)/libdre.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libdre.a $(LDLIBS)

fuzz: fuzz-build
	tests/fuzz/run --build $(FUZZ_BUILD) --seconds $(or $(FUZZ_SECONDS),300) --no-replay

fuzz-ci: fuzz-build
	tests/fuzz/run --build $(FUZZ_BUILD) --seconds $(or $(FUZZ_SECONDS),10)

# ---- crash torture (tests/torture/torture.sh): TORTURE_KILLS (default 1000), TORTURE_SEED, TORTURE_S3=1 (on the
# gateway of DRE_S3_ENDPOINT). CI runs a short one as the e2e test tests/e2e/torture.sh.
.PHONY: torture
torture: deps all
	tests/torture/torture.sh --dre $(BUILD)/dre

# ---- flaky tests (tests/repeat): the suite again and again under load, each failure counted by test
.PHONY: test-repeat
test-repeat: deps all unit
	tests/repeat --build $(BUILD) --rounds $(or $(ROUNDS),2)

# ---- store faults, long mode: tests/e2e/faults.sh with many more rounds and rates than `make test` gives it
# (DRE_FAULT_* override, see the script's header); its summary lines are in $(BUILD)/test-logs/e2e-faults.log.
.PHONY: faults-long
faults-long: deps all
	DRE_FAULT_ROUNDS=$${DRE_FAULT_ROUNDS:-40} DRE_FAULT_RATES="$${DRE_FAULT_RATES:-0.01 0.02 0.05 0.1 0.2 0.3}" \
	DRE_FAULT_S3_ROUNDS=$${DRE_FAULT_S3_ROUNDS:-10} DRE_FAULT_S3_RATES="$${DRE_FAULT_S3_RATES:-0.02 0.05 0.2}" \
		tests/run --build $(BUILD) --timeout 14400 e2e/faults
	@grep -E '^# (local|s3)' $(BUILD)/test-logs/e2e-faults.log

# ThreadSanitizer: dre, dre-gendump and the unit tests that start threads, then tests/tsan/run runs them and the
# end-to-end tests of the threaded paths (TSAN_OPTIONS and suppressions there)
TSAN_UNITS := test_engine test_bench test_store_local test_store_s3 test_wal
.PHONY: tsan lint
tsan: deps
	$(MAKE) BUILD=build-tsan CFLAGS="-O1 -g -fsanitize=thread -fno-omit-frame-pointer" LDFLAGS="-fsanitize=thread" \
	        build-tsan/dre build-tsan/dre-gendump $(TSAN_UNITS:%=build-tsan/tests/%)
	tests/tsan/run --build build-tsan $(TSAN_UNITS)

# cppcheck and clang-tidy over the program and its bench tools, with the Makefile's flags (tests/lint/run)
lint: deps
	tests/lint/run --build build-lint --cflags '$(CFLAGS)' $(LIB_SRC) $(CLI_SRC) $(wildcard bench/*.c)

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)

