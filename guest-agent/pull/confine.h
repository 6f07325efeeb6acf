#pragma once
/* The pull helper's confinement (confine.c). */

#include <stdint.h>

struct cc_error;

/* no_new_privs, capabilities cut down to pull_confine_caps() (all sets and the bounding set),
 * and a seccomp filter that refuses what no pull does. */
int pull_confine(struct cc_error **err);
/* The capabilities the helper keeps, as a bit mask (bit n = capability n). */
uint64_t pull_confine_caps(void);
