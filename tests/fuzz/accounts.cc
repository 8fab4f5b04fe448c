// /etc/passwd and /etc/group (src/assign/accounts.*), read for `bind --owner USER[:GROUP]`: the
// input is the two files and the argument.
#include <string_view>

#include "assign/accounts.h"
#include "fuzz_support.h"
#include "host_codec.h"

using namespace pcipass;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  test::MemFs host;
  host.put_file("/etc/passwd", test::take_string(in));
  host.put_file("/etc/group", test::take_string(in));
  (void)assign::resolve_owner(host, test::take_string(in));
  return 0;
}
