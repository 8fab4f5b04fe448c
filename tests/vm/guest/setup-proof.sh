# The real-kernel proof of `pcipass setup` (issue 9) on a Debian 12 disk guest
# that boots through its own boot loader (tests/vm/run-disk), shared by the
# GRUB and the systemd-boot scenario: `setup_proof grub|sdboot` on each of 4
# boots, topology two-nvme (two identical NVMe controllers, A and B; boot 1
# lists their host driver nvme in /etc/initramfs-tools/modules, as a host
# booting from NVMe would, so it loads inside the initramfs). Sourced after
# lib.sh (run-disk puts it in the share).
#
# Boot 1 (intel_iommu=off in the loader's file): `check` FAILs the IOMMU;
#   --early-bind is refused while the IOMMU is off (nothing written); `setup
#   --iommu --vfio --dry-run` shows diffs and argv and writes nothing; `setup
#   --iommu --vfio` edits the loader's file, runs the loader's regeneration
#   and update-initramfs, verifies both; a second run changes nothing.
# Boot 2: the command line is boot 1's with only intel_iommu=on; `check`
#   PASSes; vfio-pci was loaded inside the initramfs (the kernel's VFIO line
#   comes before systemd's first); `setup --early-bind A` (udev rule, softdep,
#   the rule in the initramfs); `bind --persist B`.
# Boot 3: A is on vfio-pci and nvme never probed it (no "nvme ... pci
#   function A" in the kernel log) while B's twin is told apart; B is on
#   vfio-pci before any login (pcipass-apply.service, `status` matches);
#   then `setup --undo` twice (newest change set first) and `undo` of the
#   bind: every file setup or persist touched is byte for byte as on boot 1,
#   the initramfs has no vfio.
# Boot 4: the original state: boot 1's command line, the IOMMU off, vfio not
#   loaded, both controllers on nvme.

SP_REC=/var/lib/pcipass-vm-test
# What setup and persist may write, and what they must leave as they found.
SP_WATCH="/etc/default /etc/kernel /etc/initramfs-tools /etc/modules /etc/modules-load.d
  /etc/modprobe.d /etc/udev/rules.d /etc/pcipass /etc/systemd/system"

sp_hashes() {  # every file and link under the watched paths, with its bytes' hash
  for _p in $SP_WATCH; do
    [ -e "$_p" ] || continue
    find "$_p" \( -type f -o -type l \) -print 2>/dev/null
  done | sort | while read -r _f; do
    if [ -L "$_f" ]; then echo "$_f -> $(readlink "$_f")"; else echo "$_f $(sha256sum < "$_f" | cut -c1-16)"; fi
  done
}
sp_initrd() { echo "/boot/initrd.img-$(uname -r)"; }
sp_initrd_list() { lsinitramfs "$(sp_initrd)" > "$RESULTS/initrd-$1" 2>&1 || fail "lsinitramfs $(sp_initrd)"; }
# sp_nvme_probed ADDR: the kernel log shows nvme probing ADDR.
sp_nvme_probed() { grep -q "nvme nvme[0-9]*: pci function $1" "$RESULTS/dmesg-now"; }
sp_loader_file() { if [ "$1" = grub ]; then echo /etc/default/grub; else echo /etc/kernel/cmdline; fi; }
# What the next boot uses: GRUB's default entry, or the systemd-boot entry it booted.
sp_next_boot() {
  if [ "$1" = grub ]; then
    grub_default_linux /boot/grub/grub.cfg
  else
    _e=$(sdboot_entry) && grep '^options' "$_e"
  fi
}
# sp_in_initramfs WHAT REGEX: the kernel log's first line matching REGEX comes
# before systemd's first line (systemd starts only after the switch to the root).
sp_in_initramfs() {
  _l=$(grep -m1 -n "$2" "$RESULTS/dmesg-now" | cut -d: -f1)
  _s=$(grep -m1 -n "systemd\[1\]" "$RESULTS/dmesg-now" | cut -d: -f1)
  if [ -n "$_l" ] && [ -n "$_s" ] && [ "$_l" -lt "$_s" ]; then
    ok "$1 inside the initramfs (kernel log line $_l, systemd's first $_s)"
  else
    fail "$1 not inside the initramfs (kernel log line '$_l', systemd's first '$_s')"
  fi
}
sp_change_id() { sed -n 's/.*pcipass undo \([^ `]*\).*/\1/p' "$1" | head -n1; }

setup_proof() {
  need_pcipass
  _lf=$(sp_loader_file "$1")
  expect_has "boot $PCIPASS_BOOT" "$RESULTS/boot-$PCIPASS_BOOT.loader" \
    "$([ "$1" = grub ] && echo "firmware: bios" || echo "firmware: uefi")"
  expect_has "boot $PCIPASS_BOOT" "$RESULTS/boot-$PCIPASS_BOOT.loader" \
    "$([ "$1" = grub ] && echo "loader: grub" || echo "loader: systemd-boot")"
  A=$(pci_find 0x1b36 0x0010 | sed -n 1p) B=$(pci_find 0x1b36 0x0010 | sed -n 2p)
  [ -n "$A" ] && [ -n "$B" ] || { fail "want two NVMe controllers (1b36:0010; topology two-nvme): '$A' '$B'"; finish; }
  dmesg > "$RESULTS/dmesg-now"
  sp_next_boot "$1" > "$RESULTS/next-boot-$PCIPASS_BOOT-start" || fail "no entry for the next boot"
  case $PCIPASS_BOOT in
    1) sp_boot1 "$1" ;;
    2) sp_boot2 "$1" ;;
    3) sp_boot3 "$1" ;;
    4) sp_boot4 "$1" ;;
  esac
  finish
}

sp_boot1() {
  [ -e "$SP_REC" ] && fail "$SP_REC exists on the first boot: the disk is not pristine"
  mkdir -p "$SP_REC"
  expect_cmdline intel_iommu=off yes
  expect_eq "IOMMU groups with intel_iommu=off" "$(iommu_group_count)" 0
  expect_check_iommu check-boot-1 FAIL
  expect_dev "$A" nvme "(null)"
  expect_dev "$B" nvme "(null)"
  expect_has "next boot (installed)" "$RESULTS/next-boot-1-start" intel_iommu=off
  # The host's own configuration, not pcipass's: its NVMe driver in the initramfs (as on a host
  # that boots from NVMe; the disk is built with MODULES=dep), so early binding must win against a
  # host driver loaded inside the initramfs. setup's update-initramfs puts it in the image.
  grep -qx nvme /etc/initramfs-tools/modules || echo nvme >> /etc/initramfs-tools/modules
  sp_hashes > "$SP_REC/etc-before"
  cp "$_lf" "$SP_REC/loader-file-before"
  sp_initrd_list before
  expect_not "initramfs (installed)" "$RESULTS/initrd-before" vfio-pci.ko

  pp early-off setup --early-bind "$A"
  expect_rc "setup --early-bind with the IOMMU off" 1
  expect_has "setup --early-bind with the IOMMU off" "$PP_ERR" "while the IOMMU is off"
  pp dry setup --iommu --vfio --dry-run
  expect_rc "setup --iommu --vfio --dry-run" 0
  expect_has "dry run" "$PP_OUT" "+++ b$_lf"
  expect_has "dry run" "$PP_OUT" "update-initramfs"
  sp_hashes > "$RESULTS/etc-after-dry"
  cmp -s "$SP_REC/etc-before" "$RESULTS/etc-after-dry" && ok "--dry-run and the refusal wrote nothing" ||
    fail "--dry-run or the refusal changed files: $(diff "$SP_REC/etc-before" "$RESULTS/etc-after-dry" | tr '\n' '|')"

  pp setup setup --iommu --vfio
  expect_rc "setup --iommu --vfio" 0
  expect_has "setup" "$PP_OUT" "verified what the next boot uses"
  expect_has "setup" "$PP_OUT" "initramfs-tools:"
  expect_has "$_lf" "$_lf" intel_iommu=on
  expect_not "$_lf" "$_lf" intel_iommu=off
  sp_change_id "$PP_OUT" > "$SP_REC/setup-1"
  sp_next_boot "$1" > "$RESULTS/next-boot-1-after" || fail "no entry for the next boot"
  expect_has "next boot (after setup)" "$RESULTS/next-boot-1-after" intel_iommu=on
  expect_not "next boot (after setup)" "$RESULTS/next-boot-1-after" intel_iommu=off
  sp_initrd_list after
  expect_has "initramfs (after setup)" "$RESULTS/initrd-after" vfio-pci.ko
  expect_has "initramfs (after setup): the host driver of A and B" "$RESULTS/initrd-after" nvme.ko
  pp again setup --iommu --vfio
  expect_rc "setup --iommu --vfio, second run" 0
  expect_has "second run" "$PP_OUT" "nothing to change"
  sync
}

sp_boot2() {
  expect_cmdline intel_iommu=on yes
  expect_eq "boot 2's command line = boot 1's with intel_iommu=on" \
    "$(cat "$RESULTS/cmdline-boot-2")" "$(sed 's/intel_iommu=off/intel_iommu=on/' "$RESULTS/cmdline-boot-1")"
  _g=$(iommu_group_count)
  [ "$_g" -gt 0 ] && ok "$_g IOMMU groups" || fail "no IOMMU groups with intel_iommu=on"
  expect_check_iommu check-boot-2 PASS
  # vfio-pci from the initramfs: the kernel's VFIO line comes before the
  # first line of systemd, which starts only after the switch to the root.
  [ -d /sys/module/vfio_pci ] && ok "vfio_pci is loaded" || fail "vfio_pci is not loaded"
  sp_in_initramfs "vfio loaded" "VFIO - User Level meta-driver"
  expect_dev "$A" nvme "(null)"

  pp early setup --early-bind "$A"
  expect_rc "setup --early-bind $A" 0
  expect_has "setup --early-bind" "$PP_OUT" "$A set for early binding to vfio-pci"
  expect_has "udev rule" /etc/udev/rules.d/05-pcipass-vfio.rules "$A"
  expect_not "udev rule" /etc/udev/rules.d/05-pcipass-vfio.rules "$B"
  expect_has "softdep" /etc/modprobe.d/pcipass.conf "softdep nvme pre: vfio-pci"
  sp_initrd_list early
  expect_has "initramfs (early bind)" "$RESULTS/initrd-early" 05-pcipass-vfio.rules
  sp_change_id "$PP_OUT" > "$SP_REC/setup-2"

  pp bind bind --persist "$B"
  expect_rc "bind --persist $B" 0
  expect_dev "$B" vfio-pci vfio-pci
  sp_change_id "$PP_OUT" > "$SP_REC/bind"
  sync
}

sp_boot3() {
  # A: the rule gave it to vfio-pci before nvme could probe it, its twin B
  # was not matched by the rule (B's host driver probed it, then the boot
  # unit took it).
  expect_dev "$A" vfio-pci vfio-pci
  sp_nvme_probed "$A" && fail "nvme probed $A: early binding lost the race" || ok "nvme never probed $A"
  # B shows the race was real: nvme, from the initramfs, probed it before systemd started.
  sp_in_initramfs "nvme probed $B" "nvme nvme[0-9]*: pci function $B"
  expect_dev "$B" vfio-pci vfio-pci
  journalctl -b -u pcipass-apply.service --no-pager > "$RESULTS/apply-unit" 2>&1
  expect_has "pcipass-apply.service" "$RESULTS/apply-unit" "bound $B to vfio-pci"
  pp status status --json
  expect_rc "status" 0
  expect_has "status --json" "$PP_OUT" "\"all_match\": true"
  json_flat "$PP_OUT" > "$RESULTS/status-flat"
  expect_has "status --json: A, early-bound" "$RESULTS/status-flat" "early_bind.devices.0.address=$A"
  expect_has "status --json: A, early-bound" "$RESULTS/status-flat" "early_bind.devices.0.state=matches"
  pp check check
  expect_not "check" "$PP_OUT" "lost the race"

  pp undo-early setup --undo
  expect_rc "setup --undo (early binding)" 0
  expect_has "setup --undo" "$PP_OUT" "$(cat "$SP_REC/setup-2")"
  pp undo-setup setup --undo
  expect_rc "setup --undo (IOMMU and vfio)" 0
  expect_has "setup --undo" "$PP_OUT" "$(cat "$SP_REC/setup-1")"
  pp undo-bind undo "$(cat "$SP_REC/bind")"
  expect_rc "undo of bind --persist" 0
  pp undo-none setup --undo
  expect_rc "setup --undo with nothing left" 2
  expect_has "setup --undo with nothing left" "$PP_ERR" "no applied setup change set to undo"
  cmp -s "$_lf" "$SP_REC/loader-file-before" && ok "$_lf byte for byte as before setup" ||
    fail "$_lf differs from boot 1's: $(diff "$SP_REC/loader-file-before" "$_lf" | tr '\n' '|')"
  sp_hashes > "$RESULTS/etc-after-undo"
  cmp -s "$SP_REC/etc-before" "$RESULTS/etc-after-undo" && ok "every watched file as on boot 1" ||
    fail "files differ from boot 1's: $(diff "$SP_REC/etc-before" "$RESULTS/etc-after-undo" | tr '\n' '|')"
  sp_next_boot "$1" > "$RESULTS/next-boot-3-after" || fail "no entry for the next boot"
  expect_has "next boot (after undo)" "$RESULTS/next-boot-3-after" intel_iommu=off
  sp_initrd_list undone
  expect_not "initramfs (after undo)" "$RESULTS/initrd-undone" vfio-pci.ko
  expect_not "initramfs (after undo)" "$RESULTS/initrd-undone" 05-pcipass-vfio.rules
  sync
}

sp_boot4() {
  expect_eq "boot 4's command line = boot 1's" "$(cat "$RESULTS/cmdline-boot-4")" "$(cat "$RESULTS/cmdline-boot-1")"
  expect_eq "IOMMU groups" "$(iommu_group_count)" 0
  expect_check_iommu check-boot-4 FAIL
  [ -d /sys/module/vfio_pci ] && fail "vfio_pci is loaded after the undo" || ok "vfio_pci is not loaded"
  expect_dev "$A" nvme "(null)"
  expect_dev "$B" nvme "(null)"
}
