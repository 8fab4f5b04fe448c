// The files `check` reads: /proc/cpuinfo, cmdline, interrupts, meminfo, modules, self/limits, the
// boot loader's command line, ACPI DMAR, the IOMMU's ecap, modprobe.d (slots.h), through the
// library: the module index, every check, the memlock limit.
#include <string_view>

#include "assign/assign.h"
#include "check/check.h"
#include "fuzz_support.h"
#include "host/limits.h"
#include "host/modules.h"
#include "slots.h"

using namespace pcipass;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static test::MemFs host = [] {
    test::MemFs h = fuzz::base_host("intel-workstation");  // a smaller /proc/cpuinfo
    for (const char* p : fuzz::kCheckSlots) fuzz::make_parents(h, p);
    return h;
  }();
  const char* path = fuzz::kCheckSlots[data[0] % fuzz::count(fuzz::kCheckSlots)];
  fuzz::TempFile file(host, path, std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
  // The limit and the module list have readers of their own: only they run for those files.
  if (std::string_view(path) == "/proc/self/limits") {
    (void)read_memlock_limit(host);
    (void)assign::memlock_warning(host);
    return 0;
  }
  auto modules = ModuleIndex::open(host);
  (void)modules->state("vfio_pci");
  if (std::string_view(path) != "/proc/modules") (void)run_checks(host, *modules);
  return 0;
}
