/*
 * Fuzzes what the snapshotter parses from requests without touching disk: containerd filter
 * strings (List), label sets (validation, lookup, update), the guest-pull volume JSON and
 * base64. Input: first line a filter, then "key=value" lines forming a snapshot's labels.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "snapshotter/snap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *text = malloc(size + 1);
        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';
        char *save = NULL;
        char *filter = strtok_r(text, "\n", &save);
        struct snap_info info = {
                .name = strdup("k8s.io/1/name"), .parent = strdup(""), .kind = SNAP_KIND_ACTIVE};
        for (char *line; (line = strtok_r(NULL, "\n", &save));) {
                char *eq = strchr(line, '=');
                if (!eq)
                        continue;
                *eq = '\0';
                snap_labels_set(&info.labels, line, *(eq + 1) ? eq + 1 : NULL);
        }
        struct cc_error *err = NULL;
        snap_labels_validate(&info.labels, &err);
        cc_error_free(err);
        err = NULL;
        struct snap_filter *f = NULL;
        if (filter && snap_filter_parse(filter, &f, &err) == 0) {
                snap_filter_match(f, &info);
                snap_filter_free(f);
        }
        cc_error_free(err);
        err = NULL;
        char *json = NULL;
        if (snap_guest_volume_json(snap_labels_get(&info.labels, SNAP_LABEL_IMAGE_REF),
                                   &info.labels, &json, &err) == 0) {
                char *b = snap_base64((const uint8_t *)json, strlen(json));
                free(b);
                free(json);
        }
        cc_error_free(err);
        snap_info_clear(&info);
        free(text);
        return 0;
}
