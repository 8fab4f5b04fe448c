# A host booted without the IOMMU (intel_iommu=off): libvirt in the guest refuses a
# managed <hostdev> of the e1000e (00:02.0) at `virsh start`, before QEMU, and the
# card stays on e1000e. libvirt's error, the QEMU log and the kernel's messages go to
# results/doctor/iommu-off.* for `pcipass doctor` (a copy in tests/fixtures/doctor/vm/).
# topology: nic-root
# iommu: off
# needs: pcipass

need_pcipass
need_qemu
need_libvirt
expect_eq "IOMMU groups" "$(iommu_group_count)" 0
nic=$(pci_find 0x8086 0x10d3)
[ -n "$nic" ] || { fail "no e1000e (8086:10d3)"; finish; }
pp xml xml "$nic"
if [ "$PP_RC" != 0 ]; then ok "pcipass xml $nic refuses (exit $PP_RC)"; else fail "pcipass xml $nic without an IOMMU: exit 0"; fi
expect_has "pcipass xml" "$PP_ERR" "has no IOMMU group"
# the <hostdev> a user writes by hand
_b=${nic#*:}; _s=${_b#*:}; _f=${_s#*.}; _s=${_s%.*}; _b=${_b%%:*}
printf "<hostdev mode='subsystem' type='pci' managed='yes'>\n  <source>\n    <address domain='0x0000' bus='0x%s' slot='0x%s' function='0x%s'/>\n  </source>\n</hostdev>\n" \
  "$_b" "$_s" "$_f" > /tmp/hd-nic.xml
libvirt_start_fails iommu-off pt-iommu-off /tmp/hd-nic.xml "host doesn't support passthrough of host PCI devices" iommu_off
expect_dev "$nic" e1000e "(null)"
# the kernel's whole log: what says the IOMMU is off ("DMAR: IOMMU disabled") is from the boot
dmesg > "$RESULTS/doctor/iommu-off.kern.log"
libvirt_stop
finish
