# Shared by the PostgreSQL end-to-end tests (sourced after lib.bash, not run). The caller sets PGC (tests/pg's
# cluster script), PGT (its working directory), BARE (the clean environment archive_command gets) and CFG.

# pg_prereqs: PostgreSQL 15 is installed, DRE (made absolute) can be run by the cluster's owner, and T is a path
# archive_command can name; else one failure and the end of the test
pg_prereqs() {
	if ! "$PGC" install; then
		not_ok "PostgreSQL 15 could not be installed ($PGC install failed)"
		finish
	fi
	DRE=$(readlink -f "$DRE")
	if ! asowner test -x "$DRE"; then
		not_ok "the dre binary $DRE cannot be run by the cluster's owner (archive_command runs as it): make its directories searchable (chmod o+x)"
		finish
	fi
	case $T in *[[:space:]\'\"\\]*) not_ok "TMPDIR $T has white space or quotes: archive_command cannot name it"; finish ;; esac
}

asowner() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# dre1 ARGS...: dre as the cluster's owner, with the config CFG (as archive_command runs it)
dre1() { (cd "$PGT/work" && asowner "${BARE[@]}" "$DRE" --config "$CFG" "$@"); }

# q DIR SQL...: the query's result on the cluster in DIR (psql -At); on an error its message goes to stderr
q() { "$PGC" psql "$@"; }

# log_tail DIR: the last lines of the cluster's log, indented (diagnostics for a failure)
log_tail() {
	echo "    --- last 30 lines of $1/log ---"
	tail -n 30 "$1/log" 2>/dev/null | sed 's/^/    | /'
}

# start DIR NAME: start the cluster (environment as clean as archive_command's), one check
start() {
	if "${BARE[@]}" "$PGC" start "$1" >"$T/start.out" 2>&1; then
		ok "$2"
	else
		not_ok "$2"
		sed 's/^/    /' "$T/start.out"
	fi
}

# switch DIR: pg_switch_wal(); prints the name of the segment it closed (the one to wait for)
switch() { q "$1" "SELECT pg_walfile_name(pg_switch_wal())"; }

# wait_promoted DIR NAME: until pg_is_in_recovery() is false (60 s at most), one check
wait_promoted() {
	local i r
	for ((i = 0; i < 600; i++)); do
		r=$(q "$1" "SELECT pg_is_in_recovery()" 2>/dev/null)
		[ "$r" = f ] && { ok "$2"; return 0; }
		sleep 0.1
	done
	not_ok "$2 (pg_is_in_recovery: '$r')"
	log_tail "$1"
	return 1
}

# archiving_cluster DIR: a new cluster in DIR whose archive_command is dre wal-push with CFG, started (one check);
# when initdb fails, one failure and the end of the test
archiving_cluster() {
	if ! "$PGC" init "$1" "archive_mode = on" "archive_command = '\"$DRE\" --config \"$CFG\" wal-push %p'" \
		>"$T/init.out" 2>&1; then
		not_ok "initdb"
		sed 's/^/    /' "$T/init.out"
		finish
	fi
	start "$1" "the cluster with archive_command = dre wal-push starts"
}

# stop_wipe DIR: stop the cluster and remove its data directory (the disaster)
stop_wipe() {
	"$PGC" stop "$1" || not_ok "stop the cluster in $1"
	rm -rf "$1/data"
}
