# A running QEMU holding /dev/vfio/GROUP makes pcipass release refuse,
# naming the process (comm and pid): the two e1000 behind the pcie-pci-bridge
# are bound with --with-group, QEMU opens one of them; releasing it, or its
# twin (same group), is refused and changes nothing, QEMU keeps the device;
# once QEMU quits, release --with-group gives both back to e1000.
# topology: full
# iommu: on
# needs: pcipass

need_pcipass
need_qemu
set -- $(pci_find 0x8086 0x100e)
[ $# = 2 ] || { fail "want two e1000 (8086:100e), got: $*"; finish; }
a=$1 b=$2
g=$(pci_group "$a")
state() { echo "$a $(pci_driver $a) $(sysfs_override $a)|$b $(pci_driver $b) $(sysfs_override $b)"; }
bound="$a vfio-pci vfio-pci|$b vfio-pci vfio-pci"

pp bind bind --with-group "$a"
expect_rc "bind --with-group" 0
expect_eq "bound" "$(state)" "$bound"

if ! qemu_start busy -device "vfio-pci,host=$a,bus=pcie.0,addr=0x5,id=nic"; then
  fail "QEMU could not open $a: $(tr '\n' ' ' < "$QEMU_DIR/err")"; finish
fi
cp "$QEMU_DIR/cmdline" "$RESULTS/qemu.cmdline"
qemu_pci > "$RESULTS/qemu.pci"
expect_eq "QEMU query-pci 05.0" "$(grep '^05\.0 ' "$RESULTS/qemu.pci")" "05.0 8086:100e nic"

pp release-busy release "$a"
expect_rc "release while QEMU runs" 1
expect_has "release refusal" "$PP_ERR" "refusing to release $a: /dev/vfio/$g is held open by qemu-system-x86 (pid $QEMU_PID)"
expect_has "release refusal" "$PP_ERR" "stop pid $QEMU_PID"
pp release-busy-twin release "$b"
expect_rc "release of the twin while QEMU runs" 1
expect_has "twin refusal" "$PP_ERR" "/dev/vfio/$g is held open by qemu-system-x86 (pid $QEMU_PID)"
pp release-busy-group release --with-group "$b"
expect_rc "release --with-group while QEMU runs" 1
expect_eq "nothing changed by the refusals" "$(state)" "$bound"
[ -e /run/pcipass/journal.json ] && fail "a journal after a refused release"
pp status-busy status --json
expect_rc "status" 0
json_flat "$PP_OUT" > "$RESULTS/status-busy.flat"
expect_has "status --json" "$RESULTS/status-busy.flat" "bindings.0.users.0.pid=$QEMU_PID"
expect_has "status --json" "$RESULTS/status-busy.flat" "bindings.0.users.0.comm=qemu-system-x86"
kill -0 "$QEMU_PID" 2>/dev/null && ok "QEMU still running" || fail "QEMU died"
expect_eq "QEMU still shows the device" "$(qemu_pci | grep '^05\.0 ')" "05.0 8086:100e nic"
qemu_quit

pp release release --with-group "$a"
expect_rc "release after QEMU quit" 0
expect_has "release" "$PP_OUT" "released $a: vfio-pci -> e1000"
expect_has "release" "$PP_OUT" "released $b: vfio-pci -> e1000"
expect_eq "released" "$(state)" "$a e1000 (null)|$b e1000 (null)"
for _x in $a $b; do
  [ -n "$(ls /sys/bus/pci/devices/$_x/net 2>/dev/null)" ] && ok "$_x has its interface" || fail "$_x has no network interface"
done
expect_clean end
finish
