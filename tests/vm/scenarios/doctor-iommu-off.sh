# pcipass doctor on a host booted with intel_iommu=off: QEMU in the guest
# with -device vfio-pci for the e1000e fails (no iommu_group), and
# `pcipass doctor --log` on its stderr names iommu_off with the evidence:
# no groups, the command line, the kernel's DMAR lines.
# topology: nic-root
# iommu: off
# needs: pcipass

need_pcipass
need_qemu
nic=$(pci_find 0x8086 0x10d3)
[ -n "$nic" ] || { fail "no e1000e (8086:10d3)"; finish; }
modprobe vfio-pci 2>/dev/null
if qemu_start doctor -device "vfio-pci,host=$nic,bus=pcie.0,addr=0x5,id=pt0"; then
  fail "QEMU started vfio-pci without an IOMMU"
  qemu_quit
fi
cp "$QEMU_DIR/err" "$RESULTS/qemu-iommu-off.err"
log "QEMU said: $(cat "$QEMU_DIR/err")"
pp doctor-log doctor --log "$QEMU_DIR/err"
expect_rc "doctor --log" 0
expect_has "doctor" "$PP_OUT" "iommu_off: the kernel runs without an IOMMU: its command line turns it off"
expect_has "doctor" "$PP_OUT" "/proc/cmdline: has intel_iommu=off"
expect_has "doctor" "$PP_OUT" "pcipass setup --iommu"
pp doctor-virsh doctor "error: unsupported configuration: host doesn't support passthrough of host PCI devices"
expect_rc "doctor MESSAGE" 0
expect_has "doctor MESSAGE" "$PP_OUT" "iommu_off: the kernel runs without an IOMMU"
finish
