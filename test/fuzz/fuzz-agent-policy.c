/* Fuzz target: the agent policy parser (a JSON file from the image) and its decisions. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guest-agent/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *text = malloc(size + 1);
        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';
        struct agent_policy *p = NULL;
        struct cc_error *err = NULL;
        if (agent_policy_parse(text, &p, &err) == 0) {
                static const char *const reqs[] = {"ExecProcess", "ReadStdout", "CopyFile",
                                                   "CreateContainer"};
                for (size_t i = 0; i < 4; i++) {
                        struct cc_error *e2 = NULL;
                        (void)agent_policy_check(p, reqs[i], i % 2 ? "secret-1" : NULL, &e2);
                        cc_error_free(e2);
                }
                agent_policy_free(p);
        }
        cc_error_free(err);
        free(text);
        return 0;
}
