// Pop!_OS: kernelstub keeps the options in /etc/kernelstub/configuration (JSON) and writes the
// ESP's loader/entries/Pop_OS-current.conf. pcipass edits through it (`kernelstub -a OPTION`,
// `-d OPTION`; the undo of each is the other) and verifies the current entry.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "boot/common.h"

namespace pcipass::boot {

namespace {

constexpr const char* kConfig = "/etc/kernelstub/configuration";

std::optional<std::string> detect(const HostFs& fs) {
  std::string tool;
  if (!fs.exists(kConfig) ||
      !any_exists(fs, {"/usr/bin/kernelstub", "/usr/sbin/kernelstub"}, &tool))
    return std::nullopt;
  return std::string(kConfig) + " and " + tool;
}

Result<nlohmann::json> config(const HostFs& fs) {
  auto j = nlohmann::json::parse(TRY(fs.read(kConfig)), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Error::state(fmt::format("{} is not JSON", kConfig), "see `kernelstub --help`");
  return j;
}

Result<Configured> configured(const HostFs& fs) {
  auto j = TRY(config(fs));
  std::string line;
  const auto& opts = j["user"]["kernel_options"];
  if (opts.is_array())
    for (const auto& o : opts)
      if (o.is_string()) line += " " + o.get<std::string>();
  return Configured{kConfig, KernelCmdline::parse(line)};
}

Result<Generated> generated(const HostFs& fs) {
  auto j = TRY(config(fs));
  std::string esp = "/boot/efi";
  if (j["user"]["esp_path"].is_string()) esp = j["user"]["esp_path"].get<std::string>();
  Generated g = TRY(bls_entries(fs, esp + "/loader/entries", {}, std::nullopt));
  std::erase_if(g.entries, [](const auto& e) { return !e.name.ends_with("-current.conf"); });
  return g;
}

Result<BootPlan> plan(const HostFs& fs, const Edit& e) {
  Configured c = TRY(configured(fs));
  BootPlan p;
  for (const auto& r : to_remove(e, c.cmdline)) {
    change::Change ch = regeneration({"kernelstub", "-d", r});
    ch.undo_program->argv = {"kernelstub", "-a", r};
    p.programs.push_back(std::move(ch));
  }
  for (const auto& a : to_add(e, c.cmdline)) {
    change::Change ch = regeneration({"kernelstub", "-a", a});
    ch.undo_program->argv = {"kernelstub", "-d", a};
    p.programs.push_back(std::move(ch));
  }
  return p;
}

Result<std::vector<change::Change>> regenerate(const HostFs&) {
  return std::vector<change::Change>{regeneration({"kernelstub"})};
}

}  // namespace

const Backend kKernelstubBackend = {LoaderKind::kKernelstub,
                                    "kernelstub",
                                    "kernelstub (Pop!_OS)",
                                    {LoaderKind::kSystemdBoot},
                                    detect,
                                    configured,
                                    plan,
                                    regenerate,
                                    generated};

}  // namespace pcipass::boot
