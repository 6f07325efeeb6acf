#pragma once
/*
 * Validation of identifiers and paths that arrive from the host. The host is not trusted
 * (Confidential Containers): every id becomes part of a path and every path may be an attempt
 * to reach the agent's own files or another container's, so both are checked before use.
 */

#include <stdbool.h>
#include <stddef.h>

#include "cc/error.h"

#define AGENT_ID_MAX 128

/*
 * A container or exec id: 1..AGENT_ID_MAX characters of [A-Za-z0-9_.-], not starting with
 * '.' or '-' (so never ".", ".." or an option-looking string). `what` names the field in the
 * error message. Returns 0 or -EINVAL.
 */
int agent_validate_id(const char *id, const char *what, struct cc_error **err);

/*
 * An absolute path of at most PATH_MAX-1 bytes whose components are neither "." nor ".." and
 * contain no control characters. This is a lexical check: callers that open the path still
 * resolve it with openat2(RESOLVE_IN_ROOT/RESOLVE_BENEATH) so symlinks cannot escape either.
 */
int agent_validate_abs_path(const char *path, const char *what, struct cc_error **err);

/* A path relative to some root: like agent_validate_abs_path() but a leading '/' is optional. */
int agent_validate_rel_path(const char *path, const char *what, struct cc_error **err);

/*
 * True when `path` (validated) equals `dir` or lies below it, comparing whole components
 * ("/a/bc" is not below "/a/b"). Repeated and trailing slashes are ignored.
 */
bool agent_path_is_under(const char *path, const char *dir);

/* Bounded-size check for host-supplied buffers and counts. */
int agent_validate_size(size_t size, size_t max, const char *what, struct cc_error **err);
