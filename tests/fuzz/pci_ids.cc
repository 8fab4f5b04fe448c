// pci.ids (src/pci/ids.*) as libpci reads it for names: any bytes, looked up for the IDs the
// input's first bytes name and for well-known ones. libpci is not instrumented, so coverage is
// pcipass's side only; what this finds is libpci calling pcipass's error handler.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "fuzz_support.h"
#include "pci/ids.h"

using namespace pcipass;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string file = "/tmp/pcipass-fuzz-pci-ids-" + std::to_string(::getpid());
  FILE* f = std::fopen(file.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  uint16_t v = size >= 2 ? static_cast<uint16_t>(data[0] | data[1] << 8) : 0x8086;
  uint16_t d = size >= 4 ? static_cast<uint16_t>(data[2] | data[3] << 8) : 0x1234;
  PciIds ids(file);
  for (uint16_t vendor : {v, uint16_t{0x10de}, uint16_t{0x8086}}) {
    (void)ids.vendor(vendor);
    (void)ids.device(vendor, d);
    (void)ids.subsystem(vendor, d, v, d);
  }
  (void)ids.class_name(0x030000);
  (void)ids.class_name(static_cast<uint32_t>(v) << 8);
  return 0;
}
