# pcipass qemu-args, hotplug and unplug against QEMU running inside the
# guest (issue 10): the NVMe (1b36:0010, its own group, on nvme) is
# hot-plugged over QMP into a running-but-paused q35 machine (pcipass binds
# it to vfio-pci first), shows up in query-pci below a root port; unplug of
# the paused guest times out saying the guest must cooperate; --dry-run of
# both sends nothing that changes the guest. Then QEMU started with the
# output of `pcipass qemu-args` (q35: behind its own pcie-root-port; pc: on
# the root bus) sees the device. Release gives it back to nvme.
# topology: full
# iommu: on
# needs: pcipass
# quick: yes

need_pcipass
need_qemu
nvme=$(pci_find 0x1b36 0x0010)
[ -n "$nvme" ] || { fail "no NVMe (1b36:0010)"; finish; }
g=$(pci_group "$nvme")
log "NVMe $nvme, group $g"
expect_dev "$nvme" nvme "(null)"
id=pcipass-$(echo "$nvme" | tr ':.' '--')

# Lines of `qemu_pci` (every device, bridges' children included) for the NVMe.
nvme_in_guest() { qemu_pci | grep ' 1b36:0010 ' || true; }

# 1. A paused q35 guest with two empty root ports, its firmware has run.
sock=/tmp/qemu-hp/qmp.sock
if ! qemu_start hp -device pcie-root-port,id=hp1,chassis=1,slot=1 \
       -device pcie-root-port,id=hp2,chassis=2,slot=2 -qmp "unix:$sock,server=on,wait=off"; then
  fail "QEMU did not start"; finish
fi
qemu_firmware || fail "the guest's firmware did not number its bridges"
expect_eq "NVMe in the guest before hotplug" "$(nvme_in_guest)" ""

# 2. --dry-run: reads the guest, binds nothing, adds nothing.
pp hotplug-dry hotplug --qmp "$sock" "$nvme" --dry-run
expect_rc "hotplug --dry-run" 0
expect_has "hotplug --dry-run" "$PP_OUT" '"execute":"device_add"'
expect_has "hotplug --dry-run" "$PP_OUT" "nothing was sent that changes the guest"
expect_dev "$nvme" nvme "(null)"
expect_eq "NVMe in the guest after a dry run" "$(nvme_in_guest)" ""

# 3. hotplug: bound to vfio-pci first, then device_add into the first free port.
pp hotplug hotplug --qmp "$sock" "$nvme" --json
expect_rc "hotplug" 0
expect_has "hotplug --json" "$PP_OUT" "\"id\": \"$id\""
expect_has "hotplug --json" "$PP_OUT" '"bus": "hp1"'
expect_has "hotplug --json" "$PP_OUT" '"remaining": 1'
expect_dev "$nvme" vfio-pci vfio-pci
seen=$(nvme_in_guest)
expect_eq "NVMe in the paused guest's query-pci" "${seen#* }" "1b36:0010 $id"
qemu_pci > "$RESULTS/qemu-hotplug.pci"

# 4. unplug --dry-run, then unplug of a paused guest: times out, says why.
pp unplug-dry unplug --qmp "$sock" "$id" --dry-run
expect_rc "unplug --dry-run" 0
expect_has "unplug --dry-run" "$PP_OUT" "has $id (vfio-pci)"
pp unplug-dry-unknown unplug --qmp "$sock" nope --dry-run
expect_rc "unplug --dry-run of an unknown id" 1
expect_has "unplug --dry-run nope" "$PP_ERR" "the guest has no device with id nope (ids: "
pp unplug-paused unplug --qmp "$sock" "$id" --timeout 3
expect_rc "unplug of a paused guest" 1
expect_has "unplug (paused)" "$PP_ERR" "the guest did not release $id within 3 s"
expect_has "unplug (paused)" "$PP_ERR" "the guest is not running (status paused)"
expect_has "unplug (paused)" "$PP_ERR" "unplugging needs the guest OS to cooperate"
expect_eq "NVMe still in the guest after the timeout" "$(nvme_in_guest | sed 's/^[^ ]* //')" "1b36:0010 $id"
qemu_quit
cp "$QEMU_DIR/err" "$RESULTS/qemu-hotplug.err"

# 5. qemu-args on q35: the arguments a user pastes; QEMU sees the device
#    below the card's own pcie-root-port once its firmware has run.
pp qemu-args-q35 qemu-args "$nvme"
expect_rc "qemu-args" 0
expect_has "qemu-args" "$PP_OUT" "-device vfio-pci,host=$nvme,bus=rp1,addr=00.0"
args=$(sed 's/ \\$//' "$PP_OUT" | tr '\n' ' ')
# shellcheck disable=SC2086 # the pasted arguments, split at spaces as a shell would
if qemu_start args-q35 $args; then
  qemu_firmware || fail "q35: the firmware did not number the bridges"
  qemu_pci > "$RESULTS/qemu-args-q35.pci"
  expect_eq "q35: NVMe below rp1" "$(grep -c ' 1b36:0010 ' "$RESULTS/qemu-args-q35.pci")" 1
  qemu_quit
else
  fail "QEMU refused pcipass qemu-args's output: $(tr '\n' ' ' < "$QEMU_DIR/err")"
fi

# 6. qemu-args on pc: on the root bus, seen while still paused.
pp qemu-args-pc qemu-args "$nvme" --machine pc
expect_rc "qemu-args --machine pc" 0
args=$(sed 's/ \\$//' "$PP_OUT" | tr '\n' ' ')
slot=$(sed -n 's/.*bus=pci\.0,addr=\([0-9a-f]*\)\.0.*/\1/p' "$PP_OUT")
# shellcheck disable=SC2086
if QEMU_MACHINE=pc qemu_start args-pc $args; then
  qemu_pci > "$RESULTS/qemu-args-pc.pci"
  expect_eq "pc: NVMe at slot $slot" "$(grep ' 1b36:0010 ' "$RESULTS/qemu-args-pc.pci" | cut -d' ' -f1)" "$slot.0"
  qemu_quit
else
  fail "QEMU (pc) refused pcipass qemu-args's output: $(tr '\n' ' ' < "$QEMU_DIR/err")"
fi

# 7. Back to nvme.
pp release release "$nvme"
expect_rc "release" 0
expect_dev "$nvme" nvme "(null)"
expect_clean released
finish
