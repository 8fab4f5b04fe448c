// A device's sysfs attributes (src/pci/inventory.cc): uevent, IDs, class, config, numa_node,
// reset_method, SR-IOV and link attributes, and the iommu_group, driver, physfn and virtfn links
// (slots.h). The input is records of (device byte, attribute byte, contents), applied to the
// devices of a fixture; then the inventory, every device's details and the IOMMU groups.
#include <string_view>

#include "fuzz_support.h"
#include "host/modules.h"
#include "host_codec.h"
#include "pci/groups.h"
#include "pci/inventory.h"
#include "slots.h"

using namespace pcipass;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A host of 16 devices with IOMMU groups: each input scans them all.
  static const auto devices = *fuzz::base_host("intel-workstation").list(kPciDevicesDir);
  fuzz::ScratchHost scratch("intel-workstation");
  test::MemFs& host = scratch.fs();
  std::string_view in(reinterpret_cast<const char*>(data), size);
  for (int records = 0; in.size() >= 2 && records < 64; ++records) {
    const std::string& dev = devices[static_cast<uint8_t>(in[0]) % devices.size()];
    std::string attr =
        fuzz::kDeviceSlots[static_cast<uint8_t>(in[1]) % fuzz::count(fuzz::kDeviceSlots)];
    in.remove_prefix(2);
    std::string contents = test::take_string(in);
    auto resolved = host.resolve(std::string(kPciDevicesDir) + "/" + dev);
    if (!resolved) continue;
    const std::string& dir = *resolved;
    if (attr.ends_with('@')) {
      attr.pop_back();
      host.put_link(dir + "/" + attr, contents);
    } else {
      host.put_file(dir + "/" + attr, contents);
    }
  }
  auto inv = Inventory::scan(host, nullptr);
  if (!inv) return 0;
  auto modules = ModuleIndex::open(host);
  for (auto& d : inv->devices()) inv->load_details(host, d, modules.get());
  (void)GroupMap::build(*inv);
  return 0;
}
