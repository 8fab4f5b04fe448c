# pcipass's mdev autostart under the real systemd-udevd (issue 11): the udev
# rule pcipass ships (data/udev/61-pcipass-mdev.rules, as cmake configured it,
# from the share) installed in /etc/udev/rules.d of a Debian 12 disk guest
# (systemd 252, its own udevd; no mdevctl, so no 60-mdevctl.rules), mtty.ko
# (the kernel's sample mdev parent, built by build-image for the same kernel)
# in /lib/modules/VER/extra. mdev-autostart proves the rule with a shell
# evaluator standing in for udev; here udevd itself evaluates it.
# Boot 1: pcipass defines A (mtty-2, auto), B is written as mdevctl writes it
# (mtty-1, auto), pcipass defines C (mtty-1, manual); nothing active, mtty
# unloaded; the rule installed and `udevadm control --reload`; `modprobe mtty`
# late: udevd runs `pcipass mdev start-parent mtty` (its own debug log for the
# mtty device, and `udevadm monitor`, saved as evidence): A and B active, C
# not. mtty then goes into /etc/modules-load.d. Boot 2: systemd-modules-load
# loads mtty early; after `udevadm settle` A and B are active (udevd ran the
# rule for the add or change of mtty: its log says which) and C is not;
# `mdev list --json` agrees.
# disk: bios-grub
# boots: 2
# needs: pcipass
# modules: mtty

need_pcipass
pcipass mdev start-parent --help > /dev/null 2>&1 ||
  { fail "pcipass has no 'mdev start-parent': this binary predates branch h11-auto"; finish; }
A=83b8f4f2-509f-382f-3c1e-e6bfe0fa2001
B=83b8f4f2-509f-382f-3c1e-e6bfe0fa2002
C=83b8f4f2-509f-382f-3c1e-e6bfe0fa2003
DEFS=/etc/mdevctl.d/mtty
REC=/var/lib/pcipass-vm-test
RULES=/share/61-pcipass-mdev.rules
ETC_RULE=/etc/udev/rules.d/61-pcipass-mdev.rules
# udevd's debug log for the mtty device's events only (OPTIONS log_level, systemd >= 248):
# each worker then logs the rule lines that matched, the command it runs and its output.
DEBUG_RULE=/etc/udev/rules.d/60-pcipass-vm-debug-mtty.rules

active() { [ -d "/sys/bus/mdev/devices/$1" ]; }
expect_states() {  # expect_states WHEN: A and B active, C not
  active "$A" && ok "$1: $A (pcipass's auto definition) active" || fail "$1: $A (auto) not active"
  active "$B" && ok "$1: $B (mdevctl-format auto definition) active" || fail "$1: $B (auto) not active"
  active "$C" && fail "$1: $C (manual) was started" || ok "$1: $C (manual) not active"
}
udevd_log() {  # udevd_log FILE: this boot's systemd-udevd journal
  journalctl -b --no-pager -o short-monotonic -u systemd-udevd > "$1" 2>&1
}

if [ "$PCIPASS_BOOT" = 1 ]; then
  [ -e "$REC" ] && fail "$REC exists on the first boot: the disk is not pristine"
  mkdir -p "$REC"
  log "systemd $(systemctl --version | head -n1), kernel $(uname -r)"
  # No mdevctl: its 60-mdevctl.rules would make pcipass's rules stand aside (their TEST!=).
  for f in /usr/lib/udev/rules.d/60-mdevctl.rules /lib/udev/rules.d/60-mdevctl.rules \
           /etc/udev/rules.d/60-mdevctl.rules; do
    [ -e "$f" ] && fail "$f is installed: pcipass's rules would do nothing"
  done
  command -v mdevctl > /dev/null && fail "mdevctl is installed in the disk guest"
  ok "no mdevctl and no 60-mdevctl.rules in the guest"

  # mtty.ko into the guest's module tree, as a DKMS or hand-built module goes.
  [ -s /share/extra/mtty.ko ] || { fail "no /share/extra/mtty.ko (run-disk, '# modules: mtty')"; finish; }
  vm=$(modinfo -F vermagic /share/extra/mtty.ko | cut -d' ' -f1)
  expect_eq "mtty.ko's vermagic" "$vm" "$(uname -r)"
  install -D -m 644 /share/extra/mtty.ko "/lib/modules/$(uname -r)/extra/mtty.ko"
  depmod -a || fail "depmod -a failed"
  expect_eq "mtty's dependencies (modinfo)" "$(modinfo -F depends mtty 2>&1)" "mdev,vfio"

  # The definitions, written while mtty is loaded (pcipass checks the type).
  modprobe mtty || { fail "modprobe mtty failed: $(dmesg | tail -n 5 | tr '\n' '|')"; finish; }
  [ -d /sys/class/mdev_bus/mtty ] || { fail "mtty loaded but no /sys/class/mdev_bus/mtty"; finish; }
  pp create-a mdev create mtty mtty-2 --uuid "$A" --persist --auto
  expect_rc "mdev create A --persist --auto" 0
  # B as mdevctl 1.2 writes it (two-space indent, no final newline): no mdevctl here.
  printf '{\n  "mdev_type": "mtty-1",\n  "start": "auto",\n  "attrs": []\n}' > "$DEFS/$B"
  pp create-c mdev create mtty mtty-1 --uuid "$C" --persist
  expect_rc "mdev create C --persist (manual)" 0
  pp remove-a mdev remove "$A"
  expect_rc "mdev remove A (definition kept)" 0
  pp remove-c mdev remove "$C"
  expect_rc "mdev remove C (definition kept)" 0
  rmmod mtty || fail "rmmod mtty failed"
  [ -d /sys/class/mdev_bus/mtty ] && fail "mtty still registered after rmmod"
  expect_eq "active mdevs before the late load" "$(ls /sys/bus/mdev/devices 2>/dev/null | wc -l)" 0
  pp defined-1 mdev list --defined --json
  expect_rc "mdev list --defined" 0
  json_flat "$PP_OUT" > "$PP_OUT.flat"
  for l in "mdevs.0.uuid=$A" mdevs.0.start=auto "mdevs.1.uuid=$B" mdevs.1.start=auto \
           "mdevs.2.uuid=$C" mdevs.2.start=manual mdevs.0.active=false mdevs.1.active=false \
           mdevs.2.active=false; do
    expect_has "mdev list --defined --json" "$PP_OUT.flat" "$l"
  done

  # The rule, installed as cmake --install configured it; its RUN names the installed pcipass.
  [ -r "$RULES" ] || { fail "no $RULES in the share (run-disk copies build/data/)"; finish; }
  cp "$RULES" "$RESULTS/"
  RUNBIN=$(sed -n 's/.*RUN+="\([^ "]*\) .*/\1/p' "$RULES" | sort -u)
  [ "$(echo "$RUNBIN" | wc -l)" = 1 ] && [ -n "$RUNBIN" ] || { fail "RUN names '$RUNBIN'"; finish; }
  log "the rule runs $RUNBIN; pcipass is $(command -v pcipass)"
  [ -x "$RUNBIN" ] || { mkdir -p "${RUNBIN%/*}"; ln -s "$(command -v pcipass)" "$RUNBIN"; }
  install -m 644 "$RULES" "$ETC_RULE"
  echo 'SUBSYSTEM=="mtty", KERNEL=="mtty", OPTIONS+="log_level=debug"' > "$DEBUG_RULE"
  udevadm control --reload || fail "udevadm control --reload failed"

  # The late load: udevd alone starts A and B.
  udevadm monitor --kernel --udev --property --subsystem-match=mtty > "$RESULTS/monitor-late" 2>&1 &
  MON=$!
  sleep 2
  _t0=$(cut -d' ' -f1 /proc/uptime)
  modprobe mtty || fail "modprobe mtty (late) failed"
  wait_mdevs 200 "$A" "$B"
  _t1=$(cut -d' ' -f1 /proc/uptime)
  udevadm settle --timeout=30 || fail "udevadm settle timed out"
  sleep 1
  kill "$MON" 2>/dev/null
  log "modprobe mtty to A and B active: $(awk -v a="$_t0" -v b="$_t1" 'BEGIN { printf "%d ms", (b - a) * 1000 }') (guest uptime, TCG)"
  expect_states "after the late modprobe"
  expect_has "udevadm monitor" "$RESULTS/monitor-late" "MDEV_STATE=registered"
  udevd_log "$RESULTS/udevd-boot-1"
  grep -E 'start-parent|61-pcipass-mdev|ACTION=|MDEV_STATE' "$RESULTS/udevd-boot-1" > "$RESULTS/udevd-boot-1.rule" || true
  expect_has "systemd-udevd's journal" "$RESULTS/udevd-boot-1" "$RUNBIN mdev start-parent mtty"
  expect_has "systemd-udevd's journal (start-parent's output)" "$RESULTS/udevd-boot-1" "started mdev $A (mtty-2 on mtty)"
  expect_has "systemd-udevd's journal (start-parent's output)" "$RESULTS/udevd-boot-1" "started mdev $B (mtty-1 on mtty)"
  [ -e /run/pcipass/journal.json ] && fail "a journal is left in /run/pcipass"

  # Next boot: mtty loaded by systemd-modules-load, early.
  echo mtty > /etc/modules-load.d/mtty.conf
  sync
  finish
fi

# ---- boot 2: the same disk; mtty from /etc/modules-load.d
[ -d "$REC" ] || { fail "boot 1's record is not on the disk"; finish; }
for f in "$ETC_RULE" "$DEFS/$A" "$DEFS/$B" "$DEFS/$C"; do [ -f "$f" ] || fail "$f lost over the reboot"; done
# By identifier, not -u: systemd-modules-load runs before journald, whose copy of its line (from
# kmsg) carries no unit (run 1 of this scenario: -u found "No entries", the line was in -b).
journalctl -b --no-pager -o short-monotonic -t systemd-modules-load > "$RESULTS/modules-load-boot-2" 2>&1
expect_has "systemd-modules-load's journal" "$RESULTS/modules-load-boot-2" "Inserted module 'mtty'"
[ -d /sys/class/mdev_bus/mtty ] || fail "mtty is not registered after boot"
udevadm settle --timeout=30 || fail "udevadm settle timed out"
wait_mdevs 100 "$A" "$B"
expect_states "after boot"
udevd_log "$RESULTS/udevd-boot-2"
grep -E 'start-parent|61-pcipass-mdev|ACTION=|MDEV_STATE' "$RESULTS/udevd-boot-2" > "$RESULTS/udevd-boot-2.rule" || true
expect_has "systemd-udevd's journal" "$RESULTS/udevd-boot-2" "mdev start-parent mtty"
expect_has "systemd-udevd's journal (start-parent's output)" "$RESULTS/udevd-boot-2" "started mdev $A (mtty-2 on mtty)"
expect_has "systemd-udevd's journal (start-parent's output)" "$RESULTS/udevd-boot-2" "started mdev $B (mtty-1 on mtty)"
# When: mtty's insertion, udevd's run of the rule, the scenario's start (monotonic seconds).
log "mtty inserted: $(grep -m1 "Inserted module 'mtty'" "$RESULTS/modules-load-boot-2" | cut -c1-20)"
log "udevd ran the rule: $(grep -m1 'start-parent mtty' "$RESULTS/udevd-boot-2" | cut -c1-200)"
log "scenario at $(cut -d' ' -f1 /proc/uptime) s"

pp list-2 mdev list --json
expect_rc "mdev list --json" 0
json_flat "$PP_OUT" > "$PP_OUT.flat"
for l in "mdevs.0.uuid=$A" mdevs.0.active=true mdevs.0.defined=true mdevs.0.start=auto \
         "mdevs.1.uuid=$B" mdevs.1.active=true mdevs.1.defined=true mdevs.1.start=auto; do
  expect_has "mdev list --json" "$PP_OUT.flat" "$l"
done
expect_not "mdev list --json" "$PP_OUT.flat" "$C"
pp defined-2 mdev list --defined --json
expect_rc "mdev list --defined --json" 0
json_flat "$PP_OUT" > "$PP_OUT.flat"
expect_has "mdev list --defined --json" "$PP_OUT.flat" "mdevs.2.uuid=$C"
expect_has "mdev list --defined --json" "$PP_OUT.flat" "mdevs.2.active=false"
expect_has "mdev list --defined --json" "$PP_OUT.flat" "mdevs.2.start=manual"
[ -e /run/pcipass/journal.json ] && fail "a journal is left in /run/pcipass"
finish
