"""Host-side checker for tests/vm: compares what pcipass reported in the guest
with what the kernel showed (see capture_state in guest/lib.sh).

Usage: check.py RESULTS_DIR [--kernel-only] [--iommu on|off]
       check.py RESULTS_DIR --roundtrip

RESULTS_DIR holds one directory per captured state (boot, vfs, ...), each
with kernel/ (dump_kernel_facts) and, unless --kernel-only, pcipass/
(run_pcipass outputs). Kernel-only checks validate the dump against itself
and the raw config space (groups vs. links, SR-IOV and PCIe capabilities,
physfn/virtfn symmetry, parent chains, IOMMU presence). The pcipass checks
compare pcipass's JSON and human output with the dump.
--roundtrip compares, for every RESULTS_DIR/LABEL with live/ and snap/
(roundtrip in guest/lib.sh), each read command's exit status and --json
output live with the same on the host's own snapshot (--root), leaving out
only the fields listed in VOLATILE, and prints a diff of what differs.
Exit: 0 all good, 1 failures, 77 pcipass outputs required but missing.
Debian's /usr/bin/python3, stdlib only.
"""
import json
import os
import re
import sys

ADDR_RE = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
ADDR_IN_TEXT = re.compile(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]")


class Checker:
    def __init__(self):
        self.fails = 0
        self.oks = 0
        self.label = ""

    def ok(self, msg):
        self.oks += 1

    def fail(self, msg):
        self.fails += 1
        print(f"FAIL [{self.label}] {msg}")

    def expect(self, cond, msg):
        (self.ok if cond else self.fail)(msg)
        return cond

    def eq(self, what, got, want):
        return self.expect(got == want, f"{what}: pcipass/got {got!r}, kernel/want {want!r}")


# ---------------------------------------------------------------- kernel dump
class Kernel:
    """One dump_kernel_facts directory."""

    def __init__(self, d):
        self.dir = d
        self.dev = {}  # addr -> {key: value or [values]}
        multi = {"virtfn", "block", "net"}
        with open(os.path.join(d, "devices.txt")) as f:
            for line in f:
                parts = line.rstrip("\n").split(" ", 2)
                if len(parts) < 2:
                    continue
                addr, key = parts[0], parts[1]
                val = parts[2] if len(parts) > 2 else ""
                e = self.dev.setdefault(addr, {"virtfn": [], "block": [], "net": []})
                if key in multi:
                    e[key].append(val)
                else:
                    e[key] = val
        self.groups = {}
        with open(os.path.join(d, "groups.txt")) as f:
            for line in f:
                p = line.split()
                if p:
                    self.groups[int(p[0])] = sorted(p[1:])
        self.iommu = {}
        with open(os.path.join(d, "iommu.txt")) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition(" ")
                self.iommu[k] = v.split()
        self.cmdline = open(os.path.join(d, "cmdline")).read().split()
        self.mounts = [l.split() for l in open(os.path.join(d, "mounts"))]
        self.config = {}
        for a in self.dev:
            p = os.path.join(d, "config", a)
            if os.path.exists(p):
                self.config[a] = open(p, "rb").read()

    def group(self, a):
        g = self.dev[a].get("iommu_group", "-")
        return None if g == "-" else int(g)

    def driver(self, a):
        v = self.dev[a].get("driver", "-")
        return None if v == "-" else v

    def parents(self, a):
        """Bridges from the root bus down to the direct parent, from the path."""
        comps = self.dev[a]["path"].split("/")
        return [c for c in comps[:-1] if ADDR_RE.match(c)]

    def physfn(self, a):
        return self.dev[a].get("physfn")

    def virtfns(self, a):
        out = []
        for v in self.dev[a]["virtfn"]:
            n, _, t = v.partition("=")
            out.append((int(n[len("virtfn"):]), t))
        return [t for _, t in sorted(out)]

    def hexval(self, a, key):
        v = self.dev[a].get(key)
        return None if v in (None, "-") else int(v, 16)


def parse_caps(cfg):
    """(standard capability ids, extended capability ids) with offsets."""
    std, ext = [], []
    if len(cfg) >= 64 and (cfg[0x06] | cfg[0x07] << 8) & 0x10:
        htype = cfg[0x0E] & 0x7F
        ptr = cfg[0x14 if htype == 2 else 0x34] & 0xFC
        seen = set()
        while ptr and ptr < len(cfg) - 1 and ptr not in seen:
            seen.add(ptr)
            std.append((cfg[ptr], ptr))
            ptr = cfg[ptr + 1] & 0xFC
    if len(cfg) >= 4096:
        off, seen = 0x100, set()
        while off and off not in seen and off <= 4092:
            seen.add(off)
            hdr = int.from_bytes(cfg[off:off + 4], "little")
            if hdr in (0, 0xFFFFFFFF):
                break
            ext.append((hdr & 0xFFFF, off))
            off = (hdr >> 20) & 0xFFC
    return std, ext


def pcie_port_type(cfg):
    """Device/port type of the PCI Express capability, None without one."""
    for i, off in parse_caps(cfg)[0]:
        if i == 0x10:
            return (cfg[off + 2] >> 4) & 0xF
    return None


def check_kernel(c, k, iommu):
    """Self-consistency of one dump, and the IOMMU state asked for."""
    # IDs in config space = the sysfs files
    for a, cfg in k.config.items():
        d = k.dev[a]
        if len(cfg) < 64:
            c.fail(f"{a}: config space only {len(cfg)} bytes")
            continue
        vid, did = int.from_bytes(cfg[0:2], "little"), int.from_bytes(cfg[2:4], "little")
        pf = k.physfn(a)
        if pf:
            # A VF's Vendor and Device ID registers read 0xffff (SR-IOV spec);
            # the kernel takes them from the PF's vendor and SR-IOV VF Device ID.
            c.eq(f"{a} (VF) config vendor/device", (vid, did), (0xFFFF, 0xFFFF))
            c.eq(f"{a} (VF) vendor = PF vendor", k.hexval(a, "vendor"), k.hexval(pf, "vendor"))
            pcfg = k.config.get(pf, b"")
            sr = dict(parse_caps(pcfg)[1]).get(0x10)
            if sr is not None:
                c.eq(f"{a} (VF) device = PF's VF Device ID",
                     k.hexval(a, "device"), int.from_bytes(pcfg[sr + 0x1A:sr + 0x1C], "little"))
        else:
            c.eq(f"{a} vendor (config vs sysfs)", vid, k.hexval(a, "vendor"))
            c.eq(f"{a} device (config vs sysfs)", did, k.hexval(a, "device"))
        c.eq(f"{a} class (config vs sysfs)", int.from_bytes(cfg[9:12], "little"), k.hexval(a, "class"))
    # groups.txt membership = iommu_group links
    linked = {}
    for a in k.dev:
        g = k.group(a)
        if g is not None:
            linked.setdefault(g, []).append(a)
    c.eq("groups (iommu_groups dir vs links)", {g: sorted(v) for g, v in linked.items()}, k.groups)
    # capabilities
    for a, cfg in k.config.items():
        std, ext = parse_caps(cfg)
        ext_ids = {i: off for i, off in ext}
        has_sriov = "sriov_totalvfs" in k.dev[a]
        c.eq(f"{a} SR-IOV capability iff sriov_totalvfs", 0x10 in ext_ids, has_sriov)
        if has_sriov and 0x10 in ext_ids:
            total = int.from_bytes(cfg[ext_ids[0x10] + 0x0E:ext_ids[0x10] + 0x10], "little")
            c.eq(f"{a} TotalVFs (config vs sysfs)", total, int(k.dev[a]["sriov_totalvfs"]))
        par = k.parents(a)
        if par and par[-1] in k.config:
            # below a PCIe-to-PCI bridge (PCIe port type 7): conventional PCI
            if pcie_port_type(k.config[par[-1]]) == 0x7:
                c.expect(pcie_port_type(cfg) is None,
                         f"{a}: behind PCIe-to-PCI bridge {par[-1]} but has a PCIe capability")
    # parents exist and are bridges
    for a in k.dev:
        for p in k.parents(a):
            c.expect(p in k.dev and (k.hexval(p, "class") or 0) >> 8 == 0x0604,
                     f"{a}: parent {p} is not a PCI bridge")
    # SR-IOV links both ways
    for a in k.dev:
        for v in k.virtfns(a):
            c.expect(v in k.dev and k.physfn(v) == a, f"{a}: virtfn {v} does not link back")
        pf = k.physfn(a)
        if pf:
            c.expect(pf in k.dev and a in k.virtfns(pf), f"{a}: physfn {pf} does not list it")
        nv = k.dev[a].get("sriov_numvfs")
        if nv not in (None, "-"):
            c.eq(f"{a} sriov_numvfs vs virtfn links", len(k.virtfns(a)), int(nv))
    # IOMMU state
    if iommu == "on":
        c.expect(bool(k.iommu.get("class_iommu")), "IOMMU on but /sys/class/iommu empty")
        c.expect(bool(k.groups), "IOMMU on but no IOMMU groups")
        for a in k.dev:
            c.expect(k.group(a) is not None, f"{a}: no iommu_group with the IOMMU on")
    elif iommu == "off":
        c.expect(not k.iommu.get("class_iommu"), "IOMMU off but /sys/class/iommu has entries")
        c.expect(not k.groups, "IOMMU off but groups exist")
    # the root filesystem's disk is one of the devices
    root = [m[0] for m in k.mounts if len(m) > 1 and m[1] == "/"]
    if root and root[0].startswith("/dev/"):
        name = root[0][5:]
        c.expect(any(name in d["block"] for d in k.dev.values()),
                 f"root filesystem {root[0]} not found under any PCI device")


# ---------------------------------------------------------------- pcipass side
class Out:
    def __init__(self, d, name):
        self.name = name
        base = os.path.join(d, name)
        self.exists = os.path.exists(base + ".out")
        self.out = open(base + ".out", errors="replace").read() if self.exists else ""
        self.err = open(base + ".err", errors="replace").read() if self.exists else ""
        self.rc = int(open(base + ".rc").read().strip() or 255) if self.exists else None

    def json(self, c):
        if not self.exists:
            c.fail(f"{self.name}: not run")
            return None
        try:
            return json.loads(self.out)
        except ValueError as e:
            c.fail(f"{self.name}: not JSON ({e}); stderr: {self.err.strip()[:200]}")
            return None


def hexnum(x):
    """'1b36' / '0x1b36' / 18 -> int; None stays None."""
    if x is None or isinstance(x, int):
        return x
    return int(x, 16)


def by_addr(lst):
    return {x.get("address"): x for x in lst if isinstance(x, dict)}


def check_pcipass(c, k, d, iommu):
    """pcipass's outputs (schemas in docs/json.md) against the kernel dump."""
    o = lambda n: Out(d, n)  # noqa: E731
    # ---- list --json (pcipass.list/1)
    lj = o("list.json").json(c)
    if lj is not None:
        c.eq("list --json schema", lj.get("schema"), "pcipass.list/1")
        devs = by_addr(lj.get("devices", []))
        c.eq("list: addresses", sorted(devs), sorted(k.dev))
        for a, x in devs.items():
            if a in k.dev:
                compare_device(c, k, a, x, "list")
        summ = lj.get("summary", {})
        c.eq("list summary iommu_enabled", summ.get("iommu_enabled"), bool(k.groups))
        c.eq("list summary iommu_groups", summ.get("iommu_groups"), len(k.groups))
        c.eq("list summary devices", summ.get("devices"), len(k.dev))
    # ---- show ADDR --json (pcipass.show/1): details, capabilities
    sj = o("show.json").json(c)
    if sj is not None:
        c.eq("show --json schema", sj.get("schema"), "pcipass.show/1")
        shown = by_addr(sj.get("devices", []))
        c.eq("show (every address): devices", sorted(shown), sorted(k.dev))
        for a in k.dev:
            if a in shown:
                compare_device(c, k, a, shown[a], "show")
                compare_details(c, k, a, shown[a])
    h = o("show")
    if c.expect(h.exists and h.rc == 0, f"show: exit status {h.rc}: {h.err.strip()[:200]}"):
        for a in k.dev:
            c.expect(a in h.out, f"show (human): {a} missing")
    # ---- groups --json (pcipass.groups/1)
    gj = o("groups.json").json(c)
    if gj is not None:
        c.eq("groups --json schema", gj.get("schema"), "pcipass.groups/1")
        c.eq("groups iommu_enabled", gj.get("iommu_enabled"), bool(k.groups))
        got = {g.get("id"): sorted(m.get("address") for m in g.get("devices", [])) for g in gj.get("groups", [])}
        c.eq("groups: membership", got, k.groups)
        for g in gj.get("groups", []):
            gid = g.get("id")
            if gid not in k.groups:
                continue
            # the kernel's rule: viable iff every non-bridge member is bound to
            # vfio-pci / pci-stub or to nothing
            blocking = sorted(a for a in k.groups[gid] if not is_bridge(k, a)
                              and k.driver(a) not in (None, "vfio-pci", "pci-stub"))
            c.eq(f"group {gid} viable", g.get("viable"), not blocking)
            c.eq(f"group {gid} must_move", sorted(g.get("must_move", [])), blocking)
            for m in g.get("devices", []):
                a = m.get("address")
                if a in k.dev:
                    c.eq(f"group {gid} {a} driver", m.get("driver"), k.driver(a))
                    c.eq(f"group {gid} {a} bridge", m.get("bridge"), is_bridge(k, a))
    # ---- tree --json (pcipass.tree/1): nesting = the kernel's parent chains
    tj = o("tree.json").json(c)
    if tj is not None:
        c.eq("tree --json schema", tj.get("schema"), "pcipass.tree/1")
        seen = {}

        def walk(node, chain):
            a = node.get("address")
            seen[a] = chain
            if a in k.dev:
                c.eq(f"tree {a} iommu_group", node.get("iommu_group"), k.group(a))
                c.eq(f"tree {a} driver", node.get("driver"), k.driver(a))
            for ch in node.get("children", []):
                walk(ch, chain + [a])
        for bus in tj.get("root_buses", []):
            for ch in bus.get("children", []):
                walk(ch, [])
        c.eq("tree: devices", sorted(seen), sorted(k.dev))
        for a, chain in seen.items():
            if a in k.dev:
                c.eq(f"tree {a} ancestors", chain, k.parents(a))
    # ---- human outputs: every device appears, exit status 0
    for n in ("list", "tree", "groups"):
        h = o(n)
        if not c.expect(h.exists and h.rc == 0, f"{n}: exit status {h.rc}: {h.err.strip()[:200]}"):
            continue
        text = h.out
        want = [a for g in k.groups.values() for a in g] if n == "groups" else list(k.dev)
        for a in want:
            c.expect(a in text or re.search(r"(?<![0-9a-f:])" + re.escape(a[5:]) + r"\b", text),
                     f"{n} (human): {a} missing")
        if n == "groups":
            for g in k.groups:
                c.expect(f"IOMMU group {g} " in text or text.count(f"IOMMU group {g}\n"),
                         f"groups (human): group {g} missing")
            if not k.groups:
                c.expect("No IOMMU groups" in text, "groups (human): no 'No IOMMU groups' line")
        if n == "tree":
            # indentation grows with the depth of the kernel's parent chain
            for a in k.dev:
                line = next((l for l in text.splitlines() if re.search(re.escape(a) + r" ", l)), None)
                if c.expect(line is not None, f"tree (human): no line for {a}"):
                    col = line.index(a)
                    c.eq(f"tree (human) {a} column", col, 3 + 3 * len(k.parents(a)))
    # ---- check: IOMMU verdicts
    check_verdicts(c, k, o("check"), o("check.json"), iommu)


def is_bridge(k, a):
    cfg = k.config.get(a, b"")
    if len(cfg) > 0x0E:
        return (cfg[0x0E] & 0x7F) in (1, 2)
    return (k.hexval(a, "class") or 0) >> 8 == 0x0604


def compare_device(c, k, a, x, src):
    c.eq(f"{src} {a} vendor", hexnum(x.get("vendor_id")), k.hexval(a, "vendor"))
    c.eq(f"{src} {a} device", hexnum(x.get("device_id")), k.hexval(a, "device"))
    c.eq(f"{src} {a} subsystem vendor", hexnum(x.get("subsystem_vendor_id")), k.hexval(a, "subsystem_vendor"))
    c.eq(f"{src} {a} subsystem device", hexnum(x.get("subsystem_device_id")), k.hexval(a, "subsystem_device"))
    c.eq(f"{src} {a} class", hexnum(x.get("class")), k.hexval(a, "class"))
    c.eq(f"{src} {a} revision", hexnum(x.get("revision")), k.hexval(a, "revision"))
    c.eq(f"{src} {a} driver", x.get("driver"), k.driver(a))
    c.eq(f"{src} {a} iommu_group", x.get("iommu_group"), k.group(a))
    c.eq(f"{src} {a} boot_vga", x.get("boot_vga"), k.dev[a].get("boot_vga") == "1")
    c.eq(f"{src} {a} bridge", x.get("bridge"), is_bridge(k, a))
    c.eq(f"{src} {a} parents", x.get("parents"), k.parents(a))
    c.eq(f"{src} {a} physfn", x.get("physfn"), k.physfn(a))
    c.eq(f"{src} {a} virtfns", x.get("virtfns"), k.virtfns(a))


def compare_details(c, k, a, x):
    kd = k.dev[a]
    cfg = k.config.get(a)
    g = k.group(a)
    c.eq(f"show {a} iommu_group_members", sorted(m if isinstance(m, str) else m.get("address")
                                                 for m in x.get("iommu_group_members", [])),
         k.groups.get(g, []) if g is not None else [])
    ov = kd.get("driver_override", "-")
    c.eq(f"show {a} driver_override", x.get("driver_override"), None if ov in ("(null)", "-") else ov)
    rm = kd.get("reset_method")
    if rm is not None:
        c.eq(f"show {a} reset_methods", x.get("reset_methods"), [] if rm == "-" else rm.split())
    if cfg is not None:
        std, ext = parse_caps(cfg)
        want = sorted([("s", i) for i, _ in std] + [("e", i) for i, _ in ext])
        got = sorted(("e" if cp.get("extended") else "s", hexnum(cp.get("id"))) for cp in x.get("capabilities", []))
        c.eq(f"show {a} capabilities (id list vs config space)", got, want)
        offs = sorted(hexnum(cp.get("offset")) for cp in x.get("capabilities", []))
        c.eq(f"show {a} capability offsets", offs, sorted(off for _, off in std + ext))
        cs = x.get("config_space") or {}
        c.eq(f"show {a} config_space.size", cs.get("size"), len(cfg))
        sr = dict(ext).get(0x10)
        c.eq(f"show {a} config_space.sriov_total_vfs", cs.get("sriov_total_vfs"),
             int.from_bytes(cfg[sr + 0x0E:sr + 0x10], "little") if sr is not None else None)
        c.eq(f"show {a} config_space.acs", cs.get("acs"), 0x0D in dict(ext))
        c.eq(f"show {a} config_space.aer", cs.get("aer"), 0x01 in dict(ext))
        c.eq(f"show {a} config_space.msix", cs.get("msix"), 0x11 in dict(std))
        c.eq(f"show {a} config_space.msi", cs.get("msi"), 0x05 in dict(std))
        c.eq(f"show {a} config_space.pcie_port_type is set iff PCIe", cs.get("pcie_port_type") is not None,
             pcie_port_type(cfg) is not None)
    if "sriov_totalvfs" in kd:
        c.eq(f"show {a} sriov", x.get("sriov"), {"total_vfs": int(kd["sriov_totalvfs"]),
                                                  "num_vfs": int(kd.get("sriov_numvfs", 0))})
    else:
        c.expect(not x.get("sriov"), f"show {a} sriov: {x.get('sriov')!r} but the kernel has no sriov_totalvfs")
    # host-critical: the disk of the root filesystem
    root = [m[0][5:] for m in k.mounts if len(m) > 1 and m[1] == "/" and m[0].startswith("/dev/")]
    if root and root[0] in kd["block"]:
        c.expect(any(u.get("critical") for u in x.get("host_uses", [])),
                 f"show {a}: holds the root filesystem ({root[0]}) but no critical host use: {x.get('host_uses')}")
    for n in kd["net"]:
        c.expect(any(n in json.dumps(u) for u in x.get("host_uses", [])),
                 f"show {a}: network interface {n} not among its host uses: {x.get('host_uses')}")


def check_verdicts(c, k, human, js, iommu):
    j = js.json(c)
    if j is None:
        return
    c.eq("check --json schema", j.get("schema"), "pcipass.check/1")
    checks = {x.get("id"): x for x in j.get("checks", [])}
    for cid in ("iommu-firmware", "iommu-kernel", "interrupt-remapping"):
        c.expect(cid in checks, f"check --json: no '{cid}' item")
    st = lambda cid: checks.get(cid, {}).get("status")  # noqa: E731
    c.eq("check iommu-firmware (DMAR table present)", st("iommu-firmware"), "PASS")
    if iommu == "off":
        c.eq("check iommu-kernel", st("iommu-kernel"), "FAIL")
        c.expect("intel_iommu=on" in (checks.get("iommu-kernel", {}).get("fix") or ""),
                 f"check iommu-kernel fix lacks intel_iommu=on: {checks.get('iommu-kernel', {}).get('fix')!r}")
        c.expect(human.rc == 1 if human.exists else False, f"check: exit status {human.rc} with the IOMMU off")
    elif iommu == "on":
        for cid in ("iommu-kernel", "interrupt-remapping"):
            c.eq(f"check {cid}", st(cid), "PASS")
    worst = "FAIL" if any(x.get("status") == "FAIL" for x in checks.values()) else \
        "WARN" if any(x.get("status") == "WARN" for x in checks.values()) else "PASS"
    c.eq("check worst", j.get("worst"), worst)
    for x in checks.values():
        c.expect((x.get("status") == "PASS") == (x.get("fix") is None),
                 f"check {x.get('id')}: status {x.get('status')} with fix {x.get('fix')!r}")
    # the human form says the same, line by line
    if not c.expect(human.exists, "check: not run"):
        return
    c.eq("check exit status", human.rc, {"PASS": 0, "FAIL": 1, "WARN": 3}[worst])
    lines = human.out.splitlines()
    for cid, x in checks.items():
        idx = next((i for i, l in enumerate(lines) if l.startswith(x.get("status", "?")) and x.get("title", "\0") in l), None)
        if c.expect(idx is not None, f"check (human): no '{x.get('status')} {x.get('title')}' line"):
            if x.get("fix"):
                c.expect(idx + 1 < len(lines) and "fix:" in lines[idx + 1] and x["fix"] in lines[idx + 1],
                         f"check (human): {cid} fix line missing")


# ------------------------------------------------------- snapshot round trip
# Fields that may legitimately differ between a live run and the same
# command on the host's snapshot (--root DIR), as (command, key path) with
# the reason. A path is dot-separated keys; "*" matches any one key or list
# index. Keep this list minimal: everything else must be identical
# (docs/json.md documents the same list). Empty: on every topology of
# tests/vm every field of check, list, groups, tree, status, show and plan
# was the same on the snapshot except plan's interface addresses
# (host_uses.*.addresses, host_loses.*.addresses), which the snapshot
# must capture (/proc/net/fib_trie, if_inet6), not a volatile field.
# Entry form: ("plan", "host_loses.*.addresses", "why it may differ").
VOLATILE = [
]


def _volatile(cmd, path):
    for c, pat, _why in VOLATILE:
        if c not in ("*", cmd):
            continue
        pp = pat.split(".")
        if len(pp) == len(path) and all(a in ("*", b) for a, b in zip(pp, path)):
            return True
    return False


def _strip(cmd, x, path=()):
    if isinstance(x, dict):
        return {k: _strip(cmd, v, path + (k,)) for k, v in x.items() if not _volatile(cmd, path + (k,))}
    if isinstance(x, list):
        return [_strip(cmd, v, path + (str(i),)) for i, v in enumerate(x)]
    return x


def _flat(x, path=""):
    """JSON as sorted "path = value" lines: a diff names the field."""
    if isinstance(x, dict):
        return [l for k in sorted(x) for l in _flat(x[k], f"{path}.{k}" if path else k)] or [f"{path} = {{}}"]
    if isinstance(x, list):
        return [l for i, v in enumerate(x) for l in _flat(v, f"{path}.{i}")] or [f"{path} = []"]
    return [f"{path} = {json.dumps(x)}"]


def _read(d, name, ext):
    try:
        with open(os.path.join(d, f"{name}.{ext}"), errors="replace") as f:
            return f.read()
    except OSError:
        return None


def check_roundtrip(res):
    import difflib
    labels = sorted(l for l in os.listdir(res)
                    if os.path.isdir(os.path.join(res, l, "live")) and os.path.isdir(os.path.join(res, l, "snap")))
    if not labels:
        print(f"check --roundtrip: no LABEL/live and LABEL/snap under {res}")
        return 1
    c = Checker()
    differing = {}  # command -> set of field paths that differ
    for l in labels:
        c.label = l
        live, snap = os.path.join(res, l, "live"), os.path.join(res, l, "snap")
        names = sorted(f[:-3] for f in os.listdir(live) if f.endswith(".rc"))
        c.expect(names, "no commands ran")
        for n in names:
            cmd = n.split("-", 1)[0]
            rl, rs = (_read(live, n, "rc") or "").strip(), (_read(snap, n, "rc") or "").strip()
            c.expect(rl == rs, f"{n}: exit status live {rl}, snapshot {rs or 'missing'}; "
                               f"snapshot stderr: {(_read(snap, n, 'err') or '').strip()[:300]}")
            ol, osn = _read(live, n, "out") or "", _read(snap, n, "out") or ""
            try:
                jl, js = json.loads(ol), json.loads(osn)
            except ValueError as e:
                c.expect(ol == osn, f"{n}: output not JSON ({e}) and differs")
                continue
            fl, fs = _flat(_strip(cmd, jl)), _flat(_strip(cmd, js))
            if fl == fs:
                c.ok(n)
                continue
            diff = list(difflib.unified_diff(fl, fs, "live", "snapshot", n=0, lineterm=""))
            paths = {re.sub(r"\.\d+(?=\.|$)", ".*", d[1:].split(" = ")[0])
                     for d in diff[2:] if d[:1] in "+-" and not d.startswith("@@")}
            differing.setdefault(cmd, set()).update(paths)
            c.fail(f"{n}: --json output differs live vs snapshot ({len(paths)} field(s)):\n    "
                   + "\n    ".join(diff[2:42]) + ("\n    ..." if len(diff) > 42 else ""))
    print(f"check (roundtrip): {len(labels)} state(s) [{', '.join(labels)}], {c.oks} ok, {c.fails} failed")
    for cmd in sorted(differing):
        print(f"  differing fields in {cmd}: {', '.join(sorted(differing[cmd]))}")
    return 1 if c.fails else 0


def main(argv):
    args = argv[1:]
    if "--roundtrip" in args:
        pos = [a for a in args if not a.startswith("--")]
        if len(pos) != 1:
            print(__doc__)
            return 2
        return check_roundtrip(pos[0])
    kernel_only = "--kernel-only" in args
    iommu = None
    if "--iommu" in args:
        iommu = args[args.index("--iommu") + 1]
    pos = [a for i, a in enumerate(args) if not a.startswith("--") and (i == 0 or args[i - 1] != "--iommu")]
    if len(pos) != 1:
        print(__doc__)
        return 2
    res = pos[0]
    labels = sorted(l for l in os.listdir(res) if os.path.isfile(os.path.join(res, l, "kernel", "devices.txt")))
    if not labels:
        print(f"check: no kernel dumps under {res}")
        return 1
    c = Checker()
    missing = []
    for l in labels:
        c.label = l
        k = Kernel(os.path.join(res, l, "kernel"))
        check_kernel(c, k, iommu)
        if kernel_only:
            continue
        pd = os.path.join(res, l, "pcipass")
        if not os.path.isdir(pd):
            missing.append(l)
            continue
        check_pcipass(c, k, pd, iommu)
    mode = "kernel-only" if kernel_only else "kernel + pcipass"
    print(f"check ({mode}): {len(labels)} state(s) [{', '.join(labels)}], {c.oks} ok, {c.fails} failed")
    if c.fails:
        return 1
    if missing:
        print(f"SKIP: no pcipass outputs for {', '.join(missing)}")
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
