// pcipass doctor's reading of logs (src/doctor): a QEMU or libvirt log and the kernel log are
// whatever other software wrote, so lines of any length, NULs and bytes that are not UTF-8.
// The input is the log, then after a 0x1e byte the kernel log (as /dev/kmsg records when the
// first byte is odd, as kern.log lines otherwise), checked against a fixture host. Oracles: no
// crash, every finding explained with a fix, quoted lines cut to 300 bytes, at most 20 lines
// shown when nothing matched.
#include <string>
#include <string_view>

#include "doctor/doctor.h"
#include "fuzz_support.h"

using namespace pcipass;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  bool kmsg = data[0] & 1;
  std::string_view all(reinterpret_cast<const char*>(data) + 1, size - 1);
  size_t sep = all.find('\x1e');
  std::string_view log = all.substr(0, sep);
  std::string_view kernel =
      sep == std::string_view::npos ? std::string_view() : all.substr(sep + 1);
  doctor::KernelLog k{"/dev/kmsg", kmsg ? doctor::kmsg_lines(kernel) : doctor::split_lines(kernel)};
  const HostFs& fs = fuzz::base_host();
  doctor::Report r = doctor::diagnose_text(fs, {log, "/fuzz.log", bool(data[0] & 2)}, k);
  for (const auto& f : r.findings) {
    if (f.explanation.empty() || f.fix.empty())
      fuzz::violated("a finding without explanation or fix");
    if (f.line.size() > 300) fuzz::violated("a quoted line longer than 300 bytes");
    if (f.cause == doctor::Cause::kUnknown) fuzz::violated("a finding of no known cause");
  }
  if (!r.explained() && r.looked_at.size() > 20) fuzz::violated("more than 20 lines looked at");
  if (r.explained() && !r.looked_at.empty()) fuzz::violated("lines looked at beside a cause");
  (void)doctor::address_in(log);
  return 0;
}
