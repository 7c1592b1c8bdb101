#!/bin/bash
# --config FILE: an INI file of settings for runs whose environment dre does not choose (archive_command,
# cron): the repository, the password file or command, threads, and on S3 the endpoint and the credentials.
# Options and the environment win over it; an unknown key, a section or a broken line is an error naming
# the file and the line.
# stores: local s3
. "$(dirname "$0")/lib.bash"

repo=$DRE_REPOSITORY
cfg=$T/dre.conf
{
	echo "# settings for dre"
	echo "repository = $repo"
	echo "password-file = $DRE_PASSWORD_FILE"
	echo "threads = 2"
	if on_s3; then
		echo "s3-endpoint = $DRE_S3_ENDPOINT"
		echo "s3-access-key-id = $AWS_ACCESS_KEY_ID"
		echo "s3-secret-access-key = $AWS_SECRET_ACCESS_KEY"
		echo "s3-region = ${AWS_REGION:-us-east-1}"
	fi
} >"$cfg"
# what PostgreSQL's archive_command sees: no DRE_* or AWS_* variables at all
bare() { env -u DRE_REPOSITORY -u DRE_PASSWORD_FILE -u DRE_PASSWORD -u DRE_PASSWORD_COMMAND -u DRE_S3_ENDPOINT \
	-u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_REGION HOME="$T/nohome" "$@"; }

expect_rc 0 "init with only a config file" bare "$DRE" --config "$cfg" init
echo "from the config" >"$T/in"
expect_rc 0 "push with only a config file" bare "$DRE" --config "$cfg" push cfg "$T/in"
expect_rc 0 "--config after the command works too" bare "$DRE" snapshots --config "$cfg"
check "the snapshot is listed" grep -q " cfg " "$T/cmd.out"
expect_rc 0 "the environment reaches the same repository" "$DRE" restore cfg --target "$T/out"
check "what went in through the config comes back" cmp -s "$T/in" "$T/out$T/in"

# the password from a command named in the file
sed 's|^password-file = .*|password-command = cat '"$DRE_PASSWORD_FILE"'|' "$cfg" >"$T/cmd.conf"
expect_rc 0 "password-command in the config file" bare "$DRE" --config "$T/cmd.conf" snapshots
# options and the environment win over the file
expect_rc 3 "-r wins over the config file's repository" bare "$DRE" --config "$cfg" -r "$T/elsewhere" snapshots
expect_rc 3 "DRE_REPOSITORY wins over the config file's repository" \
	bare env DRE_REPOSITORY="$T/elsewhere" "$DRE" --config "$cfg" snapshots
printf 'wrong password\n' >"$T/wrongpw"
expect_rc 4 "DRE_PASSWORD_FILE wins over the config file's password-file" \
	bare env DRE_PASSWORD_FILE="$T/wrongpw" "$DRE" --config "$cfg" snapshots
if on_s3; then
	expect_rc 1 "AWS_SECRET_ACCESS_KEY wins over the config file's secret" \
		bare env AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY=wrong-wrong-wrong-wrong-wrong-wrong-wrong0 \
		"$DRE" --config "$cfg" snapshots
	check "the environment's secret was the one used" err_has "SignatureDoesNotMatch"
	check "no secret from the config file is printed" sh -c "! grep -q '$AWS_SECRET_ACCESS_KEY' '$T/cmd.err'"
fi

# bad files: clear errors naming the file and the line, exit 2
printf 'repository = %s\nrepositry = typo\n' "$repo" >"$T/typo.conf"
expect_rc 2 "an unknown key is an error" bare "$DRE" --config "$T/typo.conf" snapshots
check "unknown key: the error names the file, the line and the key" err_has "typo.conf, line 2: unknown setting 'repositry'"
printf '[global]\nrepository = %s\n' "$repo" >"$T/section.conf"
expect_rc 2 "a section is an error" bare "$DRE" --config "$T/section.conf" snapshots
check "section: the error says sections are not used" err_has "line 2: sections are not used"
printf 'repository %s\n' "$repo" >"$T/broken.conf"
expect_rc 2 "a line without '=' is an error" bare "$DRE" --config "$T/broken.conf" snapshots
check "broken line: the error names the line" err_has "broken.conf, line 1"
printf 's3-path-style = maybe\n' >"$T/flag.conf"
expect_rc 2 "a flag that is neither true nor false is an error" bare "$DRE" --config "$T/flag.conf" snapshots
check "bad flag: the error says what it wants" err_has "s3-path-style wants true or false"
printf 'threads = lots\n' >"$T/threads.conf"
expect_rc 2 "threads that are not a number is an error" bare "$DRE" --config "$T/threads.conf" snapshots
expect_rc 3 "a missing config file is not found" bare "$DRE" --config "$T/nope.conf" snapshots
check "missing config file: the error names it" err_has "cannot read config file $T/nope.conf"
expect_rc 2 "an empty --config is a usage error" bare "$DRE" --config "" snapshots
finish
