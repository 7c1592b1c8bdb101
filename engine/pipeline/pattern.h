/*
 * pattern.h — path patterns, as restic users write them: push's --exclude and --exclude-file, restore's --include.
 *
 * A pattern is a glob over "/"-separated path components:
 *   *  ?  [...]   within one component, as fnmatch(3) without flags: `*` and `?` match any byte but "/", a leading
 *                 "." included; `[...]` takes ranges, `!` or `^` to negate, `[:alpha:]`-style classes, and `\`
 *                 escapes any character. Bytes, not characters: `?` is one byte of a UTF-8 name.
 *   **            a component of its own: any number of whole components, zero included (so a pattern ending in
 *                 `**` matches the directory before it too).
 * Where it matches:
 *   no "/"        (`*.tmp`, `node_modules`) any component anywhere in the path.
 *   "/" first     (`/srv/models/cache`) anchored: the first components of the path.
 *   "/" inside    (`models/cache`) any run of consecutive components (`/srv/models/cache` matches).
 *   "/" last      (`cache/`) directories only; is_dir says whether the path is one.
 * A pattern that matches a directory matches everything below it: excluding a directory excludes its tree, and
 * including one includes its tree. So a path matches a pattern when the path or one of its ancestors does.
 *   !PATTERN      re-includes what an earlier pattern matched: the last pattern that matches a path decides, as in
 *                 gitignore and restic (`*.log` then `!keep.log`: keep.log is not matched; `cache/` then
 *                 `!cache/index`: cache/index is not matched, so a walk must still descend into cache — see
 *                 pattern_set_may_unmatch_below). A leading `\!` is a literal "!".
 * Paths are absolute, "/"-separated: push passes the file's absolute path (`/srv/models/cache`); restore passes the
 * node's path with "/" put in front (node `srv/models/a` is `/srv/models/a`); the leading "/" may be left out, and
 * repeated or trailing slashes and "." components are passed over (`/srv/models/.` is `/srv/models`; ".." is not
 * resolved). The root ("/") has no component and matches nothing. Matching is byte-exact (case-sensitive); `$VAR`
 * and `~` are not expanded.
 *
 * Malformed, and refused with DRE_EINVAL naming where the pattern came from: an empty pattern, an unclosed `[`, a
 * backwards range (`[z-a]`), an unknown `[:class:]`, a trailing lone `\`, a "." or ".." component, a pattern longer
 * than PATTERN_MAX bytes; in a pattern file, also a line holding a NUL byte or too long to be a pattern.
 *
 * Adding patterns allocates; matching never does, takes time linear in the path's components for each pattern
 * (however many `**` it has), and may run from any number of threads at once on a set no longer modified.
 */
#ifndef DRE_PATTERN_H
#define DRE_PATTERN_H

#include <stdbool.h>

/* Longer patterns cannot match a Linux path (PATH_MAX) and are refused. */
#define PATTERN_MAX 4096

typedef struct pattern_set pattern_set;

/* An empty set (matches nothing). */
int pattern_set_new(pattern_set **out);

/* Adds one pattern. where names its origin for error messages: "--exclude", "--include", or "FILE:LINE". */
int pattern_set_add(pattern_set *ps, const char *pattern, const char *where);

/* Adds the patterns of a file, one a line, in order: leading and trailing whitespace (CR of CRLF included) is
 * trimmed, blank lines and lines whose first non-blank character is `#` are skipped, a UTF-8 byte order mark is
 * ignored. A file that cannot be read, or a malformed pattern (named "FILE:LINE"), is DRE_EINVAL; the patterns
 * before it stay added. */
int pattern_set_add_file(pattern_set *ps, const char *path);

/* Whether the set holds no pattern (then nothing matches and callers may skip matching altogether). */
bool pattern_set_empty(const pattern_set *ps);

/* Whether the last pattern of the set that matches path (or one of its ancestors) is not a `!` one. is_dir: path is
 * a directory (only trailing-"/" patterns care). */
bool pattern_set_match(const pattern_set *ps, const char *path, bool is_dir);

/* For include: whether a path strictly below directory dir could match, so a walk over a tree must descend into
 * (and, restoring, create) dir although dir itself does not match. May say true when nothing below will match
 * (a pattern without a leading "/" can match below any directory); never says false when something would. */
bool pattern_set_may_match_below(const pattern_set *ps, const char *dir);

/* For exclude with `!` patterns: whether a path strictly below directory dir could fail to match although dir
 * matches, so a push walk must descend into an excluded dir (recording only what pattern_set_match leaves in, and
 * the directories that hold it) instead of skipping its tree. False whenever dir matches and no `!` pattern that
 * comes after the ones matching dir could match below it — always, for a set without `!`. */
bool pattern_set_may_unmatch_below(const pattern_set *ps, const char *dir);

void pattern_set_free(pattern_set *ps);

#endif
