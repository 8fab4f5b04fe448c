# The snapshot round trip (see snapshot-roundtrip-iommu-on) on the full
# topology with intel_iommu=off: no groups, check fails the IOMMU lines.
# topology: full
# iommu: off
# needs: pcipass
# check: --roundtrip

need_pcipass
roundtrip boot
finish
