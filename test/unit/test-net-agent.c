/* Unit tests: validation of the agent's network requests (host input) and resolv.conf. */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cc/error.h"

#include "guest-agent/network/agent-net.h"
#include "kata/agent.pb-c.h"
#include "kata/types.pb-c.h"

static void test_ifname(void **state)
{
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(agent_net_validate_ifname("eth0", "x", &err), 0);
        assert_int_equal(agent_net_validate_ifname("fifteen-bytes-x", "x", &err), 0);
        assert_int_equal(agent_net_validate_ifname("sixteen-bytes-xx", "x", &err), -EINVAL);
        assert_non_null(strstr(cc_error_message(err), "16 bytes"));
        const char *bad[] = {"", ".", "..", "a/b", "a:1", "a b", "a\tb", "a\x01"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(agent_net_validate_ifname(bad[i], "x", &err), -EINVAL);
        assert_int_equal(agent_net_validate_ifname(NULL, "x", &err), -EINVAL);
}

static void test_mac(void **state)
{
        _cleanup_error_ struct cc_error *err = NULL;
        unsigned char mac[6];
        assert_int_equal(agent_net_parse_mac("02:Ab:cd:EF:00:ff", mac, &err), 0);
        const unsigned char want[6] = {0x02, 0xab, 0xcd, 0xef, 0x00, 0xff};
        assert_memory_equal(mac, want, 6);
        const char *bad[] = {"",
                             "02:ab:cd:ef:00",
                             "02:ab:cd:ef:00:ff:",
                             "02-ab-cd-ef-00-ff",
                             "0g:ab:cd:ef:00:ff",
                             "2:ab:cd:ef:00:ff0",
                             " 2:ab:cd:ef:00:ff"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(agent_net_parse_mac(bad[i], mac, &err), -EINVAL);
        assert_int_equal(agent_net_parse_mac(NULL, mac, &err), -EINVAL);
}

static int ipaddr(int family, const char *addr, const char *mask, struct agent_net_ip *ret,
                  struct cc_error **err)
{
        Types__IPAddress ip = TYPES__IPADDRESS__INIT;
        ip.family = family;
        ip.address = (char *)addr;
        ip.mask = (char *)mask;
        return agent_net_parse_ipaddress(&ip, ret, err);
}

static void test_ipaddress(void **state)
{
        _cleanup_error_ struct cc_error *err = NULL;
        struct agent_net_ip ip;
        assert_int_equal(ipaddr(0, "10.0.0.2", "24", &ip, &err), 0);
        assert_int_equal(ip.family, AF_INET);
        assert_int_equal(ip.prefix_len, 24);
        assert_int_equal(ipaddr(0, "10.0.0.2", "", &ip, &err), 0);
        assert_int_equal(ip.prefix_len, 32);
        assert_int_equal(ipaddr(1, "fd00::2", "64", &ip, &err), 0);
        assert_int_equal(ip.family, AF_INET6);
        assert_int_equal(ip.prefix_len, 64);
        assert_int_equal(ipaddr(1, "fd00::2", "128", &ip, &err), 0);
        /* Prefix lengths beyond the family, signs, spaces, hex: refused. */
        const char *bad_masks[] = {"33", "-1", "+8", " 8", "8 ", "0x8", "1000", "255.255.255.0"};
        for (size_t i = 0; i < sizeof(bad_masks) / sizeof(bad_masks[0]); i++)
                assert_int_equal(ipaddr(0, "10.0.0.2", bad_masks[i], &ip, &err), -EINVAL);
        assert_int_equal(ipaddr(1, "fd00::2", "129", &ip, &err), -EINVAL);
        /* Families must match the address, and exist. */
        assert_int_equal(ipaddr(0, "fd00::2", "64", &ip, &err), -EINVAL);
        assert_non_null(strstr(cc_error_message(err), "not of family v4"));
        assert_int_equal(ipaddr(1, "10.0.0.2", "24", &ip, &err), -EINVAL);
        assert_int_equal(ipaddr(7, "10.0.0.2", "24", &ip, &err), -EINVAL);
        assert_non_null(strstr(cc_error_message(err), "unknown family 7"));
        /* Addresses parse strictly. */
        const char *bad[] = {"",           "10.0.0", "10.0.0.256", "10.0.0.2 ",
                             "010.0.0.2x", "::g",    "10.0.0.2/24"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(ipaddr(0, bad[i], "", &ip, &err), -EINVAL);
        assert_int_equal(agent_net_parse_ipaddress(NULL, &ip, &err), -EINVAL);
}

static void test_dest(void **state)
{
        _cleanup_error_ struct cc_error *err = NULL;
        struct agent_net_ip ip;
        assert_int_equal(agent_net_parse_dest("", 1, &ip, &err), 0);
        assert_int_equal(ip.family, AF_INET6);
        assert_int_equal(ip.prefix_len, 0);
        assert_int_equal(agent_net_parse_dest("default", 0, &ip, &err), 0);
        assert_int_equal(ip.family, AF_INET);
        assert_int_equal(agent_net_parse_dest("10.1.0.0/16", 0, &ip, &err), 0);
        assert_int_equal(ip.prefix_len, 16);
        assert_int_equal(agent_net_parse_dest("10.1.0.9", -1, &ip, &err), 0);
        assert_int_equal(ip.prefix_len, 32);
        assert_int_equal(agent_net_parse_dest("fd00::/8", 1, &ip, &err), 0);
        assert_int_equal(agent_net_parse_dest("fd00::/8", 0, &ip, &err), -EINVAL);
        assert_int_equal(agent_net_parse_dest("10.1.0.0/33", 0, &ip, &err), -EINVAL);
        assert_int_equal(agent_net_parse_dest("10.1.0.0/", 0, &ip, &err), -EINVAL);
        assert_int_equal(agent_net_parse_dest("10.1.0.0/16/2", 0, &ip, &err), -EINVAL);
        assert_int_equal(agent_net_parse_dest("host.example", 0, &ip, &err), -EINVAL);
        assert_int_equal(agent_net_parse_dest("", 9, &ip, &err), -EINVAL);
}

static void test_interface(void **state)
{
        _cleanup_error_ struct cc_error *err = NULL;
        Types__IPAddress a4 = TYPES__IPADDRESS__INIT, a6 = TYPES__IPADDRESS__INIT;
        a4.address = "10.0.0.2";
        a4.mask = "24";
        a6.family = TYPES__IPFAMILY__v6;
        a6.address = "fd00::2";
        a6.mask = "64";
        Types__IPAddress *ips[] = {&a4, &a6};
        Types__Interface itf = TYPES__INTERFACE__INIT;
        itf.hwaddr = "02:00:00:00:00:01";
        itf.name = "eth0";
        itf.mtu = 1500;
        itf.ipaddresses = ips;
        itf.n_ipaddresses = 2;
        assert_int_equal(agent_net_validate_interface(&itf, &err), 0);
        itf.mtu = 0; /* keep */
        assert_int_equal(agent_net_validate_interface(&itf, &err), 0);
        itf.mtu = 1000; /* below IPv6's minimum with an IPv6 address */
        assert_int_equal(agent_net_validate_interface(&itf, &err), -EINVAL);
        assert_non_null(strstr(cc_error_message(err), "1280"));
        itf.mtu = 65536;
        assert_int_equal(agent_net_validate_interface(&itf, &err), -EINVAL);
        itf.mtu = 1500;
        itf.n_ipaddresses = AGENT_NET_MAX_ADDRS + 1;
        assert_int_equal(agent_net_validate_interface(&itf, &err), -EINVAL);
        itf.n_ipaddresses = 2;
        itf.hwaddr = "";
        assert_int_equal(agent_net_validate_interface(&itf, &err), -EINVAL);
        assert_non_null(strstr(cc_error_message(err), "hwAddr"));
        itf.hwaddr = "02:00:00:00:00:01";
        itf.name = "../../x";
        assert_int_equal(agent_net_validate_interface(&itf, &err), -EINVAL);
        assert_int_equal(agent_net_validate_interface(NULL, &err), -EINVAL);
}

static void test_route(void **state)
{
        _cleanup_error_ struct cc_error *err = NULL;
        Types__Route rt = TYPES__ROUTE__INIT;
        rt.gateway = "10.0.0.1";
        rt.device = "eth0";
        assert_int_equal(agent_net_validate_route(&rt, &err), 0);
        rt.device = "";
        assert_int_equal(agent_net_validate_route(&rt, &err), 0); /* the kernel finds it */
        rt.gateway = "";
        assert_int_equal(agent_net_validate_route(&rt, &err), -EINVAL);
        assert_non_null(strstr(cc_error_message(err), "neither a gateway nor a device"));
        rt.dest = "10.0.0.0/24";
        rt.device = "eth0";
        rt.scope = 253;
        assert_int_equal(agent_net_validate_route(&rt, &err), 0);
        rt.scope = 256;
        assert_int_equal(agent_net_validate_route(&rt, &err), -EINVAL);
        rt.scope = 0;
        rt.source = "fd00::1";
        assert_int_equal(agent_net_validate_route(&rt, &err), -EINVAL);
        rt.source = "10.0.0.2";
        assert_int_equal(agent_net_validate_route(&rt, &err), 0);
        rt.gateway = "fd00::1";
        assert_int_equal(agent_net_validate_route(&rt, &err), -EINVAL);
        rt.gateway = "10.0.0.1 ";
        assert_int_equal(agent_net_validate_route(&rt, &err), -EINVAL);
        rt.gateway = "";
        rt.device = "a/b";
        assert_int_equal(agent_net_validate_route(&rt, &err), -EINVAL);
        rt.device = "eth0";
        rt.family = TYPES__IPFAMILY__v6;
        rt.source = "";
        assert_int_equal(agent_net_validate_route(&rt, &err), -EINVAL); /* v4 dest */
        assert_int_equal(agent_net_validate_route(NULL, &err), -EINVAL);
}

static void test_neighbor(void **state)
{
        _cleanup_error_ struct cc_error *err = NULL;
        Types__IPAddress ip = TYPES__IPADDRESS__INIT;
        ip.address = "10.0.0.1";
        Types__ARPNeighbor ne = TYPES__ARPNEIGHBOR__INIT;
        ne.toipaddress = &ip;
        ne.device = "eth0";
        ne.lladdr = "02:00:00:00:00:01";
        ne.state = 0x80;
        assert_int_equal(agent_net_validate_neighbor(&ne, &err), 0);
        ne.state = 0x100;
        assert_int_equal(agent_net_validate_neighbor(&ne, &err), -EINVAL);
        ne.state = 0;
        ne.flags = -1;
        assert_int_equal(agent_net_validate_neighbor(&ne, &err), -EINVAL);
        ne.flags = 0;
        ne.lladdr = "02:00:00:00:00";
        assert_int_equal(agent_net_validate_neighbor(&ne, &err), -EINVAL);
        ne.lladdr = "02:00:00:00:00:01";
        ne.toipaddress = NULL;
        assert_int_equal(agent_net_validate_neighbor(&ne, &err), -EINVAL);
        ne.toipaddress = &ip;
        ne.device = "";
        assert_int_equal(agent_net_validate_neighbor(&ne, &err), -EINVAL);
}

static void test_dns(void **state)
{
        _cleanup_error_ struct cc_error *err = NULL;
        const char *good[] = {"nameserver 10.0.0.10",      "nameserver fd00::10",
                              "nameserver\t10.0.0.10 ",    "search a.svc.cluster.local svc",
                              "options ndots:5 timeout:1", "domain example"};
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
                assert_int_equal(agent_net_validate_dns(good[i], &err), 0);
        const char *bad[] = {"",
                             "nameserver",
                             "nameserver ",
                             "nameserver dns.example",
                             "nameserver 10.0.0.10 10.0.0.11",
                             "nameserver 10.0.0.10\nnameserver 6.6.6.6",
                             "search x\r",
                             "# comment",
                             "include /etc/shadow",
                             "nameservers 10.0.0.1",
                             "options\x01"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(agent_net_validate_dns(bad[i], &err), -EINVAL);
        char *longline = malloc(AGENT_NET_MAX_DNS_LINE + 10);
        memset(longline, 'a', AGENT_NET_MAX_DNS_LINE + 9);
        memcpy(longline, "search ", 7);
        longline[AGENT_NET_MAX_DNS_LINE + 9] = 0;
        assert_int_equal(agent_net_validate_dns(longline, &err), -EINVAL);
        free(longline);
}

static void test_resolv_conf(void **state)
{
        _cleanup_error_ struct cc_error *err = NULL;
        char dir[] = "/tmp/cc-nt-unit-XXXXXX";
        assert_non_null(mkdtemp(dir));
        char path[64];
        snprintf(path, sizeof(path), "%s/resolv.conf", dir);

        char *dns[] = {"nameserver 10.0.0.10", "search svc.cluster.local", "options ndots:5"};
        assert_int_equal(agent_net_write_resolv_conf(path, dns, 3, &err), 0);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        char buf[256] = "";
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = 0;
        assert_string_equal(buf,
                            "nameserver 10.0.0.10\nsearch svc.cluster.local\noptions ndots:5\n");
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0644);

        /* A bad line anywhere: nothing is written, the old file stays. */
        char *bad[] = {"nameserver 10.0.0.11", "nameserver 1.1.1.1\nsearch evil"};
        assert_int_equal(agent_net_write_resolv_conf(path, bad, 2, &err), -EINVAL);
        assert_non_null(strstr(cc_error_message(err), "dns[1]"));
        f = fopen(path, "r");
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = 0;
        assert_non_null(strstr(buf, "10.0.0.10"));
        /* No lines: the file is left alone. */
        assert_int_equal(agent_net_write_resolv_conf(path, NULL, 0, &err), 0);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(agent_net_write_resolv_conf(path, dns, AGENT_NET_MAX_DNS + 1, &err),
                         -EINVAL);
        /* A directory that does not exist: a clear error, no stray file. */
        assert_int_equal(agent_net_write_resolv_conf("/nonexistent-cc/resolv.conf", dns, 1, &err),
                         -ENOENT);
        unlink(path);
        assert_int_equal(rmdir(dir), 0); /* nothing else (no temporary) was left */
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ifname),      cmocka_unit_test(test_mac),
                cmocka_unit_test(test_ipaddress),   cmocka_unit_test(test_dest),
                cmocka_unit_test(test_interface),   cmocka_unit_test(test_route),
                cmocka_unit_test(test_neighbor),    cmocka_unit_test(test_dns),
                cmocka_unit_test(test_resolv_conf),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
