#pragma once
/* Inside libccattest: the parsers of the KBS's answers, pure so that they can be fuzzed
 * (test/fuzz/fuzz-kbc-response.c). */
#include "guest-agent/attest/kbc.h"

/* {"nonce":"...","extra-params":...}: the nonce (copied) and the hash the KBS selects
 * (sha384 unless extra-params.selected-hash-algorithm says otherwise). -EPROTO when there is
 * no usable nonce, -EOPNOTSUPP for an unknown hash. */
int kbc__parse_challenge(const char *body, size_t len, char **nonce, enum kbc_hash *hash);
/* {"token":"<JWT>"}: the token's exp (0 if it has none); -EPROTO if it is not a JWT. */
int kbc__parse_token(const char *body, size_t len, int64_t *exp);
/* An error body's type (without Trustee's URL prefix) and detail, printable, "" if absent. */
void kbc__error_body(const char *body, size_t len, char type[96], char detail[512]);
