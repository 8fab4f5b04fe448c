#include "host/recording_fs.h"

#include <cerrno>
#include <deque>

namespace pcipass {
namespace {

constexpr int kMaxLinks = 40;  // as the kernel's path walk (ELOOP)

std::deque<std::string> components(std::string_view path) {
  auto parts = path_components(path);
  return {parts.begin(), parts.end()};
}

std::string parent_of(const std::string& canonical) {
  auto slash = canonical.rfind('/');
  return slash == 0 || slash == std::string::npos ? std::string() : canonical.substr(0, slash);
}

Error refused(const std::string& path) {
  return Error::refused("a snapshot only reads the host; refused to change " + path);
}

}  // namespace

const RecordingHostFs::Seen& RecordingHostFs::examine(const std::string& path) const {
  auto it = seen_.find(path);
  if (it != seen_.end()) return it->second;
  Seen s{inner_.type(path, false), {}};
  if (s.type == FileType::kLink) {
    if (auto t = inner_.read_link(path))
      s.target = *t;
    else
      s.type = FileType::kMissing;
  }
  return seen_.emplace(path, std::move(s)).first->second;
}

std::optional<std::string> RecordingHostFs::walk(const std::string& path, bool follow_last) const {
  std::deque<std::string> rest = components(path);
  std::string cur;  // canonical, "" for "/"
  int links = 0;
  while (!rest.empty()) {
    std::string comp = std::move(rest.front());
    rest.pop_front();
    if (comp == ".") continue;
    if (comp == "..") {
      cur = parent_of(cur);
      continue;
    }
    std::string next = cur + "/" + comp;
    const Seen& s = examine(next);
    if (s.type == FileType::kMissing) {
      entries_.try_emplace(next, RecordedEntry{});
      return std::nullopt;
    }
    if (s.type != FileType::kLink || (rest.empty() && !follow_last)) {
      cur = std::move(next);
      continue;
    }
    auto& e = entries_[next];
    e.kind = RecordedEntry::kLink;
    e.data = s.target;
    if (++links > kMaxLinks) return std::nullopt;
    std::deque<std::string> target = components(s.target);
    rest.insert(rest.begin(), target.begin(), target.end());
    if (s.target.starts_with('/')) cur.clear();  // inside the tree, as --root resolves it
  }
  return cur.empty() ? std::string("/") : cur;
}

void RecordingHostFs::note_type(const std::string& canonical, FileType t) const {
  auto& e = entries_[canonical];
  switch (t) {
    case FileType::kMissing:
      if (e.kind == RecordedEntry::kAbsent) e = RecordedEntry{};
      return;
    case FileType::kDir:
      e.kind = RecordedEntry::kDir;
      return;
    case FileType::kLink:
      e.kind = RecordedEntry::kLink;
      e.data = examine(canonical).target;
      return;
    default:
      if (e.kind != RecordedEntry::kFile) {
        e = RecordedEntry{};
        e.kind = RecordedEntry::kFile;
      }
      e.node = t;
      return;
  }
}

void RecordingHostFs::note_read(const std::string& path, const Result<std::string>& r,
                                size_t limit) const {
  auto c = walk(path, true);
  if (!c) return;
  FileType t = inner_.type(*c, false);
  if (t == FileType::kMissing || t == FileType::kDir) return note_type(*c, t);
  note_type(*c, t);
  auto& e = entries_[*c];
  if (!r) {
    e.unreadable = !e.contents_read;
    return;
  }
  if (e.contents_read && e.data.size() >= r->size()) return;  // keep the longest read
  e.data = *r;
  e.contents_read = true;
  e.unreadable = false;
  e.maybe_truncated = r->size() >= limit;
}

Result<std::string> RecordingHostFs::read(const std::string& path, size_t limit) const {
  if (auto it = reads_.find(path); it != reads_.end()) {
    const Answer& a = it->second;
    bool whole = a.data.ok() && a.data->size() < a.limit;  // the read reached the end
    if (!a.data.ok()) return a.data;
    if (limit <= a.limit || whole) return a.data->substr(0, limit);
  }
  auto r = inner_.read(path, limit);
  note_read(path, r, limit);
  reads_.insert_or_assign(path, Answer{limit, r});
  return r;
}

Result<std::string> RecordingHostFs::read_link(const std::string& path) const {
  if (auto it = links_.find(path); it != links_.end()) return it->second;
  auto r = inner_.read_link(path);
  if (auto c = walk(path, false)) note_type(*c, inner_.type(*c, false));
  links_.emplace(path, r);
  return r;
}

Result<std::string> RecordingHostFs::resolve(const std::string& path) const {
  auto r = inner_.resolve(path);
  if (auto c = walk(path, true)) note_type(*c, inner_.type(*c, false));
  return r;
}

Result<std::vector<std::string>> RecordingHostFs::list(const std::string& dir) const {
  auto r = inner_.list(dir);
  auto c = walk(dir, true);
  if (!c || !r) return r;
  note_type(*c, FileType::kDir);
  std::string base = *c == "/" ? std::string() : *c;
  // The names themselves are what a listing reads: each is kept as what it is, and a file's
  // contents only when a command reads them.
  for (const auto& name : *r) {
    std::string child = base + "/" + name;
    auto it = entries_.find(child);
    if (it != entries_.end() && it->second.kind != RecordedEntry::kAbsent) continue;
    note_type(child, examine(child).type);
  }
  return r;
}

FileType RecordingHostFs::type(const std::string& path, bool follow_links) const {
  auto& cache = types_[follow_links ? 1 : 0];
  if (auto it = cache.find(path); it != cache.end()) return it->second;
  FileType t = inner_.type(path, follow_links);
  cache.emplace(path, t);
  if (auto c = walk(path, follow_links)) note_type(*c, inner_.type(*c, false));
  return t;
}

Result<HostFs::Owner> RecordingHostFs::owner(const std::string& path) const {
  auto r = inner_.owner(path);
  if (auto c = walk(path, true)) {
    note_type(*c, inner_.type(*c, false));
    if (r) entries_[*c].owner = *r;
  }
  return r;
}

Status RecordingHostFs::write(const std::string& path, std::string_view) {
  return refused(path);
}
Status RecordingHostFs::write_atomic(const std::string& path, std::string_view, mode_t) {
  return refused(path);
}
Status RecordingHostFs::make_dirs(const std::string& path, mode_t) {
  return refused(path);
}
Status RecordingHostFs::remove(const std::string& path) {
  return refused(path);
}
Status RecordingHostFs::change_owner(const std::string& path, uid_t, gid_t) {
  return refused(path);
}
Result<std::unique_ptr<HostFs::Lock>> RecordingHostFs::lock(const std::string& path) {
  return refused(path);
}

}  // namespace pcipass
