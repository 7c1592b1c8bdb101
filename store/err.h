/*
 * err.h — errors as values, shared by store/ and engine/.
 *
 * It lives in store/ because store/ is the lowest layer that can fail and engine/ already depends on it;
 * chunker/ is pure computation and never fails at run time.
 *
 * A function that can fail returns int: 0 on success, or one of the negative DRE_E* codes below. The human
 * message travels beside the code in a thread-local buffer: the function that detects the failure names the
 * object and the cause with err_set() or err_sys(), each caller on the way up may prefix context with err_ctx(),
 * and cli/ prints err_msg() once and maps the code to an exit status. Messages are lowercase, name the object,
 * and may end with "HINT: ..." (pgBackRest's convention).
 *
 * A worker thread that fails copies its message into shared state with err_msg(); the thread that joins it
 * restores it with err_set(code, "%s", saved).
 */
#ifndef DRE_ERR_H
#define DRE_ERR_H

enum dre_err {
	DRE_OK        = 0,
	DRE_EIO       = -1,  /* a system call or transfer failed */
	DRE_ENOTFOUND = -2,  /* object, snapshot, file or repository not found */
	DRE_ECORRUPT  = -3,  /* an object fails authentication, decoding or its checksum */
	DRE_EAUTH     = -4,  /* wrong password: no key object opens with it */
	DRE_EINVAL    = -5,  /* bad argument or input */
	DRE_ENOMEM    = -6,  /* allocation failed */
	DRE_EEXIST    = -7,  /* a create-once object already exists */
	DRE_EPERM     = -8,  /* permission denied or read-only file system */
	DRE_EPRODUCER = -9,  /* the producer command of a push failed */
	DRE_EUNSUPP   = -10, /* format version or feature this build does not know */
	DRE_EBUSY     = -11, /* another process holds the repository (a lock), or a prune planned to delete what
	                        this run relied on: nothing was committed; run it again */
};

/* Sets the message and returns code (so `return err_set(...)` reads naturally). */
int err_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Like err_set, with ": <strerror(errno)>" appended; the code is derived from errno
 * (ENOENT → DRE_ENOTFOUND, EACCES/EPERM/EROFS → DRE_EPERM, ENOMEM → DRE_ENOMEM, others → DRE_EIO). */
int err_sys(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prefixes "<context>: " to the current message and returns code unchanged. */
int err_ctx(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The current thread's message ("" when none was set). */
const char *err_msg(void);

/* A short name for a code ("corrupt object", "not found", ...). */
const char *err_name(int code);

#if defined(__clang_analyzer__) && !defined(DRE_ERR_DEFINE)
/* For clang-tidy's analyzer only (make lint): it reads one file at a time, so without this it takes a `return
 * err_set(DRE_EIO, ...)` for a possible success and reports its caller reading what the failure left unset.
 * These say what err.c does with the code: err_set and err_ctx return it, err_sys returns a negative one. */
#define err_set(code, ...) ({ int err_code_ = (code); (err_set)(err_code_, __VA_ARGS__); err_code_; })
#define err_ctx(code, ...) ({ int err_code_ = (code); (err_ctx)(err_code_, __VA_ARGS__); err_code_; })
#define err_sys(...)                                                                                           \
	({                                                                                                     \
		int err_code_ = (err_sys)(__VA_ARGS__);                                                        \
		if (err_code_ >= 0)                                                                            \
			__builtin_unreachable();                                                               \
		err_code_;                                                                                     \
	})
#endif

/* Propagate a failure unchanged, or with context. */
#define TRY(expr)                                                                                              \
	do {                                                                                                   \
		int try_rc_ = (expr);                                                                          \
		if (try_rc_ < 0)                                                                               \
			return try_rc_;                                                                        \
	} while (0)

#define TRY_CTX(expr, ...)                                                                                     \
	do {                                                                                                   \
		int try_rc_ = (expr);                                                                          \
		if (try_rc_ < 0)                                                                               \
			return err_ctx(try_rc_, __VA_ARGS__);                                                  \
	} while (0)

#endif
