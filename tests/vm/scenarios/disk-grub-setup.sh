# Host setup on a real boot chain (issue 9): a Debian 12 disk (tests/vm/
# build-disk bios-grub) that SeaBIOS boots through its own GRUB, with
# intel_iommu=off in GRUB_CMDLINE_LINUX_DEFAULT. Boot 1: the parameter is on
# the kernel's command line, there are no IOMMU groups, `pcipass check`
# FAILs iommu-kernel; then `pcipass setup --iommu` (its own edit of
# /etc/default/grub, update-grub, verification) turns the IOMMU on, and the default entry
# of the generated grub.cfg carries intel_iommu=on; reboot through GRUB.
# Boot 2: GRUB started the kernel with intel_iommu=on (the command line is
# boot 1's with only that word changed), IOMMU groups exist, `check` PASSes
# iommu-kernel.
# disk: bios-grub
# boots: 2

G=/etc/default/grub
CFG=/boot/grub/grub.cfg
L=$RESULTS/boot-$PCIPASS_BOOT.loader
expect_has "boot $PCIPASS_BOOT" "$L" "firmware: bios"
expect_has "boot $PCIPASS_BOOT" "$L" "loader: grub"
case $PCIPASS_BOOT in
1)
  expect_cmdline intel_iommu=off yes
  expect_cmdline intel_iommu=on no
  expect_eq "IOMMU groups with intel_iommu=off" "$(iommu_group_count)" 0
  expect_check_iommu check-boot-1 FAIL
  expect_has "/etc/default/grub" "$G" 'GRUB_CMDLINE_LINUX_DEFAULT="quiet intel_iommu=off"'
  grub_default_linux "$CFG" > "$RESULTS/grub-default-before" || fail "no default entry in $CFG"
  expect_has "grub.cfg default entry (installed)" "$RESULTS/grub-default-before" intel_iommu=off

  # pcipass setup --iommu: edits /etc/default/grub, runs update-grub, verifies grub.cfg.
  if command -v pcipass >/dev/null; then
    pp setup-iommu setup --iommu
    expect_rc "setup --iommu" 0
    expect_has "setup --iommu" "$PP_OUT" "boot loader:"
    expect_has "setup --iommu" "$PP_OUT" "verified what the next boot uses"
    expect_has "$G" "$G" intel_iommu=on
    expect_not "$G" "$G" intel_iommu=off
    pp setup-iommu-again setup --iommu
    expect_rc "setup --iommu, second run" 0
    expect_has "setup --iommu, second run" "$PP_OUT" "nothing to change"
  else
    # Without a pcipass binary (kernel-only run): the hand edit users make today.
    log "no pcipass: intel_iommu=off -> on in $G, update-grub by hand"
    sed -i 's/intel_iommu=off/intel_iommu=on/' "$G"
    update-grub > "$RESULTS/update-grub.log" 2>&1 || fail "update-grub: $(tail -n 3 "$RESULTS/update-grub.log")"
  fi

  # What `setup` will verify: the entry GRUB boots next carries the parameter.
  grub_default_linux "$CFG" > "$RESULTS/grub-default-after" || fail "no default entry in $CFG"
  expect_has "grub.cfg default entry (after)" "$RESULTS/grub-default-after" intel_iommu=on
  expect_not "grub.cfg default entry (after)" "$RESULTS/grub-default-after" intel_iommu=off
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
