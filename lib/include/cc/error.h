#pragma once
/*
 * Errors: every fallible function returns 0 (or a non-negative value) on success and -errno on
 * failure. Functions on RPC, hypervisor and snapshot paths also take `struct cc_error **err`
 * as their last parameter and fill it with a message for the human at the other end.
 *
 * errno becomes a ttrpc/gRPC status code in exactly one place, cc_error_grpc_code() (via
 * cc_errno_to_grpc()), at the server edge; a client turns a received code back into -errno with
 * cc_grpc_to_errno().
 */

#include <stdarg.h>

#include "cc/cleanup.h"
#include "cc/macro.h"

/* gRPC status codes (google.golang.org/grpc/codes), used by ttrpc and gRPC alike. */
enum cc_grpc_code {
        CC_GRPC_OK = 0,
        CC_GRPC_CANCELED = 1,
        CC_GRPC_UNKNOWN = 2,
        CC_GRPC_INVALID_ARGUMENT = 3,
        CC_GRPC_DEADLINE_EXCEEDED = 4,
        CC_GRPC_NOT_FOUND = 5,
        CC_GRPC_ALREADY_EXISTS = 6,
        CC_GRPC_PERMISSION_DENIED = 7,
        CC_GRPC_RESOURCE_EXHAUSTED = 8,
        CC_GRPC_FAILED_PRECONDITION = 9,
        CC_GRPC_ABORTED = 10,
        CC_GRPC_OUT_OF_RANGE = 11,
        CC_GRPC_UNIMPLEMENTED = 12,
        CC_GRPC_INTERNAL = 13,
        CC_GRPC_UNAVAILABLE = 14,
        CC_GRPC_DATA_LOSS = 15,
        CC_GRPC_UNAUTHENTICATED = 16,
        _CC_GRPC_MAX,
};

struct cc_error {
        int errnum;     /* positive errno */
        int grpc_code;  /* explicit status code, or -1 to derive it from errnum */
        char *msg;
};

/*
 * Replaces *err (when err is not NULL) with a new error; returns -errnum so callers can write
 * `return cc_error_set(err, EINVAL, "bad key '%s'", k);`.
 */
int cc_error_set(struct cc_error **err, int errnum, const char *fmt, ...) _printf_(3, 4);
int cc_error_setv(struct cc_error **err, int errnum, const char *fmt, va_list ap) _printf_(3, 0);

/* Like cc_error_set() with an explicit status code (e.g. PermissionDenied from a policy). */
int cc_error_set_code(struct cc_error **err, int grpc_code, const char *fmt, ...) _printf_(3, 4);

/*
 * Prefixes the message of *err with context ("ctx: old message") and returns its -errnum.
 * If *err is empty, sets it from `errnum_if_empty` with the context alone.
 */
int cc_error_wrap(struct cc_error **err, int errnum_if_empty, const char *fmt, ...)
        _printf_(3, 4);

/* Appends " (<strerror(errnum)>)" to e's message unless the message holds that text already:
 * for library edges whose callers show only the message (NULL is fine). */
void cc_error_add_errno_text(struct cc_error *e);

void cc_error_free(struct cc_error *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct cc_error *, cc_error_free)
#define _cleanup_error_ _cleanup_(cc_error_freep)

/* Message of e, or a fallback derived from errnum when e or its message is missing. */
const char *cc_error_message(const struct cc_error *e);

/* The one errno <-> status-code mapping. */
int cc_errno_to_grpc(int errnum);
int cc_grpc_to_errno(int code);
int cc_error_grpc_code(const struct cc_error *e);
const char *cc_grpc_code_name(int code);
