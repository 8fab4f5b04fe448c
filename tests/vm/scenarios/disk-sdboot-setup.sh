# Host setup on a real boot chain (issue 9), UEFI: a Debian 12 disk
# (tests/vm/build-disk uefi-sdboot) that OVMF boots through its own
# systemd-boot, with intel_iommu=off in /etc/kernel/cmdline. Boot 1: the
# parameter is on the kernel's command line, no IOMMU groups, `pcipass
# check` FAILs iommu-kernel; then the STAND-IN for `pcipass setup --iommu`
# (sed on /etc/kernel/cmdline + kernel-install add, which rewrites the loader
# entry on the ESP) turns it on, and the entry systemd-boot booted (and
# boots next) carries intel_iommu=on; reboot through OVMF and systemd-boot.
# Boot 2: the kernel has intel_iommu=on (the command line is boot 1's with
# only that word changed), IOMMU groups exist, `check` PASSes iommu-kernel.
# disk: uefi-sdboot
# boots: 2

K=/etc/kernel/cmdline
L=$RESULTS/boot-$PCIPASS_BOOT.loader
expect_has "boot $PCIPASS_BOOT" "$L" "firmware: uefi"
expect_has "boot $PCIPASS_BOOT" "$L" "loader: systemd-boot"
E=$(sdboot_entry) || fail "no loader entry for LoaderEntrySelected ($(grep '^entry:' "$L"))"
case $PCIPASS_BOOT in
1)
  expect_cmdline intel_iommu=off yes
  expect_cmdline intel_iommu=on no
  expect_eq "IOMMU groups with intel_iommu=off" "$(iommu_group_count)" 0
  expect_check_iommu check-boot-1 FAIL
  expect_has "$K" "$K" intel_iommu=off
  grep '^options' "$E" > "$RESULTS/entry-before"
  expect_has "loader entry ${E##*/} (installed)" "$RESULTS/entry-before" intel_iommu=off

  # --- STAND-IN for `pcipass setup --iommu` (issue 9): swap in the command
  # once it exists; the checks around it stay. ---
  log "stand-in: intel_iommu=off -> on in $K, kernel-install add"
  sed -i 's/intel_iommu=off/intel_iommu=on/' "$K"
  kernel-install add "$(uname -r)" "/boot/vmlinuz-$(uname -r)" "/boot/initrd.img-$(uname -r)" \
    > "$RESULTS/kernel-install.log" 2>&1 || fail "kernel-install: $(tail -n 3 "$RESULTS/kernel-install.log")"
  # --- end of the stand-in ---

  # What `setup` will verify: the entry systemd-boot boots next carries it.
  grep '^options' "$E" > "$RESULTS/entry-after"
  expect_has "loader entry ${E##*/} (after)" "$RESULTS/entry-after" intel_iommu=on
  expect_not "loader entry ${E##*/} (after)" "$RESULTS/entry-after" intel_iommu=off
  bootctl list --no-pager > "$RESULTS/bootctl-list" 2>&1
  ;;
2)
  expect_cmdline intel_iommu=on yes
  expect_cmdline intel_iommu=off no
  expect_eq "boot 2's command line = boot 1's with intel_iommu=on" \
    "$(cat "$RESULTS/cmdline-boot-2")" "$(sed 's/intel_iommu=off/intel_iommu=on/' "$RESULTS/cmdline-boot-1")"
  _g=$(iommu_group_count)
  if [ "$_g" -gt 0 ]; then ok "$_g IOMMU groups with intel_iommu=on"; else fail "no IOMMU groups with intel_iommu=on"; fi
  expect_check_iommu check-boot-2 PASS
  ;;
esac
finish
