#!/usr/bin/python
# -*- coding: utf-8 -*-
# pcipass.passthrough.passthrough: the desired passthrough state of a host, applied by
# `pcipass apply FILE --json` (docs/apply.md in the pcipass repository). The module computes
# nothing itself: pcipass plans, applies, rolls back, and says whether anything changed.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: passthrough
short_description: PCI passthrough state of a KVM host, applied with pcipass
version_added: "1.0.0"
description:
  - Writes the options to a desired-state file (schema version 1 of C(pcipass apply FILE)) and
    runs C(pcipass apply FILE --json), with C(--dry-run) in check mode.
  - The file becomes one plan of pcipass's change engine; a failure rolls all of it back.
    What is already so is left alone, so a second run reports C(changed=false).
  - Adds what it is given; it never releases devices, removes VFs or mdevs it is not given.
options:
  iommu:
    description: The IOMMU on in the boot loader (C(pcipass setup --iommu)).
    type: bool
    default: false
  iommu_pt:
    description: C(iommu=pt) on the kernel command line (C(pcipass setup --iommu-pt)).
    type: bool
    default: false
  vfio_early:
    description: The VFIO modules at every boot and in the initramfs (C(pcipass setup --vfio)).
    type: bool
    default: false
  devices:
    description:
      - Devices bound to vfio-pci now and at every boot.
      - Each has an I(address), or an I(id) (vendor:device in hex) with a I(count) (the first
        I(count) such devices in address order).
    type: list
    elements: dict
    default: []
    suboptions:
      address:
        description: A PCI address, such as C(0000:01:00.0).
        type: str
      id:
        description: vendor:device in hex, such as C(10de:1b80).
        type: str
      count:
        description: With I(id), how many of those devices (default 1).
        type: int
  sriov:
    description: SR-IOV physical functions and their VF counts.
    type: list
    elements: dict
    default: []
    suboptions:
      pf:
        description: The PF's PCI address.
        type: str
        required: true
      vfs:
        description: How many VFs it should have.
        type: int
        required: true
      bind:
        description: Bind every VF to this driver before a host driver sees it.
        type: str
        choices: [vfio-pci]
  mdevs:
    description: Mediated devices, created and defined in /etc/mdevctl.d.
    type: list
    elements: dict
    default: []
    suboptions:
      parent:
        description: The parent as C(pcipass mdev types) names it.
        type: str
        required: true
      type:
        description: The mdev type, such as C(nvidia-63).
        type: str
        required: true
      uuid:
        description: The mdev's UUID (the same on every run).
        type: str
        required: true
      autostart:
        description: Start it when its parent registers (mdevctl's start auto).
        type: bool
  root:
    description: Work on the host tree under this directory (C(pcipass --root)), for tests.
    type: path
  executable:
    description: The pcipass program to run.
    type: str
    default: pcipass
notes:
  - Supports check mode (C(pcipass apply FILE --dry-run)) and returns the plan's steps.
author:
  - pcipass developers
"""

EXAMPLES = r"""
- name: GPUs for the VMs
  pcipass.passthrough.passthrough:
    iommu: true
    vfio_early: true
    devices:
      - address: "0000:01:00.0"
      - id: "10de:1b80"
        count: 2
    sriov:
      - pf: "0000:03:00.0"
        vfs: 4
        bind: vfio-pci
"""

RETURN = r"""
pcipass:
  description: pcipass's whole JSON report (schema pcipass.apply-file/1).
  returned: success
  type: dict
steps:
  description: Every write pcipass made, or in check mode would make, in order.
  returned: success
  type: list
  elements: str
change_set:
  description: The durable change set of the files (C(pcipass undo ID)), or null.
  returned: success
  type: str
"""

import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

SECTIONS = ("devices", "sriov", "mdevs")


def desired_state(params):
    """The options as a desired-state file, version 1; unset suboptions left out."""
    state = {"version": 1}
    boot = {k: True for k in ("iommu", "iommu_pt", "vfio_early") if params[k]}
    if boot:
        state["boot"] = boot
    for section in SECTIONS:
        entries = [{k: v for k, v in e.items() if v is not None} for e in params[section] or []]
        if entries:
            state[section] = entries
    return state


def command(module, path):
    exe = module.params["executable"]
    if os.sep not in exe:
        exe = module.get_bin_path(exe, required=True)
    argv = [exe]
    if module.params["root"]:
        argv += ["--root", module.params["root"]]
    argv += ["--json", "--color", "never", "apply", path]
    if module.check_mode:
        argv.append("--dry-run")
    return argv


def parse(stdout):
    try:
        return json.loads(stdout)
    except ValueError:
        return None


def fail(module, rc, out, err, report):
    error = (report or {}).get("error") or {}
    msg = error.get("message") or err.strip() or "pcipass exited with status %d" % rc
    if error.get("fix"):
        msg += " (fix: %s)" % error["fix"]
    module.fail_json(msg=msg, rc=rc, stdout=out, stderr=err, error=error)


def main():
    device = dict(address=dict(type="str"), id=dict(type="str"), count=dict(type="int"))
    vf = dict(pf=dict(type="str", required=True), vfs=dict(type="int", required=True),
              bind=dict(type="str", choices=["vfio-pci"]))
    mdev = dict(parent=dict(type="str", required=True), type=dict(type="str", required=True),
                uuid=dict(type="str", required=True), autostart=dict(type="bool"))
    module = AnsibleModule(
        argument_spec=dict(
            iommu=dict(type="bool", default=False),
            iommu_pt=dict(type="bool", default=False),
            vfio_early=dict(type="bool", default=False),
            devices=dict(type="list", elements="dict", default=[], options=device),
            sriov=dict(type="list", elements="dict", default=[], options=vf),
            mdevs=dict(type="list", elements="dict", default=[], options=mdev),
            root=dict(type="path"),
            executable=dict(type="str", default="pcipass"),
        ),
        supports_check_mode=True,
    )
    fd, path = tempfile.mkstemp(prefix="pcipass-desired-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(desired_state(module.params), f, indent=2)
        rc, out, err = module.run_command(command(module, path))
    finally:
        os.unlink(path)
    report = parse(out)
    if rc != 0 or report is None or "changed" not in report:
        fail(module, rc, out, err, report)
    steps = report.get("steps", [])
    result = dict(changed=bool(report["changed"]), pcipass=report,
                  steps=["%s %s: %s" % (s["kind"], s["path"], s["data"]) for s in steps],
                  change_set=report.get("change_set"))
    if report.get("warnings"):
        result["warnings"] = report["warnings"]
    if module._diff:  # --diff: the files' unified diffs as pcipass prints them
        result["diff"] = [{"prepared": s["diff"]} for s in steps if s.get("diff")]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
