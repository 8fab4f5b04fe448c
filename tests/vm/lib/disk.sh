# Shared helpers for the disk guests (tests/vm/build-disk, tests/vm/run-disk;
# sourced after lib/common.sh).
# shellcheck shell=bash

DISK_KINDS="bios-grub uefi-sdboot"
# Debian's ovmf package (the 4 MiB build; no Secure Boot, so no SMM needed).
OVMF_CODE=${PCIPASS_VM_OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}
OVMF_VARS=${PCIPASS_VM_OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}

disk_check_kind() {
  case " $DISK_KINDS " in *" $1 "*) ;; *) vm_die "disk kind '$1': one of $DISK_KINDS" ;; esac
}

# disk_qemu KIND DISK FORMAT VARS: the QEMU command for a disk guest into the
# array QD: the machine of tests/vm/run (q35, TCG, VT-d with interrupt
# remapping, -smp 1), the firmware (SeaBIOS, QEMU's default, for bios-grub;
# OVMF's code read-only + the writable VARS copy for uefi-sdboot) and DISK
# as the first virtio disk behind a root port at 00:01.0, as in
# topologies/base. The caller adds the rest (share, -kernel for the install
# boot, -no-reboot, serial).
disk_qemu() {
  local kind=$1 disk=$2 fmt=$3 vars=$4
  QD=(qemu-system-x86_64
    -machine q35,accel=tcg,kernel-irqchip=split -cpu max
    -smp "${PCIPASS_VM_SMP:-1}" -m "${PCIPASS_VM_MEM:-1024}"
    -nodefaults -no-user-config -display none)
  if [ "$kind" = uefi-sdboot ]; then
    [ -r "$OVMF_CODE" ] || vm_die "no $OVMF_CODE (apt-get install ovmf)"
    QD+=(-drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE"
         -drive "if=pflash,format=raw,unit=1,file=$vars")
  fi
  QD+=(-device intel-iommu,intremap=on
       -device pcie-root-port,id=rp_disk,bus=pcie.0,addr=0x1,chassis=1,slot=1
       -drive "file=$disk,if=none,id=rootdisk,format=$fmt,cache=unsafe"
       -device virtio-blk-pci,drive=rootdisk,bus=rp_disk,addr=0x0,serial=pcipass-root,bootindex=1)
}

# disk_share_args SHARE: the 9p share of tests/vm/run (mount_tag host) into QD
disk_share_args() {
  QD+=(-fsdev "local,id=sharefs,path=$1,security_model=none"
       -device virtio-9p-pci,fsdev=sharefs,mount_tag=host,bus=pcie.0,addr=0x3)
}

# disk_console_run LOG TIMEOUT CMD...: runs CMD (QEMU with -serial stdio) under
# timeout; its console goes to LOG and, each line with the seconds since the
# start, to LOG.ts (bash's clock: no fork per line). -v (VERBOSE=1) also
# streams it to stderr. Returns the command's status (124/137: timed out).
disk_console_run() {
  local log=$1 to=$2; shift 2
  local t0=$EPOCHREALTIME line
  : > "$log"; : > "$log.ts"
  set +e
  timeout -k 10 "$to" "$@" </dev/null 2>&1 | {
    while IFS= read -r line || [ -n "$line" ]; do
      line=${line%$'\r'}
      printf '%s\n' "$line" >> "$log"
      printf '%.2f %s\n' "$(( ${EPOCHREALTIME/./} - ${t0/./} ))e-6" "$line" >> "$log.ts"
      [ "${VERBOSE:-0}" = 1 ] && printf '%s\n' "$line" >&2
    done
  }
  local rc=${PIPESTATUS[0]}
  set -e
  return "$rc"
}
