#include "boot/loader.h"

#include <fmt/format.h>

#include <algorithm>

namespace pcipass::boot {

const std::vector<const Backend*>& backends() {
  static const std::vector<const Backend*> all = {
      &kUpdateGrubBackend, &kGrub2MkconfigBackend, &kGrubbyBackend,      &kSystemdBootBackend,
      &kKernelstubBackend, &kProxmoxBackend,       &kProxmoxGrubBackend, &kRpmOstreeBackend};
  return all;
}

const Backend* backend_named(const std::string& name) {
  for (const Backend* b : backends())
    if (name == b->name) return b;
  return nullptr;
}

std::string backend_names() {
  std::string out;
  for (const Backend* b : backends()) out += (out.empty() ? "" : ", ") + std::string(b->name);
  return out;
}

Result<const Backend*> detect(const HostFs& fs, const std::optional<std::string>& choice) {
  if (choice) {
    if (const Backend* b = backend_named(*choice)) return b;
    return Error::invalid(fmt::format("unknown boot loader '{}'", *choice),
                          "use one of: " + backend_names());
  }
  std::vector<std::pair<const Backend*, std::string>> found;
  for (const Backend* b : backends())
    if (auto why = b->detect(fs)) found.emplace_back(b, *why);
  std::vector<std::pair<const Backend*, std::string>> left;
  for (const auto& f : found) {
    bool superseded = std::any_of(found.begin(), found.end(), [&](const auto& g) {
      const auto& s = g.first->supersedes;
      return std::find(s.begin(), s.end(), f.first->kind) != s.end();
    });
    if (!superseded) left.push_back(f);
  }
  if (left.size() == 1) return left.front().first;
  if (left.empty())
    return Error::not_found(
        "cannot tell this host's boot loader: none of " + backend_names() +
            " left its files (/etc/default/grub, /etc/kernel/cmdline, loader entries...)",
        "name it with --boot-loader NAME, or set the kernel command line by hand");
  std::vector<std::string> seen;
  for (const auto& [b, why] : left) seen.push_back(fmt::format("{} ({})", b->name, why));
  return Error::refused(
      fmt::format("cannot tell which boot loader this host uses: found {}", fmt::join(seen, "; ")),
      "choose one with --boot-loader NAME (the one the firmware starts)");
}

std::optional<std::string> lacking(const Generated& g, const Edit& e) {
  if (g.entries.empty()) return fmt::format("{} has no boot entries", g.path);
  std::vector<std::string> out;
  for (const auto& entry : g.entries) {
    auto missing = to_add(e, entry.cmdline);
    auto extra = to_remove(e, entry.cmdline);
    if (!missing.empty())
      out.push_back(fmt::format("{} lacks {}", entry.name, fmt::join(missing, " ")));
    if (!extra.empty())
      out.push_back(fmt::format("{} still has {}", entry.name, fmt::join(extra, " ")));
  }
  if (out.empty()) return std::nullopt;
  return fmt::format("{}: {}", g.path, fmt::join(out, "; "));
}

std::optional<std::string> pending(const HostFs& fs, const Edit& e, const KernelCmdline& running) {
  auto b = detect(fs, std::nullopt);
  if (!b) return std::nullopt;
  auto c = (*b)->configured(fs);
  if (!c || !satisfied(e, c->cmdline)) return std::nullopt;
  std::vector<std::string> has, gone;
  for (const auto& w : e.want) has.push_back(KernelCmdline::format(w));
  for (const auto& a : e.also) has.push_back(KernelCmdline::format(a));
  for (const auto& d : e.drop) gone.push_back(KernelCmdline::format(d));
  std::string what = has.empty() ? fmt::format("the removal of {}", fmt::join(gone, " and "))
                                 : fmt::format("{}", fmt::join(has, " "));
  auto g = (*b)->generated(fs);
  if (!g || lacking(*g, e)) {
    std::vector<std::string> run =
        program_texts((*b)->regenerate(fs).value_or(std::vector<change::Change>{}));
    return fmt::format("{} is in {} but not in {}: run {}", what, c->path,
                       g ? g->path : std::string("the generated boot configuration"),
                       run.empty() ? std::string("`pcipass setup --iommu`")
                                   : fmt::format("{}", fmt::join(run, " and ")));
  }
  if (satisfied(e, running)) return std::nullopt;
  if (g->path == c->path)
    return fmt::format("{} is in {} but not in /proc/cmdline: reboot", what, c->path);
  return fmt::format("{} is in {} and in {} but not in /proc/cmdline: reboot", what, c->path,
                     g->path);
}

change::Change regeneration(std::vector<std::string> argv) {
  Invocation run;
  run.argv = std::move(argv);
  run.environment = {{"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
                     {"LC_ALL", "C"}};
  return change::Change::program_run(run, run);
}

std::vector<change::Change> guarded_run(std::vector<std::string> argv,
                                        const std::vector<std::string>& rewrites) {
  std::vector<change::Change> out;
  for (const auto& path : rewrites) out.push_back(change::Change::file_guard(path));
  out.push_back(regeneration(std::move(argv)));
  out.back().undo_program.reset();
  return out;
}

std::vector<std::string> program_texts(const std::vector<change::Change>& changes) {
  std::vector<std::string> out;
  for (const auto& c : changes)
    if (c.kind == change::Kind::kProgram) out.push_back(c.program.text());
  return out;
}

bool any_exists(const HostFs& fs, std::initializer_list<const char*> paths, std::string* found) {
  for (const char* p : paths)
    if (fs.exists(p)) {
      if (found) *found = p;
      return true;
    }
  return false;
}

Result<std::vector<std::string>> installed_kernels(const HostFs& fs) {
  std::vector<std::string> out;
  for (const auto& name : TRY(list_if_present(fs, "/boot")))
    if (name.starts_with("vmlinuz-") && name.size() > 8 &&
        fs.type("/boot/" + name) == FileType::kFile)
      out.push_back(name.substr(8));
  return out;
}

}  // namespace pcipass::boot
