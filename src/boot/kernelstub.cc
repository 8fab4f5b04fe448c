// Pop!_OS: kernelstub keeps the options in /etc/kernelstub/configuration (JSON) and writes the
// ESP's loader/entries/Pop_OS-current.conf. pcipass edits through it (`kernelstub -a OPTION`,
// `-d OPTION`), guarding the files it rewrites so that undo puts their bytes back, and verifies
// the current entry.
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "boot/common.h"
#include "change/store.h"
#include "change/validate.h"

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
  // The fields below are read through j["user"][KEY]: on a "user" that is not an object,
  // nlohmann's operator[] throws (a type_error), which would end pcipass with "internal error".
  if (auto user = j.find("user"); user != j.end() && !user->is_null() && !user->is_object())
    return Error::state(
        fmt::format("{}: \"user\" is a {}, not an object", kConfig, user->type_name()),
        "repair it (kernelstub writes \"user\": {\"kernel_options\": [...], ...}), or "
        "move it away and run kernelstub to write it again");
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

std::string esp_path(nlohmann::json& j) {
  if (j["user"]["esp_path"].is_string()) return j["user"]["esp_path"].get<std::string>();
  return "/boot/efi";
}

Result<Generated> generated(const HostFs& fs) {
  auto j = TRY(config(fs));
  std::string esp = esp_path(j);
  Generated g = TRY(bls_entries(fs, esp + "/loader/entries", {}, std::nullopt));
  std::erase_if(g.entries, [](const auto& e) { return !e.name.ends_with("-current.conf"); });
  return g;
}

// The ESP files a kernelstub run writes that carry the options or depend on them: the entries
// `NAME-current.conf` and `NAME-oldkern.conf` (the latter may appear: it follows an old kernel),
// loader.conf (written when absent), and the copy of /proc/cmdline beside the kernel. Not the
// kernel and initrd it copies there: their bytes are /boot's whatever the options, and keeping
// them would cost tens of MiB per change set.
Result<std::vector<std::string>> esp_rewrites(const HostFs& fs, const std::string& esp) {
  std::string dir = esp + "/loader/entries";
  std::vector<std::string> out = {esp + "/loader/loader.conf"};
  for (const auto& n : TRY(list_if_present(fs, dir))) {
    if (!n.ends_with("-current.conf")) continue;
    std::string stem = n.substr(0, n.size() - 13);
    out.push_back(dir + "/" + n);
    out.push_back(dir + "/" + stem + "-oldkern.conf");
    std::istringstream in(TRY(fs.read(dir + "/" + n)));
    for (std::string line; std::getline(in, line);)
      if (line.starts_with("linux ") && line.find('/', 6) != std::string::npos) {
        std::string kernel = trim(line.substr(6));
        out.push_back(esp + kernel.substr(0, kernel.rfind('/')) + "/cmdline");
      }
  }
  std::erase_if(out,
                [](const std::string& p) { return !change::path_under(p, change::kDurableRoots); });
  return out;
}

// Undo puts back the bytes of every file kernelstub rewrites, and runs nothing, except where a
// run writes more than those files: without manage_mode kernelstub also writes an NVRAM boot
// entry with the options, and an ESP outside /boot cannot be kept in a change set. There undo
// runs plain `kernelstub` once the files are back, which writes NVRAM and the ESP from the
// restored configuration (and saves that configuration again in its own JSON layout).
Result<std::vector<change::Change>> guarded(const HostFs& fs,
                                            const std::vector<std::vector<std::string>>& runs) {
  auto j = TRY(config(fs));
  std::string esp = esp_path(j);
  std::vector<std::string> files = {kConfig};
  for (auto& f : TRY(esp_rewrites(fs, esp))) files.push_back(std::move(f));
  std::vector<change::Change> out;
  for (const auto& argv : runs) {
    auto run = guarded_run(argv, out.empty() ? files : std::vector<std::string>{});
    for (auto& c : run) out.push_back(std::move(c));
  }
  bool nvram = !j["user"]["manage_mode"].is_boolean() || !j["user"]["manage_mode"].get<bool>();
  if (!out.empty() && (nvram || !change::path_under(esp + "/loader", change::kDurableRoots)))
    out.back().undo_program = regeneration({"kernelstub"}).program;
  return out;
}

// kernelstub takes one -a or -d per run: each option is a run of its own.
Result<BootPlan> plan(const HostFs& fs, const Edit& e) {
  Configured c = TRY(configured(fs));
  std::vector<std::vector<std::string>> runs;
  for (const auto& r : to_remove(e, c.cmdline)) runs.push_back({"kernelstub", "-d", r});
  for (const auto& a : to_add(e, c.cmdline)) runs.push_back({"kernelstub", "-a", a});
  BootPlan p;
  p.programs = TRY(guarded(fs, runs));
  return p;
}

Result<std::vector<change::Change>> regenerate(const HostFs& fs) {
  return guarded(fs, {{"kernelstub"}});
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
