# pcipass against the kernel with intel_iommu=off: no groups; check's IOMMU
# lines FAIL with a fix that mentions intel_iommu=on.
# topology: full
# iommu: off
# needs: pcipass
# check: --iommu off

need_pcipass
capture_state boot
finish
