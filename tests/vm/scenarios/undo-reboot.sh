# A durable change survives a reboot and is undone byte for byte after it.
# Boot 1: /etc/modules-load.d/pcipass.conf exists with our own lines (the
# last one without a newline), mode 0640, owner 0:42; its sha256, mode and
# owner are recorded on the root disk. `setup --vfio --dry-run` shows a diff
# and changes nothing; `setup --vfio` appends vfio_iommu_type1, vfio_pci and
# vfio_virqfd (kernel 6.1 < 6.2; vfio is there already) and keeps our lines,
# mode and owner; a second `setup --vfio` changes nothing. Reboot.
# Boot 2 (the same disk: the record from boot 1 must be there): /run is
# empty, `recover` has nothing to do, `undo --list` still shows the change
# set; `undo` restores sha256, mode and owner of boot 1; a second set
# followed by a hand edit: `undo` refused (exit 1, a diff), file unchanged.
# topology: full
# iommu: on
# needs: pcipass
# quick: yes
# boots: 2

need_pcipass
F=/etc/modules-load.d/pcipass.conf
REC=/var/lib/pcipass-vm-test   # what boot 1 recorded, on the root disk
fstat() { echo "$(sha256sum < "$1" | cut -d' ' -f1) $(stat -c '%a %u:%g' "$1")"; }
# need_cmd NAME: pcipass has the subcommand (else a clear failure, not a skip)
need_cmd() {
  pcipass --help 2>/dev/null | grep -qE "^ +$1([ ,]|\$)" && return 0
  fail "pcipass has no '$1' command (not in 'pcipass --help'): this binary predates the change engine (branch engine)"
  finish
}
# change_set_id FILE: the ID in "undo with `pcipass undo ID`" (or "change set ID")
change_set_id() {
  _id=$(sed -n 's/.*pcipass undo \([^ `'"'"'"]*\).*/\1/p' "$1" | head -n1)
  [ -n "$_id" ] || _id=$(sed -n 's/.*change set \([^ `'"'"'":,]*\).*/\1/p' "$1" | head -n1)
  echo "$_id"
}
# line_count NAME: how many lines of $F are exactly NAME
line_count() { grep -cx "$1" "$F"; }
# expect_diff FILE WHAT: FILE (or, for pp's output, the same name's .err)
# holds a unified diff (indented or not)
expect_diff() {
  _all=${1%.out}.all; cat "$1" "${1%.out}.err" > "$_all" 2>/dev/null
  if grep -qE '^ *@@ ' "$_all" && grep -qE '^ *[-+]' "$_all"; then ok "$2: a unified diff"
  else fail "$2: no unified diff in ${1##*/}: $(head -c 600 "$_all" | tr '\n' '|')"; fi
}
need_cmd setup
need_cmd undo

if [ "$PCIPASS_BOOT" = 1 ]; then
  [ -e "$REC" ] && fail "$REC exists on the first boot: the disk is not pristine"
  mkdir -p /etc/modules-load.d "$REC"
  printf '# modules for this host, kept by hand\nloop\nvfio\n\n# tuning\ndummy' > "$F"
  chown 0:42 "$F"; chmod 0640 "$F"
  cp -p "$F" "$REC/orig.conf"
  fstat "$F" > "$REC/orig.stat"
  log "original: $(cat "$REC/orig.stat")"
  echo "boot 1 was here: $(cat /proc/sys/kernel/random/boot_id)" > /run/pcipass-vm-test-marker

  pp dry-run setup --vfio --dry-run
  expect_rc "setup --vfio --dry-run" 0
  expect_diff "$PP_OUT" "setup --dry-run"
  expect_has "setup --dry-run" "${PP_OUT%.out}.all" "+vfio_pci"
  expect_eq "setup --dry-run changed nothing" "$(fstat "$F")" "$(cat "$REC/orig.stat")"
  _left=$(find /var/lib/pcipass -type f 2>/dev/null | tr '\n' ' ')
  [ -z "$_left" ] && ok "setup --dry-run wrote no change set" || fail "setup --dry-run left files: $_left"

  pp setup setup --vfio
  expect_rc "setup --vfio" 0
  expect_has "setup --vfio" "$PP_OUT" "change set"
  id=$(change_set_id "$PP_OUT")
  [ -n "$id" ] && ok "change set ID: $id" || fail "no change set ID in: $(tr '\n' '|' < "$PP_OUT")"
  expect_has "setup --vfio" "$PP_OUT" "pcipass undo $id"
  echo "$id" > "$REC/id"
  for m in vfio vfio_iommu_type1 vfio_pci vfio_virqfd; do
    expect_eq "lines '$m' in $F" "$(line_count $m)" 1
  done
  expect_eq "our lines kept, in order, first" "$(head -n 6 "$F")" "$(cat "$REC/orig.conf")"
  expect_eq "'dummy' (no newline before) still a line of its own" "$(line_count dummy)" 1
  expect_eq "mode and owner kept" "$(stat -c '%a %u:%g' "$F")" "640 0:42"
  fstat "$F" > "$REC/setup.stat"
  cp -p "$F" "$RESULTS/after-setup.conf"

  pp setup-again setup --vfio
  expect_rc "second setup --vfio" 0
  expect_eq "second setup changed nothing" "$(fstat "$F")" "$(cat "$REC/setup.stat")"
  if grep -qiE 'nothing|already|no change|unchanged' "$PP_OUT" "$PP_ERR"; then ok "second setup says it changed nothing"
  else fail "second setup does not say it changed nothing: $(tr '\n' '|' < "$PP_OUT")"; fi
  _id2=$(change_set_id "$PP_OUT")
  [ -n "$_id2" ] && [ "$_id2" != "$id" ] && fail "second setup made a new change set $_id2"

  pp list-boot1 undo --list --json
  expect_rc "undo --list --json (boot 1)" 0
  expect_has "undo --list --json (boot 1)" "$PP_OUT" "\"$id\""
  cp "$PP_OUT" "$REC/list-boot1.json"
  sync
  finish
fi

# ---- boot 2: the same disk after a reboot
if [ -f "$REC/orig.stat" ] && [ -f "$REC/setup.stat" ] && [ -f "$REC/id" ]; then
  ok "boot 1's record is on the disk: $(cat "$REC/orig.stat")"
else
  fail "boot 1's record is not on the disk ($(ls -la "$REC" 2>&1 | tr '\n' ' ')): the reboot lost the disk"
  finish
fi
id=$(cat "$REC/id")
expect_eq "$F as boot 1 left it" "$(fstat "$F")" "$(cat "$REC/setup.stat")"
[ -e /run/pcipass-vm-test-marker ] && fail "/run kept boot 1's marker: not a reboot"
expect_eq "/run/pcipass after the reboot" "$(ls -A /run/pcipass 2>/dev/null)" ""

pp recover recover
expect_rc "recover (boot 2)" 0
if grep -qiE 'nothing' "$PP_OUT" "$PP_ERR"; then ok "recover: nothing to recover"
else fail "recover does not say there is nothing to recover: $(cat "$PP_OUT" "$PP_ERR" | tr '\n' '|')"; fi
expect_eq "recover changed nothing" "$(fstat "$F")" "$(cat "$REC/setup.stat")"

pp list-boot2 undo --list --json
expect_rc "undo --list --json (boot 2)" 0
expect_has "undo --list --json (boot 2)" "$PP_OUT" "\"$id\""
pp list-boot2-human undo --list
expect_rc "undo --list (boot 2)" 0
expect_has "undo --list (boot 2)" "$PP_OUT" "$id"
cp "$REC/list-boot1.json" "$RESULTS/pcipass/list-boot1.json"

pp undo-dry undo --dry-run
expect_rc "undo --dry-run" 0
expect_diff "$PP_OUT" "undo --dry-run"
expect_eq "undo --dry-run changed nothing" "$(fstat "$F")" "$(cat "$REC/setup.stat")"

pp undo undo
expect_rc "undo" 0
expect_eq "undo: sha256, mode, owner as before setup" "$(fstat "$F")" "$(cat "$REC/orig.stat")"
cmp -s "$F" "$REC/orig.conf" && ok "undo: byte for byte" || fail "undo: content differs: $(od -c "$F" | tail -n 3 | tr '\n' '|')"

# A second set, then someone edits the file: undo must refuse and keep it.
pp setup2 setup --vfio
expect_rc "setup --vfio (boot 2)" 0
id2=$(change_set_id "$PP_OUT")
[ -n "$id2" ] && [ "$id2" != "$id" ] && ok "a new change set $id2" || fail "second change set ID '$id2' (first $id)"
printf 'nvme  # added by hand\n' >> "$F"
edited=$(fstat "$F")
pp undo-refused undo
expect_rc "undo after a hand edit" 1
expect_diff "$PP_OUT" "undo refusal"
# the hand edit is a diff line (+ or -: either direction of the diff)
grep -qE '^ *[-+]nvme  # added by hand$' "${PP_OUT%.out}.all" && ok "undo refusal: the diff shows the hand edit" ||
  fail "undo refusal: the hand edit is no diff line: $(head -c 600 "${PP_OUT%.out}.all" | tr '\n' '|')"
expect_eq "refused undo left the edited file" "$(fstat "$F")" "$edited"
pp undo-refused-json undo "$id2" --json
expect_rc "undo $id2 --json after a hand edit" 1
expect_eq "refused undo --json left the edited file" "$(fstat "$F")" "$edited"
pp recover-end recover
expect_rc "recover (end)" 0
expect_eq "recover left the edited file" "$(fstat "$F")" "$edited"
finish
