// mtty, linux's sample mdev parent, on the sysfs double: the parent the mdev tests (types, create,
// remove, start-parent) share, with the UUIDs they create.
#pragma once

#include <cerrno>
#include <string>

#include "fake_kernel.h"
#include "temp_tree.h"

namespace pcipass::test {

inline const std::string kParentDev = "/sys/devices/virtual/mtty/mtty";
inline const std::string kTypes = "/sys/class/mdev_bus/mtty/mdev_supported_types";
inline const std::string kU1 = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001";
inline const std::string kU2 = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1002";

// mtty as linux's sample driver registers it: mtty-1 (one port) and mtty-2 (two ports).
inline void mtty(FakeKernel& k, TempTree& t) {
  t.dir("/sys/bus/mdev/drivers/vfio_mdev");
  k.mdev_parent("mtty", kParentDev,
                {{"mtty-1", "Single port serial", "", "vfio-pci", 2, ENOSPC},
                 {"mtty-2", "Dual port serial", "", "vfio-pci", 1, ENOSPC}});
}

}  // namespace pcipass::test
