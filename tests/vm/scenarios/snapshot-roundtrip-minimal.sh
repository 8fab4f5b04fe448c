# The snapshot round trip (see snapshot-roundtrip-iommu-on) on the minimal
# topology (q35 chipset, root disk, share) with the IOMMU on.
# topology: minimal
# iommu: on
# needs: pcipass
# quick: yes
# check: --roundtrip

need_pcipass
roundtrip boot
finish
