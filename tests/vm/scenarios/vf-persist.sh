# pcipass vf create --persist across reboots on the emulated SR-IOV NVMe
# (issue 11).
# Boot 1: `vf create PF 7 --bind vfio-pci --persist --dry-run` shows the
# store's diff and the sysfs writes and writes nothing; without --dry-run
# the 7 VFs are on vfio-pci, /etc/pcipass/assignments.json has the PF's
# "sriov" entry (1b36:0010, 7 VFs, autoprobe off, vfio-pci, their
# addresses), the boot unit is enabled, one change set. Reboot.
# Boot 2 (the same disk; a fresh kernel: no VFs, autoprobe on): first thing,
# `apply --boot` as pcipass-apply.service runs it at boot (this guest's init
# runs no systemd: persist-reboot's path) brings the 7 VFs back on vfio-pci;
# the kernel log of this boot has no "nvme ... pci function VF" line for any
# VF; a second apply writes nothing (already-configured). Then `vf remove
# --persist`: VFs gone, the entry gone. Reboot.
# Boot 3: apply --boot makes nothing: sriov_numvfs stays 0.
# topology: full
# iommu: on
# needs: pcipass
# boots: 3

need_pcipass
STORE=/etc/pcipass/assignments.json
LINK=/etc/systemd/system/sysinit.target.wants/pcipass-apply.service
REC=/var/lib/pcipass-vm-test
pf=""
for a in $(pci_find 0x1b36 0x0010); do
  [ -e "/sys/bus/pci/devices/$a/sriov_totalvfs" ] && { pf=$a; break; }
done
[ -n "$pf" ] || { fail "no SR-IOV NVMe (1b36:0010 with sriov_totalvfs)"; finish; }
pcipass vf create --help 2>/dev/null | grep -q -- --persist ||
  { fail "pcipass vf create has no --persist: this binary predates branch h11-persist"; finish; }
PFDIR=/sys/bus/pci/devices/$pf
vf_probed() { dmesg | grep -E "nvme nvme[0-9]+: pci function $1" || true; }
vfs_on() {  # every VF of the PF on driver $1, and as many as $2
  n=0
  for l in "$PFDIR"/virtfn*; do
    [ -e "$l" ] || continue
    vf=$(basename "$(readlink "$l")")
    n=$((n + 1))
    expect_dev "$vf" "$1" "$1"
    expect_eq "kernel log: nvme never probed $vf" "$(vf_probed "$vf")" ""
  done
  expect_eq "VFs of $pf" "$n" "$2"
}
log "PF $pf"

if [ "$PCIPASS_BOOT" = 1 ]; then
  [ -e "$REC" ] && fail "$REC exists on the first boot: the disk is not pristine"
  mkdir -p "$REC"
  pp dry vf create "$pf" 7 --bind vfio-pci --persist --dry-run
  expect_rc "vf create --persist --dry-run" 0
  expect_has "dry run" "$PP_OUT" "+++ b/etc/pcipass/assignments.json"
  expect_has "dry run" "$PP_OUT" "$PFDIR/sriov_numvfs: 7"
  [ -e "$STORE" ] && fail "--dry-run wrote $STORE" || ok "--dry-run wrote no $STORE"
  expect_eq "sriov_numvfs after a dry run" "$(cat "$PFDIR/sriov_numvfs")" 0

  pp create vf create "$pf" 7 --bind vfio-pci --persist
  expect_rc "vf create 7 --bind vfio-pci --persist" 0
  expect_has "vf create" "$PP_OUT" "persisted $pf in $STORE"
  expect_eq "sriov_numvfs" "$(cat "$PFDIR/sriov_numvfs")" 7
  vfs_on vfio-pci 7
  expect_has "store" "$STORE" "\"pf\": \"$pf\""
  expect_has "store" "$STORE" "\"num_vfs\": 7"
  expect_has "store" "$STORE" "\"drivers_autoprobe\": false"
  expect_has "store" "$STORE" "\"driver\": \"vfio-pci\""
  [ -L "$LINK" ] && ok "$LINK" || fail "no enablement link $LINK"
  ls "$PFDIR" | grep virtfn | sort > "$REC/virtfns"
  for l in "$PFDIR"/virtfn*; do basename "$(readlink "$l")"; done | sort > "$REC/vfs"
  cp "$STORE" "$REC/store"
  sync
  finish
fi

if [ "$PCIPASS_BOOT" = 2 ]; then
  [ -f "$REC/store" ] || { fail "boot 1's record is not on the disk"; finish; }
  cmp -s "$STORE" "$REC/store" && ok "$STORE as boot 1 left it" || fail "$STORE changed over the reboot"
  # What the boot unit does, before anything else of the scenario.
  pp apply-boot apply --boot --json
  expect_rc "apply --boot" 0
  expect_has "apply --boot" "$PP_OUT" '"result": "configured"'
  expect_eq "sriov_numvfs after apply" "$(cat "$PFDIR/sriov_numvfs")" 7
  expect_eq "sriov_drivers_autoprobe after apply" "$(cat "$PFDIR/sriov_drivers_autoprobe")" 0
  for l in "$PFDIR"/virtfn*; do basename "$(readlink "$l")"; done | sort > "$RESULTS/vfs-boot2"
  cmp -s "$RESULTS/vfs-boot2" "$REC/vfs" && ok "the VFs are back at their addresses" ||
    fail "VFs at other addresses: $(tr '\n' ' ' < "$RESULTS/vfs-boot2")"
  vfs_on vfio-pci 7
  pp apply-again apply --boot
  expect_rc "apply --boot again" 0
  expect_has "apply again" "$PP_OUT" "$pf already has its 7 VFs as persisted"
  pp status status --json
  expect_rc "status" 0

  pp remove vf remove "$pf" --persist
  expect_rc "vf remove --persist" 0
  expect_has "vf remove --persist" "$PP_OUT" "removed $pf from $STORE"
  expect_eq "sriov_numvfs after remove" "$(cat "$PFDIR/sriov_numvfs")" 0
  expect_not "store after remove" "$STORE" '"sriov"'
  dmesg > "$RESULTS/dmesg-boot2"
  sync
  finish
fi

# ---- boot 3: nothing comes back
expect_not "store" "$STORE" '"sriov"'
pp apply-none apply --boot
expect_rc "apply --boot with nothing persisted" 0
expect_eq "sriov_numvfs" "$(cat "$PFDIR/sriov_numvfs")" 0
expect_eq "virtfn links" "$(ls "$PFDIR" | grep -c virtfn)" 0
expect_dev "$pf" nvme "(null)"
finish
