/* Error objects and the single errno <-> gRPC status mapping. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc/error.h"

static struct cc_error *error_new(int errnum, int grpc_code, char *msg)
{
        struct cc_error *e = calloc(1, sizeof(*e));
        if (!e) {
                /* Out of memory while reporting an error: keep the errno, lose the text. */
                free(msg);
                return NULL;
        }
        e->errnum = errnum;
        e->grpc_code = grpc_code;
        e->msg = msg;
        return e;
}

static int error_store(struct cc_error **err, int errnum, int grpc_code, const char *fmt,
                       va_list ap) _printf_(4, 0);
static int error_store(struct cc_error **err, int errnum, int grpc_code, const char *fmt,
                       va_list ap)
{
        if (errnum < 0)
                errnum = -errnum;
        if (errnum == 0)
                errnum = EIO;
        if (!err)
                return -errnum;
        char *msg = NULL;
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        cc_error_free(*err);
        *err = error_new(errnum, grpc_code, msg);
        return -errnum;
}

int cc_error_setv(struct cc_error **err, int errnum, const char *fmt, va_list ap)
{
        return error_store(err, errnum, -1, fmt, ap);
}

int cc_error_set(struct cc_error **err, int errnum, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = error_store(err, errnum, -1, fmt, ap);
        va_end(ap);
        return r;
}

int cc_error_set_code(struct cc_error **err, int grpc_code, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = error_store(err, cc_grpc_to_errno(grpc_code), grpc_code, fmt, ap);
        va_end(ap);
        return r;
}

int cc_error_wrap(struct cc_error **err, int errnum_if_empty, const char *fmt, ...)
{
        va_list ap;
        if (!err)
                return errnum_if_empty > 0 ? -errnum_if_empty : errnum_if_empty;
        if (!*err) {
                va_start(ap, fmt);
                int r = error_store(err, errnum_if_empty, -1, fmt, ap);
                va_end(ap);
                return r;
        }
        char *ctx = NULL;
        va_start(ap, fmt);
        int n = vasprintf(&ctx, fmt, ap);
        va_end(ap);
        if (n >= 0) {
                char *joined = NULL;
                if (asprintf(&joined, "%s: %s", ctx, cc_error_message(*err)) >= 0) {
                        free((*err)->msg);
                        (*err)->msg = joined;
                }
                free(ctx);
        }
        return -(*err)->errnum;
}

void cc_error_add_errno_text(struct cc_error *e)
{
        if (!e || e->errnum <= 0 || !e->msg)
                return;
        const char *text = strerror(e->errnum);
        if (strstr(e->msg, text))
                return;
        char *joined = NULL;
        if (asprintf(&joined, "%s (%s)", e->msg, text) >= 0) {
                free(e->msg);
                e->msg = joined;
        }
}

void cc_error_free(struct cc_error *e)
{
        if (!e)
                return;
        free(e->msg);
        free(e);
}

const char *cc_error_message(const struct cc_error *e)
{
        if (!e)
                return "unknown error";
        if (e->msg)
                return e->msg;
        return strerror(e->errnum);
}

/*
 * errno -> status code. The canonical errno of each code (cc_grpc_to_errno) maps back to the
 * same code, so a status crossing two hops keeps its meaning.
 */
int cc_errno_to_grpc(int errnum)
{
        if (errnum < 0)
                errnum = -errnum;
        switch (errnum) {
        case 0:
                return CC_GRPC_OK;
        case ECANCELED:
                return CC_GRPC_CANCELED;
        case EREMOTEIO:
                return CC_GRPC_UNKNOWN;
        case EINVAL:
        case EBADMSG:
        case ENAMETOOLONG:
                return CC_GRPC_INVALID_ARGUMENT;
        case ETIMEDOUT:
        case ETIME:
                return CC_GRPC_DEADLINE_EXCEEDED;
        case ENOENT:
        case ESRCH:
        case ENXIO:
                return CC_GRPC_NOT_FOUND;
        case EEXIST:
                return CC_GRPC_ALREADY_EXISTS;
        case EPERM:
        case EACCES:
                return CC_GRPC_PERMISSION_DENIED;
        case ENOSPC:
        case ENOMEM:
        case EMSGSIZE:
        case E2BIG:
        case EMFILE:
        case ENFILE:
        case EDQUOT:
                return CC_GRPC_RESOURCE_EXHAUSTED;
        case EBUSY:
        case ENOTEMPTY:
        case ENOTDIR:
        case EISDIR:
        case ESTALE:
                return CC_GRPC_FAILED_PRECONDITION;
        case ECONNABORTED:
                return CC_GRPC_ABORTED;
        case ERANGE:
        case EOVERFLOW:
                return CC_GRPC_OUT_OF_RANGE;
        case EOPNOTSUPP:
        case ENOSYS:
                return CC_GRPC_UNIMPLEMENTED;
        case ECONNREFUSED:
        case ECONNRESET:
        case EAGAIN:
        case EPIPE:
        case ENOTCONN:
        case ESHUTDOWN:
        case EHOSTUNREACH:
        case ENETUNREACH:
                return CC_GRPC_UNAVAILABLE;
        case EILSEQ:
                return CC_GRPC_DATA_LOSS;
        case EKEYREJECTED:
                return CC_GRPC_UNAUTHENTICATED;
        default:
                return CC_GRPC_INTERNAL;
        }
}

int cc_grpc_to_errno(int code)
{
        static const int canonical[_CC_GRPC_MAX] = {
                [CC_GRPC_OK] = 0,
                [CC_GRPC_CANCELED] = ECANCELED,
                [CC_GRPC_UNKNOWN] = EREMOTEIO,
                [CC_GRPC_INVALID_ARGUMENT] = EINVAL,
                [CC_GRPC_DEADLINE_EXCEEDED] = ETIMEDOUT,
                [CC_GRPC_NOT_FOUND] = ENOENT,
                [CC_GRPC_ALREADY_EXISTS] = EEXIST,
                [CC_GRPC_PERMISSION_DENIED] = EPERM,
                [CC_GRPC_RESOURCE_EXHAUSTED] = ENOSPC,
                [CC_GRPC_FAILED_PRECONDITION] = EBUSY,
                [CC_GRPC_ABORTED] = ECONNABORTED,
                [CC_GRPC_OUT_OF_RANGE] = ERANGE,
                [CC_GRPC_UNIMPLEMENTED] = EOPNOTSUPP,
                [CC_GRPC_INTERNAL] = EIO,
                [CC_GRPC_UNAVAILABLE] = ECONNREFUSED,
                [CC_GRPC_DATA_LOSS] = EILSEQ,
                [CC_GRPC_UNAUTHENTICATED] = EKEYREJECTED,
        };
        if (code < 0 || code >= _CC_GRPC_MAX)
                return EREMOTEIO; /* a code from the future: Unknown */
        return canonical[code];
}

int cc_error_grpc_code(const struct cc_error *e)
{
        if (!e)
                return CC_GRPC_UNKNOWN;
        if (e->grpc_code >= 0)
                return e->grpc_code;
        return cc_errno_to_grpc(e->errnum);
}

const char *cc_grpc_code_name(int code)
{
        static const char *const names[_CC_GRPC_MAX] = {
                "OK",
                "Canceled",
                "Unknown",
                "InvalidArgument",
                "DeadlineExceeded",
                "NotFound",
                "AlreadyExists",
                "PermissionDenied",
                "ResourceExhausted",
                "FailedPrecondition",
                "Aborted",
                "OutOfRange",
                "Unimplemented",
                "Internal",
                "Unavailable",
                "DataLoss",
                "Unauthenticated",
        };
        if (code < 0 || code >= _CC_GRPC_MAX)
                return "Unknown";
        return names[code];
}
