#include "host/host_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <sstream>

namespace pcipass {

std::string join_path(std::string_view dir, std::string_view name) {
  std::string out(dir);
  if (out.empty() || out.back() != '/') out += '/';
  while (!name.empty() && name.front() == '/') name.remove_prefix(1);
  out += name;
  return out;
}

std::string base_name(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  auto slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

std::string trim(std::string_view s) {
  const char* ws = " \t\r\n";
  auto b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(ws);
  return std::string(s.substr(b, e - b + 1));
}

std::vector<std::string> split_words(std::string_view s) {
  std::vector<std::string> out;
  std::istringstream in{std::string(s)};
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::vector<Result<std::string>> HostFs::read_each(const std::string& dir,
                                                   const std::vector<std::string>& names,
                                                   size_t limit) const {
  std::vector<Result<std::string>> out;
  out.reserve(names.size());
  for (const auto& n : names) out.push_back(read(join_path(dir, n), limit));
  return out;
}

Status HostFs::replace(const std::string& path, std::string_view data,
                       const ReplaceOptions& options) {
  TRY(write_atomic(path, data, options.mode));
  if (options.uid || options.gid) {
    auto now = TRY(owner(path));
    TRY(change_owner(path, options.uid.value_or(now.uid), options.gid.value_or(now.gid)));
  }
  return {};
}

std::optional<std::string> HostFs::read_trimmed(const std::string& path) const {
  auto r = read(path, 64 * 1024);
  if (!r) return std::nullopt;
  return trim(*r);
}

std::optional<int64_t> HostFs::read_number(const std::string& path) const {
  auto s = read_trimmed(path);
  if (!s || s->empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s->c_str(), &end, 0);
  if (errno != 0 || *end != '\0') return std::nullopt;
  return v;
}

std::optional<std::string> HostFs::link_basename(const std::string& path) const {
  auto r = read_link(path);
  if (!r) return std::nullopt;
  return base_name(*r);
}

namespace {

class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

class FlockHandle : public HostFs::Lock {
 public:
  explicit FlockHandle(int fd) : fd_(fd) {}
  ~FlockHandle() override { ::close(fd_); }

 private:
  int fd_;
};

class RealHostFs : public HostFs {
 public:
  explicit RealHostFs(std::string root) : root_(normalize_root(std::move(root))) {}

  Result<std::string> read(const std::string& path, size_t limit) const override {
    FdCloser fd(::open(real(path).c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return Error::io("open", path, errno);
    std::string out;
    char buf[8192];
    while (out.size() < limit) {
      ssize_t n = ::read(fd.get(), buf, std::min(sizeof buf, limit - out.size()));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Error::io("read", path, errno);
      }
      if (n == 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

  Result<std::string> read_link(const std::string& path) const override {
    char buf[PATH_MAX];
    ssize_t n = ::readlink(real(path).c_str(), buf, sizeof buf - 1);
    if (n < 0) return Error::io("readlink", path, errno);
    return std::string(buf, static_cast<size_t>(n));
  }

  Result<std::string> resolve(const std::string& path) const override {
    char buf[PATH_MAX];
    if (!::realpath(real(path).c_str(), buf)) return Error::io("realpath", path, errno);
    std::string r(buf);
    if (root_.empty()) return r;
    if (r == root_) return std::string("/");
    if (r.compare(0, root_.size(), root_) == 0 && r[root_.size()] == '/')
      return r.substr(root_.size());
    return Error::io("realpath", path, EXDEV, "the link leaves the root " + root());
  }

  Result<std::vector<std::string>> list(const std::string& dir) const override {
    DIR* d = ::opendir(real(dir).c_str());
    if (!d) return Error::io("opendir", dir, errno);
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      std::string_view n(e->d_name);
      if (n != "." && n != "..") names.emplace_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    return names;
  }

  FileType type(const std::string& path, bool follow_links) const override {
    struct stat st {};
    int rc = follow_links ? ::stat(real(path).c_str(), &st) : ::lstat(real(path).c_str(), &st);
    if (rc != 0) return FileType::kMissing;
    if (S_ISREG(st.st_mode)) return FileType::kFile;
    if (S_ISDIR(st.st_mode)) return FileType::kDir;
    if (S_ISLNK(st.st_mode)) return FileType::kLink;
    if (S_ISCHR(st.st_mode)) return FileType::kCharDevice;
    return FileType::kOther;
  }

  Result<Owner> owner(const std::string& path) const override {
    struct stat st {};
    if (::stat(real(path).c_str(), &st) != 0) return Error::io("stat", path, errno);
    return Owner{st.st_uid, st.st_gid, st.st_mode};
  }

  Status write(const std::string& path, std::string_view data) override {
    FdCloser fd(::open(real(path).c_str(), O_WRONLY | O_CLOEXEC));
    if (fd.get() < 0) return Error::io("open", path, errno);
    ssize_t n;
    do {
      n = ::write(fd.get(), data.data(), data.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) return Error::io("write", path, errno);
    if (static_cast<size_t>(n) != data.size()) return short_write(path, n, data.size());
    if (::close(fd.release()) != 0) return Error::io("close", path, errno);
    return {};
  }

  Status write_atomic(const std::string& path, std::string_view data, mode_t mode) override {
    ReplaceOptions o;
    o.mode = mode;
    return replace_file(real(path), data, o, path);
  }

  Status replace(const std::string& path, std::string_view data,
                 const ReplaceOptions& options) override {
    return replace_file(real(path), data, options, path);
  }

  Status make_dirs(const std::string& path, mode_t mode) override {
    std::string cur;
    for (size_t pos = 1; pos <= path.size(); ++pos) {
      if (pos != path.size() && path[pos] != '/') continue;
      cur = path.substr(0, pos);
      if (::mkdir(real(cur).c_str(), mode) != 0 && errno != EEXIST)
        return Error::io("mkdir", cur, errno);
    }
    return {};
  }

  Status remove(const std::string& path) override {
    if (::unlink(real(path).c_str()) != 0 && errno != ENOENT)
      return Error::io("unlink", path, errno);
    return {};
  }

  Status change_owner(const std::string& path, uid_t uid, gid_t gid) override {
    if (::chown(real(path).c_str(), uid, gid) != 0) return Error::io("chown", path, errno);
    return {};
  }

  Result<std::unique_ptr<Lock>> lock(const std::string& path) override {
    FdCloser fd(::open(real(path).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (fd.get() < 0) return Error::io("open", path, errno);
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK)
        return Error::state("another pcipass is changing the host (lock " + path + " is held)",
                            "wait for it to finish, then run the command again");
      return Error::io("flock", path, errno);
    }
    return std::unique_ptr<Lock>(new FlockHandle(fd.release()));
  }

  std::string root() const override { return root_.empty() ? "/" : root_; }

 private:
  static std::string normalize_root(std::string root) {
    while (!root.empty() && root.back() == '/') root.pop_back();
    if (root.empty()) return root;
    char buf[PATH_MAX];
    if (::realpath(root.c_str(), buf)) root = buf;
    return root == "/" ? std::string() : root;
  }
  std::string real(const std::string& path) const { return root_ + path; }
  static Error short_write(const std::string& path, ssize_t n, size_t want) {
    Error e = Error::io("write", path, EIO);
    e.message = "write " + path + ": short write (" + std::to_string(n) + " of " +
                std::to_string(want) + " bytes)";
    return e;
  }

  std::string root_;  // empty for the live host
};

}  // namespace

std::unique_ptr<HostFs> make_real_host_fs(std::string root) {
  return std::make_unique<RealHostFs>(std::move(root));
}

}  // namespace pcipass
