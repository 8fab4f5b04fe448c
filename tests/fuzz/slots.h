// The files each file-slot target puts its input in: the input's first byte picks the slot
// (modulo the count), the rest is the file's contents. make_seeds writes each fixture's file
// behind its selector byte.
#pragma once

#include <cstddef>

namespace pcipass::fuzz {

// Read by `check` (src/check/check.cc, src/host/limits.cc, src/host/modules.cc).
inline constexpr const char* kCheckSlots[] = {
    "/proc/cpuinfo",
    "/proc/cmdline",
    "/proc/interrupts",
    "/proc/meminfo",
    "/proc/modules",
    "/proc/self/limits",
    "/proc/sys/kernel/osrelease",
    "/etc/default/grub",
    "/etc/kernel/cmdline",
    "/sys/firmware/acpi/tables/DMAR",
    "/sys/class/iommu/dmar0/intel-iommu/ecap",
    "/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts",
    "/etc/modprobe.d/pcipass.conf",
    "/lib/modprobe.d/50-fuzz.conf",
    "/etc/os-release",
};

// Read by the impact scan behind `plan` and `show` (src/impact/impact.cc).
inline constexpr const char* kImpactSlots[] = {
    "/proc/net/route", "/proc/net/ipv6_route", "/proc/net/fib_trie",   "/proc/net/if_inet6",
    "/proc/net/tcp",   "/proc/net/tcp6",       "/proc/self/mountinfo", "/proc/swaps",
    "/proc/mdstat",    "/proc/4242/comm",      "SSH_CONNECTION",
};

// Attributes of a device directory (src/pci/inventory.cc); a name ending in '@' is a link whose
// target is the input.
inline constexpr const char* kDeviceSlots[] = {
    "uevent",
    "vendor",
    "device",
    "subsystem_vendor",
    "subsystem_device",
    "class",
    "revision",
    "config",
    "numa_node",
    "reset_method",
    "modalias",
    "driver_override",
    "boot_vga",
    "sriov_totalvfs",
    "sriov_numvfs",
    "current_link_speed",
    "current_link_width",
    "max_link_speed",
    "max_link_width",
    "irq",
    "iommu_group@",
    "driver@",
    "physfn@",
    "virtfn0@",
    "d3cold_allowed",
    "enable",
    "resource",
    "local_cpulist",
};

template <size_t N>
constexpr size_t count(const char* const (&)[N]) {
  return N;
}

}  // namespace pcipass::fuzz
