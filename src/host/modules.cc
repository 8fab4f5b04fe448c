#include "host/modules.h"

#include <map>
#include <sstream>

#include "host/kmod_lib.h"

namespace pcipass {

const char* module_state_name(ModuleState s) {
  switch (s) {
    case ModuleState::kMissing:
      return "missing";
    case ModuleState::kAvailable:
      return "available";
    case ModuleState::kLoaded:
      return "loaded";
    case ModuleState::kBuiltin:
      return "builtin";
  }
  return "?";
}

std::string ModuleIndex::normalize(std::string name) {
  for (char& c : name)
    if (c == '-') c = '_';
  return name;
}

namespace {

// libkmod's rule for a configuration file's name (libkmod-config.c).
bool modprobe_file_name(const std::string& n) {
  return !n.starts_with('.') && (n.ends_with(".conf") || n.ends_with(".alias"));
}

}  // namespace

// kmod's conf_files_list: a name's first directory wins (so /etc masks /lib), and the files are
// applied sorted by name whatever their directory. A name that is not a regular file (a link to
// /dev/null, outside the tree) still masks the name in later directories.
ModprobeConfig modprobe_config(const HostFs& fs) {
  ModprobeConfig out;
  std::map<std::string, std::optional<std::string>> by_name;  // name -> path, if a regular file
  for (const char* dir : kModprobeDirs)
    for (const auto& name : list_or_problem(fs, dir, out.problems)) {
      if (!modprobe_file_name(name) || by_name.count(name)) continue;
      std::string path = join_path(dir, name);
      by_name[name] = fs.type(path) == FileType::kFile ? std::optional(path) : std::nullopt;
    }
  for (auto& [name, path] : by_name)
    if (path) out.files.push_back(std::move(*path));
  return out;
}

// Files, not directories, go to libkmod: listed and resolved here through HostFs, a file that
// is a link (to /dev/null, masking another) cannot lead libkmod out of the tree.
std::vector<std::string> modprobe_files(const HostFs& fs) {
  std::vector<std::string> out;
  for (const auto& path : modprobe_config(fs).files)
    if (auto local = fs.local_path(path)) out.push_back(*local);
  return out;
}

std::unique_ptr<ModuleIndex> ModuleIndex::open(const HostFs& fs) {
  std::unique_ptr<ModuleIndex> m(new ModuleIndex);
  // Unreadable is not absent: without the release the index is unknown, not missing (check then
  // says "cannot tell" instead of "no /lib/modules/RELEASE: install the kernel's modules").
  if (auto release = fs.read_value("/proc/sys/kernel/osrelease"); !release)
    m->index_error_ = release.error();
  else if (*release)
    m->release_ = **release;
  if (auto text = fs.read("/proc/modules", 4 << 20)) {
    std::istringstream in(*text);
    std::string line;
    while (std::getline(in, line)) m->loaded_.insert(normalize(line.substr(0, line.find(' '))));
  }
  if (m->release_.empty()) return m;
  std::string dir = "/lib/modules/" + m->release_;
  if (auto text = fs.read(dir + "/modules.builtin", 4 << 20)) {
    std::istringstream in(*text);
    std::string line;
    while (std::getline(in, line)) {
      std::string name = base_name(line);
      if (name.ends_with(".ko")) name.resize(name.size() - 3);
      if (!name.empty()) m->builtin_.insert(normalize(name));
    }
  } else if (text.error().err != ENOENT) {
    m->index_error_ = text.error();  // a built-in module would read as missing
  }
  if (fs.type(dir + "/modules.dep.bin") != FileType::kFile) {
    // type() cannot tell absent from unreadable: a read says which.
    auto probe = fs.read(dir + "/modules.dep.bin", 1);
    if (!probe && probe.error().err != ENOENT) m->index_error_ = probe.error();
    return m;
  }
  auto local_dir = fs.local_path(dir);
  if (!local_dir) return m;
  m->module_dir_ = *local_dir;
  m->config_files_ = modprobe_files(fs);
  return m;
}

// libkmod (and its libcrypto, libzstd, liblzma) is loaded on the first question that builtin and
// loaded modules do not answer: on a host with vfio loaded, `check` never needs it, and under TCG
// loading it was a fifth of a call (tests/vm/bench-calls). Without libkmod the index reads as
// missing (states then come from /proc/modules only) and says why, so that `check` can name the
// library to install.
kmod_ctx* ModuleIndex::ctx() const {
  if (ctx_tried_ || module_dir_.empty()) return ctx_;
  ctx_tried_ = true;
  auto lib = kmod_lib();
  if (!lib) {
    library_error_ = lib.error();
    return nullptr;
  }
  const KmodLib& L = **lib;
  std::vector<const char*> paths;
  for (const auto& f : config_files_) paths.push_back(f.c_str());
  paths.push_back(nullptr);  // never a null list: that is libkmod's "the machine's own"
  ctx_ = L.kmod_new(module_dir_.c_str(), paths.data());
  if (ctx_) L.kmod_set_log_priority(ctx_, 0);
  return ctx_;
}

ModuleIndex::~ModuleIndex() {
  // A context exists only if libkmod was loaded.
  if (ctx_) (*kmod_lib())->kmod_unref(ctx_);
}

ModuleState ModuleIndex::state(const std::string& raw) const {
  std::string name = normalize(raw);
  if (builtin_.count(name)) return ModuleState::kBuiltin;
  if (loaded_.count(name)) return ModuleState::kLoaded;
  if (!ctx()) return ModuleState::kMissing;
  const KmodLib& L = **kmod_lib();
  kmod_module* mod = nullptr;
  if (L.kmod_module_new_from_name(ctx_, name.c_str(), &mod) != 0) return ModuleState::kMissing;
  bool has_path = L.kmod_module_get_path(mod) != nullptr;
  L.kmod_module_unref(mod);
  return has_path ? ModuleState::kAvailable : ModuleState::kMissing;
}

std::vector<std::string> ModuleIndex::modules_for_alias(const std::string& modalias) const {
  std::vector<std::string> out;
  if (modalias.empty() || !ctx()) return out;
  const KmodLib& L = **kmod_lib();
  kmod_list* list = nullptr;
  if (L.kmod_module_new_from_lookup(ctx_, modalias.c_str(), &list) != 0) return out;
  for (kmod_list* it = list; it; it = L.kmod_list_next(list, it)) {
    kmod_module* mod = L.kmod_module_get_module(it);
    out.push_back(normalize(L.kmod_module_get_name(mod)));
    L.kmod_module_unref(mod);
  }
  L.kmod_module_unref_list(list);
  return out;
}

}  // namespace pcipass
