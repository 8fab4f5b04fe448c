# pcipass bind of the virtio-blk disk holding the mounted root filesystem is
# refused with the reason (also with --with-group, and in plan --json as a
# host-critical refusal); nothing is written and the disk keeps working.
# topology: full
# iommu: on
# needs: pcipass

need_pcipass
disk=$(pci_find 0x1af4 0x1042)
[ -n "$disk" ] || { fail "no virtio-blk (1af4:1042)"; finish; }
blk=$(ls -d /sys/bus/pci/devices/$disk/virtio*/block/* 2>/dev/null | head -n1); blk=${blk##*/}
expect_eq "root filesystem device" "$(awk '$2 == "/" && $1 ~ /^\/dev\// {print $1}' /proc/mounts)" "/dev/$blk"
drv=$(pci_driver "$disk")
expect_eq "$disk driver" "$drv" virtio-pci

pp bind bind "$disk"
expect_rc "bind $disk" 1
expect_has "bind $disk" "$PP_ERR" "refusing to bind: $disk holds the root filesystem (/ on $blk)"
expect_has "bind $disk" "$PP_ERR" "--force"
pp bind-group bind --with-group "$disk"
expect_rc "bind --with-group $disk" 1
expect_has "bind --with-group $disk" "$PP_ERR" "holds the root filesystem (/ on $blk)"
pp plan plan "$disk" --json
expect_rc "plan $disk" 1
json_flat "$PP_OUT" > "$RESULTS/plan.flat"
expect_has "plan --json" "$RESULTS/plan.flat" "verdict=refused"
expect_has "plan --json" "$RESULTS/plan.flat" "refusals.0.id=host-critical"
expect_has "plan --json" "$RESULTS/plan.flat" "refusals.0.message=$disk holds the root filesystem (/ on $blk)"
expect_dev "$disk" virtio-pci "(null)"
expect_clean refused
# the root filesystem still works
echo pcipass > /root/probe && sync && expect_eq "root fs writable" "$(cat /root/probe)" pcipass
finish
