# `pcipass mdev create --persist --auto` across a reboot, with the parent
# driver (mtty) loaded late (issue 11).
# Boot 1: mtty loaded; `--persist --auto --dry-run` writes nothing; `mdev
# create mtty mtty-2 --uuid A --persist --auto` creates A and writes
# /etc/mdevctl.d/mtty/A byte for byte as mdevctl 1.2 does; `mdevctl list
# --defined` reads it (auto); mdevctl defines B (mtty-1, auto) and `pcipass
# mdev list --defined` reads mdevctl's file. Reboot.
# Boot 2 (the same disk, mtty not loaded: nothing in the guest loads it): both
# definitions are listed, neither active. A netlink uevent listener (busybox
# `uevent`, standing in for udev) runs what mdevctl's udev rule runs when a
# parent's MDEV_STATE becomes registered: `mdevctl start-parent-mdevs PARENT`.
# `modprobe mtty` late: the kernel sends the change uevent with
# MDEV_STATE=registered for mtty, A and B become active, `pcipass mdev list`
# shows them active and defined, start auto. This proves pcipass's definitions
# come back through mdevctl's rule; pcipass's own rule (inactive where
# mdevctl's is installed) is mdev-autostart's.
# `mdev remove A --persist` removes A and its file; B is undefined by mdevctl.
# topology: minimal
# iommu: on
# needs: pcipass
# boots: 2

need_pcipass
pcipass --help 2>/dev/null | grep -qE '^ +mdev([ ,]|$)' ||
  { fail "pcipass has no 'mdev' command: this binary predates branch h11-mdev"; finish; }
command -v mdevctl >/dev/null || { fail "no mdevctl in the guest (build-image)"; finish; }
A=83b8f4f2-509f-382f-3c1e-e6bfe0fa1001
B=83b8f4f2-509f-382f-3c1e-e6bfe0fa1002
DEFS=/etc/mdevctl.d/mtty
REC=/var/lib/pcipass-vm-test

if [ "$PCIPASS_BOOT" = 1 ]; then
  [ -e "$REC" ] && fail "$REC exists on the first boot: the disk is not pristine"
  mkdir -p "$REC"
  modprobe mtty || { fail "modprobe mtty failed"; finish; }
  pp create-dry mdev create mtty mtty-2 --uuid "$A" --persist --auto --dry-run
  expect_rc "mdev create --persist --auto --dry-run" 0
  [ -e "$DEFS/$A" ] && fail "--dry-run wrote $DEFS/$A"
  [ -e "/sys/bus/mdev/devices/$A" ] && fail "--dry-run created $A"
  pp create mdev create mtty mtty-2 --uuid "$A" --persist --auto --json
  expect_rc "mdev create --persist --auto" 0
  [ -d "/sys/bus/mdev/devices/$A" ] && ok "$A active" || fail "$A not created"
  expect_has "mdev create --json" "$PP_OUT" "\"definition\": \"$DEFS/$A\""
  # mdevctl 1.2 writes serde_json's pretty form: two-space indent, no final newline
  printf '{\n  "mdev_type": "mtty-2",\n  "start": "auto",\n  "attrs": []\n}' > "$REC/want"
  cmp -s "$DEFS/$A" "$REC/want" && ok "$DEFS/$A byte for byte as mdevctl writes it" ||
    fail "$DEFS/$A: $(od -c "$DEFS/$A" | head -n 8 | tr '\n' '|')"
  mdevctl list --defined > "$RESULTS/mdevctl-defined-1" 2>&1
  expect_has "mdevctl list --defined" "$RESULTS/mdevctl-defined-1" "$A mtty mtty-2 auto"
  mdevctl define --parent mtty --type mtty-1 --uuid "$B" --auto > "$RESULTS/mdevctl-define" 2>&1 &&
    ok "mdevctl define $B" || fail "mdevctl define $B: $(cat "$RESULTS/mdevctl-define")"
  cp "$DEFS/$B" "$RESULTS/mdevctl-wrote-$B" 2>/dev/null
  sed 's/mtty-1/mtty-2/' "$DEFS/$B" | cmp -s - "$REC/want" && ok "mdevctl's own file has pcipass's shape" ||
    fail "mdevctl's file differs in shape: $(od -c "$DEFS/$B" | head -n 8 | tr '\n' '|')"
  pp defined-1 mdev list --defined --json
  expect_rc "mdev list --defined" 0
  json_flat "$PP_OUT" > "$PP_OUT.flat"
  expect_has "mdev list --defined --json" "$PP_OUT.flat" "mdevs.0.uuid=$A"
  expect_has "mdev list --defined --json" "$PP_OUT.flat" "mdevs.1.uuid=$B"
  expect_has "mdev list --defined --json" "$PP_OUT.flat" "mdevs.1.start=auto"
  expect_has "mdev list --defined --json" "$PP_OUT.flat" "mdevs.1.active=false"
  sync
  finish
fi

# ---- boot 2: the same disk, mtty not loaded yet
[ -d "$REC" ] || { fail "boot 1's record is not on the disk"; finish; }
cmp -s "$DEFS/$A" "$REC/want" && ok "$DEFS/$A as boot 1 left it" || fail "$DEFS/$A changed over the reboot"
[ -d /sys/class/mdev_bus/mtty ] && fail "mtty is loaded already: the late load below proves nothing"
pp defined-2 mdev list --defined --json
expect_rc "mdev list --defined (boot 2)" 0
json_flat "$PP_OUT" > "$PP_OUT.flat"
expect_has "mdev list --defined (boot 2)" "$PP_OUT.flat" "mdevs.0.uuid=$A"
expect_has "mdev list --defined (boot 2)" "$PP_OUT.flat" "mdevs.0.active=false"
expect_has "mdev list --defined (boot 2)" "$PP_OUT.flat" "mdevs.0.start=auto"
expect_has "mdev list --defined (boot 2)" "$PP_OUT.flat" "mdevs.1.uuid=$B"
pp active-before mdev list
expect_rc "mdev list before mtty" 0

# udev's part, by busybox: mdevctl's 60-mdevctl.rules on ACTION=change, MDEV_STATE=registered
cat > /tmp/on-uevent <<'EOF'
#!/bin/sh
[ -n "$MDEV_STATE" ] || exit 0
echo "$ACTION $DEVPATH MDEV_STATE=$MDEV_STATE" >> /tmp/uevents
[ "$ACTION" = change ] && [ "$MDEV_STATE" = registered ] && [ -d "/etc/mdevctl.d/${DEVPATH##*/}" ] &&
  mdevctl start-parent-mdevs "${DEVPATH##*/}" >> /tmp/uevents 2>&1
EOF
chmod 755 /tmp/on-uevent
uevent /tmp/on-uevent &
UEV=$!
sleep 1
_t0=$(cut -d' ' -f1 /proc/uptime)
modprobe mtty || fail "modprobe mtty (late) failed"
wait_mdevs 100 "$A" "$B"
_t1=$(cut -d' ' -f1 /proc/uptime)
kill "$UEV" 2>/dev/null
cp /tmp/uevents "$RESULTS/uevents" 2>/dev/null
expect_has "uevents" "$RESULTS/uevents" "/mtty MDEV_STATE=registered"
[ -d "/sys/bus/mdev/devices/$A" ] && ok "$A (pcipass's definition) active after the late load" ||
  fail "$A not started after the late load"
[ -d "/sys/bus/mdev/devices/$B" ] && ok "$B (mdevctl's definition) active after the late load" ||
  fail "$B not started after the late load"
log "modprobe mtty to both active: $(awk -v a="$_t0" -v b="$_t1" 'BEGIN { printf "%d ms", (b - a) * 1000 }') (guest uptime, TCG)"
pp active-after mdev list --json
expect_rc "mdev list after mtty" 0
json_flat "$PP_OUT" > "$PP_OUT.flat"
expect_has "mdev list (after)" "$PP_OUT.flat" "mdevs.0.uuid=$A"
expect_has "mdev list (after)" "$PP_OUT.flat" "mdevs.0.active=true"
expect_has "mdev list (after)" "$PP_OUT.flat" "mdevs.0.defined=true"
expect_has "mdev list (after)" "$PP_OUT.flat" "mdevs.0.start=auto"
expect_has "mdev list (after)" "$PP_OUT.flat" "mdevs.1.active=true"

pp remove mdev remove "$A" --persist
expect_rc "mdev remove --persist" 0
[ -e "/sys/bus/mdev/devices/$A" ] && fail "$A still active"
[ -e "$DEFS/$A" ] && fail "$DEFS/$A still there"
mdevctl stop --uuid "$B" > /dev/null 2>&1; mdevctl undefine --uuid "$B" > /dev/null 2>&1
pp defined-end mdev list --defined
expect_rc "mdev list --defined at the end" 0
expect_not "mdev list --defined at the end" "$PP_OUT" "$A"
expect_not "mdev list --defined at the end" "$PP_OUT" "$B"
finish
