# bind --persist survives a reboot, and `apply --boot` binds the device again
# after the kernel gave it back to its host driver (the systemd unit that runs
# it at boot is proven with the Debian disk guest; this guest's init coldplugs
# by MODALIAS as udev would, and runs no systemd).
# Boot 1: the NVMe controller (1b36:0010) is bound with `bind --persist`: on
# vfio-pci now, /etc/pcipass/assignments.json holds it with its IDs, the boot
# unit is written and enabled (the .wants link), one change set. Reboot.
# Boot 2 (the same disk): coldplug gave it back to nvme; `status` says desired
# != actual (exit 3), `check` warns "persisted for vfio-pci but nvme has it";
# `apply --boot` binds it, a second run says already bound, `status` says they
# match. A store whose device ID is not the card's (a swapped card): apply
# refuses it (exit 1) and does not bind it. `undo` of the change set forgets
# the device and removes the unit and its link.
# topology: full
# iommu: on
# needs: pcipass
# boots: 2

need_pcipass
STORE=/etc/pcipass/assignments.json
LINK=/etc/systemd/system/sysinit.target.wants/pcipass-apply.service
REC=/var/lib/pcipass-vm-test
nvme=$(pci_find 0x1b36 0x0010 | head -n1)
[ -n "$nvme" ] || { fail "no NVMe controller (1b36:0010)"; finish; }
pcipass --help 2>/dev/null | grep -qE '^ +apply([ ,]|$)' ||
  { fail "pcipass has no 'apply' command: this binary predates persistence (branch persist)"; finish; }

if [ "$PCIPASS_BOOT" = 1 ]; then
  [ -e "$REC" ] && fail "$REC exists on the first boot: the disk is not pristine"
  mkdir -p "$REC"
  expect_dev "$nvme" nvme "(null)"
  pp dry bind --persist --dry-run "$nvme"
  expect_rc "bind --persist --dry-run" 0
  expect_has "bind --persist --dry-run" "$PP_OUT" "+++ b/etc/pcipass/assignments.json"
  [ -e "$STORE" ] && fail "--dry-run wrote $STORE"
  expect_dev "$nvme" nvme "(null)"

  pp bind bind --persist "$nvme"
  expect_rc "bind --persist" 0
  expect_has "bind --persist" "$PP_OUT" "bound $nvme to vfio-pci (was nvme)"
  expect_has "bind --persist" "$PP_OUT" "persisted $nvme in $STORE"
  expect_dev "$nvme" vfio-pci vfio-pci
  expect_has "store" "$STORE" "\"address\": \"$nvme\""
  expect_has "store" "$STORE" "\"vendor\": \"1b36\""
  expect_has "store" "$STORE" "\"device\": \"0010\""
  _unit=$(readlink "$LINK")
  [ -n "$_unit" ] && [ -f "$_unit" ] && ok "$LINK -> $_unit" || fail "no enablement link $LINK ($_unit)"
  expect_has "unit" "$_unit" "apply --boot"
  id=$(sed -n 's/.*pcipass undo \([^ `]*\).*/\1/p' "$PP_OUT" | head -n1)
  [ -n "$id" ] && ok "change set $id" || fail "no change set id in: $(tr '\n' '|' < "$PP_OUT")"
  echo "$id" > "$REC/id"
  cp "$STORE" "$REC/store"
  sync
  finish
fi

# ---- boot 2: the same disk; the kernel's coldplug gave the device to nvme again
[ -f "$REC/id" ] || { fail "boot 1's record is not on the disk"; finish; }
id=$(cat "$REC/id")
cmp -s "$STORE" "$REC/store" && ok "$STORE as boot 1 left it" || fail "$STORE changed over the reboot"
expect_dev "$nvme" nvme "(null)"

pp status-before status
expect_rc "status (desired != actual)" 3
expect_has "status" "$PP_OUT" "other-driver"
expect_has "status" "$PP_OUT" "$nvme is persisted for vfio-pci but nvme has it"
pp status-before-json status --json
expect_has "status --json" "$PP_OUT" "\"state\": \"other-driver\""
expect_has "status --json" "$PP_OUT" "\"all_match\": false"
pp check check
expect_has "check" "$PP_OUT" "$nvme is persisted for vfio-pci but nvme has it"

_t0=$(cut -d' ' -f1 /proc/uptime)
pp apply apply --boot
_t1=$(cut -d' ' -f1 /proc/uptime)
log "apply --boot took $(awk -v a="$_t0" -v b="$_t1" 'BEGIN { printf "%d ms", (b - a) * 1000 }') (guest uptime, TCG)"
expect_rc "apply --boot" 0
expect_has "apply --boot" "$PP_OUT" "bound $nvme to vfio-pci (was nvme)"
expect_dev "$nvme" vfio-pci vfio-pci
pp apply-again apply --boot
expect_rc "apply --boot again" 0
expect_has "apply --boot again" "$PP_OUT" "$nvme is already bound to vfio-pci"
pp status-after status --json
expect_rc "status (desired = actual)" 0
expect_has "status --json" "$PP_OUT" "\"state\": \"matches\""
expect_has "status --json" "$PP_OUT" "\"all_match\": true"

# A swapped card: the store says 1b36:0011 at this address.
pp release release "$nvme"
expect_rc "release" 0
expect_dev "$nvme" nvme "(null)"
sed 's/"device": "0010"/"device": "0011"/' "$REC/store" > "$STORE"
pp apply-swapped apply --boot
expect_rc "apply --boot with another card in the slot" 1
expect_has "apply (swapped)" "$PP_OUT" "the card was moved or swapped, so pcipass does not bind it"
expect_dev "$nvme" nvme "(null)"
cp "$REC/store" "$STORE"

pp undo undo "$id"
expect_rc "undo $id" 0
[ -e "$STORE" ] && fail "undo left $STORE" || ok "undo removed $STORE"
[ -L "$LINK" ] && fail "undo left $LINK" || ok "undo removed $LINK"
pp apply-none apply --boot
expect_rc "apply --boot with nothing persisted" 0
expect_dev "$nvme" nvme "(null)"
finish
