# pcipass doctor on QEMU's real failure: the VGA function (00:04.0's card,
# function 0) moved to vfio-pci by hand while its HDMI-audio-like sibling
# (function 1, same IOMMU group) stays on snd_hda_intel, so the group is not
# viable; QEMU in the guest with -device vfio-pci,host=VGA refuses to start.
# `pcipass doctor --log` on QEMU's stderr names group_not_viable and the
# audio function; the kernel log comes from /dev/kmsg (root).
# topology: gpu
# iommu: on
# needs: pcipass

need_pcipass
need_qemu
vga=$(pci_find 0x1234 0x1111)
hda=$(pci_find 0x8086 0x293e)
[ -n "$vga" ] && [ -n "$hda" ] || { fail "no VGA (1234:1111) or ich9-intel-hda (8086:293e)"; finish; }
g=$(pci_group "$vga")
expect_eq "audio in the VGA's group" "$(pci_group "$hda")" "$g"
modprobe vfio-pci 2>/dev/null
# Not with pcipass bind: it refuses to leave a group half on the host, which is the point here.
echo vfio-pci > "/sys/bus/pci/devices/$vga/driver_override"
[ -e "/sys/bus/pci/devices/$vga/driver" ] && echo "$vga" > "/sys/bus/pci/devices/$vga/driver/unbind"
echo "$vga" > /sys/bus/pci/drivers_probe
expect_eq "$vga driver" "$(pci_driver "$vga")" vfio-pci
expect_eq "$hda driver" "$(pci_driver "$hda")" snd_hda_intel

if qemu_start doctor -device "vfio-pci,host=$vga,bus=pcie.0,addr=0x5,id=pt0"; then
  fail "QEMU started with a group that is not viable"
  qemu_quit
fi
cp "$QEMU_DIR/err" "$RESULTS/qemu-not-viable.err"
log "QEMU said: $(cat "$QEMU_DIR/err")"
expect_has "QEMU's error" "$QEMU_DIR/err" "group $g is not viable"

pp doctor-log doctor --log "$QEMU_DIR/err"
expect_rc "doctor --log" 0
expect_has "doctor" "$PP_OUT" "group_not_viable: IOMMU group $g is not viable: $hda still on a host driver"
expect_has "doctor" "$PP_OUT" "/sys/kernel/iommu_groups/$g/devices/$hda: driver snd_hda_intel: keeps the group from the VM"
expect_has "doctor" "$PP_OUT" "pcipass bind --with-group $vga"
expect_has "doctor" "$PP_OUT" "kernel log: /dev/kmsg"
pp doctor-json doctor --json --log "$QEMU_DIR/err"
expect_rc "doctor --json" 0
expect_has "doctor --json" "$PP_OUT" '"cause": "group_not_viable"'
expect_has "doctor --json" "$PP_OUT" '"confirmed": true'

# The group made whole: the same log is no longer shown by this host.
echo vfio-pci > "/sys/bus/pci/devices/$hda/driver_override"
echo "$hda" > "/sys/bus/pci/devices/$hda/driver/unbind"
echo "$hda" > /sys/bus/pci/drivers_probe
pp doctor-whole doctor --log "$QEMU_DIR/err"
expect_rc "doctor (group whole now)" 0
expect_has "doctor (group whole now)" "$PP_OUT" "group_not_viable (not shown by this host now)"
finish
