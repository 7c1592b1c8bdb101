#define DRE_ERR_DEFINE /* the functions themselves, not the analyzer's model of them (err.h) */
#include "store/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ERR_MSG_MAX 1024

static _Thread_local char err_buf[ERR_MSG_MAX];

static void err_vformat(const char *fmt, va_list ap)
{
	vsnprintf(err_buf, sizeof err_buf, fmt, ap);
}

int err_set(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	err_vformat(fmt, ap);
	va_end(ap);
	return code;
}

int err_sys(const char *fmt, ...)
{
	int saved = errno;
	int code;
	va_list ap;

	switch (saved) {
	case ENOENT: code = DRE_ENOTFOUND; break;
	case EACCES:
	case EPERM:
	case EROFS: code = DRE_EPERM; break;
	case ENOMEM: code = DRE_ENOMEM; break;
	default: code = DRE_EIO; break;
	}
	va_start(ap, fmt);
	err_vformat(fmt, ap);
	va_end(ap);
	size_t n = strlen(err_buf);
	snprintf(err_buf + n, sizeof err_buf - n, ": %s", strerror(saved));
	return code;
}

int err_ctx(int code, const char *fmt, ...)
{
	char prefix[ERR_MSG_MAX];
	char old[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, err_buf, sizeof old);
	size_t pn = strnlen(prefix, ERR_MSG_MAX - 3);
	size_t on = strnlen(old, ERR_MSG_MAX - 3 - pn);
	memcpy(err_buf, prefix, pn);
	memcpy(err_buf + pn, ": ", 2);
	memcpy(err_buf + pn + 2, old, on);
	err_buf[pn + 2 + on] = '\0';
	return code;
}

const char *err_msg(void)
{
	return err_buf;
}

const char *err_name(int code)
{
	switch (code) {
	case DRE_OK: return "ok";
	case DRE_EIO: return "i/o error";
	case DRE_ENOTFOUND: return "not found";
	case DRE_ECORRUPT: return "corrupt object";
	case DRE_EAUTH: return "wrong password";
	case DRE_EINVAL: return "invalid input";
	case DRE_ENOMEM: return "out of memory";
	case DRE_EEXIST: return "already exists";
	case DRE_EPERM: return "permission denied";
	case DRE_EPRODUCER: return "producer failed";
	case DRE_EUNSUPP: return "unsupported";
	case DRE_EBUSY: return "busy";
	}
	return "error";
}
