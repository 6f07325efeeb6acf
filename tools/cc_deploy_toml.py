#!/usr/bin/python3
"""cc-deploy's containerd config editor.

Merges cc-deploy's entries (runtime handlers, the cc-snapshotter proxy plugin, CRI's snapshot
settings) into a containerd config.toml as text edits, so that every other byte of the file
stays, and undoes them exactly. Both are proved with tomllib before anything is written: the
merged text parses to the old settings plus ours, and unmerging it gives back the input byte
for byte.

Why Python and not C on lib/toml.c: the merge is string work on the file's own lines (headers,
quoting, comments, CRLF, a missing final newline), and its proof needs a complete TOML reader
that is not ours; Debian 12's python3 has tomllib (3.11), a reader independent of the one
being checked, and the installer runs on the node, where python3 is. lib/toml.c reads runtime
configurations for the shim; it does not keep the file's text. Writing TOML is done by hand
(tomllib only reads): the few value types cc-deploy writes are formatted by fmt_val().

Config versions (containerd docs/cri/config.md, PLUGINS.md; see test/golden/deploy/README.md):
  1  containerd 1.x, plugins by short id:  [plugins.cri.containerd.runtimes.<h>]
  2  containerd 1.6/1.7 (2.x migrates it): [plugins."io.containerd.grpc.v1.cri".containerd...]
  3  containerd 2.x: runtimes under [plugins."io.containerd.cri.v1.runtime".containerd], the
     snapshotter settings in [plugins."io.containerd.cri.v1.images"] (runtime_platforms.<h>
     chooses the pull snapshotter per handler); proxy_plugins as before.

Usage (tools/cc-deploy runs it; exit status 0 ok, 1 check failed, 2 bad input, 3 conflict,
4 the merge cannot be done by text edits):
  cc_deploy_toml.py check FILE
  cc_deploy_toml.py unmerge IN OUT
  cc_deploy_toml.py merge NAME IN|"" OUT CONTAINERD PREFIX CONFDIR HANDLER=VARIANT...
"""
import copy
import re
import sys
import tomllib

BEGIN = "# >>> cc-deploy managed block: `cc-deploy uninstall` removes it; do not edit >>>"
BEGIN_NL = BEGIN + " (newline added)"
END = "# <<< cc-deploy managed block <<<"
MARK = "  # cc-deploy:managed"  # ends a line cc-deploy inserted into one of the file's tables
MARK_NL = MARK + " (newline added)"  # the same, after a line that had no newline (the file's last)
WAS = "#cc-deploy-was:"  # starts a line of the file that cc-deploy commented out
SOCK = "/run/cc-snapshotter/cc-snapshotter.sock"
RUNTIME_TYPE = "io.containerd.kata-cc.v2"
HV_PREFIX = "io.katacontainers.config.hypervisor."
CONTAINERD_VERSIONS = ("1.6", "1.7", "2")

CRI_V1 = "cri"
CRI_V2 = "io.containerd.grpc.v1.cri"
CRI_V3_RUNTIME = "io.containerd.cri.v1.runtime"
CRI_V3_IMAGES = "io.containerd.cri.v1.images"


class MergeError(Exception):
    """A refusal: the file is left as it is. code is the exit status of the command."""

    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code


class Layout:
    """Where a config of one version keeps what cc-deploy sets.

    runtime: the table holding `runtimes` and `default_runtime_name`;
    images: the table holding snapshotter, disable_snapshot_annotations, discard_unpacked_layers;
    platforms: the table whose <handler> subtables choose the pull snapshotter (version 3)."""

    def __init__(self, version, runtime, images, platforms=None):
        self.version = version
        self.runtime = runtime
        self.images = images
        self.platforms = platforms


LAYOUTS = {
    1: Layout(1, ("plugins", CRI_V1, "containerd"), ("plugins", CRI_V1, "containerd")),
    2: Layout(2, ("plugins", CRI_V2, "containerd"), ("plugins", CRI_V2, "containerd")),
    3: Layout(3, ("plugins", CRI_V3_RUNTIME, "containerd"), ("plugins", CRI_V3_IMAGES),
              ("plugins", CRI_V3_IMAGES, "runtime_platforms")),
}


def layout_for(name, d, ctrd):
    """(Layout, whether to write a `version` line) for the parsed file d and containerd ctrd."""
    version = d.get("version")
    if not d:  # empty or absent: the version the containerd reads natively
        return LAYOUTS[3 if ctrd == "2" else 2], True
    if version in (None, 1):
        if ctrd == "2":
            raise MergeError(2, "%s: a version 1 config (no `version` line) is not read by containerd 2.x: "
                                "convert it with `containerd config migrate`, then run cc-deploy again" % name)
        return LAYOUTS[1], False
    if version == 2:
        return LAYOUTS[2], False  # containerd 2.x migrates a version 2 config itself
    if version == 3 and ctrd == "2":
        return LAYOUTS[3], False
    if version == 3:
        raise MergeError(2, "%s: version = 3 is not supported by containerd %s (version 3 is containerd 2.x's "
                            "configuration; 1.6 and 1.7 read version 1 or 2): if this node runs containerd 2.x, "
                            "pass --containerd-version 2" % (name, ctrd))
    raise MergeError(2, "%s: version = %r is not supported (cc-deploy writes versions 1 and 2 for containerd "
                        "1.6/1.7 and version 3 for containerd 2.x)" % (name, version))


# ---- text ----------------------------------------------------------------------------------------

def unmerge(text):
    """The text without cc-deploy's edits (exactly the text merge() was given)."""
    out, inblock = [], False
    for ln in text.splitlines(keepends=True):
        s = ln.rstrip("\r\n")
        if inblock:
            inblock = s != END
            continue
        if s in (BEGIN, BEGIN_NL):
            inblock = True
            if s == BEGIN_NL and out and out[-1].endswith("\n"):
                out[-1] = out[-1][:-1]
            continue
        if s.endswith(MARK_NL):
            if out and out[-1].endswith("\n"):
                out[-1] = out[-1][:-1]
            continue
        if s.endswith(MARK):
            continue
        out.append(ln[len(WAS):] if ln.startswith(WAS) else ln)
    return "".join(out)


KEYPART = re.compile(r'\s*(?:([A-Za-z0-9_-]+)|"((?:[^"\\]|\\.)*)"|\'([^\']*)\')\s*')


def parse_header(line):
    """(path tuple, is_array) for a table header line, else None."""
    s = line.strip()
    arr = s.startswith("[[")
    if not s.startswith("["):
        return None
    i = 2 if arr else 1
    parts = []
    while True:
        m = KEYPART.match(s, i)
        if not m:
            return None
        bare, basic, lit = m.groups()
        if basic is not None:
            try:
                basic = tomllib.loads('k = "%s"' % basic)["k"]
            except tomllib.TOMLDecodeError:
                return None
        parts.append(next(p for p in (bare, basic, lit) if p is not None))
        i = m.end()
        if s.startswith(".", i):
            i += 1
            continue
        close = "]]" if arr else "]"
        if not s.startswith(close, i):
            return None
        rest = s[i + len(close):].strip()
        if rest and not rest.startswith("#"):
            return None
        return tuple(parts), arr


def fmt_key(k):
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else '"%s"' % k.replace("\\", "\\\\").replace('"', '\\"')


def fmt_path(path):
    return ".".join(fmt_key(p) for p in path)


def fmt_val(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"%s"' % v.replace("\\", "\\\\").replace('"', '\\"')
    if isinstance(v, list):
        return "[" + ", ".join(fmt_val(x) for x in v) + "]"
    raise TypeError(v)


def lookup(d, path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def assign(d, path, kv):
    for p in path:
        d = d.setdefault(p, {})
    d.update(copy.deepcopy(kv))


# ---- what cc-deploy wants in the file --------------------------------------------------------------

def pod_annotations(confdir, variant):
    """The pod annotations containerd should pass to the shim for this handler: only what its
    runtime configuration honours (the shim refuses the rest anyway). An enable_annotations entry
    that is a plain name becomes that annotation; a regular expression cannot be written as
    containerd's glob, so it forwards io.katacontainers.config.hypervisor.* and the shim judges
    each name. config_path is forwarded when [runtime] valid_config_paths lists something."""
    path = "%s/configuration-%s.toml" % (confdir, variant)
    try:
        with open(path, "rb") as f:
            cfg = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise MergeError(2, "%s: cannot read the runtime configuration (%s)" % (path, e)) from None
    out = []
    for hv in cfg.get("hypervisor", {}).values():
        for e in hv.get("enable_annotations", []) if isinstance(hv, dict) else []:
            a = HV_PREFIX + e if re.fullmatch(r"[A-Za-z0-9_]+", e) else HV_PREFIX + "*"
            if a not in out:
                out.append(a)
    if HV_PREFIX + "*" in out:
        out = [HV_PREFIX + "*"] + [a for a in out if not a.startswith(HV_PREFIX)]
    if cfg.get("runtime", {}).get("valid_config_paths"):
        out.append("io.katacontainers.config_path")
    return out


def wanted(layout, ctrd, prefix, handlers, annotations):
    """[(table path, {key: value}, owned)]: owned tables must not exist yet; the others are
    tables of the file whose keys cc-deploy sets. handlers: [(handler, variant)];
    annotations: {variant: [pod annotation, ...]}."""
    t = []
    if ctrd == "1.6":
        # 1.6 has one CRI snapshotter for all runtimes: cc-snapshotter decides per image.
        t.append((("proxy_plugins", "cc-snapshotter"), {"type": "snapshot", "address": SOCK}, True))
        snap, rt_snap = "cc-snapshotter", None
    else:
        # 1.7+: two names on one socket; ordinary runtimes keep a local snapshotter.
        t.append((("proxy_plugins", "cc-guest"), {"type": "snapshot", "address": SOCK}, True))
        t.append((("proxy_plugins", "cc-local"), {"type": "snapshot", "address": SOCK}, True))
        snap, rt_snap = "cc-local", "cc-guest"
    t.append((layout.images, {"snapshotter": snap, "disable_snapshot_annotations": False,
                              "discard_unpacked_layers": False}, False))
    for h, variant in handlers:
        kv = {"runtime_type": RUNTIME_TYPE,
              "privileged_without_host_devices": True,
              "pod_annotations": list(annotations.get(variant, []))}
        if rt_snap:
            kv["snapshotter"] = rt_snap
        t.append((layout.runtime + ("runtimes", h), kv, True))
        t.append((layout.runtime + ("runtimes", h, "options"),
                  {"ConfigPath": "%s/share/defaults/kata-containers/configuration-%s.toml" % (prefix, variant)},
                  True))
        if layout.platforms and rt_snap:
            # containerd 2.x's image service pulls with the snapshotter of runtime_platforms.<h>;
            # the runtime's own `snapshotter` only reaches it in later 2.x releases.
            t.append((layout.platforms + (h,), {"snapshotter": rt_snap}, True))
    return t


# ---- the merge -----------------------------------------------------------------------------------

class Plan:
    """The edits of one merge: lines to insert into the file's tables, the managed block, and
    the settings the result must parse to."""

    def __init__(self, name, text, d):
        self.name = name
        self.lines = text.splitlines(keepends=True)
        self.headers = []  # (line index, path, is_array)
        for i, ln in enumerate(self.lines):
            h = parse_header(ln)
            if h:
                self.headers.append((i, h[0], h[1]))
        self.d = d
        self.expected = copy.deepcopy(d)
        self.block, self.notes, self.conflicts = [], [], []
        self.edits = {}  # line index -> [replace the line?, [lines to put after it]]

    def header_line(self, path):
        return next((i for i, p, arr in self.headers if p == path and not arr), None)

    def where(self, path):
        i = self.header_line(path)
        return "%s:%d" % (self.name, i + 1) if i is not None else self.name

    def add_table(self, path, kv):
        self.block.append("[%s]\n" % fmt_path(path))
        self.block.extend("  %s = %s\n" % (fmt_key(k), fmt_val(v)) for k, v in kv.items())
        assign(self.expected, path, kv)

    def owned(self, path, kv):
        """A table cc-deploy writes whole, in its block; refused when the file has it already."""
        cur = lookup(self.d, path)
        if cur is None:
            self.add_table(path, kv)
            return
        shown = fmt_path(path)
        if path[0] == "proxy_plugins" and cur == kv:
            self.notes.append("keeps [%s]: already declared the same way" % shown)
            return
        if len(path) > 1 and path[-1] == "options" and lookup(self.d, path[:-1]) is not None:
            return  # reported with its runtime
        have = ", ".join("%s = %s" % (k, fmt_val(v)) if not isinstance(v, dict) else "[%s]" % k
                         for k, v in cur.items()) or "empty"
        self.conflicts.append("%s: [%s] is already defined (%s); cc-deploy does not overwrite tables it did "
                              "not write: remove it, then run cc-deploy again" % (self.where(path), shown, have))

    def set_keys(self, path, kv):
        """Keys of a table of the file: set in place, the old line kept as a comment."""
        cur = lookup(self.d, path)
        shown = fmt_path(path)
        if cur is not None and not isinstance(cur, dict):
            self.conflicts.append("%s: %s is not a table" % (self.name, shown))
            return
        cur = cur or {}
        if cur.get("snapshotter") not in (None, "overlayfs", kv["snapshotter"]):
            self.conflicts.append(
                "%s: [%s] snapshotter = %s: another snapshotter is configured for CRI; cc-deploy would replace "
                "it with %s. Set it to \"overlayfs\" or remove the key if that is what you want, then run "
                "cc-deploy again" % (self.where(path), shown, fmt_val(cur["snapshotter"]), fmt_val(kv["snapshotter"])))
            return
        todo = {k: v for k, v in kv.items() if cur.get(k) != v}
        if not todo:
            return
        hl = self.header_line(path)
        if hl is None:
            self.add_table(path, todo)
            return
        end = next((i for i, _, _ in self.headers if i > hl), len(self.lines))
        indent = re.match(r"\s*", self.lines[hl]).group(0) + "  "
        for k, v in todo.items():
            keyre = re.compile(r"\s*(%s|\"%s\")\s*=" % (re.escape(k), re.escape(k)))
            at = next((i for i in range(hl + 1, end) if keyre.match(self.lines[i])), None)
            new = "%s%s = %s" % (indent, fmt_key(k), fmt_val(v))
            if at is None:
                self.edits.setdefault(hl, [False, []])[1].append(new)
            else:
                self.edits.setdefault(at, [True, []])[0] = True
                self.edits[at][1].append(new)
                self.notes.append("%s:%d: sets %s = %s (was: %s)"
                                  % (self.name, at + 1, k, fmt_val(v), self.lines[at].strip()))
        assign(self.expected, path, todo)

    def render(self):
        out = []
        for i, ln in enumerate(self.lines):
            e = self.edits.get(i)
            if not e:
                out.append(ln)
                continue
            nl = "" if ln.endswith("\n") else "\n"
            out.append((WAS if e[0] else "") + ln + nl)
            # The first inserted line says whether the newline before it was added.
            out.extend(new + (MARK_NL if nl and j == 0 else MARK) + "\n" for j, new in enumerate(e[1]))
        merged = "".join(out)
        if self.block:
            nl = merged and not merged.endswith("\n")
            merged += ("\n" if nl else "") + (BEGIN_NL if nl else BEGIN) + "\n" + "".join(self.block) + END + "\n"
        return merged


def merge(name, text, ctrd, prefix, handlers, annotations):
    """(merged text, notes) for the file text (without cc-deploy's edits); MergeError when the
    file conflicts with cc-deploy's entries or cannot be edited as text."""
    if ctrd not in CONTAINERD_VERSIONS:
        raise MergeError(2, "containerd %s: cc-deploy knows 1.6, 1.7 and 2" % ctrd)
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise MergeError(2, "%s: not valid TOML (%s); fix it before running cc-deploy" % (name, e)) from None
    layout, add_version = layout_for(name, d, ctrd)
    plan = Plan(name, text, d)
    if ctrd == "2" and layout.version == 2:
        plan.notes.append("%s is a version 2 config, which containerd 2.x migrates when it loads it; its migration "
                          "does not carry a runtime's snapshotter to the image service, so the confidential "
                          "handlers pull with cc-local: convert the file (`containerd config migrate`) and run "
                          "cc-deploy again for runtime_platforms" % name)
    if add_version:
        plan.block.append("version = %d\n" % layout.version)
        plan.expected["version"] = layout.version
    tables = wanted(layout, ctrd, prefix, handlers, annotations)
    # Any runtimes table in the file replaces containerd's built-in list, which holds runc;
    # CRI then refuses to load ("no corresponding runtime configured in `containerd.runtimes`
    # for `containerd` `default_runtime_name = "runc"`"). So declare runc as containerd does.
    runtimes = layout.runtime + ("runtimes",)
    default_rt = lookup(d, layout.runtime + ("default_runtime_name",)) or "runc"
    if default_rt == "runc" and lookup(d, runtimes + ("runc",)) is None:
        tables.append((runtimes + ("runc",), {"runtime_type": "io.containerd.runc.v2"}, True))
    for path, kv, owned in tables:
        (plan.owned if owned else plan.set_keys)(path, kv)
    if plan.conflicts:
        raise MergeError(3, "\n".join(plan.conflicts))
    merged = plan.render()
    prove(name, text, merged, plan.expected, ctrd)
    return merged, plan.notes


def prove(name, text, merged, expected, ctrd):
    """The result parses to exactly the old settings plus ours, and unmerge() gives back the
    input byte for byte."""
    try:
        got = tomllib.loads(merged)
    except tomllib.TOMLDecodeError as e:
        raise MergeError(4, "%s: cannot merge by text edits (the result would not parse: %s); the file defines "
                            "containerd's CRI tables in a form cc-deploy does not edit (dotted keys or inline "
                            "tables?): merge configs/containerd/runtimes-%s.toml by hand" % (name, e, ctrd)) from None
    if got != expected:
        raise MergeError(4, "%s: internal check failed: the merged file does not hold exactly the old settings "
                            "plus cc-deploy's; nothing was written" % name)
    if unmerge(merged) != text:
        raise MergeError(4, "%s: internal check failed: the merge could not be undone byte for byte; nothing "
                            "was written" % name)


# ---- command line --------------------------------------------------------------------------------

def read_text(path, name):
    try:
        with open(path, encoding="utf-8", newline="") as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise MergeError(2, "%s: not UTF-8 text (%s)" % (name, e)) from None


def write_text(path, text):
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def run(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "check" and len(argv) == 3:
        try:
            with open(argv[2], "rb") as f:
                tomllib.load(f)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise MergeError(1, "%s: not valid TOML: %s" % (argv[2], e)) from None
        return
    if cmd == "unmerge" and len(argv) == 4:
        write_text(argv[3], unmerge(read_text(argv[2], argv[2])))
        return
    if cmd == "merge" and len(argv) >= 8:
        name, src, dst, ctrd, prefix, confdir = argv[2:8]
        handlers = [tuple(a.split("=", 1)) for a in argv[8:]]
        annotations = {v: pod_annotations(confdir, v) for _, v in handlers}
        text = read_text(src, name) if src else ""
        merged, notes = merge(name, unmerge(text), ctrd, prefix, handlers, annotations)
        for n in notes:
            print(n, file=sys.stderr)
        write_text(dst, merged)
        return
    raise MergeError(2, "usage: %s check FILE | unmerge IN OUT | merge NAME IN OUT CONTAINERD PREFIX CONFDIR "
                        "HANDLER=VARIANT..." % argv[0])


def main(argv):
    try:
        run(argv)
    except MergeError as e:
        print(e, file=sys.stderr)
        return e.code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
