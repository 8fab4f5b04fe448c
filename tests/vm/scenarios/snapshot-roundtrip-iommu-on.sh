# Every read command (--json) gives the same answer on `pcipass snapshot`
# of this host (extracted, --root) as live: full topology with the IOMMU on,
# at boot and again with the NVMe's 7 VFs. Compared on the host by
# tests/vm/check --roundtrip (volatile fields: VOLATILE in check.py).
# topology: full
# iommu: on
# needs: pcipass
# check: --roundtrip

need_pcipass
roundtrip boot
pf=$(pci_find 0x1b36 0x0010)
sriov_enable "$pf" 7 || fail "creating VFs on $pf"
roundtrip vfs
finish
