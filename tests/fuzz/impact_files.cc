// The files the impact scan reads (what the host would lose): /proc/net/route, ipv6_route,
// fib_trie, if_inet6, tcp, tcp6, /proc/self/mountinfo, /proc/swaps, /proc/mdstat, a process's
// comm, and the SSH_CONNECTION variable (slots.h); then a plan for every device.
#include <memory>
#include <optional>

#include "assign/plan.h"
#include "fuzz_support.h"
#include "impact/impact.h"
#include "pci/groups.h"
#include "pci/inventory.h"
#include "slots.h"

using namespace pcipass;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static test::MemFs host = [] {
    test::MemFs h = fuzz::base_host();
    for (const char* p : fuzz::kImpactSlots) fuzz::make_parents(h, p);
    // The process whose comm is fuzzed holds the first device's config open.
    h.put_link("/proc/4242/fd/3", "/sys/devices/pci0000:00/0000:00:00.0/config");
    return h;
  }();
  static const Inventory inv = *Inventory::scan(host, nullptr);
  static const GroupMap groups = GroupMap::build(inv);
  std::string path = fuzz::kImpactSlots[data[0] % fuzz::count(fuzz::kImpactSlots)];
  std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  ImpactOptions options;
  std::optional<fuzz::TempFile> file;
  if (path == "SSH_CONNECTION")
    options.ssh_connection = text;
  else
    file.emplace(host, path, text);
  HostImpact impact = HostImpact::scan(host, inv, options);
  // A plan for each device the host would miss: how the uses found are shown and weighed.
  for (const auto& d : inv.devices()) {
    if (impact.uses(d.address).empty()) continue;
    (void)impact.critical_reason(d.address);
    (void)assign::make_plan(inv, groups, impact, {d.address}, {});
  }
  return 0;
}
