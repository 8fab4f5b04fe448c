# intel_iommu=off: a DMAR table but no IOMMU units, no groups, no /dev/vfio
# groups; vfio-pci still loads. No pcipass needed.
# topology: full
# iommu: off
# check: --kernel-only --iommu off

dump_kernel_facts "$RESULTS/boot/kernel"
expect_eq "IOMMU units" "$(ls /sys/class/iommu | wc -l)" 0
expect_eq "IOMMU groups" "$(ls /sys/kernel/iommu_groups | wc -l)" 0
expect_eq "DMAR table" "$(ls /sys/firmware/acpi/tables/DMAR)" /sys/firmware/acpi/tables/DMAR
expect_eq "no iommu_group links" "$(ls /sys/bus/pci/devices/*/iommu_group 2>/dev/null | wc -l)" 0
modprobe vfio-pci || fail "modprobe vfio-pci"
expect_eq "/dev/vfio" "$(ls /dev/vfio | tr '\n' ' ')" "vfio "
finish
