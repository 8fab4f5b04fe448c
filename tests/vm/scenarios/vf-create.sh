# pcipass vf create/remove on the emulated SR-IOV NVMe (issue 11): 7 VFs made
# straight onto vfio-pci with sriov_drivers_autoprobe=0 (the kernel log has no
# "nvme ... pci function" line for any VF), QEMU in the guest opens one VF, a
# resize 7 -> 3 goes through 0 and is refused while QEMU holds a VF, remove
# takes them all.
# topology: full
# iommu: on
# needs: pcipass

need_pcipass
need_qemu
pf=$(pci_find 0x1b36 0x0010)
[ -n "$pf" ] || { fail "no NVMe (1b36:0010)"; finish; }
log "PF $pf"
dmesg > "$RESULTS/dmesg-before"
vf_probed() { dmesg | grep -E "nvme nvme[0-9]+: pci function $1" || true; }

pp vf-list-before vf list "$pf" --json
expect_rc "vf list" 0
expect_has "vf list" "$PP_OUT" '"total_vfs": 7'

pp vf-create-dry vf create "$pf" 7 --bind vfio-pci --dry-run
expect_rc "vf create --dry-run" 0
expect_eq "sriov_numvfs after a dry run" "$(cat /sys/bus/pci/devices/$pf/sriov_numvfs)" 0

pp vf-create vf create "$pf" 7 --bind vfio-pci --json
expect_rc "vf create 7 --bind vfio-pci" 0
expect_eq "sriov_numvfs" "$(cat /sys/bus/pci/devices/$pf/sriov_numvfs)" 7
expect_eq "sriov_drivers_autoprobe" "$(cat /sys/bus/pci/devices/$pf/sriov_drivers_autoprobe)" 0
vfs=""
for l in /sys/bus/pci/devices/$pf/virtfn*; do vfs="$vfs ${l##*/}=$(basename "$(readlink "$l")")"; done
first=""
for e in $vfs; do
  vf=${e#*=}
  [ -n "$first" ] || first=$vf
  expect_dev "$vf" vfio-pci vfio-pci
  expect_eq "kernel log: nvme never probed $vf" "$(vf_probed "$vf")" ""
  g=$(pci_group "$vf")
  [ -e "/dev/vfio/$g" ] && ok "/dev/vfio/$g for $vf" || fail "no /dev/vfio/$g for $vf"
done
pp vf-list vf list "$pf"
expect_rc "vf list" 0
expect_has "vf list" "$PP_OUT" "7 of 7 VFs, drivers_autoprobe off"

# QEMU opens one VF: a resize is refused while it holds it
if qemu_start vf -device "vfio-pci,host=$first"; then
  g=$(pci_group "$first")
  pp vf-resize-busy vf create "$pf" 3 --bind vfio-pci
  expect_rc "vf create 3 while QEMU holds $first" 1
  expect_has "vf create (busy)" "$PP_ERR" "$first (/dev/vfio/$g held by qemu-system-x86"
  expect_eq "sriov_numvfs unchanged" "$(cat /sys/bus/pci/devices/$pf/sriov_numvfs)" 7
  qemu_quit
else
  fail "QEMU did not open VF $first"
fi

pp vf-resize vf create "$pf" 3 --bind vfio-pci --json
expect_rc "vf create 3 (resize)" 0
expect_has "resize steps" "$PP_OUT" "\"data\": \"0\""
expect_eq "sriov_numvfs after resize" "$(cat /sys/bus/pci/devices/$pf/sriov_numvfs)" 3
for l in /sys/bus/pci/devices/$pf/virtfn*; do
  vf=$(basename "$(readlink "$l")")
  expect_dev "$vf" vfio-pci vfio-pci
  expect_eq "kernel log: nvme never probed $vf" "$(vf_probed "$vf")" ""
done
pp status status --json
expect_rc "status" 0

pp vf-remove vf remove "$pf"
expect_rc "vf remove" 0
expect_eq "sriov_numvfs after remove" "$(cat /sys/bus/pci/devices/$pf/sriov_numvfs)" 0
expect_eq "virtfn links after remove" "$(ls /sys/bus/pci/devices/$pf | grep -c virtfn)" 0
expect_dev "$pf" nvme "(null)"
dmesg > "$RESULTS/dmesg-after"
finish
