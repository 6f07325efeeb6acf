#!/usr/bin/python3
"""Unit tests of cc-deploy's config editor (tools/cc_deploy_toml.py): the merge rules, one by
one, and the golden files of test/golden/deploy/ (input -> expected merged output for config
versions 1, 2 and 3; a second merge changes nothing; unmerge gives the input back byte for
byte). Debian's python3 only (unittest, tomllib). Run by `make test` (UNIT_TESTS, see
configs/module.mk); alone: test/unit/test-cc-deploy-toml.py [-v].
CC_GOLDEN_UPDATE=1 rewrites the expected files (then read the diff before committing it)."""
import contextlib
import io
import os
import re
import sys
import tempfile
import unittest

try:
    import tomllib
except ImportError:  # Python < 3.11: cc-deploy refuses to run there too
    print("skip: this python3 has no tomllib (Python 3.11+)")
    sys.exit(77)

ROOT = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import cc_deploy_toml as cdt  # noqa: E402

GOLDEN = os.path.join(ROOT, "test", "golden", "deploy")
PREFIX = "/opt/confidential-containers"
HANDLERS = [("kata", "qemu"), ("kata-qemu-tdx", "qemu-tdx")]
ANNOTATIONS = {"qemu": [], "qemu-tdx": ["io.katacontainers.config.hypervisor.default_vcpus"]}
SOCK = "/run/cc-snapshotter/cc-snapshotter.sock"
# The documented plugin ids, spelled out here rather than taken from the module under test.
V2_CRI = ("plugins", "io.containerd.grpc.v1.cri", "containerd")
V3_RUNTIME = ("plugins", "io.containerd.cri.v1.runtime", "containerd")
V3_IMAGES = ("plugins", "io.containerd.cri.v1.images")


def merge(text, ctrd="1.6", handlers=HANDLERS, annotations=ANNOTATIONS):
    return cdt.merge("config.toml", text, ctrd, PREFIX, handlers, annotations)


def get(d, path):
    for p in path:
        d = d[p]
    return d


class Rules(unittest.TestCase):
    def refused(self, text, code, msg, ctrd="1.6"):
        with self.assertRaises(cdt.MergeError) as e:
            merge(text, ctrd)
        self.assertEqual(e.exception.code, code, str(e.exception))
        self.assertIn(msg, str(e.exception))

    def test_empty_file_gets_version_2_for_1x_and_3_for_2x(self):
        for ctrd, version in (("1.6", 2), ("1.7", 2), ("2", 3)):
            out, _ = merge("", ctrd)
            d = tomllib.loads(out)
            self.assertEqual(d["version"], version, ctrd)
            self.assertEqual(cdt.unmerge(out), "")

    def test_1_6_one_snapshotter_for_every_runtime(self):
        d = tomllib.loads(merge("version = 2\n", "1.6")[0])
        self.assertEqual(d["proxy_plugins"], {"cc-snapshotter": {"type": "snapshot", "address": SOCK}})
        cri = get(d, V2_CRI)
        self.assertEqual(cri["snapshotter"], "cc-snapshotter")
        self.assertFalse(cri["disable_snapshot_annotations"])
        self.assertFalse(cri["discard_unpacked_layers"])
        self.assertNotIn("snapshotter", cri["runtimes"]["kata"])

    def test_1_7_two_names_and_a_snapshotter_per_runtime(self):
        d = tomllib.loads(merge("version = 2\n", "1.7")[0])
        self.assertEqual(sorted(d["proxy_plugins"]), ["cc-guest", "cc-local"])
        cri = get(d, V2_CRI)
        self.assertEqual(cri["snapshotter"], "cc-local")
        for h, _ in HANDLERS:
            self.assertEqual(cri["runtimes"][h]["snapshotter"], "cc-guest")
        self.assertNotIn("io.containerd.cri.v1.images", d["plugins"])

    def test_runtime_entry(self):
        d = tomllib.loads(merge("version = 2\n", "1.6")[0])
        rt = get(d, V2_CRI)["runtimes"]
        self.assertEqual(rt["kata-qemu-tdx"], {
            "runtime_type": "io.containerd.kata-cc.v2", "privileged_without_host_devices": True,
            "pod_annotations": ["io.katacontainers.config.hypervisor.default_vcpus"],
            "options": {"ConfigPath": PREFIX + "/share/defaults/kata-containers/configuration-qemu-tdx.toml"}})
        self.assertEqual(rt["kata"]["pod_annotations"], [])

    def test_v3_runtimes_in_runtime_plugin_snapshotter_in_images_plugin(self):
        d = tomllib.loads(merge("version = 3\n", "2")[0])
        self.assertNotIn("io.containerd.grpc.v1.cri", d["plugins"])
        images = get(d, V3_IMAGES)
        self.assertEqual((images["snapshotter"], images["disable_snapshot_annotations"],
                          images["discard_unpacked_layers"]), ("cc-local", False, False))
        rts = get(d, V3_RUNTIME)["runtimes"]
        self.assertEqual(rts["kata"]["snapshotter"], "cc-guest")
        self.assertEqual(rts["runc"], {"runtime_type": "io.containerd.runc.v2"})
        # The image service picks the pull snapshotter per handler from runtime_platforms.
        self.assertEqual(images["runtime_platforms"], {h: {"snapshotter": "cc-guest"} for h, _ in HANDLERS})
        self.assertEqual(sorted(d["proxy_plugins"]), ["cc-guest", "cc-local"])

    def test_version_1_uses_the_short_plugin_id(self):
        d = tomllib.loads(merge('[plugins.cri]\n  sandbox_image = "pause"\n', "1.6")[0])
        self.assertIn("kata", d["plugins"]["cri"]["containerd"]["runtimes"])
        self.assertNotIn("version", d)

    def test_versions_containerd_cannot_read_are_refused(self):
        self.refused("version = 3\n", 2, "version = 3 is not supported by containerd 1.6", "1.6")
        self.refused("version = 3\n", 2, "version = 3 is not supported by containerd 1.7", "1.7")
        self.refused('[plugins.cri]\n  x = 1\n', 2, "version 1 config", "2")
        self.refused("version = 4\n", 2, "version = 4 is not supported", "2")
        self.refused("version = 2\n", 2, "containerd 1.5: cc-deploy knows 1.6, 1.7 and 2", "1.5")

    def test_runc_declared_only_when_the_default_is_runc_and_missing(self):
        d = tomllib.loads(merge("version = 2\n")[0])
        self.assertEqual(get(d, V2_CRI)["runtimes"]["runc"], {"runtime_type": "io.containerd.runc.v2"})
        text = 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  default_runtime_name = "crun"\n'
        self.assertNotIn("runc", get(tomllib.loads(merge(text)[0]), V2_CRI)["runtimes"])
        text = ('version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\n'
                '  runtime_type = "io.containerd.runc.v2"\n  # mine\n')
        out = merge(text)[0]
        self.assertTrue(out.startswith(text))
        self.assertEqual(out.count("runtimes.runc]"), 1)

    def test_existing_runtime_table_is_refused_with_its_line(self):
        text = ('version = 2\n# someone else\'s kata\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata]\n'
                '  runtime_type = "io.containerd.kata.v2"\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata.options]\n'
                '  ConfigPath = "/etc/kata.toml"\n')
        with self.assertRaises(cdt.MergeError) as e:
            merge(text)
        msg = str(e.exception)
        self.assertEqual(e.exception.code, 3)
        self.assertIn('config.toml:3: [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata] is already '
                      'defined (runtime_type = "io.containerd.kata.v2", [options])', msg)
        self.assertNotIn("kata.options", msg)  # reported once, with its runtime
        self.assertNotIn("kata-qemu-tdx", msg)

    def test_v3_existing_runtime_platform_is_refused(self):
        text = "version = 3\n[plugins.'io.containerd.cri.v1.images'.runtime_platforms.kata]\n  snapshotter = 'nydus'\n"
        with self.assertRaises(cdt.MergeError) as e:
            merge(text, "2")
        self.assertIn("config.toml:2: [plugins.\"io.containerd.cri.v1.images\".runtime_platforms.kata] is already "
                      "defined (snapshotter = \"nydus\")", str(e.exception))

    def test_proxy_plugin_declared_the_same_way_is_kept(self):
        text = 'version = 2\n[proxy_plugins.cc-snapshotter]\n  type = "snapshot"\n  address = "%s"\n' % SOCK
        out, notes = merge(text)
        self.assertEqual(out.count("[proxy_plugins.cc-snapshotter]"), 1)
        self.assertIn("keeps [proxy_plugins.cc-snapshotter]: already declared the same way", notes)
        text = 'version = 2\n[proxy_plugins.cc-snapshotter]\n  type = "snapshot"\n  address = "/other.sock"\n'
        self.refused(text, 3, "[proxy_plugins.cc-snapshotter] is already defined")

    def test_another_cri_snapshotter_is_refused_overlayfs_is_replaced(self):
        self.refused('version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "stargz"\n',
                     3, 'snapshotter = "stargz": another snapshotter is configured for CRI')
        self.refused("version = 3\n[plugins.'io.containerd.cri.v1.images']\n  snapshotter = 'nydus'\n",
                     3, "another snapshotter is configured for CRI", "2")
        text = ('version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n'
                '  snapshotter = "overlayfs"   # stock\n  disable_snapshot_annotations = true\n')
        out, notes = merge(text)
        self.assertIn('#cc-deploy-was:  snapshotter = "overlayfs"   # stock\n'
                      '  snapshotter = "cc-snapshotter"  # cc-deploy:managed\n', out)
        self.assertIn("config.toml:3: sets snapshotter = \"cc-snapshotter\" (was: snapshotter = \"overlayfs\"   # stock)",
                      notes)
        # discard_unpacked_layers was not in the table: added under its header.
        self.assertIn('[plugins."io.containerd.grpc.v1.cri".containerd]\n'
                      '  discard_unpacked_layers = false  # cc-deploy:managed\n', out)
        self.assertEqual(cdt.unmerge(out), text)

    def test_settings_already_ours_are_not_touched(self):
        text = ('version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "cc-snapshotter"\n'
                '  disable_snapshot_annotations = false\n  discard_unpacked_layers = false\n')
        out, _ = merge(text)
        self.assertTrue(out.startswith(text))
        self.assertNotIn(cdt.WAS, out)
        self.assertNotIn(cdt.MARK, out)

    def test_forms_text_edits_cannot_merge_are_refused(self):
        self.refused('version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  containerd.snapshotter = "overlayfs"\n',
                     4, "cannot merge by text edits")
        self.refused('version = 2\n[plugins."io.containerd.grpc.v1.cri"\n', 2, "config.toml: not valid TOML")

    def test_no_final_newline_and_crlf_round_trip(self):
        for text in ('version = 2\nroot = "/var/lib/containerd"',
                     'version = 2\r\n[plugins."io.containerd.grpc.v1.cri".containerd]\r\n  snapshotter = "overlayfs"\r\n',
                     'version = 2\r\n[plugins."io.containerd.grpc.v1.cri".containerd]\r\n  snapshotter = "overlayfs"'):
            out, _ = merge(text)
            tomllib.loads(out)
            self.assertEqual(cdt.unmerge(out), text, repr(text))
            self.assertEqual(merge(cdt.unmerge(out))[0], out)
        out, _ = merge('version = 2\nroot = "/x"')
        self.assertIn('root = "/x"\n' + cdt.BEGIN_NL + "\n", out)
        text = 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]'  # an empty table, no newline
        out, _ = merge(text)
        self.assertTrue(out.startswith(text + "\n  snapshotter = \"cc-snapshotter\"" + cdt.MARK_NL + "\n"), out)
        self.assertEqual(cdt.unmerge(out), text)

    def test_unmerge_keeps_edits_made_after_install(self):
        text = 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "overlayfs"\n'
        out, _ = merge(text)
        extra = '\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun]\n  runtime_type = "io.containerd.runc.v2"\n'
        self.assertEqual(cdt.unmerge(out + extra), text + extra)

    def test_header_parsing(self):
        p = cdt.parse_header
        self.assertEqual(p("[a.b]"), (("a", "b"), False))
        self.assertEqual(p("  [ plugins . 'io.x' . \"q\\\"k\" ]  # c"), (("plugins", "io.x", 'q"k'), False))
        self.assertEqual(p("[[a.b]]"), (("a", "b"), True))
        for bad in ("a = [1]", "[a.b] x", "[a.", "# [a]"):
            self.assertIsNone(p(bad), bad)

    def test_value_and_key_formatting(self):
        self.assertEqual(cdt.fmt_val([True, 3, 'a"b\\c']), '[true, 3, "a\\"b\\\\c"]')
        self.assertEqual(cdt.fmt_key("io.containerd.cri.v1.images"), '"io.containerd.cri.v1.images"')
        self.assertEqual(cdt.fmt_key("kata-qemu_1"), "kata-qemu_1")
        with self.assertRaises(TypeError):
            cdt.fmt_val(1.5)


class Annotations(unittest.TestCase):
    def conf(self, d, variant, body):
        with open(os.path.join(d, "configuration-%s.toml" % variant), "w") as f:
            f.write(body)

    def test_only_what_the_configuration_honours(self):
        hv = "io.katacontainers.config.hypervisor."
        with tempfile.TemporaryDirectory() as d:
            self.conf(d, "none", "[hypervisor.qemu]\npath = \"/usr/bin/qemu\"\n")
            self.conf(d, "names", '[hypervisor.qemu]\nenable_annotations = ["default_vcpus", "kernel_params", '
                                  '"default_vcpus"]\n[runtime]\nvalid_config_paths = ["/etc/kata-cc/*.toml"]\n')
            self.conf(d, "regex", '[hypervisor.clh]\nenable_annotations = ["kernel_params", "default_(vcpus|memory)"]\n')
            self.assertEqual(cdt.pod_annotations(d, "none"), [])
            self.assertEqual(cdt.pod_annotations(d, "names"),
                             [hv + "default_vcpus", hv + "kernel_params", "io.katacontainers.config_path"])
            # A regular expression cannot be a containerd glob: the prefix's wildcard, alone.
            self.assertEqual(cdt.pod_annotations(d, "regex"), [hv + "*"])
            with self.assertRaises(cdt.MergeError) as e:
                cdt.pod_annotations(d, "missing")
            self.assertIn("configuration-missing.toml: cannot read the runtime configuration", str(e.exception))


class Fragments(unittest.TestCase):
    def test_version_3_fragments_are_what_cc_deploy_writes(self):
        """configs/containerd/{runtimes,cc-snapshotter}-2.toml (merge-by-hand fragments) are the
        merge of an absent config for containerd 2.x with every handler of tools/cc-deploy."""
        with open(os.path.join(ROOT, "tools", "cc-deploy")) as f:
            handlers = [tuple(h.split("=")) for h in re.search(r"HANDLERS=\(([^)]*)\)", f.read()).group(1).split()]
        confdir = os.path.join(ROOT, "configs", "runtime")
        annotations = {v: cdt.pod_annotations(confdir, v) for _, v in handlers}
        got = tomllib.loads(merge("", "2", handlers, annotations)[0])
        snap, rts = ({}, {})
        for name, d in (("cc-snapshotter-2.toml", snap), ("runtimes-2.toml", rts)):
            with open(os.path.join(ROOT, "configs", "containerd", name), "rb") as f:
                d.update(tomllib.load(f))
        self.assertEqual(got["proxy_plugins"], snap["proxy_plugins"])
        images = get(got, V3_IMAGES)
        self.assertEqual(images.pop("runtime_platforms"), get(rts, V3_IMAGES)["runtime_platforms"])
        self.assertEqual(images, get(snap, V3_IMAGES))
        want_rts = dict(get(rts, V3_RUNTIME)["runtimes"], runc={"runtime_type": "io.containerd.runc.v2"})
        self.assertEqual(get(got, V3_RUNTIME)["runtimes"], want_rts)
        self.assertEqual(got["version"], 3)


class CommandLine(unittest.TestCase):
    def test_merge_unmerge_check(self):
        with tempfile.TemporaryDirectory() as d, contextlib.redirect_stderr(io.StringIO()) as err:
            with open(os.path.join(d, "configuration-qemu.toml"), "w") as f:
                f.write("[hypervisor.qemu]\n")
            src, out, back = (os.path.join(d, n) for n in ("in.toml", "out.toml", "back.toml"))
            with open(src, "w", newline="") as f:
                f.write("version = 2\r\n")
            self.assertEqual(cdt.main(["t", "merge", "config.toml", src, out, "1.7", PREFIX, d, "kata=qemu"]), 0)
            self.assertEqual(cdt.main(["t", "check", out]), 0)
            self.assertEqual(cdt.main(["t", "unmerge", out, back]), 0)
            with open(back, "rb") as f:
                self.assertEqual(f.read(), b"version = 2\r\n")
            # Merging the merged file again gives the same bytes (cc-deploy unmerges first).
            self.assertEqual(cdt.main(["t", "merge", "config.toml", out, back, "1.7", PREFIX, d, "kata=qemu"]), 0)
            with open(out, "rb") as a, open(back, "rb") as b:
                self.assertEqual(a.read(), b.read())
            with open(src, "w") as f:
                f.write("version = 3\n")
            self.assertEqual(cdt.main(["t", "merge", "config.toml", src, out, "1.6", PREFIX, d, "kata=qemu"]), 2)
            with open(src, "w") as f:
                f.write("[a\n")
            self.assertEqual(cdt.main(["t", "check", src]), 1)
            self.assertEqual(cdt.main(["t", "merge"]), 2)
        self.assertIn("version = 3 is not supported by containerd 1.6", err.getvalue())
        self.assertIn("in.toml: not valid TOML", err.getvalue())


# ---- golden files --------------------------------------------------------------------------------
# (input, containerd, expected): the expected files are what a node's config.toml looks like
# after `cc-deploy install` with the handlers of HANDLERS.
CASES = [
    ("empty.toml", "1.6", "empty.1.6.toml"),
    ("empty.toml", "2", "empty.2.toml"),
    ("v2-node.toml", "1.6", "v2-node.1.6.toml"),
    ("v2-node.toml", "1.7", "v2-node.1.7.toml"),
    ("v2-node.toml", "2", "v2-node.2.toml"),
    ("v3-node.toml", "2", "v3-node.2.toml"),
    ("v3-small.toml", "2", "v3-small.2.toml"),
]


def read(name):
    with open(os.path.join(GOLDEN, name), encoding="utf-8", newline="") as f:
        return f.read()


class Golden(unittest.TestCase):
    def test_cases(self):
        for src, ctrd, want in CASES:
            with self.subTest(src=src, containerd=ctrd):
                text = read(src)
                out, _ = merge(text, ctrd)
                if os.environ.get("CC_GOLDEN_UPDATE") == "1":
                    with open(os.path.join(GOLDEN, want), "w", encoding="utf-8", newline="") as f:
                        f.write(out)
                self.assertEqual(out, read(want), "%s differs from the merge of %s" % (want, src))
                self.assertEqual(merge(cdt.unmerge(out), ctrd)[0], out, "a second install changes %s" % want)
                self.assertEqual(cdt.unmerge(out), text, "uninstall does not give back %s" % src)

    def test_v3_golden_holds_the_documented_keys(self):
        d = tomllib.loads(read("v3-node.2.toml"))
        self.assertEqual(d["version"], 3)
        images = get(d, V3_IMAGES)
        self.assertEqual(images["snapshotter"], "cc-local")
        self.assertIs(images["disable_snapshot_annotations"], False)
        self.assertEqual(images["pinned_images"], {"sandbox": "registry.k8s.io/pause:3.10"})  # kept
        self.assertEqual(images["runtime_platforms"]["kata-qemu-tdx"], {"snapshotter": "cc-guest"})
        rts = get(d, V3_RUNTIME)["runtimes"]
        self.assertEqual(rts["runc"]["options"], {"SystemdCgroup": True})  # kept
        self.assertEqual(rts["kata"]["options"]["ConfigPath"],
                         PREFIX + "/share/defaults/kata-containers/configuration-qemu.toml")
        self.assertEqual(d["proxy_plugins"]["cc-guest"], {"type": "snapshot", "address": SOCK})

    def test_v2_golden_for_2x_stays_version_2(self):
        # containerd 2.x migrates a version 2 file itself; cc-deploy keeps its plugin ids.
        d = tomllib.loads(read("v2-node.2.toml"))
        self.assertEqual(d["version"], 2)
        self.assertEqual(get(d, V2_CRI)["snapshotter"], "cc-local")
        self.assertNotIn("io.containerd.cri.v1.images", d["plugins"])


if __name__ == "__main__":
    unittest.main()
