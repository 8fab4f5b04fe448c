# pcipass mdev on the real kernel with its sample parent driver mtty
# (samples/vfio-mdev/mtty.c, built by build-image against the guest kernel's
# headers; issue 11). mtty's types share one pool of 24 ports: mtty-1 takes
# one (24 instances), mtty-2 two (12).
# 1. modprobe mtty: /sys/class/mdev_bus/mtty with mtty-1 and mtty-2.
# 2. `mdev types` (human, --json) lists both with available_instances 24/12
#    and device_api vfio-pci; its `mdevctl` key = `mdevctl types --dumpjson`.
# 3. `mdev create mtty mtty-2 --uuid U --dry-run` prints the write to
#    mtty-2/create and creates nothing; bad input (a UUID that is not one, a
#    type mtty does not offer, an unknown parent) is refused naming it,
#    nothing created.
# 4. `mdev create mtty mtty-2 --uuid U`: /sys/bus/mdev/devices/U on mtty,
#    instances 11/22, no journal left; the same UUID again is refused.
# 5. `mdev list --json` shows U (parent, type, active, group); its `mdevctl`
#    key = `mdevctl list --dumpjson`; `mdevctl list` shows U.
# 6. `qemu-args U` / `xml U`: QEMU started with the pasted arguments opens
#    the mdev (query-pci: mtty's 4348:3253) and holds /dev/vfio/G; `mdev
#    remove U` is refused naming QEMU and its pid, U stays; after quit a
#    dry run removes nothing, then `mdev remove U` does: 12/24 again.
# 7. mtty-2 filled to available_instances 0 (11 instances by sysfs beside
#    one by pcipass): `mdev create` of mtty-2 and of mtty-1 refused with the
#    message, nothing created; the kernel's own refusal of a 13th write is
#    recorded (results/kernel-create-full.err); all removed.
# topology: minimal
# iommu: on
# needs: pcipass

need_pcipass
need_qemu
pcipass --help 2>/dev/null | grep -qE '^ +mdev([ ,]|$)' ||
  { fail "pcipass has no 'mdev' command: this binary predates branch h11-mdev"; finish; }
U=83b8f4f2-509f-382f-3c1e-e6bfe0fa1001
BUS=/sys/class/mdev_bus/mtty
TYPES=$BUS/mdev_supported_types
D=/sys/bus/mdev/devices/$U
avail() { cat "$TYPES/$1/available_instances"; }
mdevs() { ls /sys/bus/mdev/devices 2>/dev/null | wc -l; }
# same_json WHAT PCIPASS_JSON MDEVCTL_JSON: pcipass's `mdevctl` key and mdevctl's
# --dumpjson, both flattened (json_flat: array indexes in the paths) and sorted (the order of
# an object's keys is no part of JSON), are the same lines
same_json() {
  json_flat "$2" | sed -n 's/^mdevctl\.//p; s/^mdevctl=/=/p' | sort > "$2.mdevctl.flat"
  json_flat "$3" | sort > "$3.flat"
  if cmp -s "$2.mdevctl.flat" "$3.flat"; then ok "$1: pcipass's mdevctl key = mdevctl --dumpjson"
  else fail "$1: pcipass's mdevctl key differs from mdevctl --dumpjson: $(diff "$2.mdevctl.flat" "$3.flat" | tr '\n' '|')"; fi
}

# 1. the parent registers
modinfo mtty > "$RESULTS/modinfo-mtty" 2>&1 || { fail "no mtty module in the guest (build-image)"; finish; }
modprobe mtty || { fail "modprobe mtty failed"; finish; }
# vfio's IOMMU backend is only a soft dependency (busybox modprobe skips it): QEMU needs it
modprobe vfio_iommu_type1
[ -d "$TYPES" ] && ok "$BUS registered" || { fail "no $TYPES"; finish; }
expect_eq "kernel: mtty types" "$(ls "$TYPES" | tr '\n' ' ')" "mtty-1 mtty-2 "
command -v mdevctl >/dev/null || fail "no mdevctl in the guest (build-image)"

# 2. types
pp types mdev types
expect_rc "mdev types" 0
expect_has "mdev types" "$PP_OUT" "mtty-2"
expect_has "mdev types" "$PP_OUT" "Dual port serial"
pp types-json mdev types --json
expect_rc "mdev types --json" 0
json_flat "$PP_OUT" > "$PP_OUT.flat"
expect_has "mdev types --json" "$PP_OUT.flat" "parents.0.parent=mtty"
expect_has "mdev types --json" "$PP_OUT.flat" "parents.0.types.0.type=mtty-1"
expect_has "mdev types --json" "$PP_OUT.flat" "parents.0.types.0.available_instances=24"
expect_has "mdev types --json" "$PP_OUT.flat" "parents.0.types.1.type=mtty-2"
expect_has "mdev types --json" "$PP_OUT.flat" "parents.0.types.1.available_instances=12"
expect_has "mdev types --json" "$PP_OUT.flat" "parents.0.types.1.device_api=vfio-pci"
expect_has "mdev types --json" "$PP_OUT.flat" "parents.0.types.1.name=Dual port serial"
mdevctl types --dumpjson > "$RESULTS/mdevctl-types.json" 2>&1
same_json "types" "$PP_OUT" "$RESULTS/mdevctl-types.json"

# 3. dry run and bad input: nothing created
pp create-dry mdev create mtty mtty-2 --uuid "$U" --dry-run
expect_rc "mdev create --dry-run" 0
expect_has "mdev create --dry-run" "$PP_OUT" "$TYPES/mtty-2/create"
expect_has "mdev create --dry-run" "$PP_OUT" "$U"
[ -e "$D" ] && fail "--dry-run created $D"
expect_eq "mtty-2 available_instances after the dry run" "$(avail mtty-2)" 12
pp create-bad-uuid mdev create mtty mtty-2 --uuid 83b8f4f2-509f-382f-3c1e
expect_rc "mdev create --uuid (not a UUID)" 2
expect_has "mdev create --uuid (not a UUID)" "$PP_ERR" "invalid UUID '83b8f4f2-509f-382f-3c1e'"
pp create-bad-type mdev create mtty mtty-3 --uuid "$U"
expect_rc "mdev create mtty-3" 2
expect_has "mdev create mtty-3" "$PP_ERR" "mtty offers no mdev type 'mtty-3' (it offers: mtty-1, mtty-2)"
pp create-bad-parent mdev create nosuchparent mtty-2 --uuid "$U"
expect_has "mdev create nosuchparent" "$PP_ERR" "nosuchparent is not a parent of mediated devices"
[ "$PP_RC" != 0 ] && ok "mdev create nosuchparent: exit $PP_RC" || fail "mdev create nosuchparent: exit 0"
expect_eq "mdevs after refusals" "$(mdevs)" 0

# 4. create
pp create mdev create mtty mtty-2 --uuid "$U" --json
expect_rc "mdev create" 0
json_flat "$PP_OUT" > "$PP_OUT.flat"
expect_has "mdev create --json" "$PP_OUT.flat" "schema=pcipass.mdev-create/1"
expect_has "mdev create --json" "$PP_OUT.flat" "active=true"
expect_has "mdev create --json" "$PP_OUT.flat" "sysfsdev=$D"
[ -d "$D" ] && ok "$D exists" || { fail "no $D"; finish; }
expect_eq "$U mdev_type" "$(basename "$(readlink "$D/mdev_type")")" mtty-2
expect_eq "$U driver" "$(basename "$(readlink "$D/driver")")" mtty
expect_eq "mtty-2 available_instances after create" "$(avail mtty-2)" 11
expect_eq "mtty-1 available_instances after create (shared ports)" "$(avail mtty-1)" 22
[ -e /run/pcipass/journal.json ] && fail "a journal is left after create"
g=$(basename "$(readlink "$D/iommu_group")")
[ -e "/dev/vfio/$g" ] && ok "/dev/vfio/$g for $U" || fail "no /dev/vfio/$g for $U"
pp create-again mdev create mtty mtty-2 --uuid "$U"
expect_has "mdev create (same UUID)" "$PP_ERR" "an mdev with UUID $U exists already"
[ "$PP_RC" != 0 ] && ok "mdev create (same UUID): exit $PP_RC" || fail "mdev create (same UUID): exit 0"
expect_eq "mtty-2 available_instances after the refusal" "$(avail mtty-2)" 11

# 5. list, against the kernel and mdevctl
pp list mdev list
expect_rc "mdev list" 0
expect_has "mdev list" "$PP_OUT" "$U"
pp list-json mdev list --json
expect_rc "mdev list --json" 0
json_flat "$PP_OUT" > "$PP_OUT.flat"
expect_has "mdev list --json" "$PP_OUT.flat" "mdevs.0.uuid=$U"
expect_has "mdev list --json" "$PP_OUT.flat" "mdevs.0.parent=mtty"
expect_has "mdev list --json" "$PP_OUT.flat" "mdevs.0.type=mtty-2"
expect_has "mdev list --json" "$PP_OUT.flat" "mdevs.0.active=true"
expect_has "mdev list --json" "$PP_OUT.flat" "mdevs.0.iommu_group=$g"
mdevctl list --dumpjson > "$RESULTS/mdevctl-list.json" 2>&1
same_json "list" "$PP_OUT" "$RESULTS/mdevctl-list.json"
mdevctl list > "$RESULTS/mdevctl-list" 2>&1
expect_has "mdevctl list" "$RESULTS/mdevctl-list" "$U mtty mtty-2"

# 6. a VM opens it; remove is refused while QEMU holds it
pp xml xml "$U"
expect_rc "xml UUID" 0
expect_has "xml UUID" "$PP_OUT" "type='mdev' model='vfio-pci'"
expect_has "xml UUID" "$PP_OUT" "<address uuid='$U'/>"
pp qemu-args qemu-args "$U"
expect_rc "qemu-args UUID" 0
expect_has "qemu-args UUID" "$PP_OUT" "-device vfio-pci,sysfsdev=$D"
args=$(sed 's/ \\$//' "$PP_OUT" | tr '\n' ' ')
# shellcheck disable=SC2086 # the pasted arguments, split at spaces as a shell would
if qemu_start mdev $args; then
  for f in /proc/$QEMU_PID/fd/*; do readlink "$f"; done > "$RESULTS/qemu-fds"
  expect_has "QEMU's open files" "$RESULTS/qemu-fds" "/dev/vfio/$g"
  qmp '{"execute":"query-pci"}' > "$RESULTS/qemu-query-pci"
  expect_has "QEMU's query-pci (mtty is 4348:3253)" "$RESULTS/qemu-query-pci" '"vendor": 17224'
  pp remove-busy mdev remove "$U"
  expect_rc "mdev remove while QEMU holds it" 1
  expect_has "mdev remove (busy)" "$PP_ERR" "refusing to remove mdev $U: /dev/vfio/$g is held by qemu-system-x86, pid $QEMU_PID"
  [ -d "$D" ] && ok "$U still there" || fail "$U went away while QEMU held it"
  kill -0 "$QEMU_PID" 2>/dev/null && ok "QEMU still runs" || fail "QEMU died"
  qemu_quit
else
  fail "QEMU refused pcipass qemu-args's output: $(tr '\n' ' ' < "$QEMU_DIR/err")"
fi
cp "$QEMU_DIR/err" "$RESULTS/qemu.err" 2>/dev/null
pp remove-dry mdev remove "$U" --dry-run
expect_rc "mdev remove --dry-run" 0
expect_has "mdev remove --dry-run" "$PP_OUT" "$D/remove"
[ -d "$D" ] && ok "$U still there after the dry run" || fail "--dry-run removed $U"
pp remove mdev remove "$U" --json
expect_rc "mdev remove" 0
[ -e "$D" ] && fail "$D still there after remove" || ok "$D gone"
expect_eq "mtty-2 available_instances after remove" "$(avail mtty-2)" 12
expect_eq "mtty-1 available_instances after remove" "$(avail mtty-1)" 24
[ -e /run/pcipass/journal.json ] && fail "a journal is left after remove"
pp remove-gone mdev remove "$U"
expect_has "mdev remove (gone)" "$PP_ERR" "no mdev $U is active"

# 7. no instance left: pcipass refuses before writing; the kernel's own answer for the record
pp create-one mdev create mtty mtty-2 --uuid "$U"
expect_rc "mdev create (first of 12)" 0
i=1
while [ "$(avail mtty-2)" -gt 0 ] && [ $i -lt 20 ]; do
  echo "00000000-0000-4000-8000-0000000000$(printf %02d $i)" > "$TYPES/mtty-2/create" || break
  i=$((i + 1))
done
expect_eq "mtty-2 instances made" "$(mdevs)" 12
expect_eq "mtty-2 available_instances when full" "$(avail mtty-2)" 0
expect_eq "mtty-1 available_instances when full" "$(avail mtty-1)" 0
pp create-full mdev create mtty mtty-2
expect_rc "mdev create mtty-2 when full" 1
expect_has "mdev create (full)" "$PP_ERR" "no instance of mtty-2 left on mtty (available_instances is 0;"
pp create-full-1 mdev create mtty mtty-1 --json
expect_rc "mdev create mtty-1 when full" 1
expect_has "mdev create mtty-1 (full)" "$PP_ERR" "no instance of mtty-1 left on mtty"
expect_eq "mdevs after the refusals" "$(mdevs)" 12
[ -e /run/pcipass/journal.json ] && fail "a journal is left after the refusals"
(echo 00000000-0000-4000-8000-000000000099 > "$TYPES/mtty-2/create") 2> "$RESULTS/kernel-create-full.err" &&
  fail "the kernel made a 13th mtty-2" || ok "the kernel refuses a 13th: $(cat "$RESULTS/kernel-create-full.err")"
pp remove-one mdev remove "$U"
expect_rc "mdev remove (one of 12)" 0
for m in /sys/bus/mdev/devices/*; do echo 1 > "$m/remove"; done
expect_eq "mdevs at the end" "$(mdevs)" 0
expect_eq "mtty-1 available_instances at the end" "$(avail mtty-1)" 24
dmesg > "$RESULTS/dmesg"
finish
