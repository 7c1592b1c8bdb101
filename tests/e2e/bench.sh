#!/bin/bash
# dre bench: every stage and end-to-end run is measured and reported (JSON and table), --input measures the
# operator's file, bad options and files are clear errors, the temporary repository is removed, and --store
# measures a store and leaves none of its objects behind. Figures are only checked for being there and
# positive: they vary with the machine. The S3 run measures the test gateway's bucket.
# stores: local s3
. "$(dirname "$0")/lib.bash"

stages="chunker hmac zstd seal open unzstd xxh3"
runs="push_fresh push_again push_next_day restore_null restore_file"

# store_check JSON_FILE PARALLEL...: the steps are the ones asked for, each with PUT and GET measured
store_check() {
	local f=$1
	shift
	"$PY" - "$f" "$@" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
want = [int(p) for p in sys.argv[2:]]
steps = d["steps"]
assert [s["parallel"] for s in steps] == want, [s["parallel"] for s in steps]
for s in steps:
    assert s["objects"] >= s["parallel"], s
    for op in ("put", "get"):
        assert s[op]["mb_per_s"] > 0 and s[op]["bytes"] == s["objects"] * d["object_size"], (op, s)
    assert s["delete"]["per_s"] > 0, s
assert d["prefix"].startswith("dre-bench-"), d["prefix"]
EOF
}

if on_s3; then
	bucket=$(echo "$DRE_REPOSITORY" | sed -E 's|^s3://([^/]+).*|\1|')
	objects() {
		radosgw-admin -c "$DRE_TEST_RGW_DIR/ceph.conf" bucket list --bucket="$bucket" 2>/dev/null |
			"$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))'
	}
	expect_rc 0 "init creates the bucket to measure" "$DRE" init
	before=$(objects)
	echo "# objects in $bucket after init: $before"
	check "S3: the bucket's objects can be counted (init wrote some)" test "${before:-0}" -gt 0
	expect_rc 0 "bench --store on S3" "$DRE" bench --store "$DRE_REPOSITORY" --parallel 2 --object-size 1M \
		--size 4 --json
	check "S3: steps 1 and 2, PUT and GET measured" store_check "$T/cmd.out" 1 2
	check "S3: no benchmark object is left in the bucket" test "$(objects)" = "$before"
	expect_rc 3 "bench --store on a bucket that does not exist fails (not found)" \
		"$DRE" bench --store "s3://dre-e2e-no-such-bucket-$$" --parallel 1 --object-size 4K --size 1
	check "missing bucket: the error says so" err_has "NoSuchBucket"
	finish
fi

# the whole measurement, as JSON
expect_rc 0 "bench --size 8 --json" "$DRE" bench --size 8 --json
cp "$T/cmd.out" "$T/bench.json"
check "no temporary directory is left behind" sh -c "! ls -d '$T'/dre-bench-* 2>/dev/null"
check_json() { "$PY" -c "import json,sys; d=json.load(open('$T/bench.json')); sys.exit(0 if ($1) else 1)"; }
check "the data is 8 MiB of generated text" check_json "d['data']['source'] == 'generated' and d['data']['bytes'] == 8 << 20"
for s in $stages; do
	check "stage $s: positive MB/s and CPU-s/GB" \
		check_json "d['stages']['$s']['mb_per_s'] > 0 and d['stages']['$s']['cpu_s_per_gb'] > 0"
done
check "no stage beyond the seven" check_json "sorted(d['stages']) == sorted('$stages'.split())"
check "zstd's ratio on dump text is above 1.5" check_json "d['stages']['zstd']['ratio'] > 1.5"
check "zstd at the repository default level" check_json "d['stages']['zstd']['label'] == 'zstd level %d compress' % d['params']['zstd_level']"
for r in $runs; do
	check "run $r: MB/s, CPU-s/GB and peak RSS" check_json "d['end_to_end']['runs']['$r']['mb_per_s'] > 0 and \
d['end_to_end']['runs']['$r']['cpu_s_per_gb'] > 0 and d['end_to_end']['runs']['$r']['peak_rss_mib'] > 1 and \
d['end_to_end']['runs']['$r']['bytes'] == 8 << 20"
done
check "fresh push stores something" check_json "d['end_to_end']['runs']['push_fresh']['stored_bytes'] > 0"
check "the same data again stores nothing" check_json "d['end_to_end']['runs']['push_again']['stored_bytes'] == 0"
# at 8 MiB most chunks hold an edited table (one in ten, 28 KB each), so only "less" is certain
check "the next day stores less than the first" \
	check_json "0 < d['end_to_end']['runs']['push_next_day']['stored_bytes'] < d['end_to_end']['runs']['push_fresh']['stored_bytes']"
check "the next day is the generator's" check_json "'generator' in d['end_to_end']['next_day']"
check "every run used the default worker count, one per online CPU" \
	check_json "all(r['workers'] == $(getconf _NPROCESSORS_ONLN) for r in d['end_to_end']['runs'].values())"
expect_rc 0 "--threads 1 bench --size 4 --json" "$DRE" --threads 1 bench --size 4 --json
cp "$T/cmd.out" "$T/bench.json"
check "--threads 1: every run used one worker" check_json "all(r['workers'] == 1 for r in d['end_to_end']['runs'].values())"

# the table
expect_rc 0 "bench --size 8 prints a table" "$DRE" --threads 1 bench --size 8 --level 3
for row in "FastCDC chunker" "keyed hash (HMAC-SHA-256)" "zstd level 3 compress (ratio" "AES-256-GCM seal" \
	"AES-256-GCM open" "zstd decompress" "XXH3-128" "push (fresh)" "push (same data again)" "push (next day)" \
	"restore (to /dev/null, verified)" "restore (to a file, verified)" "(1 worker thread)" "next day:"; do
	check "table row: $row" grep -qF -- "$row" "$T/cmd.out"
done
check "table rows have figures" grep -qE '^  push \(fresh\) +[0-9]+ +[0-9.]+ +[0-9]+ MiB' "$T/cmd.out"

# the operator's own data
"$GENDUMP" 3 5 | head -c 3M >"$T/small.sql"
expect_rc 0 "bench --input of a file smaller than --size" "$DRE" bench --input "$T/small.sql" --size 8 --json
cp "$T/cmd.out" "$T/bench.json"
check "--input: the file's 3 MiB are measured" check_json "d['data']['source'] == 'file' and d['data']['bytes'] == 3 << 20"
check "--input: the file is named" check_json "d['data']['file'] == '$T/small.sql'"
# 100 edits in 3 MiB touch nearly every chunk: only that something new was stored is certain
check "--input: the next day is 1% changed" check_json "'1%' in d['end_to_end']['next_day'] and \
d['end_to_end']['runs']['push_next_day']['stored_bytes'] > 0"
expect_rc 0 "bench --input reads only --size MiB of a larger file" "$DRE" bench --input "$T/small.sql" --size 1 --json
check "--input --size 1: 1 MiB measured" sh -c "'$PY' -c \"import json,sys; sys.exit(json.load(sys.stdin)['data']['bytes'] != 1 << 20)\" <'$T/cmd.out'"
expect_rc 3 "bench --input of a missing file fails" "$DRE" bench --input "$T/nonexistent"
check "missing input: the error names the file" err_has "$T/nonexistent"
expect_rc 1 "bench --input of a directory fails" "$DRE" bench --input "$T"
check "directory input: the error says so" err_has "is a directory"
: >"$T/empty"
expect_rc 1 "bench --input of an empty file fails" "$DRE" bench --input "$T/empty"
check "empty input: the error says so" err_has "is empty"

# usage errors
expect_rc 2 "bench --size 0 is a usage error" "$DRE" bench --size 0
expect_rc 2 "bench --size beyond 1 TiB is a usage error" "$DRE" bench --size 99999999
expect_rc 2 "bench --size of more than this machine's memory is a usage error" "$DRE" bench --size 1048576
check "too large: the error says why" err_has "memory"
expect_rc 2 "bench --level 0 is a usage error" "$DRE" bench --level 0
expect_rc 2 "bench --parallel without --store is a usage error" "$DRE" bench --parallel 2
expect_rc 2 "bench --store with --input is a usage error" "$DRE" bench --store "$T" --input "$T/small.sql"
expect_rc 2 "bench --store --object-size below 1 KiB is a usage error" "$DRE" bench --store "$T" --object-size 10
check "no temporary directory is left behind by any run" sh -c "! ls -d '$T'/dre-bench-* 2>/dev/null"

# a store: a local directory
mkdir "$T/store"
echo keep >"$T/store/other-file"
expect_rc 0 "bench --store DIR --parallel 2 --object-size 1M --size 8" \
	"$DRE" bench --store "$T/store" --parallel 2 --object-size 1M --size 8 --json
check "store: steps 1 and 2, PUT and GET measured" store_check "$T/cmd.out" 1 2
check "store: 8 objects of 1 MiB per step" sh -c "'$PY' -c \"import json,sys; d=json.load(sys.stdin); \
sys.exit(not (d['object_size'] == 1 << 20 and all(s['objects'] == 8 for s in d['steps'])))\" <'$T/cmd.out'"
check "store: nothing left but what was there" test "$(find "$T/store" -mindepth 1 | wc -l)" = 1
expect_rc 0 "bench --store --parallel 3 steps 1, 2, 3 (a table)" \
	"$DRE" bench --store "file://$T/store" --parallel 3 --object-size 64K --size 1
check "store table: rows for 1, 2 and 3 requests" sh -c "grep -cE '^ +[123] +16 ' '$T/cmd.out' | grep -qx 3"
check "store table: nothing left behind" test "$(find "$T/store" -mindepth 1 | wc -l)" = 1
expect_rc 3 "bench --store of a directory that does not exist fails" \
	"$DRE" bench --store "$T/no/such/dir" --parallel 1 --object-size 4K --size 1
check "missing store directory: the error names it" err_has "$T/no/such/dir"
check "missing store directory: it is not created" test ! -e "$T/no"
expect_rc 2 "bench --store s3:// without a bucket fails" "$DRE" bench --store s3://
check "s3:// without a bucket: the error says what is wrong" err_has "bucket"
expect_rc 1 "bench --store of a file fails" "$DRE" bench --store "$T/small.sql" --object-size 4K --size 1
check "store that is a file: the error says so" err_has "store directory .*: not a directory"

# bench/skip.sh (make bench-skip) at tiny sizes, dre alone: every case's rows are there, and the figures say what
# skipping means: the unchanged tree is not read at all, of the model directory only the changed file is, a base
# backup after pgbench writes reads less than --force-read; the script itself checks that each skipping push
# restores to its data. It runs a PostgreSQL cluster as postgres, which must reach its temporary directory in T.
chmod o+x "$T"
check "dre-genmodel builds" cc -O2 -o "$T/dre-genmodel" "$DRE_SRC/bench/genmodel.c"
skip_bench=("$DRE_SRC/bench/skip.sh" --dre "$DRE" --gendump "$GENDUMP" --genmodel "$T/dre-genmodel")
expect_rc 0 "bench/skip.sh --small --no-peers" "${skip_bench[@]}" --small --no-peers --json "$T/skip.json"
for c in "tree: 200 files, unchanged" "model: 2 files, one of them fine-tuned" "pg: base backups after pgbench"; do
	check "skip bench: a table for '$c'" grep -qF -- "$c" "$T/cmd.out"
done
check "skip bench: table rows have figures" \
	grep -qE '^\| push again \| dre \| [0-9.]+ \| [0-9]+ \| [0-9.]+ \|' "$T/cmd.out"
for c in tree model; do
	check "skip bench, $c: the skipping push restored to its data" \
		grep -qx "$c: the second dre push restores to the data, byte for byte" "$T/cmd.out"
done
# skip_json EXPR: EXPR holds over rows (every row) and r (dre's rows by case and step)
skip_json() { "$PY" -c "import json,sys
rows = json.load(open('$T/skip.json'))['rows']
r = {(x['case'], x['step']): x for x in rows if x['tool'] == 'dre'}
sys.exit(0 if ($1) else 1)"; }
check "skip bench: the rows are dre's three steps of each case" skip_json "len(rows) == 9 and \
all((c, s) in r for c in ('tree', 'model') for s in ('first push', 'push again', 'push again, --force-read')) and \
all(('pg', s) in r for s in ('first backup', 'backup again', 'backup again, --force-read'))"
check "skip bench, tree: the unchanged tree pushed again reads nothing, skips its 200 files" skip_json \
	"r['tree', 'push again']['bytes_read_reported'] == 0 and r['tree', 'push again']['files_skipped'] == 200"
check "skip bench, tree: --force-read reads the whole tree and skips nothing" skip_json \
	"r['tree', 'push again, --force-read']['bytes_read_reported'] == r['tree', 'first push']['size'] == 16 << 20 and \
r['tree', 'push again, --force-read']['files_skipped'] == 0"
check "skip bench, tree: neither stores the data again" skip_json \
	"all(r['tree', s]['stored_new'] < (16 << 20) // 100 for s in ('push again', 'push again, --force-read'))"
check "skip bench, model: of the changed directory only the changed file is read" skip_json \
	"r['model', 'push again']['bytes_read_reported'] == r['model', 'push again']['size'] // 2 and \
r['model', 'push again']['files_skipped'] == 1"
check "skip bench, model: --force-read reads both files" skip_json \
	"r['model', 'push again, --force-read']['bytes_read_reported'] == r['model', 'first push']['size']"
check "skip bench, model: both store the re-drawn tensor, not the file" skip_json \
	"all(0 < r['model', s]['stored_new'] < r['model', s]['size'] // 4 for s in ('push again', 'push again, --force-read'))"
check "skip bench, pg: the second base backup skips files and reads less than --force-read" skip_json \
	"r['pg', 'backup again']['files_skipped'] > 0 and r['pg', 'backup again, --force-read']['files_skipped'] == 0 and \
r['pg', 'backup again']['bytes_read_reported'] < r['pg', 'backup again, --force-read']['bytes_read_reported']"
check "skip bench: no temporary directory is left behind" sh -c "! ls -d '$T'/skipbench.* 2>/dev/null"
expect_rc 2 "skip bench: an unknown option is a usage error" "${skip_bench[@]}" --bogus
check "unknown option: the error names it" err_has "unknown argument '--bogus'"
expect_rc 2 "skip bench: --model-mb below 40 is a usage error" "${skip_bench[@]}" --model-mb 8
check "--model-mb 8: the error says why" err_has "at least 40"
expect_rc 2 "skip bench: an unknown case is a usage error" "${skip_bench[@]}" --cases tree,disk
check "unknown case: the error names it" err_has "unknown case 'disk'"
expect_rc 2 "skip bench: --files 0 is a usage error" "${skip_bench[@]}" --files 0
check "--files 0: the error says what it wants" err_has "at least 1, not '0'"
expect_rc 1 "skip bench: a missing dre binary is an error" "${skip_bench[@]}" --dre "$T/no-such-dre" --small
check "missing dre: the error names the path" err_has "no dre binary at $T/no-such-dre"
printf '#!/bin/sh\necho "usage: dre push NAME PATH..."\n' >"$T/old-dre"
chmod 755 "$T/old-dre"
expect_rc 1 "skip bench: a dre that cannot skip unchanged files is refused" \
	"${skip_bench[@]}" --dre "$T/old-dre" --small
check "old dre: the error says why" err_has "has no push --force-read"
finish
