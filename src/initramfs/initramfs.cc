#include "initramfs/initramfs.h"

#include <fmt/format.h>

#include <algorithm>
#include <sstream>

#include "initramfs/backends.h"

namespace pcipass::initramfs {

namespace {

std::string underscored(std::string s) {
  std::replace(s.begin(), s.end(), '-', '_');
  return s;
}

// "usr/lib/modules/6.1.0/kernel/drivers/vfio/pci/vfio-pci.ko.xz" -> "vfio_pci"; nullopt for a
// path that is not a module.
std::optional<std::string> module_of(std::string_view path) {
  std::string_view base = path.substr(path.rfind('/') + 1);
  for (std::string_view suffix : {".xz", ".zst", ".gz", ".bz2", ".lz4"})
    if (base.ends_with(suffix)) {
      base.remove_suffix(suffix.size());
      break;
    }
  if (!base.ends_with(".ko") || base.size() == 3) return std::nullopt;
  base.remove_suffix(3);
  return underscored(std::string(base));
}

// Each listed path: the last word of a line (lsinitrd's lines are `ls -l`'s; a link's is its
// name before " -> ").
std::vector<std::string> listed_paths(std::string_view listing) {
  std::vector<std::string> out;
  std::istringstream in{std::string(listing)};
  for (std::string line; std::getline(in, line);) {
    if (auto arrow = line.find(" -> "); arrow != std::string::npos) line.resize(arrow);
    auto words = split_words(line);
    if (!words.empty()) out.push_back(words.back());
  }
  return out;
}

std::string without_dot_slash(std::string p) {
  while (p.starts_with("./")) p.erase(0, 2);
  while (p.starts_with("/")) p.erase(0, 1);
  return p;
}

}  // namespace

const char* system_name(System s) {
  switch (s) {
    case System::kInitramfsTools:
      return "initramfs-tools";
    case System::kDracut:
      return "dracut";
    case System::kMkinitcpio:
      return "mkinitcpio";
  }
  return "?";
}

std::optional<System> parse_system(std::string_view name) {
  for (const Backend* b : backends())
    if (name == b->name) return b->system;
  return std::nullopt;
}

const std::vector<const Backend*>& backends() {
  static const std::vector<const Backend*> table = {&kInitramfsToolsBackend, &kDracutBackend,
                                                    &kMkinitcpioBackend};
  return table;
}

const Backend& backend(System s) {
  for (const Backend* b : backends())
    if (b->system == s) return *b;
  return kInitramfsToolsBackend;
}

Result<const Backend*> detect(const HostFs& fs, std::optional<System> chosen) {
  std::vector<std::pair<const Backend*, std::string>> found;
  for (const Backend* b : backends())
    for (const char* e : b->evidence)
      if (fs.type(e) == FileType::kFile) {
        found.emplace_back(b, e);
        break;
      }
  std::vector<std::string> seen;
  for (const auto& [b, e] : found) seen.push_back(fmt::format("{} ({})", b->name, e));
  std::string names = fmt::format("{}", fmt::join(seen, ", "));
  if (chosen) {
    for (const auto& [b, e] : found)
      if (b->system == *chosen) return b;
    return Error::not_found(
        fmt::format("--initramfs {}: it is not installed here{}", system_name(*chosen),
                    found.empty() ? "" : "; found " + names),
        found.empty() ? "install it, or leave the initramfs out"
                      : fmt::format("use --initramfs {}", found.front().first->name));
  }
  if (found.size() == 1) return found.front().first;
  std::vector<std::string> all;
  for (const Backend* b : backends()) all.push_back(b->name);
  if (found.empty())
    return Error::not_found(
        fmt::format("no initramfs system found (looked for {})", fmt::join(all, ", ")),
        "install the one your distribution uses, or name it with --initramfs NAME");
  return Error::invalid(fmt::format("several initramfs systems are installed: {}", names),
                        fmt::format("say which one builds the images this host boots: "
                                    "--initramfs {}",
                                    fmt::join(all, "|")));
}

Invocation invocation(std::vector<std::string> argv) {
  Invocation i;
  i.argv = std::move(argv);
  i.environment = {{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}, {"LC_ALL", "C"}};
  return i;
}

bool listing_has_module(std::string_view listing, std::string_view module) {
  std::string want = underscored(std::string(module));
  for (const auto& p : listed_paths(listing))
    if (module_of(p) == want) return true;
  return false;
}

bool listing_has_file(std::string_view listing, std::string_view path) {
  std::string want = without_dot_slash(std::string(path));
  for (const auto& p : listed_paths(listing))
    if (without_dot_slash(p) == want) return true;
  return false;
}

Result<std::vector<std::string>> builtin_modules(const HostFs& fs, const std::string& release) {
  std::vector<std::string> out;
  auto text = fs.read("/lib/modules/" + release + "/modules.builtin", 4 << 20);
  if (!text && text.error().err == ENOENT) return out;
  if (!text) return text.error();
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);)
    if (auto m = module_of(trim(line))) out.push_back(*m);
  return out;
}

Result<std::vector<std::string>> installed_kernels(const HostFs& fs) {
  std::vector<std::string> out;
  for (const auto& v : TRY(list_if_present(fs, "/lib/modules")))
    if (fs.is_dir("/lib/modules/" + v) &&
        (fs.exists("/boot/vmlinuz-" + v) || fs.exists("/lib/modules/" + v + "/vmlinuz")))
      out.push_back(v);
  return out;
}

Status verify_image(const HostFs& fs, CommandRunner* runner, const Backend& b, const Image& image,
                    const Wants& wants) {
  const std::string fix = fmt::format(
      "every change was rolled back; run `{} {}` to see what it holds and why {} left it out",
      b.lister, image.path, b.name);
  if (fs.type(image.path) != FileType::kFile)
    return Error::state(
        fmt::format("{} is missing after `{}` ran", image.path, fmt::join(b.regenerate, " ")), fix);
  if (!runner) return Error::state(fmt::format("no command runner to run {}", b.lister));
  auto listed = runner->checked(invocation({b.lister, image.path}));
  if (!listed) {
    Error e = listed.error();
    e.message = fmt::format("cannot list {} to check it: {}", image.path, e.message);
    return e;
  }
  Result<std::vector<std::string>> builtin = std::vector<std::string>();
  if (!image.kernel.empty()) builtin = builtin_modules(fs, image.kernel);
  std::vector<std::string> lacks;
  for (const auto& m : wants.modules) {
    if (listing_has_module(listed->out, m)) continue;
    std::string ko = fmt::format("{}.ko", m == "vfio_pci" ? "vfio-pci" : m);
    // Not "lacks": a module built into the kernel is in no image.
    if (!builtin)
      return Error::state(
          fmt::format("cannot tell whether {} lacks {}: `{} {}` does not list it, and whether the "
                      "kernel has it built in is unknown: {}",
                      image.path, ko, b.lister, image.path, builtin.error().describe()),
          fix);
    if (std::find(builtin->begin(), builtin->end(), underscored(m)) == builtin->end())
      lacks.push_back(ko);
  }
  for (const auto& f : wants.files)
    if (!listing_has_file(listed->out, f)) lacks.push_back(f);
  if (lacks.empty()) return {};
  return Error::state(
      fmt::format("the regenerated {} lacks {} (`{} {}` does not list {})", image.path,
                  fmt::join(lacks, ", "), b.lister, image.path, lacks.size() == 1 ? "it" : "them"),
      fix);
}

Result<Planned> plan_initramfs(const HostFs& fs, const Backend& b, const Wants& wants) {
  Planned p;
  p.backend = &b;
  auto edits = TRY(b.plan(fs, wants));
  for (auto& c : edits) {
    if (c.kind == change::Kind::kFileWrite) {
      p.configs.push_back(c.path);
      auto now = TRY(read_optional(fs, c.path));
      if (!now || *now != c.data) p.changed = true;
    }
    p.changes.push_back(std::move(c));
  }
  p.images = TRY(b.images(fs));
  if (!p.changed) return p;
  p.changes.push_back(
      change::Change::program_run(invocation(b.regenerate), invocation(b.regenerate)));
  for (const Image& image : p.images) {
    std::vector<std::string> expects;
    for (const auto& m : wants.modules) expects.push_back(m);
    for (const auto& f : wants.files) expects.push_back(f);
    const Backend* backend = &b;
    p.changes.push_back(change::Change::check(
        image.path, fmt::format("{} lists {}", b.lister, fmt::join(expects, ", ")),
        [backend, image, wants](const HostFs& f, CommandRunner* r) {
          return verify_image(f, r, *backend, image, wants);
        }));
  }
  return p;
}

// Shared by the backends.

Result<std::optional<std::string>> read_optional(const HostFs& fs, const std::string& path) {
  if (!fs.exists(path)) return std::optional<std::string>();
  return std::optional<std::string>(TRY(fs.read(path)));
}

void plan_write(const HostFs& fs, std::vector<change::Change>& plan, const std::string& path,
                std::string bytes, mode_t mode) {
  std::string dir = path.substr(0, path.rfind('/'));
  if (!fs.is_dir(dir)) plan.push_back(change::Change::dir_create(dir, 0755));
  plan.push_back(change::Change::file_write(path, std::move(bytes), mode));
}

std::string append_line(std::optional<std::string> text, const std::string& header,
                        const std::string& line) {
  std::string out = text ? std::move(*text) : header;
  if (!out.empty() && out.back() != '\n') out += '\n';
  return out + line + '\n';
}

std::vector<std::string> missing_words(const std::vector<std::string>& words,
                                       const std::vector<std::string>& listed, bool modules) {
  auto key = [modules](std::string w) { return modules ? underscored(std::move(w)) : w; };
  std::vector<std::string> keys;
  for (const auto& l : listed) keys.push_back(key(l));
  std::vector<std::string> out;
  for (const auto& w : words)
    if (std::find(keys.begin(), keys.end(), key(w)) == keys.end() &&
        std::find(out.begin(), out.end(), w) == out.end())
      out.push_back(w);
  return out;
}

std::string join_words(const std::vector<std::string>& words) {
  return fmt::format("{}", fmt::join(words, " "));
}

}  // namespace pcipass::initramfs
