# pcipass's own autostart of `start: auto` mdev definitions when the parent
# driver registers late (issue 11): the udev rule pcipass ships
# (data/udev/61-pcipass-mdev.rules, as cmake configured it, from the share)
# and `pcipass mdev start-parent`.
# Boot 1: mtty loaded; pcipass defines A (mtty-2, auto), mdevctl defines B
# (mtty-1, auto), pcipass defines C (mtty-1, manual). Reboot.
# Boot 2 (mtty not loaded): a netlink uevent listener (busybox `uevent`,
# standing in for udev) evaluates every rule of pcipass's installed file for
# each event -- ACTION, ENV{}, TEST (absolute, or relative to the device),
# TEST!= -- and runs the matching rule's RUN with %k and $kernel substituted,
# so the shipped rule is what is tested, not a copy. First the guard: with
# mdevctl's 60-mdevctl.rules present (either place) the rules run nothing;
# then with it absent, `modprobe mtty` late: A and B become active, C
# (manual) does not; a second `start-parent` changes nothing. A and B removed,
# an "add" uevent for mtty (what coldplug replays at boot) starts them again
# (the add rule); removed again, mtty unloaded and reloaded with only the
# file's change rule in force: A and B back through MDEV_STATE=registered.
# topology: minimal
# iommu: on
# needs: pcipass
# boots: 2

need_pcipass
pcipass mdev start-parent --help > /dev/null 2>&1 ||
  { fail "pcipass has no 'mdev start-parent': this binary predates branch h11-auto"; finish; }
command -v mdevctl >/dev/null || { fail "no mdevctl in the guest (build-image)"; finish; }
A=83b8f4f2-509f-382f-3c1e-e6bfe0fa1001
B=83b8f4f2-509f-382f-3c1e-e6bfe0fa1002
C=83b8f4f2-509f-382f-3c1e-e6bfe0fa1003
DEFS=/etc/mdevctl.d/mtty
REC=/var/lib/pcipass-vm-test
RULES=/share/61-pcipass-mdev.rules

if [ "$PCIPASS_BOOT" = 1 ]; then
  [ -e "$REC" ] && fail "$REC exists on the first boot: the disk is not pristine"
  mkdir -p "$REC"
  modprobe mtty || { fail "modprobe mtty failed"; finish; }
  pp create-a mdev create mtty mtty-2 --uuid "$A" --persist --auto
  expect_rc "mdev create A --persist --auto" 0
  mdevctl define --parent mtty --type mtty-1 --uuid "$B" --auto > "$RESULTS/mdevctl-define" 2>&1 &&
    ok "mdevctl define $B --auto" || fail "mdevctl define $B: $(cat "$RESULTS/mdevctl-define")"
  pp create-c mdev create mtty mtty-1 --uuid "$C" --persist
  expect_rc "mdev create C --persist (manual)" 0
  pp defined-1 mdev list --defined
  expect_rc "mdev list --defined" 0
  sync
  finish
fi

# ---- boot 2: the same disk, mtty not loaded yet
[ -d "$REC" ] || { fail "boot 1's record is not on the disk"; finish; }
[ -d /sys/class/mdev_bus/mtty ] && { fail "mtty is loaded already: the late load proves nothing"; finish; }
[ -r "$RULES" ] || { fail "no $RULES in the share (tests/vm/run copies build/data/)"; finish; }
cp "$RULES" "$RESULTS/"
for f in "$A" "$B" "$C"; do [ -f "$DEFS/$f" ] || fail "$DEFS/$f lost over the reboot"; done

# The RUN of the rules names the installed pcipass (cmake's prefix); the guest
# has it in /usr/bin: put it where the rule says, as `cmake --install` would.
RUNBIN=$(sed -n 's/.*RUN+="\([^ "]*\) .*/\1/p' "$RULES" | sort -u)
[ "$(echo "$RUNBIN" | wc -l)" = 1 ] && [ -n "$RUNBIN" ] || { fail "RUN names '$RUNBIN'"; finish; }
log "the rule runs $RUNBIN"
[ -x "$RUNBIN" ] || { mkdir -p "${RUNBIN%/*}"; ln -s "$(command -v pcipass)" "$RUNBIN"; }

# udev's evaluation of one rule line for the event in the environment
# (ACTION, DEVPATH, MDEV_STATE, ...): prints its RUN when every match key holds.
cat > /tmp/rule-run <<'EOF'
#!/bin/sh
line=$1; kernel=${DEVPATH##*/}; run=""
printf '%s\n' "$line" | grep -oE '[A-Z]+(\{[A-Z_]+\})?(==|!=|\+=)"[^"]*"' > /tmp/rule-keys.$$
while IFS= read -r k; do
  name=${k%%[=!+]*}; rest=${k#"$name"}; op=${rest%%\"*}; val=${rest#*\"}; val=${val%\"}
  val=$(printf '%s' "$val" | sed "s|\$kernel|$kernel|g; s|%k|$kernel|g")
  case $name in
    ACTION) got=$ACTION ;;
    ENV{*}) v=${name#ENV\{}; v=${v%\}}; eval "got=\${$v-}" ;;
    TEST) case $val in /*) p=$val ;; *) p=/sys$DEVPATH/$val ;; esac
          if [ -e "$p" ]; then got=$val; else got=""; fi ;;
    RUN) run=$val; continue ;;
    *) echo "rule-run: a key it does not know: $name" >&2; rm -f /tmp/rule-keys.$$; exit 2 ;;
  esac
  case $op in
    ==) [ "$got" = "$val" ] || { rm -f /tmp/rule-keys.$$; exit 1; } ;;
    !=) [ "$got" != "$val" ] || { rm -f /tmp/rule-keys.$$; exit 1; } ;;
  esac
done < /tmp/rule-keys.$$
rm -f /tmp/rule-keys.$$
[ -n "$run" ] && printf '%s\n' "$run"
EOF
chmod 755 /tmp/rule-run
# Every rule of the file for one event, the matching RUNs run as udev runs them.
# /tmp/rule-filter (when there) keeps only the rule lines holding its text.
cat > /tmp/on-uevent <<EOF
#!/bin/sh
filter=\$(cat /tmp/rule-filter 2>/dev/null)
grep -v '^#' "$RULES" | grep . | grep -F -- "\$filter" | while IFS= read -r line; do
  cmd=\$(/tmp/rule-run "\$line") || continue
  echo "\$ACTION \$DEVPATH MDEV_STATE=\${MDEV_STATE-}: run \$cmd" >> /tmp/uevents
  \$cmd >> /tmp/uevents 2>&1
  echo "exit \$?" >> /tmp/uevents
done
EOF
chmod 755 /tmp/on-uevent
rules_for() {  # rules_for ACTION [MDEV_STATE]: the RUNs for an event of mtty's device
  grep -v '^#' "$RULES" | grep . | while IFS= read -r line; do
    ACTION=$1 MDEV_STATE=${2-} DEVPATH=/devices/virtual/mtty/mtty /tmp/rule-run "$line"
  done
}

# The guard, on the guest's files: mdevctl's rule installed in either place
# (the guest image has mdevctl's binary, not its rule: a stand-in file is
# enough, the guard tests that the file exists), pcipass's rules run nothing.
mkdir -p "$REC/hidden"
for f in /usr/lib/udev/rules.d/60-mdevctl.rules /lib/udev/rules.d/60-mdevctl.rules; do
  [ -e "$f" ] && { mv "$f" "$REC/hidden/" || fail "cannot move $f away"; }
done
for f in /usr/lib/udev/rules.d/60-mdevctl.rules /lib/udev/rules.d/60-mdevctl.rules; do
  mkdir -p "${f%/*}"; echo "# stand-in for mdevctl's rule" > "$f"
  for ev in "change registered" "add"; do
    got=$(rules_for $ev)
    [ -z "$got" ] && ok "$f installed: pcipass's rules run nothing for '$ev'" ||
      fail "with $f installed, pcipass's rules run for '$ev': $got"
  done
  rm -f "$f"
done
got=$(rules_for change registered)
expect_eq "the change rule's RUN, mdevctl's rule absent" "$got" "$RUNBIN mdev start-parent mtty"
expect_eq "RUNs for an unregistered change" "$(rules_for change unregistered)" ""
expect_eq "RUNs for the add of an unregistered mtty" "$(rules_for add)" ""

uevent /tmp/on-uevent &
UEV=$!
sleep 1
_t0=$(cut -d' ' -f1 /proc/uptime)
modprobe mtty || fail "modprobe mtty (late) failed"
wait_mdevs 150 "$A" "$B"
_t1=$(cut -d' ' -f1 /proc/uptime)
sleep 1  # the listener's run finishing its log
cp /tmp/uevents "$RESULTS/uevents-late" 2>/dev/null
expect_has "uevents" "$RESULTS/uevents-late" "change /devices/virtual/mtty/mtty MDEV_STATE=registered: run $RUNBIN mdev start-parent mtty"
expect_has "start-parent's output" "$RESULTS/uevents-late" "started mdev $A (mtty-2 on mtty)"
expect_has "start-parent's output" "$RESULTS/uevents-late" "started mdev $B (mtty-1 on mtty)"
[ -d "/sys/bus/mdev/devices/$A" ] && ok "$A (pcipass's auto definition) active after the late load" ||
  fail "$A not started after the late load"
[ -d "/sys/bus/mdev/devices/$B" ] && ok "$B (mdevctl's auto definition) active after the late load" ||
  fail "$B not started after the late load"
[ -e "/sys/bus/mdev/devices/$C" ] && fail "$C (manual) was started" || ok "$C (manual) not started"
log "modprobe mtty to both active: $(awk -v a="$_t0" -v b="$_t1" 'BEGIN { printf "%d ms", (b - a) * 1000 }') (guest uptime, TCG)"
[ -e /run/pcipass/journal.json ] && fail "a journal is left in /run/pcipass"

pp again mdev start-parent mtty --json
expect_rc "a second start-parent" 0
json_flat "$PP_OUT" > "$PP_OUT.flat"
expect_has "start-parent again" "$PP_OUT.flat" "changed=false"
expect_has "start-parent again" "$PP_OUT.flat" "started=0"
expect_has "start-parent again" "$PP_OUT.flat" "mdevs.0.result=already-active"
expect_has "start-parent again" "$PP_OUT.flat" "mdevs.1.result=already-active"
pp again-text mdev start-parent mtty
expect_has "start-parent again (text)" "$PP_OUT" "nothing to start: every auto definition in $DEFS is active"
mdevctl list > "$RESULTS/mdevctl-list" 2>&1
expect_has "mdevctl list" "$RESULTS/mdevctl-list" "$A mtty mtty-2"

# Coldplug: the "add" that systemd-udev-trigger replays at boot, for a parent
# registered before udev ran. A and B removed (definitions kept), then the add.
pp remove-a mdev remove "$A"
expect_rc "mdev remove A" 0
pp remove-b mdev remove "$B"
expect_rc "mdev remove B" 0
: > /tmp/uevents
echo add > /sys/devices/virtual/mtty/mtty/uevent
wait_mdevs 150 "$A" "$B"
sleep 1
kill "$UEV" 2>/dev/null
cp /tmp/uevents "$RESULTS/uevents-add" 2>/dev/null
expect_has "uevents (add)" "$RESULTS/uevents-add" "add /devices/virtual/mtty/mtty MDEV_STATE=: run $RUNBIN mdev start-parent mtty"
[ -d "/sys/bus/mdev/devices/$A" ] && [ -d "/sys/bus/mdev/devices/$B" ] &&
  ok "A and B started again by the add (coldplug) rule" || fail "the add rule did not start A and B"
[ -e "/sys/bus/mdev/devices/$C" ] && fail "$C (manual) was started by the add rule"

# The change rule alone (the add above may have come first on the late load:
# the listener handles mtty's add after its registration): A and B removed,
# mtty unloaded and loaded again with only the file's change rule in force.
pp remove-a2 mdev remove "$A"
pp remove-b2 mdev remove "$B"
rmmod mtty || fail "rmmod mtty failed"
echo 'ACTION=="change"' > /tmp/rule-filter
: > /tmp/uevents
uevent /tmp/on-uevent &
UEV=$!
sleep 1
modprobe mtty || fail "modprobe mtty (again) failed"
wait_mdevs 150 "$A" "$B"
sleep 1
kill "$UEV" 2>/dev/null
cp /tmp/uevents "$RESULTS/uevents-change" 2>/dev/null
expect_not "uevents (change rule alone)" "$RESULTS/uevents-change" "add /devices"
expect_has "uevents (change rule alone)" "$RESULTS/uevents-change" "started mdev $A (mtty-2 on mtty)"
expect_has "uevents (change rule alone)" "$RESULTS/uevents-change" "started mdev $B (mtty-1 on mtty)"
[ -d "/sys/bus/mdev/devices/$A" ] && [ -d "/sys/bus/mdev/devices/$B" ] &&
  ok "A and B started by the change (MDEV_STATE=registered) rule alone" ||
  fail "the change rule alone did not start A and B"
[ -e "/sys/bus/mdev/devices/$C" ] && fail "$C (manual) was started by the change rule"

# Cleanup: mdevctl's rule back (where the guest had one), the mdevs and definitions gone.
for f in "$REC"/hidden/*; do [ -e "$f" ] && mv "$f" /lib/udev/rules.d/; done
for u in "$A" "$B" "$C"; do pcipass mdev remove "$u" --persist > /dev/null 2>&1; done
pp defined-end mdev list --defined
expect_rc "mdev list --defined at the end" 0
expect_not "mdev list --defined at the end" "$PP_OUT" "$A"
finish
