/*
 * Fuzz target: JWE parsing and key unwrapping (ocicrypt's org.opencontainers.image.enc.keys.jwe
 * payloads) with fixed test keys, plus the WWW-Authenticate challenge parser and the
 * containers-auth.json lookup (registry credentials a KBS releases). The keys below
 * are throwaway test keys that only this fuzzer uses; the seed corpus holds JWEs made for them
 * (flattened RSA-OAEP, flattened ECDH-ES+A256KW, general form with two recipients), so the
 * fuzzer starts from inputs that decrypt.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cc/error.h"

#include "guest-agent/image/image-internal.h"

static const char ec_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                             "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgPixWf1IanH1VmOeO\n"
                             "Y8aXp/6Rmj8WuQPHtD/zTQ5w/XOhRANCAATdc9JO0bJXigmzr8/kenenZNWajxq9\n"
                             "vVHHgaUADVPXdKow79A8S4fdyWs8EvKlREOD7giGdcUAdr2PfCWCDRoF\n"
                             "-----END PRIVATE KEY-----\n";
static const char rsa_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                              "MIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBALf/N7t9oph1ou4Q\n"
                              "9jHVK4Jqpu0uSgX8K1Xkon2NYFjG0VVXP8/yfcIiKSufPMcVtR5k3w8UNIr54osR\n"
                              "ecunYHYLypZ16wddTxzXCbVj3moRbRousghwPDwarx8CSlMaUfqZCNS5qVZNcVdH\n"
                              "CmKuviCUIUZpTQ+S8F7YOzlcWrQDAgMBAAECgYBRY+YFW9fW1QKTiJE/DerHL+JT\n"
                              "PIymBRwuTIrMOwOJgbkLpSKnG78hZvcLQs8hyapqnXhGNUvgxhS+K6bSvWFfVPkt\n"
                              "b0duxCrfHV6DiF7y4+VRXKlD1R9ZqKF6aZ3XIjQYyhNcz6wFuDNPVjGedmEl0B13\n"
                              "evrPjYHEC7cs3V4igQJBAPVGN6X8arEY759YFL51iRaLWxNdcbGBPKqFtJQjW0Wo\n"
                              "gfsCytfzs3BUNrKJLKPtol8zVCx5qeR7LyXLaZII4+MCQQDACwQnJ0TYxjFiLCdF\n"
                              "JswCNZvWYBT7/KfNmPR/EckdxM1RtTsBlKsA6/Zfwn++IfZzffWx/O6JKcbUOsmW\n"
                              "HylhAkEAlZqcusu5sAfLsN+i14ENewjJJoiqnmB7xm8DdBAUzeo4Tgin/QySeIOF\n"
                              "UWTGK774eSTvxKj47XoNifoGjKKLjQJAWn/WgSz8QLuFYiI0j13tHc1tluTIfsdd\n"
                              "vIGsFoWnJSQtLageGmyY+WI5RH8/+7W9kkd1lV8Aehr52+GoRdqBgQJASt3k4CHP\n"
                              "ZrEmhadv1yJcUTPDiipDt8+/7osXMh5Qlc0u0238f6oZP53tEurgatCdmWpsn0LQ\n"
                              "MvAHOGUiSgtaDw==\n"
                              "-----END PRIVATE KEY-----\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > 65536)
                return 0;
        const char *pems[] = {ec_pem, rsa_pem};
        for (size_t i = 0; i < 2; i++) {
                uint8_t *out = NULL;
                size_t out_len = 0;
                struct cc_error *err = NULL;
                if (img__jwe_decrypt((const char *)data, size, pems[i], strlen(pems[i]), &out,
                                     &out_len, &err) == 0)
                        free(out);
                cc_error_free(err);
        }
        char *s = strndup((const char *)data, size);
        if (!s)
                return 0;
        char *scheme, *realm, *service, *scope;
        img__auth_parse(s, &scheme, &realm, &service, &scope);
        free(scheme);
        free(realm);
        free(service);
        free(scope);
        char *creds = NULL;
        if (img__auth_json_lookup(s, strlen(s), "h", &creds) == 0)
                free(creds);
        free(s);
        return 0;
}
