/* placeholder, replaced below */
#include <errno.h>

#include "cc/error.h"

#include "hypervisor/hv-internal.h"
static int a(struct hv_vm **ret, struct cc_error **err)
{
        return cc_error_set(err, EOPNOTSUPP, "clh: not built yet");
}
const struct hv_ops hv_clh_ops = {.name = "clh", .alloc = a};
