// The kernel command line (src/host/cmdline.*): /proc/cmdline, GRUB_CMDLINE_LINUX, and the IOMMU
// settings read from it. Oracle: the documented round trip, parse(str()) gives the same
// parameters back.
#include <string_view>

#include "fuzz_support.h"
#include "host/cmdline.h"

using namespace pcipass;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  KernelCmdline c = KernelCmdline::parse(text);
  (void)iommu_settings(c);
  (void)c.options("intel_iommu");
  (void)c.values("vfio-pci.ids");
  if (!c.params().empty()) (void)parse_kernel_bool(c.params().back().second.value_or(""));
  // A parameter no spelling can carry (a key holding a quote and white space) is an error of
  // str(); any text it does give must parse back to the same parameters.
  if (auto text_again = c.str()) {
    KernelCmdline again = KernelCmdline::parse(*text_again);
    if (again.params() != c.params()) fuzz::violated("parse(str()) changed the parameters");
  }
  if (!c.params().empty()) {
    KernelCmdline edited = c;
    edited.set(c.params().front().first, "x");
    edited.remove(c.params().back().first);
  }
  return 0;
}
