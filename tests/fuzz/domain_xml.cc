// The domain XML reader and the slot budget (src/vm/domain_xml.*): libvirt's XML is input like any
// other. Oracles: no crash, every failure an Error with a message, and a budget that adds up
// (free places ascending and distinct, as many as `free`, `remaining` never negative, and on pc
// the free and used slots of bus 0 summing to 32).
#include <algorithm>
#include <string>

#include "fuzz_support.h"
#include "vm/domain_xml.h"

using namespace pcipass;

namespace {

void check(const Result<vm::DomainPci>& r) {
  if (!r && r.error().message.empty()) fuzz::violated("parse_domain_xml: empty error message");
}

void check_budget(const vm::DomainPci& d, vm::Affect affect, int cards) {
  vm::SlotBudget b = vm::slot_budget(d, affect, cards);
  if (b.free != static_cast<int>(b.free_places.size())) fuzz::violated("free != free_places");
  if (b.remaining < 0) fuzz::violated("negative remaining");
  if (std::adjacent_find(b.free_places.begin(), b.free_places.end(),
                         [](int a, int c) { return a >= c; }) != b.free_places.end())
    fuzz::violated("free places not ascending");
  if (d.machine == vm::Machine::kPc &&
      b.free + static_cast<int>(d.root_slots.size()) != vm::kPcRootSlots)
    fuzz::violated("pc slots do not add up to 32");
  if (b.describe().empty()) fuzz::violated("empty budget description");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto d = vm::parse_domain_xml(text);
  check(d);
  if (!d) return 0;
  for (int cards : {0, 1, 40}) {
    check_budget(*d, vm::Affect::kLive, cards);
    check_budget(*d, vm::Affect::kConfig, cards);
  }
  return 0;
}
