#include "snapshot/snapshot.h"

#include <unistd.h>

#include <cstdio>
#include <deque>
#include <set>

#include <nlohmann/json.hpp>

#include "host/modules.h"
#include "pci/inventory.h"
#include "snapshot/archive_lib.h"

namespace pcipass {
namespace {

// libkmod opens these itself (kmod_new with the release's directory; libkmod 30 per
// `strace -e openat pcipass show DEV`), so no HostFs read records them. modules.builtin is also
// read through HostFs (ModuleIndex); listing it here keeps the set complete.
constexpr const char* kModuleIndexes[] = {
    "modules.dep.bin",     "modules.alias.bin",         "modules.symbols.bin",
    "modules.builtin.bin", "modules.builtin.alias.bin", "modules.builtin.modinfo",
    "modules.softdep",     "modules.devname",           "modules.builtin"};

// libpci opens the ID database itself; PciIds chooses it among these under the root.
constexpr const char* kPciIds[] = {"/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids"};

// Kept although no command reads them yet:
//  - DEV/resource, label, index, acpi_index: `lspci -v` reads them, and snapshots are read with
//    lspci in bug reports (`lspci -O sysfs.path=DIR/sys/bus/pci -v`).
//  - the whole DMAR and IVRS tables: `check` reads their first 64 bytes (the flags); the
//    remapping units and device scopes behind them explain a group layout in a bug report.
//  - modprobe.d: libkmod reads the configuration itself to apply aliases and blacklists.
constexpr const char* kLspciAttributes[] = {"resource", "label", "index", "acpi_index"};

constexpr size_t kIndexCap = 64 << 20;  // module indexes and pci.ids: cut, they are useless

size_t cap_for(const std::string& path) {
  if (path.starts_with("/lib/modules/") || path.ends_with("/pci.ids")) return kIndexCap;
  return kSnapshotFileCap;
}

// Lexically normal absolute form of `target` seen from directory `dir`; nullopt when it climbs
// above "/".
std::optional<std::vector<std::string>> normal_target(const std::string& dir,
                                                      const std::string& target) {
  std::vector<std::string> out =
      target.starts_with('/') ? std::vector<std::string>{} : path_components(dir);
  for (auto& c : path_components(target)) {
    if (c == ".") continue;
    if (c == "..") {
      if (out.empty()) return std::nullopt;
      out.pop_back();
      continue;
    }
    out.push_back(std::move(c));
  }
  return out;
}

std::string relative_link(const std::string& dir, const std::vector<std::string>& to) {
  auto from = path_components(dir);
  size_t common = 0;
  while (common < from.size() && common < to.size() && from[common] == to[common]) ++common;
  std::string out;
  for (size_t i = common; i < from.size(); ++i) out += "../";
  for (size_t i = common; i < to.size(); ++i) out += to[i] + (i + 1 < to.size() ? "/" : "");
  if (!out.empty() && out.back() == '/') out.pop_back();
  return out.empty() ? "." : out;
}

std::string parent_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == 0 ? std::string("/") : path.substr(0, slash);
}

bool is_number(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

// /proc/PID/... holds what other processes have open. A command looks at every process's fds but
// reads the name (comm) only of those holding a device it cares about; only those processes,
// their comm and their fds naming /dev or /sys are kept, and pcipass's own (/proc/self).
class ProcessFilter {
 public:
  explicit ProcessFilter(const std::map<std::string, RecordedEntry>& entries) {
    if (auto it = entries.find("/proc/self"); it != entries.end() && is_number(it->second.data))
      self_ = it->second.data;
    for (const auto& [path, e] : entries) {
      auto parts = path_components(path);
      if (parts.size() == 3 && parts[0] == "proc" && is_number(parts[1]) && parts[2] == "comm" &&
          e.kind == RecordedEntry::kFile)
        holders_.insert(parts[1]);
    }
  }

  bool keep(const std::string& path, const RecordedEntry& e) const {
    auto parts = path_components(path);
    if (parts.size() < 2 || parts[0] != "proc" || !is_number(parts[1])) return true;
    bool self = parts[1] == self_;
    if (!self && !holders_.count(parts[1])) return false;
    if (parts.size() == 4 && parts[2] == "fd")
      return e.kind == RecordedEntry::kLink &&
             (e.data.starts_with("/dev/") || e.data.starts_with("/sys/"));
    return self || parts.size() == 2 || parts[2] == "comm" ||
           (parts[2] == "fd" && parts.size() == 3);
  }

 private:
  std::string self_;
  std::set<std::string> holders_;
};

class Builder {
 public:
  Builder(const RecordingHostFs& rec, int64_t now) : rec_(rec) { snap_.manifest.created = now; }

  Snapshot run() {
    ProcessFilter procs(rec_.entries());
    for (const auto& [path, e] : rec_.entries())
      if (e.kind != RecordedEntry::kAbsent && procs.keep(path, e)) add(path, e);
    if (auto k = snap_.tree.find("/proc/sys/kernel/osrelease");
        k != snap_.tree.end() && k->second.type == SnapshotEntry::kFile)
      snap_.manifest.kernel = trim(k->second.data);
    snap_.tree["/"] = {SnapshotEntry::kDir, {}};
    snap_.tree[kManifestPath] = {SnapshotEntry::kFile, snap_.manifest.json()};
    return std::move(snap_);
  }

 private:
  void parents(const std::string& path) {
    for (std::string p = parent_of(path); p != "/"; p = parent_of(p))
      if (!snap_.tree.try_emplace(p, SnapshotEntry{SnapshotEntry::kDir, {}}).second) break;
  }

  void add(const std::string& path, const RecordedEntry& e) {
    SnapshotEntry out;
    switch (e.kind) {
      case RecordedEntry::kDir:
        out.type = SnapshotEntry::kDir;
        break;
      case RecordedEntry::kLink: {
        auto target = safe_target(path, e.data);
        if (!target) {
          snap_.manifest.dropped.push_back(path);
          return;
        }
        out = {SnapshotEntry::kLink, *target};
        break;
      }
      case RecordedEntry::kFile:
        out = file(path, e);
        break;
      case RecordedEntry::kAbsent:
        return;
    }
    if (e.owner) {
      out.mode = e.owner->mode & 07777;
      out.uid = e.owner->uid;
      out.gid = e.owner->gid;
    } else if (e.kind == RecordedEntry::kFile && e.unreadable) {
      out.mode = 0200;  // a write-only attribute (bind, unbind...)
    }
    parents(path);
    snap_.tree[path] = std::move(out);
  }

  SnapshotEntry file(const std::string& path, const RecordedEntry& e) {
    SnapshotEntry out{SnapshotEntry::kFile, {}};
    if (e.node != FileType::kFile) {  // device nodes and FIFOs: presence and type, never data
      snap_.manifest.nodes[path] = e.node == FileType::kCharDevice ? "char-device" : "other";
      return out;
    }
    if (!e.contents_read) return out;
    out.data = e.data;
    size_t cap = cap_for(path);
    if (e.maybe_truncated || out.data.size() > cap) {
      // A command read only a prefix (DMAR's flags): keep the whole file, up to the cap.
      if (auto whole = rec_.inner().read(path, cap + 1); whole && whole->size() > out.data.size())
        out.data = std::move(*whole);
      if (out.data.size() > cap) {
        out.data.resize(cap);
        snap_.manifest.truncated[path] = cap;
      }
    }
    return out;
  }

  // Links stay inside the tree: an absolute target becomes relative, one that climbs out is
  // dropped. The fds of /proc/PID/fd are kept as the kernel shows them (absolute /dev and /sys
  // names): pcipass only reads their text, and --root resolves them inside the tree.
  std::optional<std::string> safe_target(const std::string& path, const std::string& target) {
    std::string dir = parent_of(path);
    auto parts = path_components(path);
    bool fd = parts.size() == 4 && parts[0] == "proc" && parts[2] == "fd";
    auto normal = normal_target(dir, target);
    if (!normal) return std::nullopt;
    if (fd && target.starts_with('/')) {
      std::string joined;
      for (const auto& c : *normal) joined += "/" + c;
      return joined == target ? std::optional<std::string>(target) : std::nullopt;
    }
    if (!target.starts_with('/')) return target;
    return relative_link(dir, *normal);
  }

  const RecordingHostFs& rec_;
  Snapshot snap_;
};

}  // namespace

std::string SnapshotManifest::json() const {
  nlohmann::ordered_json j{{"schema", "pcipass.snapshot-manifest/1"},
                           {"created", created},
                           {"kernel", kernel},
                           {"nodes", nodes},
                           {"truncated", truncated},
                           {"dropped_links", dropped}};
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

void read_snapshot_extras(const HostFs& fs) {
  if (auto release = fs.read_trimmed("/proc/sys/kernel/osrelease"); release && !release->empty())
    for (const char* f : kModuleIndexes)
      (void)fs.read("/lib/modules/" + *release + "/" + f, kIndexCap);
  for (const char* ids : kPciIds)
    if (fs.type(ids) == FileType::kFile) {
      (void)fs.read(ids, kIndexCap);
      break;
    }
  for (const char* t : {"DMAR", "IVRS"}) {
    std::string table = std::string("/sys/firmware/acpi/tables/") + t;
    if (fs.exists(table)) (void)fs.read(table, kSnapshotFileCap);
  }
  // The listings and their errors are recorded by the recording HostFs: not lost here.
  for (const auto& f : modprobe_config(fs).files) (void)fs.read(f, kSnapshotFileCap);
  for (const auto& name : fs.list(kPciDevicesDir).value_or({})) {
    std::vector<std::string> attrs(std::begin(kLspciAttributes), std::end(kLspciAttributes));
    std::string dir = join_path(kPciDevicesDir, name);
    std::vector<std::string> present;
    for (const auto& a : attrs)
      if (fs.type(join_path(dir, a)) == FileType::kFile) present.push_back(a);
    (void)fs.read_each(dir, present);
  }
}

Snapshot build_snapshot(const RecordingHostFs& recording, int64_t now) {
  return Builder(recording, now).run();
}

Status write_snapshot(const Snapshot& snapshot, const std::string& output) {
  const ArchiveLib& L = *TRY(archive_lib());
  std::string tmp = output + ".tmp." + std::to_string(::getpid());
  archive* a = L.archive_write_new();
  L.archive_write_add_filter_gzip(a);
  L.archive_write_set_format_pax_restricted(a);
  if (L.archive_write_open_filename(a, tmp.c_str()) != ARCHIVE_OK) {
    Error e = Error::io("create", output, L.archive_errno(a) ? L.archive_errno(a) : EIO);
    L.archive_write_free(a);
    return e;
  }
  archive_entry* e = L.archive_entry_new();
  time_t now = static_cast<time_t>(snapshot.manifest.created);
  bool ok = true;
  for (const auto& [path, entry] : snapshot.tree) {
    if (path == "/") continue;
    L.archive_entry_clear(e);
    L.archive_entry_set_pathname(e, path.c_str() + 1);  // relative names inside the archive
    L.archive_entry_set_mtime(e, now, 0);
    if (entry.uid) L.archive_entry_set_uid(e, *entry.uid);
    if (entry.gid) L.archive_entry_set_gid(e, *entry.gid);
    switch (entry.type) {
      case SnapshotEntry::kDir:
        L.archive_entry_set_filetype(e, AE_IFDIR);
        L.archive_entry_set_perm(e, entry.mode ? entry.mode : 0755);
        break;
      case SnapshotEntry::kLink:
        L.archive_entry_set_filetype(e, AE_IFLNK);
        L.archive_entry_set_perm(e, 0777);
        L.archive_entry_set_symlink(e, entry.data.c_str());
        break;
      case SnapshotEntry::kFile:
        L.archive_entry_set_filetype(e, AE_IFREG);
        L.archive_entry_set_perm(e, entry.mode ? entry.mode : 0644);
        L.archive_entry_set_size(e, static_cast<la_int64_t>(entry.data.size()));
        break;
    }
    ok = L.archive_write_header(a, e) == ARCHIVE_OK;
    if (ok && entry.type == SnapshotEntry::kFile && !entry.data.empty())
      ok = L.archive_write_data(a, entry.data.data(), entry.data.size()) ==
           static_cast<la_ssize_t>(entry.data.size());
    if (!ok) break;
  }
  L.archive_entry_free(e);
  ok = L.archive_write_close(a) == ARCHIVE_OK && ok;
  int err = L.archive_errno(a);
  L.archive_write_free(a);
  if (!ok) {
    std::remove(tmp.c_str());
    return Error::io("write", output, err ? err : EIO);
  }
  if (std::rename(tmp.c_str(), output.c_str()) != 0) {
    int rerr = errno;
    std::remove(tmp.c_str());
    return Error::io("rename", output, rerr);
  }
  return {};
}

}  // namespace pcipass
