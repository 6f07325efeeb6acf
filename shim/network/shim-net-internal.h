#pragma once
/* Constants shared by the files of shim/network/ only. */

/* tc priority of our filters: distinctive, so an ingress qdisc shared with others is safe. */
#define SHIM_NET_TC_PRIO 0xcc00

/* More NICs than a VM is given in practice; also keeps tap names ("tap<N>_cc") short. */
#define SHIM_NET_MAX_IFS 64
