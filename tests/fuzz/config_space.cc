// Config space (src/pci/config_space.*): the sysfs `config` file, any size, any bytes.
// Oracles: every capability lies inside the bytes given, and nothing is read beyond them.
#include <string_view>
#include <vector>

#include "fuzz_support.h"
#include "pci/config_space.h"

using namespace pcipass;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A copy of exactly `size` bytes on the heap (a string would add its terminator): ASan sees any
  // read past the end.
  std::vector<char> bytes(data, data + size);
  auto c = parse_config_space(std::string_view(bytes.data(), bytes.size()));
  if (!c) return 0;
  for (const auto& cap : c->capabilities)
    if (cap.offset >= size) fuzz::violated("capability at an offset beyond the bytes read");
  (void)c->find(false, 0x10);
  if (c->acs) (void)c->acs->isolates();
  return 0;
}
