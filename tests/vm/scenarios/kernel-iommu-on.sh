# The harness itself: the full topology looks as the README says on a real
# kernel with intel_iommu=on, before and after creating the NVMe's VFs.
# No pcipass needed. The host checker validates the dump (kernel-only).
# topology: full
# iommu: on
# check: --kernel-only --iommu on

dump_kernel_facts "$RESULTS/boot/kernel"

expect_eq "IOMMU units" "$(ls /sys/class/iommu | tr '\n' ' ')" "dmar0 "
expect_eq "DMAR table" "$(ls /sys/firmware/acpi/tables/DMAR)" /sys/firmware/acpi/tables/DMAR

nic=$(pci_find 0x8086 0x10d3)
expect_eq "e1000e address" "$nic" 0000:00:02.0
expect_eq "e1000e driver" "$(pci_driver $nic)" e1000e
expect_eq "e1000e group size" "$(ls /sys/bus/pci/devices/$nic/iommu_group/devices | wc -l)" 1
expect_eq "e1000e carries the default route" "$(ip route | grep "^default" | grep -c "dev $(ls /sys/bus/pci/devices/$nic/net)")" 1

vga=$(pci_find 0x1234 0x1111)
hda=$(pci_find 0x8086 0x293e)
expect_eq "VGA function 0" "${vga##*.}" 0
expect_eq "HDA function 1 of the same slot" "$hda" "${vga%.0}.1"
expect_eq "VGA boot_vga" "$(cat /sys/bus/pci/devices/$vga/boot_vga)" 1
expect_eq "VGA driver" "$(pci_driver $vga)" bochs-drm
expect_eq "HDA driver" "$(pci_driver $hda)" snd_hda_intel
expect_eq "VGA and HDA share a group" "$(pci_group $hda)" "$(pci_group $vga)"
expect_eq "GPU group members" "$(ls /sys/bus/pci/devices/$vga/iommu_group/devices | tr '\n' ' ')" "$vga $hda "

br=$(pci_find 0x1b36 0x000e)
set -- $(pci_find 0x8086 0x100e)
expect_eq "two e1000" "$#" 2
for e in "$@"; do
  expect_eq "$e driver" "$(pci_driver $e)" e1000
  expect_eq "$e shares the bridge's group" "$(pci_group $e)" "$(pci_group $br)"
  expect_eq "$e behind the bridge" "$(basename "$(dirname "$(realpath /sys/bus/pci/devices/$e)")")" "$br"
done
expect_eq "bridge group size" "$(ls /sys/bus/pci/devices/$br/iommu_group/devices | wc -l)" 3

disk=$(pci_find 0x1af4 0x1042)
expect_eq "virtio-blk driver" "$(pci_driver $disk)" virtio-pci
expect_eq "root filesystem on vda" "$(awk '$2=="/"{print $1}' /proc/mounts)" /dev/vda
expect_eq "vda belongs to the virtio-blk" "$(ls /sys/bus/pci/devices/$disk/virtio*/block)" vda
expect_eq "virtio-blk behind a root port" "$(cat "$(dirname "$(realpath /sys/bus/pci/devices/$disk)")/class")" 0x060400

pf=$(pci_find 0x1b36 0x0010)
expect_eq "NVMe driver" "$(pci_driver $pf)" nvme
expect_eq "NVMe sriov_totalvfs" "$(cat /sys/bus/pci/devices/$pf/sriov_totalvfs)" 7
expect_eq "NVMe sriov_numvfs" "$(cat /sys/bus/pci/devices/$pf/sriov_numvfs)" 0
sriov_enable "$pf" 7 || fail "sriov_enable"
expect_eq "NVMe VFs" "$(ls -d /sys/bus/pci/devices/$pf/virtfn* | wc -l)" 7
groups=""
for v in /sys/bus/pci/devices/$pf/virtfn*; do
  a=$(basename "$(readlink "$v")")
  expect_eq "$a physfn" "$(basename "$(readlink /sys/bus/pci/devices/$a/physfn)")" "$pf"
  expect_eq "$a group size" "$(ls /sys/bus/pci/devices/$a/iommu_group/devices | wc -l)" 1
  groups="$groups $(pci_group $a)"
done
expect_eq "VF groups distinct" "$(echo $groups | tr ' ' '\n' | sort -u | wc -l)" 7
dump_kernel_facts "$RESULTS/vfs/kernel"
finish
