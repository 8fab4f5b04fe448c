# Neither intel_iommu=on nor =off: what this Debian kernel does by default.
# Debian's 6.1 kernels are built with CONFIG_INTEL_IOMMU_DEFAULT_ON_INTGPU_OFF
# (on, except for integrated Intel graphics): groups exist. If a future
# kernel changes that, this scenario says so.
# topology: minimal
# iommu: default
# check: --kernel-only

dump_kernel_facts "$RESULTS/boot/kernel"
cfg=/boot/config-$(uname -r)
if grep -qE '^CONFIG_INTEL_IOMMU_DEFAULT_ON(_INTGPU_OFF)?=y' "$cfg"; then
  log "kernel config: Intel IOMMU on by default"
  expect_eq "IOMMU units" "$(ls /sys/class/iommu | tr '\n' ' ')" "dmar0 "
  [ "$(ls /sys/kernel/iommu_groups | wc -l)" -gt 0 ] && ok "groups exist" || fail "no groups"
else
  log "kernel config: Intel IOMMU off by default"
  expect_eq "IOMMU groups" "$(ls /sys/kernel/iommu_groups | wc -l)" 0
fi
finish
