# Host setup on a real boot chain (issue 9), BIOS: a Debian 12 disk (tests/vm/
# build-disk bios-grub) that SeaBIOS boots through its own GRUB, with
# intel_iommu=off in GRUB_CMDLINE_LINUX_DEFAULT, and two identical NVMe
# controllers. `pcipass setup --iommu --vfio` (edit of /etc/default/grub,
# update-grub, update-initramfs, both verified), `setup --early-bind` of one
# controller, `bind --persist` of the other, `setup --undo`: four boots
# through GRUB; what each boot proves is in tests/vm/guest/setup-proof.sh.
# disk: bios-grub
# topology: two-nvme
# boots: 4

. /share/setup-proof.sh
setup_proof grub
