# pcipass bind/release of the e1000e on the root bus (00:02.0, its own
# group), which carries the guest's default route: refused without --force
# (nothing written), bound with --force, then QEMU inside the guest opens it
# with -device vfio-pci and shows its IDs on pcie.0 (query-pci); after QEMU
# quits, release gives it back to e1000e with its network interface.
# topology: full
# iommu: on
# needs: pcipass
# quick: yes

need_pcipass
need_qemu
nic=$(pci_find 0x8086 0x10d3)
[ -n "$nic" ] || { fail "no e1000e (8086:10d3)"; finish; }
dev=/sys/bus/pci/devices/$nic
g=$(pci_group "$nic")
ifname=$(ls "$dev/net")
log "e1000e $nic, group $g, interface $ifname"
expect_dev "$nic" e1000e "(null)"
expect_eq "default route via $ifname" "$(ip route | sed -n 's/^default .* dev \([^ ]*\).*/\1/p')" "$ifname"

# 1. Without --force: refused, with the reason and the fix; nothing written.
pp bind-refused bind "$nic"
expect_rc "bind without --force" 1
expect_has "bind refusal" "$PP_ERR" "refusing to bind: $nic carries the default route ($ifname)"
expect_has "bind refusal" "$PP_ERR" "--force"
expect_dev "$nic" e1000e "(null)"
[ -e "/dev/vfio/$g" ] && fail "/dev/vfio/$g exists after a refused bind"
[ -d "$dev/net/$ifname" ] && ok "$ifname still there" || fail "$ifname gone after a refused bind"
expect_clean refused

# 2. --force: on vfio-pci, /dev/vfio/G, the interface is gone, status holds.
pp bind bind --force "$nic"
expect_rc "bind --force" 0
expect_has "bind" "$PP_OUT" "bound $nic to vfio-pci (was e1000e)"
expect_has "bind" "$PP_OUT" "group $g is ready: /dev/vfio/$g"
expect_dev "$nic" vfio-pci vfio-pci
[ -c "/dev/vfio/$g" ] && ok "/dev/vfio/$g is a character device" || fail "no /dev/vfio/$g"
[ -e "$dev/net" ] && fail "$dev/net still there on vfio-pci"
pp status-bound status --json
expect_rc "status (bound)" 0
expect_has "status --json" "$PP_OUT" "\"address\": \"$nic\""
expect_has "status --json" "$PP_OUT" "\"original_driver\": \"e1000e\""
expect_has "status --json" "$PP_OUT" "\"holds\": true"

# 3. QEMU opens it: pcipass's success means a VM can use the device.
if qemu_start nic -device "vfio-pci,host=$nic,bus=pcie.0,addr=0x5,id=pt0"; then
  cp "$QEMU_DIR/cmdline" "$RESULTS/qemu-nic.cmdline"
  qemu_pci > "$RESULTS/qemu-nic.pci"
  expect_eq "QEMU query-pci pcie.0 slot 05.0" "$(grep '^05\.0 ' "$RESULTS/qemu-nic.pci")" "05.0 8086:10d3 pt0"
  _held=0
  for _f in /proc/"$QEMU_PID"/fd/*; do [ "$(readlink "$_f")" = "/dev/vfio/$g" ] && _held=1; done
  expect_eq "QEMU (pid $QEMU_PID) holds /dev/vfio/$g" $_held 1
  qemu_quit
  cp "$QEMU_DIR/err" "$RESULTS/qemu-nic.err"
else
  fail "QEMU could not open $nic: $(tr '\n' ' ' < "$QEMU_DIR/err")"
fi

# 4. Release: e1000e drives it again, its interface is back.
pp release release "$nic"
expect_rc "release" 0
expect_has "release" "$PP_OUT" "released $nic: vfio-pci -> e1000e"
expect_dev "$nic" e1000e "(null)"
_n=$(ls "$dev/net" 2>/dev/null)
if [ -n "$_n" ]; then
  ok "network interface $_n is back under $nic"
  expect_eq "$_n MAC" "$(cat "$dev/net/$_n/address")" 52:54:00:00:00:02
  [ -e "/sys/class/net/$_n" ] && ok "/sys/class/net/$_n" || fail "no /sys/class/net/$_n"
else
  fail "no network interface under $nic after release"
fi
[ -e "/dev/vfio/$g" ] && fail "/dev/vfio/$g still there after release"
expect_clean released
pp release-again release "$nic"
expect_rc "release again" 0
expect_has "release again" "$PP_OUT" "$nic is already back on the host"
finish
