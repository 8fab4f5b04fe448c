# Helpers for guest scenario scripts (busybox sh). Sourced before
# /share/scenario.sh; copied into every run's share, so editing it does not
# rebuild the image.
# shellcheck shell=sh
RESULTS=/share/results
. /share/env 2>/dev/null || true
FAILS=0

log() { echo "scenario: $*"; }
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
ok() { echo "ok: $*"; }
# expect_eq WHAT GOT WANT
expect_eq() { if [ "$2" = "$3" ]; then ok "$1 = $3"; else fail "$1: got '$2', want '$3'"; fi; }
# finish: exit with the number of failures (capped at 100)
finish() {
  [ "$FAILS" -gt 100 ] && FAILS=100
  echo "scenario: $FAILS failure(s)"
  exit "$FAILS"
}

# Loads drivers for every device that has a modalias (what udev's coldplug
# does); use after creating VFs or hotplugging if their driver is not loaded.
coldplug() {
  for _p in 1 2; do
    # shellcheck disable=SC2046
    modprobe -q -a $(cat /sys/bus/*/devices/*/uevent 2>/dev/null | sed -n 's/^MODALIAS=//p' | sort -u) 2>/dev/null
  done
  true
}

# pci_find VENDOR DEVICE: addresses of matching devices, one a line
# (e.g. pci_find 0x1b36 0x0010).
pci_find() {
  for _d in /sys/bus/pci/devices/*; do
    [ "$(cat "$_d/vendor")" = "$1" ] && [ "$(cat "$_d/device")" = "$2" ] && echo "${_d##*/}"
  done
  true
}
# pci_group ADDR: the IOMMU group number, or '-'
pci_group() { _g=$(readlink "/sys/bus/pci/devices/$1/iommu_group" 2>/dev/null) && echo "${_g##*/}" || echo -; }
# pci_driver ADDR: the bound driver, or '-'
pci_driver() { _g=$(readlink "/sys/bus/pci/devices/$1/driver" 2>/dev/null) && echo "${_g##*/}" || echo -; }

# sriov_enable ADDR N: creates N VFs on the PF ADDR (0 first, as the kernel
# requires) and waits for their drivers.
sriov_enable() {
  echo 0 > "/sys/bus/pci/devices/$1/sriov_numvfs"
  echo "$2" > "/sys/bus/pci/devices/$1/sriov_numvfs" || return 1
  coldplug
  _i=0
  while [ $_i -lt 50 ]; do
    [ "$(ls -d /sys/bus/pci/devices/$1/virtfn* 2>/dev/null | wc -l)" -ge "$2" ] && break
    sleep 0.1; _i=$((_i + 1))
  done
  settle_vfs "$1"
}

# settle_vfs PF: waits (up to 30 s) until no VF of PF is half-probed. nvme
# binds a VF at once and drops it asynchronously when the controller does
# not come up (QEMU's VFs are offline: "Device not ready; aborting
# initialisation"), so the driver link flips from nvme to none later;
# reading it too early made the dumps racy.
settle_vfs() {
  _i=0
  while [ $_i -lt 300 ]; do
    _busy=0
    for _v in /sys/bus/pci/devices/$1/virtfn*; do
      [ -e "$_v/driver" ] || continue
      [ "$(_rl "$_v/driver")" = nvme ] || continue
      _st=$(cat "$_v"/nvme/nvme*/state 2>/dev/null)
      [ "$_st" = live ] || _busy=1
    done
    [ $_busy = 0 ] && return 0
    sleep 0.1; _i=$((_i + 1))
  done
  echo "settle_vfs: VFs of $1 still probing after 30 s"
  return 1
}

_rl() { _x=$(readlink "$1" 2>/dev/null) && echo "${_x##*/}" || echo -; }
_cat() { if [ -r "$1" ]; then tr '\n' ' ' < "$1" | sed 's/ *$//'; else echo -; fi; }

# dump_kernel_facts DIR: what the kernel shows, for the host-side checker
# (tests/vm/check). Layout:
#   DIR/devices.txt   "ADDR KEY VALUE" lines (KEY: vendor device class
#                     revision subsystem_vendor subsystem_device driver
#                     module iommu_group boot_vga sriov_totalvfs
#                     sriov_numvfs physfn virtfn path block net
#                     driver_override reset_method)
#   DIR/config/ADDR   raw config space (as root: 256 or 4096 bytes)
#   DIR/groups.txt    "GROUP ADDR..." per /sys/kernel/iommu_groups entry
#   DIR/iommu.txt     /sys/class/iommu entries, DMAR/IVRS tables, /dev/vfio
#   DIR/cmdline DIR/mounts DIR/modules DIR/uname
dump_kernel_facts() {
  _o=$1; mkdir -p "$_o/config"
  : > "$_o/devices.txt"
  for _d in /sys/bus/pci/devices/*; do
    _a=${_d##*/}
    {
      for _k in vendor device class revision subsystem_vendor subsystem_device \
                boot_vga sriov_totalvfs sriov_numvfs driver_override reset_method; do
        # read, not $(cat): no fork per attribute (forks are slow under TCG)
        [ -e "$_d/$_k" ] && { _v=-; read -r _v < "$_d/$_k"; echo "$_a $_k ${_v:--}"; }
      done
      echo "$_a driver $(_rl "$_d/driver")"
      echo "$_a module $(_rl "$_d/driver/module")"
      echo "$_a iommu_group $(_rl "$_d/iommu_group")"
      [ -e "$_d/physfn" ] && echo "$_a physfn $(_rl "$_d/physfn")"
      for _v in "$_d"/virtfn*; do
        [ -e "$_v" ] && echo "$_a virtfn ${_v##*/}=$(_rl "$_v")"
      done
      echo "$_a path $(realpath "$_d")"
      _rp=$(realpath "$_d")
      for _b in $(find "$_rp/" -path '*/block/*' -name dev 2>/dev/null); do
        # only this function's own disks, not those of devices below it
        case ${_b#"$_rp"/} in
          *[0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f].[0-7]*) continue ;;
        esac
        _b=${_b%/dev}; echo "$_a block ${_b##*/}"
      done
      for _n in "$_d"/net/*; do [ -e "$_n" ] && echo "$_a net ${_n##*/}"; done
    } >> "$_o/devices.txt"
    cat "$_d/config" > "$_o/config/$_a" 2>/dev/null
  done
  : > "$_o/groups.txt"
  for _g in /sys/kernel/iommu_groups/*; do
    [ -d "$_g/devices" ] || continue
    echo "${_g##*/} $(ls "$_g/devices" | tr '\n' ' ' | sed 's/ *$//')" >> "$_o/groups.txt"
  done
  {
    echo "class_iommu $(ls /sys/class/iommu 2>/dev/null | tr '\n' ' ')"
    echo "acpi_tables $(ls /sys/firmware/acpi/tables 2>/dev/null | tr '\n' ' ')"
    echo "dev_vfio $(ls /dev/vfio 2>/dev/null | tr '\n' ' ')"
  } > "$_o/iommu.txt"
  cat /proc/cmdline > "$_o/cmdline"
  cat /proc/mounts > "$_o/mounts"
  cat /proc/modules > "$_o/modules"
  uname -r > "$_o/uname"
}

# run_pcipass NAME ARGS...: runs pcipass, output into $RESULTS/pcipass/
# NAME.out / NAME.err / NAME.rc; never fails (the checker judges).
run_pcipass() {
  _n=$1; shift
  mkdir -p "$RESULTS/pcipass"
  echo "\$ pcipass $*" > "$RESULTS/pcipass/$_n.cmd"
  _t0=$(cut -d' ' -f1 /proc/uptime)
  pcipass "$@" > "$RESULTS/pcipass/$_n.out" 2> "$RESULTS/pcipass/$_n.err"
  echo $? > "$RESULTS/pcipass/$_n.rc"
  echo "$_t0 $(cut -d' ' -f1 /proc/uptime)" | awk '{printf "%.2f\n", $2 - $1}' > "$RESULTS/pcipass/$_n.secs"
}

# capture_state LABEL: the kernel facts into $RESULTS/LABEL/kernel and, when
# pcipass is installed, its standard outputs into $RESULTS/LABEL/pcipass
# (list, groups, tree, check in human and --json form; show of every
# device in one call, human and --json). tests/vm/check compares each LABEL's two halves.
capture_state() {
  dump_kernel_facts "$RESULTS/$1/kernel"
  command -v pcipass >/dev/null 2>&1 || return 0
  _save=$RESULTS; RESULTS=$RESULTS/$1
  for _c in list groups tree check; do
    run_pcipass "$_c" "$_c"
    run_pcipass "$_c.json" "$_c" --json
  done
  _all=$(ls /sys/bus/pci/devices)
  # shellcheck disable=SC2086
  run_pcipass show show $_all
  # shellcheck disable=SC2086
  run_pcipass show.json show $_all --json
  RESULTS=$_save
}

# need_pcipass: exit 77 (skip) when there is no pcipass in the guest.
need_pcipass() {
  command -v pcipass >/dev/null 2>&1 || { echo "SKIP: no pcipass binary in the guest"; exit 77; }
}

# QEMU inside the guest (the image carries the host's qemu-system-x86_64 and
# SeaBIOS), for scenarios that open vfio-pci devices the way a VM does:
#   qemu_start NAME ARGS...  starts a paused TCG q35 machine (-S -nodefaults,
#                            64 MiB, memlock unlimited) with ARGS (e.g.
#                            -device vfio-pci,host=0000:00:02.0,bus=pcie.0,addr=0x5),
#                            QMP on its stdin/stdout (a fifo on fd 9);
#                            fails, with QEMU's stderr, if QEMU exits.
#                            Sets QEMU_PID and QEMU_DIR (/tmp/qemu-NAME:
#                            cmdline, out = QMP transcript, err = stderr).
#   qmp JSON                 sends a QMP command, prints its reply line.
#   qemu_pci                 query-pci: "SLOT.FN VENDOR:DEVICE QDEV_ID" per
#                            root-bus device, hex (a paused machine lists
#                            only pcie.0, so put vfio devices there).
#   qemu_quit                quit, wait for the process, close the fifo.
#   qemu_firmware            runs the paused machine until its firmware
#                            (SeaBIOS) has numbered the bridges (query-pci
#                            shows a secondary bus > 0; only then does it
#                            list devices below root ports), then stops it.
#   QEMU_MACHINE=pc          qemu_start's machine (default q35).
qemu_start() {
  QEMU_DIR=/tmp/qemu-$1; shift
  rm -rf "$QEMU_DIR"; mkdir -p "$QEMU_DIR"; mkfifo "$QEMU_DIR/in"
  echo "qemu-system-x86_64 -S -nodefaults -no-user-config -display none -machine ${QEMU_MACHINE:-q35} -accel tcg -m 64 -qmp stdio $*" > "$QEMU_DIR/cmdline"
  (ulimit -l unlimited && exec qemu-system-x86_64 -S -nodefaults -no-user-config -display none \
     -machine "${QEMU_MACHINE:-q35}" -accel tcg -m 64 -qmp stdio "$@" < "$QEMU_DIR/in" > "$QEMU_DIR/out" 2> "$QEMU_DIR/err") &
  QEMU_PID=$!
  exec 9> "$QEMU_DIR/in"
  _i=0
  until grep -q '"QMP"' "$QEMU_DIR/out" 2>/dev/null; do
    if ! kill -0 "$QEMU_PID" 2>/dev/null || [ $_i -gt 1200 ]; then
      echo "qemu_start: QEMU did not start: $(tr '\n' ' ' < "$QEMU_DIR/err")"
      exec 9>&-; wait "$QEMU_PID" 2>/dev/null; QEMU_PID=""
      return 1
    fi
    sleep 0.1; _i=$((_i + 1))
  done
  qmp '{"execute":"qmp_capabilities"}' > /dev/null
}
qmp() {
  _n=$(grep -c -E '^\{"(return|error)"' "$QEMU_DIR/out")
  # a QEMU that died must not take the scenario with it (SIGPIPE)
  (trap '' PIPE; echo "$1" >&9) 2>/dev/null
  _i=0
  while [ "$(grep -c -E '^\{"(return|error)"' "$QEMU_DIR/out")" -le "$_n" ]; do
    if ! kill -0 "$QEMU_PID" 2>/dev/null || [ $_i -gt 1200 ]; then
      echo "qmp: no reply to $1: $(tr '\n' ' ' < "$QEMU_DIR/err")" >&2; return 1
    fi
    sleep 0.1; _i=$((_i + 1))
  done
  grep -E '^\{"(return|error)"' "$QEMU_DIR/out" | tail -n1
}
qemu_pci() { qmp '{"execute":"query-pci"}' | query_pci_list; }
# query_pci_list: query-pci's reply (one line on stdin) as "SLOT.FN VENDOR:DEVICE QDEV_ID" lines,
# devices behind bridges included (their bus is not printed; a bridge with devices behind it is
# left out)
query_pci_list() {
  awk '
  function num(r, k,   m) {
    if (!match(r, "\"" k "\": ?[0-9]+")) return -1
    m = substr(r, RSTART, RLENGTH); sub(/^[^:]*: ?/, "", m); return m + 0
  }
  {
    n = split($0, recs, /"irq_pin"/)
    for (i = 2; i <= n; i++) {
      r = recs[i]; s = f = v = d = -1; q = ""
      s = num(r, "slot"); f = num(r, "function"); v = num(r, "vendor"); d = num(r, "device")
      # QEMU writes "key": value, virsh qemu-monitor-command "key":value
      if (match(r, /"qdev_id": ?"[^"]*"/)) { q = substr(r, RSTART, RLENGTH); sub(/^"qdev_id": ?"/, "", q); sub(/"$/, "", q) }
      # a bridge with devices behind it: its own fields follow theirs (not listed)
      if (s < 0) continue
      printf "%02x.%d %04x:%04x %s\n", s, f, v, d, (q == "" ? "-" : q)
    }
  }'
}
qemu_firmware() {
  qmp '{"execute":"cont"}' > /dev/null || return 1
  _i=0
  until qmp '{"execute":"query-pci"}' | grep -q '"secondary": [1-9]'; do
    [ $_i -gt 300 ] && { echo "qemu_firmware: no bridge numbered after 60 s" >&2; return 1; }
    sleep 0.2; _i=$((_i + 1))
  done
  qmp '{"execute":"stop"}' > /dev/null
}
qemu_quit() {
  [ -n "$QEMU_PID" ] || return 0
  qmp '{"execute":"quit"}' > /dev/null 2>&1
  wait "$QEMU_PID" 2>/dev/null
  exec 9>&-
  QEMU_PID=""
}

# Helpers for the assign-* scenarios (pcipass bind/release/recover):
#   need_qemu                      exit 77 without qemu-system-x86_64
#   pp NAME ARGS...                run_pcipass, then PP_RC, PP_OUT, PP_ERR
#                                  (paths of the output files)
#   expect_rc WHAT WANT            PP_RC = WANT
#   expect_has WHAT FILE TEXT      FILE contains TEXT (fixed string)
#   expect_not WHAT FILE TEXT      FILE does not contain TEXT
#   sysfs_override ADDR            driver_override ("(null)" when unset)
#   expect_dev ADDR DRIVER OVERRIDE  driver link and driver_override
#   expect_clean                   no journal, `pcipass status` binds nothing
need_qemu() {
  command -v qemu-system-x86_64 >/dev/null 2>&1 || { echo "SKIP: no qemu-system-x86_64 in the guest (tests/vm/build-image puts the host's in)"; exit 77; }
}
pp() {
  run_pcipass "$@"
  PP_OUT=$RESULTS/pcipass/$1.out PP_ERR=$RESULTS/pcipass/$1.err
  PP_RC=$(cat "$RESULTS/pcipass/$1.rc")
  shift; log "pcipass $* -> $PP_RC"
}
expect_rc() { expect_eq "$1: exit status" "$PP_RC" "$2"; }
expect_has() {
  if grep -qF -- "$3" "$2"; then ok "$1 mentions '$3'"
  else fail "$1: no '$3' in ${2##*/}: $(head -c 600 "$2" | tr '\n' '|')"; fi
}
expect_not() {
  if grep -qF -- "$3" "$2"; then fail "$1: unexpected '$3' in ${2##*/}: $(head -c 600 "$2" | tr '\n' '|')"
  else ok "$1 does not mention '$3'"; fi
}
# wait_mdevs TENTHS UUID...: until every /sys/bus/mdev/devices/UUID exists, at most TENTHS
# tenths of a second (a parent's late registration starts them asynchronously); the caller
# checks what came.
wait_mdevs() {
  _n=$1; shift
  _i=0
  for _u in "$@"; do
    while [ ! -d "/sys/bus/mdev/devices/$_u" ] && [ $_i -le "$_n" ]; do
      sleep 0.1; _i=$((_i + 1))
    done
  done
}
sysfs_override() { _v=-; read -r _v < "/sys/bus/pci/devices/$1/driver_override"; echo "$_v"; }
expect_dev() {
  expect_eq "$1 driver" "$(pci_driver "$1")" "$2"
  expect_eq "$1 driver_override" "$(sysfs_override "$1")" "$3"
}
expect_clean() {
  [ -e /run/pcipass/journal.json ] && fail "a journal is left: $(cat /run/pcipass/journal.json | tr '\n' ' ')"
  pp "status-$1" status
  expect_rc "status ($1)" 0
  expect_has "status ($1)" "$PP_OUT" "pcipass has bound nothing"
}
# json_flat FILE: pcipass's pretty-printed JSON (one value a line) as
# "path=value" lines, e.g. groups.0.devices.1.action=bind (strings unquoted).
json_flat() {
  awk '
    { l = $0; sub(/^[ \t]+/, "", l); sub(/,$/, "", l); if (l == "") next
      key = ""
      if (match(l, /^"[^"]*": /)) { key = substr(l, 2, RLENGTH - 4); l = substr(l, RLENGTH + 1) }
      if (l == "}" || l == "]") { d--; next }
      if (d > 0 && typ[d] == "[") key = cnt[d]++
      path = (d > 0 && pth[d] != "") ? pth[d] "." key : key
      if (l == "{" || l == "[") { d++; typ[d] = l; pth[d] = path; cnt[d] = 0; next }
      if (l ~ /^".*"$/) l = substr(l, 2, length(l) - 2)
      print path "=" l
    }' "$1"
}

# Snapshot round trip (scenarios snapshot-roundtrip-*):
#   roundtrip LABEL  runs every read command with --json live, then takes
#                    `pcipass snapshot -o /tmp/s.tar.gz`, extracts it with
#                    busybox tar into /tmp/s and runs the same commands with
#                    `--root /tmp/s`. Into $RESULTS/LABEL/{live,snap}/NAME.
#                    {out,err,rc}: check, list, groups, tree, status, show of
#                    every device (one call), plan of every endpoint
#                    (header type 0) device, one call each. tests/vm/check
#                    --roundtrip compares the two sides on the host.
roundtrip_cmds() {  # roundtrip_cmds: "NAME ARGS..." lines
  for _c in check list groups tree status; do echo "$_c $_c"; done
  echo "show show $(ls /sys/bus/pci/devices | tr '\n' ' ')"
  for _d in /sys/bus/pci/devices/*; do
    _h=$(od -An -tx1 -j14 -N1 "$_d/config" 2>/dev/null | tr -d ' ')
    case $_h in 00|80) echo "plan-${_d##*/} plan ${_d##*/}" ;; esac
  done
}
roundtrip_run() {  # roundtrip_run DIR [--root R]: every command into DIR
  _dir=$1; shift; mkdir -p "$_dir"
  roundtrip_cmds | while read -r _n _args; do
    # shellcheck disable=SC2086
    pcipass "$@" $_args --json > "$_dir/$_n.out" 2> "$_dir/$_n.err" < /dev/null
    echo $? > "$_dir/$_n.rc"
    echo "pcipass $* $_args --json" > "$_dir/$_n.cmd"
  done
}
# The host must hold still between the live run and the snapshot: IPv6 autoconfiguration (QEMU's
# router advertisement gives eth0 a fec0:: address a few seconds after boot) changed plan's
# addresses between the two once. Waits until /proc/net/if_inet6 is the same for 3 s (20 s at most).
settle_addresses() {
  _prev="" _same=0 _waited=0
  while [ "$_same" -lt 3 ] && [ "$_waited" -lt 20 ]; do
    _now=$(sort /proc/net/if_inet6 2>/dev/null)
    if [ "$_now" = "$_prev" ]; then _same=$((_same + 1)); else _same=0; fi
    _prev=$_now; sleep 1; _waited=$((_waited + 1))
  done
}
roundtrip() {
  _rt=$RESULTS/$1; mkdir -p "$_rt"
  settle_addresses
  _t0=$(cut -d' ' -f1 /proc/uptime)
  roundtrip_run "$_rt/live"
  rm -rf /tmp/s /tmp/s.tar.gz; mkdir -p /tmp/s
  if ! pcipass snapshot -o /tmp/s.tar.gz > "$_rt/snapshot.out" 2> "$_rt/snapshot.err"; then
    fail "$1: pcipass snapshot failed: $(tr '\n' ' ' < "$_rt/snapshot.err")"; return 1
  fi
  if ! tar -xzf /tmp/s.tar.gz -C /tmp/s 2> "$_rt/tar.err"; then
    fail "$1: busybox tar could not extract the snapshot: $(tr '\n' ' ' < "$_rt/tar.err")"; return 1
  fi
  ls -l /tmp/s.tar.gz > "$_rt/snapshot.size"
  roundtrip_run "$_rt/snap" --root /tmp/s
  log "$1: $(ls "$_rt/live" | grep -c '\.rc$') commands live and on the snapshot in $(echo "$_t0 $(cut -d' ' -f1 /proc/uptime)" | awk '{printf "%.1f", $2 - $1}') s"
}

# Disk guests (tests/vm/run-disk: Debian 12 booted by its own GRUB or
# systemd-boot; dash, coreutils):
#   cmdline_has PARAM          /proc/cmdline has the word PARAM
#   expect_cmdline PARAM yes|no
#   iommu_group_count          entries in /sys/kernel/iommu_groups
#   check_item FILE ID FIELD   a field of one item of `pcipass check --json`
#   expect_check_iommu LABEL PASS|FAIL
#                              when pcipass is in the guest: `check --json`
#                              into $RESULTS/pcipass/LABEL.*, its
#                              iommu-kernel item has that status (FAIL:
#                              with a fix naming intel_iommu=on)
#   grub_default_linux CFG     the `linux` line of grub.cfg's default entry
#                              (Debian's: `set default="${next_entry}"` when
#                              grub-reboot set one, else `set default="0"`:
#                              the first menuentry; anything else: an error)
#   sdboot_entry               the loader entry file systemd-boot booted
#                              (LoaderEntrySelected, under /boot/efi)
cmdline_has() { case " $(cat /proc/cmdline) " in *" $1 "*) return 0 ;; esac; return 1; }
expect_cmdline() {
  if cmdline_has "$1"; then _h=yes; else _h=no; fi
  expect_eq "/proc/cmdline has $1" "$_h" "$2"
}
iommu_group_count() { ls /sys/kernel/iommu_groups 2>/dev/null | wc -l; }
check_item() {
  _n=$(json_flat "$1" | sed -n "s/^checks\.\([0-9]*\)\.id=$2\$/\1/p" | head -n1)
  [ -n "$_n" ] && json_flat "$1" | sed -n "s/^checks\.$_n\.$3=//p" | head -n1
}
expect_check_iommu() {
  if ! command -v pcipass >/dev/null 2>&1; then log "no pcipass in the guest: check not run"; return 0; fi
  run_pcipass "$1" check --json
  _f=$RESULTS/pcipass/$1.out
  expect_eq "$1: check iommu-kernel" "$(check_item "$_f" iommu-kernel status)" "$2"
  if [ "$2" = FAIL ]; then
    case $(check_item "$_f" iommu-kernel fix) in
      *intel_iommu=on*) ok "$1: the fix names intel_iommu=on" ;;
      *) fail "$1: the fix does not name intel_iommu=on: $(check_item "$_f" iommu-kernel fix)" ;;
    esac
  fi
}
grub_default_linux() {
  _d=$(sed -n 's/^[[:space:]]*set default="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$1" | grep -v '^\${next_entry}$' | sort -u)
  [ "$_d" = 0 ] || { echo "grub_default_linux: default entry '$_d', not 0" >&2; return 1; }
  awk '/^menuentry / { m = 1 } m && /^[[:space:]]+linux[[:space:]]/ { print; exit }' "$1"
}
sdboot_entry() {
  _e=$(cat /sys/firmware/efi/efivars/LoaderEntrySelected-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f 2>/dev/null | tail -c +5 | tr -d '\000')
  [ -n "$_e" ] || return 1
  for _p in "/boot/efi/loader/entries/$_e" "/boot/efi/loader/entries/$_e.conf"; do
    [ -f "$_p" ] && { echo "$_p"; return 0; }
  done
  return 1
}

# libvirt in the guest (scenarios libvirt-*): build-image puts in the host's libvirtd with its
# QEMU driver alone, virsh, and a qemu.conf that runs QEMU as root with no cgroups, namespaces,
# security driver or virtlogd (the busybox guest has none of them). The guest has no KVM:
# domains are <domain type='qemu'> (TCG).
#   need_libvirt              exit 77 without libvirtd/virsh; loads vfio-pci, starts libvirtd in
#                             the background (LIBVIRTD_PID) and waits for `virsh version`
#   vr NAME ARGS...           virsh ARGS into $RESULTS/virsh/NAME.{cmd,out,err,rc,secs}; then
#                             VR_RC VR_OUT VR_ERR (paths) as pp does
#   domain_xml NAME [XML]     a small <domain type='qemu'>: q35, 64 MiB, 1 vCPU, no disk, NIC,
#                             USB, balloon or graphics; XML goes inside <devices>
#   attach_cmd DOMAIN DEVICE [XMLOPT...], detach_cmd DOMAIN DEVICE [XMLOPT...]
#                             add the device to / remove it from DOMAIN's definition (--config);
#                             XMLOPT: `pcipass xml` options (--managed no, --rom-bar off)
#   libvirt_save LABEL        libvirtd's log and every /var/log/libvirt/qemu/*.log into
#                             $RESULTS/libvirt/LABEL/
#   libvirt_stop              destroys running domains, stops libvirtd, saves the logs (final)
#   libvirt_start_fails CASE DOMAIN HOSTDEV-XML-FILE WANT
#                             defines DOMAIN (domain_xml) with that <hostdev>; `virsh start
#                             --paused` must fail with WANT in libvirt's error; the evidence for
#                             `pcipass doctor` into $RESULTS/doctor/CASE.{error,qemu.log,kern.log,
#                             domain.xml} (virsh's stderr, /var/log/libvirt/qemu/DOMAIN.log, the
#                             kernel's messages since the start); the domain must be shut off;
#                             [CAUSE [TEXT]]: `pcipass doctor --log` of libvirt's error names
#                             CAUSE (and TEXT), so does `--domain DOMAIN` when QEMU ran (else
#                             it exits 3 saying the reason is in libvirt's error);
#                             undefines it
LIBVIRTD_PID=""
need_libvirt() {
  for _b in libvirtd virsh; do
    command -v $_b >/dev/null 2>&1 || { echo "SKIP: no $_b in the guest (install libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients on the host, then tests/vm/build-image)"; exit 77; }
  done
  # vfio's soft dependency: busybox modprobe does not follow softdeps, and without the type1
  # backend QEMU fails with "No available IOMMU models" (as a host whose modprobe skips it).
  modprobe -q -a vfio-pci vfio_iommu_type1
  mkdir -p /run/libvirt /var/log/libvirt/qemu /var/lib/libvirt /var/cache/libvirt
  _t0=$(cut -d' ' -f1 /proc/uptime)
  libvirtd -f /etc/libvirt/libvirtd.conf > /tmp/libvirtd.out 2>&1 &
  LIBVIRTD_PID=$!
  _i=0
  until virsh -q version > /tmp/virsh-version 2>&1; do
    if ! kill -0 "$LIBVIRTD_PID" 2>/dev/null || [ $_i -gt 600 ]; then
      echo "need_libvirt: libvirtd did not come up: $(tail -c 800 /tmp/libvirtd.out | tr '\n' ' ') $(tail -c 800 /tmp/virsh-version | tr '\n' ' ')"
      libvirt_save start-failed
      fail "libvirtd did not start"; finish
    fi
    sleep 0.1; _i=$((_i + 1))
  done
  log "libvirtd (pid $LIBVIRTD_PID) answers after $(echo "$_t0 $(cut -d' ' -f1 /proc/uptime)" | awk '{printf "%.1f", $2 - $1}') s: $(grep -i hypervisor /tmp/virsh-version | tr -s ' ')"
}
vr() {
  _n=$1; shift
  mkdir -p "$RESULTS/virsh"
  echo "\$ virsh $*" > "$RESULTS/virsh/$_n.cmd"
  _t0=$(cut -d' ' -f1 /proc/uptime)
  virsh "$@" > "$RESULTS/virsh/$_n.out" 2> "$RESULTS/virsh/$_n.err" < /dev/null
  VR_RC=$?
  echo $VR_RC > "$RESULTS/virsh/$_n.rc"
  echo "$_t0 $(cut -d' ' -f1 /proc/uptime)" | awk '{printf "%.2f\n", $2 - $1}' > "$RESULTS/virsh/$_n.secs"
  VR_OUT=$RESULTS/virsh/$_n.out VR_ERR=$RESULTS/virsh/$_n.err
  log "virsh $* -> $VR_RC ($(cat "$RESULTS/virsh/$_n.secs") s)"
}
domain_xml() {
  cat <<XML
<domain type='qemu'>
  <name>$1</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>$(command -v qemu-system-x86_64)</emulator>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
    ${2:-}
  </devices>
</domain>
XML
}
# ---- attach_cmd, detach_cmd (issue 10): the
# bodies were `pcipass xml` + `virsh attach-device/detach-device --config`; now pcipass's own
# attach/detach over libvirt's C API (output in $RESULTS/pcipass/{attach,detach}-DOMAIN.*). The
# static pcipass runs them in its twin pcipass-libvirt (src/cli/main.cc). Both return the
# exit status; ARGS: more pcipass options (--force, --managed no).
attach_cmd() { _dom=$1 _dev=$2; shift 2; pp "attach-$_dom" attach "$_dom" "$_dev" --config "$@"; return "$PP_RC"; }
detach_cmd() { _dom=$1 _dev=$2; shift 2; pp "detach-$_dom" detach "$_dom" "$_dev" --config "$@"; return "$PP_RC"; }
# ----
libvirt_save() {
  _d=$RESULTS/libvirt/$1; mkdir -p "$_d"
  cp /var/log/libvirt/libvirtd.log "$_d/" 2>/dev/null
  cp /tmp/libvirtd.out "$_d/libvirtd.stdout" 2>/dev/null
  for _l in /var/log/libvirt/qemu/*.log; do [ -f "$_l" ] && cp "$_l" "$_d/"; done
  true
}
libvirt_start_fails() {
  _c=$1 _dm=$2
  mkdir -p "$RESULTS/doctor"
  grep -q '<hostdev' "$3" || { fail "$_c: no <hostdev> in $3"; return 1; }
  domain_xml "$_dm" "$(cat "$3")" > "/tmp/$_dm.xml"
  cp "/tmp/$_dm.xml" "$RESULTS/doctor/$_c.domain.xml"
  vr "define-$_c" define "/tmp/$_dm.xml"
  expect_eq "$_c: virsh define" "$VR_RC" 0
  _kl=$(dmesg | wc -l)
  vr "start-$_c" start --paused "$_dm"
  expect_eq "$_c: virsh start --paused fails" "$VR_RC" 1
  expect_has "$_c: libvirt's error" "$VR_ERR" "$4"
  cp "$VR_ERR" "$RESULTS/doctor/$_c.error"
  cp "/var/log/libvirt/qemu/$_dm.log" "$RESULTS/doctor/$_c.qemu.log" 2>/dev/null ||
    echo "(libvirt wrote no /var/log/libvirt/qemu/$_dm.log: it failed before starting QEMU)" > "$RESULTS/doctor/$_c.qemu.log"
  dmesg | tail -n +$((_kl + 1)) > "$RESULTS/doctor/$_c.kern.log"
  _st=$(virsh -q domstate "$_dm" 2>&1)
  if [ "$_st" = "shut off" ]; then ok "$_c: $_dm is shut off"; else fail "$_c: $_dm is $_st"; fi
  if [ -n "${5:-}" ]; then  # pcipass doctor on this real failure, while the host is as it failed
    pp "doctor-$_c-domain" doctor --domain "$_dm" --json
    if grep -q "starting up" "$RESULTS/doctor/$_c.qemu.log"; then
      expect_rc "doctor --domain $_dm ($_c)" 0
      expect_has "doctor --domain $_dm" "$PP_OUT" "\"cause\": \"$5\""
    else  # libvirt refused before QEMU ran: its log has no reason, doctor says where it is
      expect_rc "doctor --domain $_dm ($_c, no QEMU)" 3
      expect_has "doctor --domain $_dm" "$PP_OUT" "stopped this start before it ran QEMU"
    fi
    pp "doctor-$_c-error" doctor --log "$RESULTS/doctor/$_c.error" --json
    expect_rc "doctor --log $_c.error" 0
    expect_has "doctor --log $_c.error" "$PP_OUT" "\"cause\": \"$5\""
    [ -z "${6:-}" ] || expect_has "doctor --log $_c.error" "$PP_OUT" "$6"
  fi
  vr "undefine-$_c" undefine "$_dm"
}
libvirt_stop() {
  [ -n "$LIBVIRTD_PID" ] || return 0
  for _dm in $(virsh -q list --name 2>/dev/null); do virsh -q destroy "$_dm" > /dev/null 2>&1; done
  kill "$LIBVIRTD_PID" 2>/dev/null; wait "$LIBVIRTD_PID" 2>/dev/null
  LIBVIRTD_PID=""
  libvirt_save final
}
