# Failed VM starts through libvirt in the guest, each saved for `pcipass doctor`
# (results/doctor/CASE.error = virsh's error, CASE.qemu.log = libvirt's
# /var/log/libvirt/qemu/DOMAIN.log, CASE.kern.log = dmesg after it; copies in
# tests/fixtures/doctor/vm/):
#   group-not-viable  a managed <hostdev> of one e1000 behind the PCIe-to-PCI
#                     bridge (00:06.0 -> bridge -> two e1000: one IOMMU group);
#                     libvirt moves that one to vfio-pci, its sibling keeps e1000,
#                     QEMU refuses the group; libvirt gives the card back
#   group-not-viable-unmanaged  the same with managed='no' and that e1000 bound
#                     to vfio-pci by hand: the drivers stay as they were
#   unmanaged-bound   managed='no' for the e1000e (00:02.0) still on e1000e
#   no-iommu-models   vfio_iommu_type1 not loaded (a modprobe that skips vfio's
#                     soft dependency): "No available IOMMU models"
# The definitions are written with `pcipass xml` (by hand where pcipass refuses)
# and plain virsh, not attach_cmd: `pcipass attach` refuses these devices
# before libvirt sees them.
# topology: nic-root+pci-bridge
# iommu: on
# needs: pcipass

need_pcipass
need_qemu
need_libvirt
# 1. A group that is not viable.
# shellcheck disable=SC2046
set -- $(pci_find 0x8086 0x100e)
[ $# = 2 ] || { fail "want two e1000 (8086:100e) behind the bridge, got: $*"; finish; }
e1=$1 e2=$2 g=$(pci_group "$1")
expect_eq "$e1 and $e2 share a group" "$(pci_group "$e2")" "$g"
log "e1000 $e1 and $e2, group $g: $(ls "/sys/kernel/iommu_groups/$g/devices" | tr '\n' ' ')"
# pcipass xml refuses it (the group would not be viable): the <hostdev> a user writes by hand.
pp xml-not-viable xml "$e1"
expect_rc "pcipass xml $e1 (sibling $e2 not named)" 2
expect_has "pcipass xml $e1" "$PP_ERR" "would not be viable"
_b=${e1#*:}; _s=${_b#*:}; _f=${_s#*.}; _s=${_s%.*}; _b=${_b%%:*}
cat > /tmp/hd-e1.xml <<XML
<hostdev mode='subsystem' type='pci' managed='yes'>
  <source>
    <address domain='0x0000' bus='0x$_b' slot='0x$_s' function='0x$_f'/>
  </source>
</hostdev>
XML
libvirt_start_fails group-not-viable pt-notviable /tmp/hd-e1.xml "group $g is not viable" group_not_viable "$e2"
expect_dev "$e1" e1000 "(null)"
expect_dev "$e2" e1000 "(null)"
# The same group with managed='no': the user bound one e1000 to vfio-pci by hand (sysfs), the
# sibling keeps e1000; libvirt leaves the drivers alone, QEMU refuses the group.
sed "s/managed='yes'/managed='no'/" /tmp/hd-e1.xml > /tmp/hd-e1-no.xml
echo vfio-pci > "/sys/bus/pci/devices/$e1/driver_override"
echo "$e1" > "/sys/bus/pci/devices/$e1/driver/unbind"
echo "$e1" > /sys/bus/pci/drivers_probe
expect_dev "$e1" vfio-pci vfio-pci
libvirt_start_fails group-not-viable-unmanaged pt-notviable-no /tmp/hd-e1-no.xml "group $g is not viable" group_not_viable "$e2"
expect_dev "$e1" vfio-pci vfio-pci
expect_dev "$e2" e1000 "(null)"
echo > "/sys/bus/pci/devices/$e1/driver_override"
echo "$e1" > "/sys/bus/pci/devices/$e1/driver/unbind"
echo "$e1" > /sys/bus/pci/drivers_probe
expect_dev "$e1" e1000 "(null)"

# 2. managed='no' for a device its host driver still has.
nic=$(pci_find 0x8086 0x10d3)
pcipass xml "$nic" --managed no > /tmp/hd-nic.xml 2> /tmp/hd-nic.err || fail "pcipass xml $nic --managed no: $(cat /tmp/hd-nic.err)"
expect_has "pcipass xml --managed no" /tmp/hd-nic.xml "managed='no'"
libvirt_start_fails unmanaged-bound pt-unmanaged /tmp/hd-nic.xml "must be manually detached" unmanaged_device "$nic"
expect_dev "$nic" e1000e "(null)"

# 3. vfio without its IOMMU backend (nothing holds a container now, so it unloads).
if rmmod vfio_iommu_type1 2>/tmp/rmmod.err; then
  pcipass xml "$nic" > /tmp/hd-nic2.xml 2>/dev/null
  libvirt_start_fails no-iommu-models pt-nomodels /tmp/hd-nic2.xml "No available IOMMU models"
  expect_dev "$nic" e1000e "(null)"
  modprobe vfio_iommu_type1
else
  fail "rmmod vfio_iommu_type1: $(cat /tmp/rmmod.err)"
fi
libvirt_stop
finish
