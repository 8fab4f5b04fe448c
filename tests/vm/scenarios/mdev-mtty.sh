# Mediated devices on the real kernel with its sample parent driver mtty
# (samples/vfio-mdev/mtty.c, built by build-image against the guest kernel's
# headers; issue 11). Harness stage: the kernel's own sysfs interface only.
# mtty loads, its types mtty-1/mtty-2 appear with available_instances 24/12,
# a UUID written to mtty-2/create makes /sys/bus/mdev/devices/U (one port
# pair taken from the shared pool of 24), mdevctl lists it, QEMU in the guest
# opens it through sysfsdev and holds /dev/vfio/N, writing 1 to its remove
# gives the ports back.
# topology: minimal
# iommu: on

need_qemu
U=83b8f4f2-509f-382f-3c1e-e6bfe0fa1001
BUS=/sys/class/mdev_bus/mtty
TYPES=$BUS/mdev_supported_types
avail() { cat "$TYPES/$1/available_instances"; }

modinfo mtty > "$RESULTS/modinfo-mtty" 2>&1 || { fail "no mtty module in the guest (build-image)"; finish; }
modprobe mtty || { fail "modprobe mtty failed"; finish; }
# vfio's IOMMU backend is only a soft dependency (busybox modprobe skips it): QEMU needs it
modprobe vfio_iommu_type1
lsmod > "$RESULTS/lsmod"
[ -d "$TYPES" ] && ok "$BUS registered" || { fail "no $TYPES"; finish; }
expect_eq "mtty types" "$(ls "$TYPES" | tr '\n' ' ')" "mtty-1 mtty-2 "
expect_eq "mtty-1 name" "$(cat "$TYPES/mtty-1/name")" "Single port serial"
expect_eq "mtty-2 device_api" "$(cat "$TYPES/mtty-2/device_api")" "vfio-pci"
expect_eq "mtty-1 available_instances" "$(avail mtty-1)" 24
expect_eq "mtty-2 available_instances" "$(avail mtty-2)" 12

echo "$U" > "$TYPES/mtty-2/create" && ok "created $U" || fail "write of $U to mtty-2/create"
D=/sys/bus/mdev/devices/$U
[ -d "$D" ] && ok "$D exists" || { fail "no $D"; finish; }
expect_eq "$U mdev_type" "$(basename "$(readlink "$D/mdev_type")")" mtty-2
expect_eq "$U driver" "$(basename "$(readlink "$D/driver")")" mtty
expect_eq "mtty-2 available_instances after create" "$(avail mtty-2)" 11
expect_eq "mtty-1 available_instances after create (shared ports)" "$(avail mtty-1)" 22
g=$(basename "$(readlink "$D/iommu_group")")
[ -e "/dev/vfio/$g" ] && ok "/dev/vfio/$g for $U" || fail "no /dev/vfio/$g for $U"

if command -v mdevctl >/dev/null; then
  mdevctl list > "$RESULTS/mdevctl-list" 2>&1
  expect_has "mdevctl list" "$RESULTS/mdevctl-list" "$U mtty mtty-2"
else
  fail "no mdevctl in the guest (build-image)"
fi

# QEMU opens the mdev as a VM would; the vfio group stays open while it runs
if qemu_start mdev -device "vfio-pci,sysfsdev=$D,bus=pcie.0,addr=0x5,id=mtty0"; then
  for f in /proc/$QEMU_PID/fd/*; do readlink "$f"; done > "$RESULTS/qemu-fds"
  echo "pid $QEMU_PID: $(cat /proc/$QEMU_PID/comm)" >> "$RESULTS/qemu-fds"
  expect_has "QEMU's open files" "$RESULTS/qemu-fds" "/dev/vfio/$g"
  qmp '{"execute":"query-pci"}' > "$RESULTS/qemu-query-pci"
  expect_has "QEMU's query-pci (mtty's PCI IDs 4348:3253)" "$RESULTS/qemu-query-pci" '"vendor": 17224'
  qemu_quit
else
  fail "QEMU did not open $U"
fi
cp "$QEMU_DIR/err" "$RESULTS/qemu.err" 2>/dev/null

echo 1 > "$D/remove" && ok "removed $U" || fail "write of 1 to $D/remove"
[ -e "$D" ] && fail "$D still there"
expect_eq "mtty-2 available_instances after remove" "$(avail mtty-2)" 12
dmesg > "$RESULTS/dmesg"
finish
