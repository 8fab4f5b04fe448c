# Host setup on a real boot chain (issue 9), UEFI: a Debian 12 disk (tests/vm/
# build-disk uefi-sdboot) that OVMF boots through its own systemd-boot, with
# intel_iommu=off in /etc/kernel/cmdline, and two identical NVMe
# controllers. `pcipass setup --iommu --vfio` (edit of /etc/kernel/cmdline,
# the loader entries rewritten, update-initramfs, both verified), `setup
# --early-bind` of one controller, `bind --persist` of the other, `setup
# --undo`: four boots through systemd-boot; what each boot proves is in
# tests/vm/guest/setup-proof.sh.
# disk: uefi-sdboot
# topology: two-nvme
# boots: 4

. /share/setup-proof.sh
setup_proof sdboot
