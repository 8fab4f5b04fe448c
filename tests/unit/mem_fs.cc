#include "mem_fs.h"

#include <climits>

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace pcipass::test {
namespace {

constexpr int kMaxLinks = 40;  // the kernel's MAXSYMLINKS, as the real resolver

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += "/" + p;
  return out.empty() ? "/" : out;
}

// Lexical canonical form for building the tree: "." and ".." dropped, no links followed.
std::string lexical(const std::string& path) {
  std::vector<std::string> parts;
  for (auto& p : path_components(path)) {
    if (p == ".") continue;
    if (p == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(std::move(p));
  }
  return join(parts);
}

// "/" or "/a/b": no empty, "." or ".." component and no trailing slash.
bool canonical_form(std::string_view path) {
  if (path == "/") return true;
  if (!path.starts_with('/') || path.ends_with('/')) return false;
  if (path.find("//") != std::string_view::npos) return false;
  for (size_t at = path.find("/."); at != std::string_view::npos; at = path.find("/.", at + 1)) {
    std::string_view rest = path.substr(at + 2);
    if (rest.empty() || rest[0] == '/' || (rest[0] == '.' && (rest.size() == 1 || rest[1] == '/')))
      return false;
  }
  return true;
}

std::string parent_of(const std::string& canonical) {
  auto slash = canonical.rfind('/');
  return slash == 0 ? "/" : canonical.substr(0, slash);
}

const char* type_name(FileType t) {
  switch (t) {
    case FileType::kDir:
      return "a directory";
    case FileType::kCharDevice:
      return "a character device";
    case FileType::kLink:
      return "a symbolic link";
    case FileType::kOther:
      return "a FIFO";
    default:
      return "not a regular file";
  }
}

// The real HostFs's refusal of anything but a regular file, word for word.
Error not_regular(const std::string& path, FileType t) {
  Error e = Error::refused(
      path + " is " + type_name(t) + ", not a file; pcipass reads only regular files there",
      "replace it with the file the kernel has there (a captured tree "
      "holds only files, directories and links)");
  e.path = path;
  return e;
}

mode_t type_bits(FileType t) {
  switch (t) {
    case FileType::kDir:
      return S_IFDIR;
    case FileType::kLink:
      return S_IFLNK;
    case FileType::kCharDevice:
      return S_IFCHR;
    case FileType::kOther:
      return S_IFIFO;
    default:
      return S_IFREG;
  }
}

class NoLock : public HostFs::Lock {};

}  // namespace

MemFs::MemFs(std::string root_name, std::optional<std::string> backing)
    : root_name_(std::move(root_name)), backing_(std::move(backing)) {
  nodes_["/"] = Node{FileType::kDir, {}, 0755, 0, 0, 0, {}};
}

// Paths to walk are a stack of pending texts (the path, then each link's target in front of what
// is left of it), consumed a component at a time without copying: the walk runs for every read.
int MemFs::walk(const std::string& path, bool follow_last, std::string& out, bool cached) const {
  // As the kernel: a path of PATH_MAX bytes or more (with its NUL) is refused whole. A fuzzed log
  // named a path of 47 KB; the walk, then recursive through walk_cached, overflowed the stack.
  if (path.size() >= PATH_MAX) return ENAMETOOLONG;
  // A path already in canonical form that names a stored entry is its own answer: make() keeps
  // every stored entry's ancestors directories, so the walk below would find each component and
  // follow no link. Only a link at the end, or a denied directory above, needs the walk. The
  // fuzz targets read thousands of such paths per input; this halves the sysfs ones' cost.
  if (denied_ == 0 && canonical_form(path)) {
    auto it = nodes_.find(path);
    if (it != nodes_.end() && (!follow_last || it->second.type != FileType::kLink)) {
      out = path;
      return 0;
    }
  }
  if (denied_ == 0 && cached)
    if (auto via_dir = walk_cached(path, follow_last)) {
      out = std::move(*via_dir);
      return 0;
    }
  std::vector<std::string_view> pending{path};
  auto next = [&pending]() -> std::optional<std::string_view> {
    while (!pending.empty()) {
      std::string_view& top = pending.back();
      size_t begin = top.find_first_not_of('/');
      if (begin == std::string_view::npos) {
        pending.pop_back();
        continue;
      }
      top.remove_prefix(begin);
      size_t end = std::min(top.find('/'), top.size());
      std::string_view part = top.substr(0, end);
      top.remove_prefix(end);
      return part;
    }
    return std::nullopt;
  };
  auto more = [&pending] {
    for (auto p : pending)
      if (p.find_first_not_of('/') != std::string_view::npos) return true;
    return false;
  };
  std::string cur;                    // the canonical path so far, "" for the root
  std::vector<size_t> marks;          // cur's length before each component, for ".."
  const Node* dir = &nodes_.at("/");  // cur's node; null after "..": looked up again
  int links = 0;
  while (auto part = next()) {
    if (*part == ".") continue;
    if (*part == "..") {
      if (!marks.empty()) {
        cur.resize(marks.back());
        marks.pop_back();
      }
      dir = nullptr;
      continue;
    }
    if (!dir) dir = &nodes_.at(cur.empty() ? "/" : cur);
    if (dir->type != FileType::kDir) return ENOTDIR;
    if (dir->deny) return dir->deny;
    marks.push_back(cur.size());
    cur += '/';
    cur += *part;
    bool last = !more();
    if (last && !follow_last) break;
    auto it = nodes_.find(cur);
    if (it == nodes_.end()) {
      if (last) break;
      return ENOENT;
    }
    dir = &it->second;
    if (it->second.type != FileType::kLink) continue;
    if (++links > kMaxLinks) return ELOOP;
    const std::string& target = it->second.data;
    cur.resize(marks.back());
    marks.pop_back();
    if (target.starts_with('/')) {
      cur.clear();
      marks.clear();
    }
    dir = nullptr;
    pending.push_back(target);
  }
  out = cur.empty() ? "/" : cur;
  return 0;
}

// "DIR/NAME" through DIR's canonical path, kept from an earlier walk: the targets read many
// files of one directory reached through a link (/sys/bus/pci/devices/ADDR/...), each of which
// would walk the link again. nullopt where the full walk must answer: NAME is not a plain name,
// DIR does not lead to a directory, or NAME is a link to follow.
std::optional<std::string> MemFs::walk_cached(const std::string& path, bool follow_last) const {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return std::nullopt;
  std::string_view name = std::string_view(path).substr(slash + 1);
  if (name.empty() || name == "." || name == "..") return std::nullopt;
  std::string parent = path.substr(0, slash);
  auto dir = dir_cache_.find(parent);
  if (dir == dir_cache_.end()) {
    std::string canonical;
    if (walk(parent, true, canonical, false) != 0) return std::nullopt;
    auto n = nodes_.find(canonical);
    if (n == nodes_.end() || n->second.type != FileType::kDir) return std::nullopt;
    dir = dir_cache_.emplace(std::move(parent), std::move(canonical)).first;
  }
  std::string cur = dir->second == "/" ? "/" + std::string(name) : dir->second + "/" += name;
  auto it = nodes_.find(cur);
  if (follow_last && it != nodes_.end() && it->second.type == FileType::kLink) return std::nullopt;
  return cur;
}

const MemFs::Node* MemFs::find(const std::string& path, bool follow_last, int& err) const {
  std::string canonical;
  err = walk(path, follow_last, canonical);
  if (err) return nullptr;
  auto it = nodes_.find(canonical);
  if (it == nodes_.end()) {
    err = ENOENT;
    return nullptr;
  }
  return &it->second;
}

void MemFs::checkpoint() {
  checkpoint_ = Checkpoint{{}, changed_.size(), denied_};
}

void MemFs::rollback() {
  if (!checkpoint_) return;
  for (auto& [path, node] : checkpoint_->before) {
    if (node)
      nodes_[path] = std::move(*node);
    else
      nodes_.erase(path);
  }
  dir_cache_.clear();
  changed_.resize(checkpoint_->changed);
  denied_ = checkpoint_->denied;
  checkpoint();
}

void MemFs::remember(const std::string& canonical) {
  if (!checkpoint_ || checkpoint_->before.count(canonical)) return;
  auto it = nodes_.find(canonical);
  checkpoint_->before.emplace(
      canonical, it == nodes_.end() ? std::optional<Node>() : std::optional<Node>(it->second));
}

MemFs::Node& MemFs::make(const std::string& canonical, FileType type) {
  // unlink_node() keeps the root, so making it anything else would unlink and make it forever.
  if (canonical == "/" && type != FileType::kDir)
    throw std::invalid_argument("MemFs: / is a directory on every host");
  dir_cache_.clear();
  if (canonical != "/") {
    std::string parent = parent_of(canonical);
    Node& p = nodes_.count(parent) && nodes_[parent].type == FileType::kDir
                  ? nodes_[parent]
                  : make(parent, FileType::kDir);
    remember(parent);
    p.children.insert(base_name(canonical));
  }
  auto it = nodes_.find(canonical);
  if (it != nodes_.end() && it->second.type != type) {
    unlink_node(canonical);
    return make(canonical, type);
  }
  remember(canonical);
  Node& n = nodes_[canonical];
  if (it == nodes_.end()) {
    n.type = type;
    n.mode = type == FileType::kDir ? 0755 : type == FileType::kLink ? 0777 : 0644;
  }
  return n;
}

void MemFs::unlink_node(const std::string& canonical) {
  dir_cache_.clear();
  auto it = nodes_.find(canonical);
  if (it == nodes_.end() || canonical == "/") return;
  for (const auto& child : std::set<std::string>(it->second.children))
    unlink_node(join_path(canonical, child));
  remember(canonical);
  nodes_.erase(canonical);
  remember(parent_of(canonical));
  auto parent = nodes_.find(parent_of(canonical));
  if (parent != nodes_.end()) parent->second.children.erase(base_name(canonical));
}

void MemFs::put_file(const std::string& path, std::string data, mode_t mode) {
  Node& n = make(lexical(path), FileType::kFile);
  n.data = std::move(data);
  n.mode = mode;
}
void MemFs::put_dir(const std::string& path, mode_t mode) {
  make(lexical(path), FileType::kDir).mode = mode;
}
void MemFs::put_link(const std::string& path, std::string target) {
  make(lexical(path), FileType::kLink).data = std::move(target);
}
void MemFs::put_char_device(const std::string& path) {
  make(lexical(path), FileType::kCharDevice);
}
void MemFs::put_fifo(const std::string& path) {
  make(lexical(path), FileType::kOther);
}
void MemFs::deny(const std::string& path, int err) {
  remember(lexical(path));
  auto it = nodes_.find(lexical(path));
  if (it != nodes_.end()) {
    it->second.deny = err;
    ++denied_;
  }
}

void MemFs::load_dir(const std::string& dir, const std::string& at) {
  namespace fs = std::filesystem;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
       ++it) {
    std::string host = join_path(at, it->path().lexically_relative(dir).string());
    auto st = it->symlink_status();
    if (fs::is_symlink(st)) {
      put_link(host, fs::read_symlink(it->path()).string());
    } else if (fs::is_directory(st)) {
      put_dir(host);
    } else if (fs::is_regular_file(st)) {
      std::ifstream in(it->path(), std::ios::binary);
      std::ostringstream s;
      s << in.rdbuf();
      put_file(host, s.str(), static_cast<mode_t>(st.permissions()) & 07777);
    } else if (fs::is_character_file(st)) {
      put_char_device(host);
    } else {
      put_fifo(host);
    }
  }
}

Result<std::string> MemFs::read(const std::string& path, size_t limit) const {
  int err = 0;
  const Node* n = find(path, true, err);
  if (!n) return Error::io("open", path, err);
  if (n->deny) return Error::io("open", path, n->deny);
  if (n->type != FileType::kFile) return not_regular(path, n->type);
  return n->data.substr(0, limit);
}

Result<std::string> MemFs::read_link(const std::string& path) const {
  int err = 0;
  const Node* n = find(path, false, err);
  if (!n) return Error::io("readlink", path, err);
  if (n->type != FileType::kLink) return Error::io("readlink", path, EINVAL);
  return n->data;
}

Result<std::string> MemFs::resolve(const std::string& path) const {
  std::string canonical;
  if (int err = walk(path, true, canonical)) return Error::io("realpath", path, err);
  if (!nodes_.count(canonical)) return Error::io("realpath", path, ENOENT);
  return canonical;
}

Result<std::vector<std::string>> MemFs::list(const std::string& dir) const {
  int err = 0;
  const Node* n = find(dir, true, err);
  if (!n) return Error::io("opendir", dir, err);
  if (n->type != FileType::kDir) return Error::io("opendir", dir, ENOTDIR);
  if (n->deny) return Error::io("opendir", dir, n->deny);
  return std::vector<std::string>(n->children.begin(), n->children.end());
}

FileType MemFs::type(const std::string& path, bool follow_links) const {
  int err = 0;
  const Node* n = find(path, follow_links, err);
  return n ? n->type : FileType::kMissing;
}

Result<HostFs::Owner> MemFs::owner(const std::string& path) const {
  int err = 0;
  const Node* n = find(path, true, err);
  if (!n) return Error::io("stat", path, err);
  return Owner{n->uid, n->gid, static_cast<mode_t>(type_bits(n->type) | n->mode)};
}

Status MemFs::write(const std::string& path, std::string_view data) {
  std::string canonical;
  if (int err = walk(path, true, canonical)) return Error::io("open", path, err);
  auto it = nodes_.find(canonical);
  if (it == nodes_.end()) return Error::io("open", path, ENOENT);
  if (it->second.type != FileType::kFile) return not_regular(path, it->second.type);
  remember(canonical);
  it->second.data = std::string(data);
  changed_.push_back(canonical);
  return {};
}

Status MemFs::write_atomic(const std::string& path, std::string_view data, mode_t mode) {
  std::string parent;
  if (int err = walk(parent_of(lexical(path)), true, parent))
    return Error::io("open the directory of", path, err);
  auto p = nodes_.find(parent);
  if (p == nodes_.end()) return Error::io("open the directory of", path, ENOENT);
  if (p->second.type != FileType::kDir) return Error::io("open the directory of", path, ENOTDIR);
  std::string target = join_path(parent, base_name(path));
  auto old = nodes_.find(target);
  bool had = old != nodes_.end() && old->second.type == FileType::kFile;
  mode_t keep = had ? old->second.mode : mode;
  Node& n = make(target, FileType::kFile);
  n.data = std::string(data);
  n.mode = keep;
  changed_.push_back(target);
  return {};
}

Status MemFs::make_dirs(const std::string& path, mode_t mode) {
  std::string cur;
  for (const auto& part : path_components(path)) {
    std::string dir;
    if (int err = walk(cur.empty() ? "/" : cur, true, dir)) return Error::io("mkdir", cur, err);
    if (nodes_.at(dir).type != FileType::kDir) return Error::io("mkdir", cur, ENOTDIR);
    cur += "/" + part;
    std::string next = join_path(dir, part);
    if (nodes_.count(next)) continue;
    make(next, FileType::kDir).mode = mode;
    changed_.push_back(next);
  }
  return {};
}

// unlink(2) and rmdir(2): the entry goes (a directory only when empty, as pcipass removes only
// the directories it made, once empty); a missing entry or parent is no error, as for the real one.
Status MemFs::remove_entry(const std::string& path, bool dir) {
  const char* op = dir ? "rmdir" : "unlink";
  std::string parent;
  if (int err = walk(parent_of(lexical(path)), true, parent)) {
    if (err == ENOENT) return {};
    return Error::io(op, path, err);
  }
  std::string target = join_path(parent, base_name(path));
  auto it = nodes_.find(target);
  if (it == nodes_.end()) return {};
  bool is_dir = it->second.type == FileType::kDir;
  if (is_dir != dir) return Error::io(op, path, dir ? ENOTDIR : EISDIR);
  if (dir && !it->second.children.empty()) return Error::io(op, path, ENOTEMPTY);
  unlink_node(target);
  changed_.push_back(target);
  return {};
}

Status MemFs::remove(const std::string& path) {
  return remove_entry(path, false);
}

Status MemFs::remove_dir(const std::string& path) {
  return remove_entry(path, true);
}

Status MemFs::change_owner(const std::string& path, uid_t uid, gid_t gid) {
  std::string canonical;
  if (int err = walk(path, true, canonical)) return Error::io("chown", path, err);
  auto it = nodes_.find(canonical);
  if (it == nodes_.end()) return Error::io("chown", path, ENOENT);
  remember(canonical);
  it->second.uid = uid;
  it->second.gid = gid;
  changed_.push_back(canonical);
  return {};
}

Result<std::unique_ptr<HostFs::Lock>> MemFs::lock(const std::string& path) {
  if (type(path, true) == FileType::kMissing) TRY(write_atomic(path, "", 0600));
  int err = 0;
  const Node* n = find(path, true, err);
  if (!n) return Error::io("open", path, err);
  if (n->type != FileType::kFile) return not_regular(path, n->type);
  return std::unique_ptr<Lock>(new NoLock);
}

std::optional<std::string> MemFs::local_path(const std::string& host_path) const {
  if (!backing_) return std::nullopt;
  auto r = resolve(host_path);
  if (!r) return std::nullopt;
  return *r == "/" ? *backing_ : *backing_ + *r;
}

}  // namespace pcipass::test
