/*
 * error.c - status names and the thread-local last-error message.
 *
 * libgit2's model: models and SAEs are shared read-only across threads, so a
 * message stored on a handle would race; one buffer per thread cannot.
 */
#include <stdio.h>
#include <string.h>

#include "../internal.h"

#define MSG_CAP 1024

static _Thread_local char last_msg[MSG_CAP];

const char *scalar_status_string(scalar_status status)
{
    switch (status) {
    case SCALAR_OK: return "SCALAR_OK: success";
    case SCALAR_E_INVALID_ARG: return "SCALAR_E_INVALID_ARG: invalid argument";
    case SCALAR_E_NOMEM: return "SCALAR_E_NOMEM: out of memory";
    case SCALAR_E_UNSUPPORTED: return "SCALAR_E_UNSUPPORTED: not supported";
    case SCALAR_E_VERSION: return "SCALAR_E_VERSION: incompatible version";
    case SCALAR_E_BUFSIZE: return "SCALAR_E_BUFSIZE: buffer too small";
    case SCALAR_E_NOT_FOUND: return "SCALAR_E_NOT_FOUND: not found";
    case SCALAR_E_IO: return "SCALAR_E_IO: input/output error";
    case SCALAR_E_FORMAT: return "SCALAR_E_FORMAT: malformed input";
    case SCALAR_E_SHAPE: return "SCALAR_E_SHAPE: shape mismatch";
    case SCALAR_E_NUMERIC: return "SCALAR_E_NUMERIC: non-finite number";
    case SCALAR_E_BACKEND: return "SCALAR_E_BACKEND: backend failure";
    default: return "unknown status";
    }
}

scalar_status scalar__error_setv(scalar_status status, const char *fmt, va_list ap)
{
    int n = vsnprintf(last_msg, sizeof last_msg, fmt, ap);
    if (n < 0)
        snprintf(last_msg, sizeof last_msg, "%s", scalar_status_string(status));
    return status;
}

scalar_status scalar__error_set(scalar_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    scalar__error_setv(status, fmt, ap);
    va_end(ap);
    return status;
}

scalar_status scalar_sys_error_set(scalar_status status, const char *fmt, ...)
{
    va_list ap;
    if (!fmt)
        return scalar__error_set(status, "%s", scalar_status_string(status));
    va_start(ap, fmt);
    scalar__error_setv(status, fmt, ap);
    va_end(ap);
    return status;
}

const char *scalar_last_error(void)
{
    return last_msg;
}

void scalar_last_error_clear(void)
{
    last_msg[0] = '\0';
}

scalar_status scalar_last_error_set(scalar_status status, const char *message)
{
    if (!message)
        last_msg[0] = '\0';
    else
        scalar__error_set(status, "%s", message);
    return status;
}

uint32_t scalar_version(void)
{
    return SCALAR_VERSION_NUMBER;
}

const char *scalar_version_string(void)
{
    return SCALAR_VERSION_STRING;
}

uint32_t scalar_abi_version(void)
{
    return SCALAR_ABI_VERSION;
}
