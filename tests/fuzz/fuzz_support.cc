#include "fuzz_support.h"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>

#include "host_codec.h"

namespace pcipass::fuzz {

const test::MemFs& base_host(const std::string& name) {
  static std::map<std::string, std::unique_ptr<test::MemFs>> hosts;
  auto& slot = hosts[name];
  if (!slot) {
    slot = std::make_unique<test::MemFs>("/fuzz");
    test::decode_host(test::encode_host(PCIPASS_SOURCE_DIR "/tests/fixtures/hosts/" + name), *slot);
  }
  return *slot;
}

void violated(const std::string& what) {
  std::fprintf(stderr, "oracle violated: %s\n", what.c_str());
  std::abort();
}

}  // namespace pcipass::fuzz
