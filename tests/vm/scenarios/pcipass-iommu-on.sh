# pcipass against the kernel with intel_iommu=on: list, groups, tree, check
# and show (human and --json) compared with the kernel's sysfs and config
# space by tests/vm/check, at boot and again after creating the NVMe's 7 VFs
# (SR-IOV PF/VF links, one group per VF). check's IOMMU lines must PASS.
# topology: full
# iommu: on
# needs: pcipass
# quick: yes
# check: --iommu on

need_pcipass
capture_state boot
pf=$(pci_find 0x1b36 0x0010)
sriov_enable "$pf" 7 || fail "creating VFs on $pf"
capture_state vfs
finish
