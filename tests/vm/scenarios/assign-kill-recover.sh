# kill -9 in the middle of a group bind, then pcipass recover. `bind
# --with-group` of the two e1000 behind the pcie-pci-bridge runs in the
# background and is stopped (SIGSTOP, to record the state) and killed
# (SIGKILL) at two points, one round each:
#   override  the journal exists and the first NIC's driver_override says
#             vfio-pci (its unbind/probe not done)
#   first     the first NIC is on vfio-pci (drivers/vfio-pci/ADDR), the
#             journal still in phase "writing" (the second not done)
# Each round: status reports the pending journal (exit 1), a new bind is
# refused, recover rolls back (both NICs on e1000 with their interfaces,
# no override, no /dev/vfio node), status is clean, a second recover does
# nothing. A round is retried (up to 5 times) when the bind finished
# before it could be caught. Finally a normal bind/release goes through.
# topology: full
# iommu: on
# needs: pcipass

need_pcipass
set -- $(pci_find 0x8086 0x100e)
[ $# = 2 ] || { fail "want two e1000 (8086:100e), got: $*"; finish; }
a=$1 b=$2
g=$(pci_group "$a")
J=/run/pcipass/journal.json
orig="$a e1000 (null)|$b e1000 (null)"
state() { echo "$a $(pci_driver $a) $(sysfs_override $a)|$b $(pci_driver $b) $(sysfs_override $b)"; }
expect_eq "before" "$(state)" "$orig"

# trigger POINT: true when the bind has reached POINT (shell builtins only:
# the busy-wait must not fork, or the bind finishes first)
trigger() {
  [ -e $J ] || return 1
  case $1 in
    override) read -r _ov < /sys/bus/pci/devices/$a/driver_override; [ "$_ov" = vfio-pci ] ;;
    first) [ -e /sys/bus/pci/drivers/vfio-pci/$a ] ;;
  esac
}

round() {  # round POINT
  caught=0 try=0
  while [ $caught = 0 ] && [ $try -lt 5 ]; do
    try=$((try + 1))
    pcipass bind --with-group "$a" > "$RESULTS/bind-$1-$try.out" 2>&1 &
    pid=$!
    while kill -0 $pid 2>/dev/null; do trigger "$1" && break; done
    kill -STOP $pid 2>/dev/null
    if [ -e $J ] && kill -0 $pid 2>/dev/null && grep -q '"phase": "writing"' $J; then
      caught=1
      at=$(state)
      cp $J "$RESULTS/journal-$1.json"
      kill -9 $pid; wait $pid 2>/dev/null
      log "$1: try $try: killed pid $pid mid-bind at: $at"
    else
      kill -CONT $pid 2>/dev/null; wait $pid
      log "$1: try $try: bind finished (rc $?) before it could be caught; releasing, trying again"
      pcipass release --with-group "$a" >/dev/null 2>&1 || pcipass recover >/dev/null 2>&1
    fi
  done
  echo "$try" > "$RESULTS/tries-$1"
  expect_eq "$1: bind caught mid-way within 5 tries" $caught 1
  [ $caught = 1 ] || return 0
  case $1 in
    override) expect_eq "$1: $a driver_override at the kill" "$(sysfs_override $a)" vfio-pci ;;
    first) expect_eq "$1: $a driver at the kill" "$(pci_driver $a)" vfio-pci ;;
  esac
  [ "$(state)" != "$orig" ] && ok "$1: the killed bind had changed something ($(state))" || fail "$1: nothing changed before the kill"

  # the journal names both NICs with their originals, in phase "writing"
  json_flat $J > "$RESULTS/journal-$1.flat"
  expect_has "$1: journal" "$RESULTS/journal-$1.flat" "phase=writing"
  expect_has "$1: journal" "$RESULTS/journal-$1.flat" "operation=bind"
  expect_has "$1: journal" "$RESULTS/journal-$1.flat" "$a"
  expect_has "$1: journal" "$RESULTS/journal-$1.flat" "$b"

  pp status-pending-$1 status
  expect_rc "$1: status with a pending journal" 1
  expect_has "$1: status" "$PP_OUT" "an interrupted bind of 2 devices left a journal: run \`pcipass recover\`"
  pp bind-pending-$1 bind --with-group "$b"
  expect_rc "$1: bind while a journal is pending" 1
  expect_has "$1: bind while pending" "$PP_ERR" "run \`pcipass recover\`"

  pp recover-$1 recover
  expect_rc "$1: recover" 0
  expect_has "$1: recover" "$PP_OUT" "rolled back an interrupted bind"
  expect_has "$1: recover" "$PP_OUT" "$a is on e1000"
  expect_has "$1: recover" "$PP_OUT" "$b is on e1000"
  expect_eq "$1: after recover" "$(state)" "$orig"
  for _x in $a $b; do
    [ -n "$(ls /sys/bus/pci/devices/$_x/net 2>/dev/null)" ] && ok "$1: $_x has its interface" || fail "$1: $_x has no network interface"
  done
  [ -e "/dev/vfio/$g" ] && fail "$1: /dev/vfio/$g still there after recover"
  expect_clean "recovered-$1"

  pp recover-again-$1 recover --json
  expect_rc "$1: recover again" 0
  json_flat "$PP_OUT" > "$RESULTS/recover-again-$1.flat"
  expect_has "$1: recover again" "$RESULTS/recover-again-$1.flat" "pending=false"
  expect_has "$1: recover again" "$RESULTS/recover-again-$1.flat" "action=none"
  expect_eq "$1: after recover again" "$(state)" "$orig"
}

round override
round first

# the host is usable again: a normal group bind and release go through
pp bind-after bind --with-group "$a"
expect_rc "bind after recover" 0
expect_eq "bound" "$(state)" "$a vfio-pci vfio-pci|$b vfio-pci vfio-pci"
pp release-after release --with-group "$a"
expect_rc "release after recover" 0
expect_eq "released" "$(state)" "$orig"
expect_clean end
finish
