/* rs_error: see rs_error.h. */
#include "raftstore/lib/rs_error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const rs_error_strings[] = {
#define RS__STR(name, str) str,
	RS_ERROR_TABLE(RS__STR)
#undef RS__STR
};

static const char *const rs_error_names[] = {
#define RS__NAME(name, str) #name,
	RS_ERROR_TABLE(RS__NAME)
#undef RS__NAME
};

const char *rs_error_name(int code)
{
	if (code < 0 || code >= RS__ERROR_COUNT)
		return "RS_?";
	return rs_error_names[code];
}

const char *rs_strerror(int code)
{
	if (code < 0 || code >= RS__ERROR_COUNT)
		return "unknown error";
	return rs_error_strings[code];
}

int rs_error_retryable(int code)
{
	switch (code) {
	case RS_ECONFLICT:
	case RS_ETOOOLD:
	case RS_EUNAVAILABLE:
	case RS_ENOTLEADER:
	case RS_ERECOVERING:
	case RS_ETIMEOUT:
		return 1;
	default:
		return 0;
	}
}

int rs_error_from_errno(int err)
{
	switch (err) {
	case 0:
		return RS_OK;
	case ENOMEM:
		return RS_ENOMEM;
	case ENOSPC:
	case EDQUOT:
		return RS_ENOSPC;
	case ENOENT:
		return RS_ENOTFOUND;
	case EEXIST:
		return RS_EEXIST;
	case EINVAL:
		return RS_EINVAL;
	default:
		return RS_EIO;
	}
}

void rs_errmsg_printf(char *errmsg, const char *fmt, ...)
{
	va_list ap;
	if (errmsg == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(errmsg, RS_ERRMSG_SIZE, fmt, ap);
	va_end(ap);
}

void rs_errmsg_wrapf(char *errmsg, const char *fmt, ...)
{
	char inner[RS_ERRMSG_SIZE];
	char prefix[RS_ERRMSG_SIZE];
	va_list ap;

	if (errmsg == NULL)
		return;
	memcpy(inner, errmsg, RS_ERRMSG_SIZE);
	inner[RS_ERRMSG_SIZE - 1] = '\0';
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	/* Truncation keeps the outer context, which is what names the file. */
	if (snprintf(errmsg, RS_ERRMSG_SIZE, "%s: %s", prefix, inner) < 0)
		errmsg[0] = '\0';
}

int rs_errmsg_errno(char *errmsg, int err, const char *fmt, ...)
{
	char prefix[RS_ERRMSG_SIZE];
	va_list ap;

	if (errmsg == NULL)
		return rs_error_from_errno(err);
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	if (snprintf(errmsg, RS_ERRMSG_SIZE, "%s: %s", prefix, strerror(err)) < 0)
		errmsg[0] = '\0';
	return rs_error_from_errno(err);
}
