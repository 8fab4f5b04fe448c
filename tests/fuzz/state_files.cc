// The files pcipass reads back after it or another tool wrote them, and the one a user hands it:
// the desired-state file of `apply FILE` (src/desired, yaml-cpp), the persisted assignments
// (src/persist), mdevctl definitions (src/mdev), pcipass's early-binding udev rules
// (src/setup/early_bind), Boot Loader Specification entries with grubenv's $kernelopts
// (src/boot/common: grubby, systemd-boot) and kernelstub's configuration (src/boot/kernelstub).
// The first byte picks the file; for BLS, the bytes after a 0x1e are grubenv. Oracles: every
// failure an Error with a message; what parses is written the way pcipass writes it and parses back
// to the same bytes (assignments, mdev definitions, udev rules); no input hangs (libFuzzer's
// -timeout).
#include <string>

#include "boot/common.h"
#include "boot/loader.h"
#include "desired/desired_file.h"
#include "fuzz_support.h"
#include "mdev/mdev.h"
#include "persist/assignments.h"
#include "setup/early_bind.h"

using namespace pcipass;

namespace {

void no_silent_error(const Error& e, const char* what) {
  if (e.message.empty()) fuzz::violated(std::string(what) + ": an error without a message");
}

void desired_file(const std::string& text) {
  auto s = desired::parse_state(text, "host.yaml");
  if (!s) no_silent_error(s.error(), "desired-state file");
}

void assignments(const std::string& text) {
  auto a = persist::parse_assignments(text, persist::kAssignmentsPath);
  if (!a) return no_silent_error(a.error(), "assignments");
  std::string written = persist::render_assignments(*a);
  auto again = persist::parse_assignments(written, persist::kAssignmentsPath);
  if (!again)
    fuzz::violated("assignments: what pcipass writes does not parse: " + again.error().message);
  if (persist::render_assignments(*again) != written)
    fuzz::violated("assignments: written, read and written again, they differ");
}

void mdev_definition(const std::string& text) {
  const std::string parent = "0000:00:02.0", uuid = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001";
  auto d = mdev::parse_config(text, parent, uuid);
  if (!d) return no_silent_error(d.error(), "mdev definition");
  std::string written = mdev::config_text(*d);
  auto again = mdev::parse_config(written, parent, uuid);
  if (!again) fuzz::violated("mdev: what pcipass writes does not parse: " + again.error().message);
  if (mdev::config_text(*again) != written)
    fuzz::violated("mdev: written, read and written again, they differ");
}

void udev_rules(const std::string& text) {
  for (const auto& r : setup::parse_udev_rules(text)) {
    if (!r.vendor || !r.device) continue;
    auto again = setup::parse_udev_rules(setup::udev_rule_line(r.address, *r.vendor, *r.device));
    if (again.size() != 1 || again[0].address != r.address || again[0].vendor != r.vendor ||
        again[0].device != r.device)
      fuzz::violated("udev rules: a rule pcipass writes does not read back as itself");
  }
}

void bls_entries(const std::string& text) {
  auto cut = text.find('\x1e');
  test::MemFs fs;
  fs.put_file("/boot/loader/entries/a.conf", text.substr(0, cut));
  if (cut != std::string::npos) fs.put_file("/boot/grub2/grubenv", text.substr(cut + 1));
  auto g = boot::bls_entries(fs, "/boot/loader/entries", {}, "/boot/grub2/grubenv");
  if (!g) no_silent_error(g.error(), "BLS entries");
}

// kernelstub's /etc/kernelstub/configuration (Pop!_OS): JSON anyone may edit, read through
// nlohmann's operator[], which throws on a value of another shape.
void kernelstub(const std::string& text) {
  test::MemFs fs;
  fs.put_file("/etc/kernelstub/configuration", text);
  fs.put_file("/boot/efi/loader/entries/Pop_OS-current.conf",
              "title Pop!_OS\nlinux /EFI/Pop_OS-x/vmlinuz.efi\noptions root=UUID=x ro quiet\n");
  const boot::Backend* b = boot::backend_named("kernelstub");
  if (auto c = b->configured(fs); !c) no_silent_error(c.error(), "kernelstub configured");
  if (auto g = b->generated(fs); !g) no_silent_error(g.error(), "kernelstub generated");
  boot::Edit e;
  e.want.push_back({"intel_iommu", "on"});
  e.drop.push_back({"iommu", "off"});
  if (auto p = b->plan(fs, e); !p) no_silent_error(p.error(), "kernelstub plan");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 6) {
    case 0:
      desired_file(text);
      break;
    case 1:
      assignments(text);
      break;
    case 2:
      mdev_definition(text);
      break;
    case 3:
      udev_rules(text);
      break;
    case 4:
      bls_entries(text);
      break;
    default:
      kernelstub(text);
      break;
  }
  return 0;
}
