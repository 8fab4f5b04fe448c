// Device arguments and addresses (src/pci/address.*): every form a user types, every sysfs name
// and path. Oracles: a parsed address prints and parses back to itself, in both spellings.
#include <string_view>

#include "fuzz_support.h"
#include "pci/address.h"
#include "pci/inventory.h"

using namespace pcipass;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto a = parse_address(text)) {
    auto again = parse_address(a->str());
    if (!again || *again != *a) fuzz::violated("parse_address(str()) differs for " + a->str());
    auto libvirt = parse_address(a->libvirt_name());
    if (!libvirt || *libvirt != *a) fuzz::violated("libvirt name round trip for " + a->str());
  }
  if (auto s = parse_selector(text); s && std::holds_alternative<IdPattern>(*s)) {
    const auto& id = std::get<IdPattern>(*s);
    auto again = parse_selector(id.str());
    if (!again || *again != *s) fuzz::violated("parse_selector(str()) differs for " + id.str());
  }
  (void)addresses_in_path(text);
  (void)parse_hex(text, 8);
  static const Inventory inv = *Inventory::scan(fuzz::base_host(), nullptr);
  (void)inv.select(std::string(text));
  return 0;
}
