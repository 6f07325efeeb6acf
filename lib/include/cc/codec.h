#pragma once
/* Encodings (lib/codec.c): base64 in both flavours the KBS protocol uses (b64 with padding,
 * b64url without), hex, and RFC 8785 canonical JSON (JCS). */
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* b64 (url=false: standard alphabet, '=' padding) or b64url (url=true: no padding). */
char *cc_b64_encode(const uint8_t *in, size_t len, bool url);
/*
 * Strict decoding: url=false requires the padding a standard encoder writes, url=true rejects
 * padding; characters of the other alphabet, whitespace and non-zero trailing bits are errors.
 * -EINVAL on bad input; *ret is NUL-terminated for convenience (not counted in *ret_len).
 */
int cc_b64_decode(const char *in, size_t len, bool url, uint8_t **ret, size_t *ret_len);
char *cc_hex(const uint8_t *in, size_t len);
/* Decodes exactly `len` bytes of lowercase or uppercase hex; -EINVAL otherwise. */
int cc_unhex(const char *in, uint8_t *out, size_t len);
/*
 * RFC 8785 canonical form of a JSON value: members sorted by UTF-16 code units, no whitespace,
 * ECMAScript string escaping. Integers only (a float is -EINVAL: nothing we hash has one).
 */
int cc_jcs(struct json_object *v, char **ret);
/* The JSON text of a string (quotes and RFC 8785 escaping) appended to a growing buffer. */
int cc_json_quote(const char *s, size_t len, char **buf, size_t *n, size_t *cap);
