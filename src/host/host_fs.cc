#include "host/host_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <sstream>
#include <utility>

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

std::vector<std::string> list_or_problem(const HostFs& fs, const std::string& dir,
                                         std::vector<std::string>& problems) {
  auto names = fs.list(dir);
  if (names) return std::move(*names);
  if (names.error().err != ENOENT) problems.push_back(names.error().describe());
  return {};
}

Result<std::vector<std::string>> list_if_present(const HostFs& fs, const std::string& dir) {
  auto names = fs.list(dir);
  if (!names && names.error().err == ENOENT) return std::vector<std::string>{};
  return names;
}

std::string trim(std::string_view s) {
  const char* ws = " \t\r\n";
  auto b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(ws);
  return std::string(s.substr(b, e - b + 1));
}

std::vector<std::string> path_components(std::string_view path) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > pos) out.emplace_back(path.substr(pos, slash - pos));
    pos = slash + 1;
  }
  return out;
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

Result<std::string> HostFs::read_tail(const std::string& path, size_t limit) const {
  auto all = TRY(read(path, size_t{64} << 20));
  if (all.size() > limit) all.erase(0, all.size() - limit);
  return all;
}

Result<std::string> HostFs::read_kmsg(size_t) const {
  return Error::io("read", "/dev/kmsg", ENOTSUP);
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

Result<Xattrs> HostFs::xattrs(const std::string&) const {
  return Xattrs{};
}

Status HostFs::remove_dir(const std::string& path) {
  return Error::io("rmdir", path, ENOTSUP);
}

Status HostFs::make_link(const std::string& path, const std::string&) {
  return Error::io("symlink", path, ENOTSUP);
}

Result<std::optional<std::string>> HostFs::read_value(const std::string& path) const {
  auto r = read(path, 4096);  // one value: a sysfs attribute is at most a page
  if (r) return std::optional<std::string>(trim(*r));
  if (r.error().err == ENOENT) return std::optional<std::string>();
  return r.error();
}

std::optional<std::string> HostFs::read_trimmed(const std::string& path) const {
  auto r = read_value(path);
  return r ? *r : std::nullopt;
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

std::optional<std::string> HostFs::local_path(const std::string&) const {
  return std::nullopt;
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

constexpr int kMaxLinks = 40;  // the kernel's MAXSYMLINKS: more is ELOOP
constexpr int kReadFlags = O_RDONLY | O_NONBLOCK | O_NOCTTY;

const char* type_name(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

Error not_regular(const std::string& path, mode_t mode) {
  Error e = Error::refused(
      path + " is " + type_name(mode) + ", not a file; pcipass reads only regular files there",
      "replace it with the file the kernel has there (a captured tree "
      "holds only files, directories and links)");
  e.path = path;
  return e;
}

constexpr size_t kPage = 4096;

// The contents of an open regular file, up to `limit` bytes. Within a page a short read is the end:
// the kernel shows a sysfs attribute (at most a page) in one piece, and a file on disk reads short
// only at its end. That saves the read(2) returning 0, one of the five calls an attribute cost
// (strace of `list` on the 4,096-device tree).
// False with errno set on an error (the caller names the file).
bool read_open(int fd, size_t limit, std::string& out) {
  char buf[8192];
  while (out.size() < limit) {
    size_t want = std::min(sizeof buf, limit - out.size());
    ssize_t n = ::read(fd, buf, want);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (limit <= kPage && static_cast<size_t>(n) < want) break;
  }
  return true;
}

// The same for a descriptor whose type was not checked before it was opened.
Result<std::string> read_regular(int fd, const std::string& path, size_t limit) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Error::io("stat", path, errno);
  if (!S_ISREG(st.st_mode)) return not_regular(path, st.st_mode);
  std::string out;
  if (!read_open(fd, limit, out)) return Error::io("read", path, errno);
  return out;
}

FileType file_type(mode_t mode) {
  if (S_ISREG(mode)) return FileType::kFile;
  if (S_ISDIR(mode)) return FileType::kDir;
  if (S_ISLNK(mode)) return FileType::kLink;
  if (S_ISCHR(mode)) return FileType::kCharDevice;
  return FileType::kOther;
}

// "/a/b/c" -> {"/a/b", "c"}; the name is "" for "/" itself. The parent is a view of `path` (or
// of "/"): most lookups find it among the directories kept open, and need no copy of it.
std::pair<std::string_view, std::string> split_parent(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return {"/", std::string(path)};
  std::string_view parent = path.substr(0, slash);
  return {parent.empty() ? std::string_view("/") : parent, std::string(path.substr(slash + 1))};
}

// openat2(2) when this kernel has it: nullopt when it does not (ENOSYS), else the fd or -1.
std::optional<int> try_openat2(int dirfd, const char* path, int flags, mode_t mode,
                               uint64_t resolve) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = resolve;
  for (int tries = 0;; ++tries) {
    long fd = ::syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    if (fd >= 0) return static_cast<int>(fd);
    if (errno == ENOSYS) return std::nullopt;
    // EAGAIN: a rename or mount raced a ".." step of a scoped lookup; the kernel asks to retry.
    if ((errno == EAGAIN && tries < 16) || errno == EINTR) continue;
    return -1;
  }
}

// Whether openat2 works here; cleared for good on the first ENOSYS (old kernels, sandboxes).
std::atomic<bool> g_openat2{true};

class RealHostFs : public HostFs {
 public:
  RealHostFs(std::string root, bool openat2)
      : root_(normalize_root(std::move(root))), openat2_(openat2) {
    root_fd_ = ::open(root_.empty() ? "/" : root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root_fd_ < 0) root_errno_ = errno;
  }
  ~RealHostFs() override {
    forget_dirs();
    if (root_fd_ >= 0) ::close(root_fd_);
  }
  RealHostFs(const RealHostFs&) = delete;
  RealHostFs& operator=(const RealHostFs&) = delete;

  // The type is checked before open(2), not after: opening a device node can act (a watchdog
  // starts, a tape rewinds) and a snapshot extracted by root can hold one where an attribute
  // belongs. The same number of calls as checking afterwards. A tree rewritten by someone else
  // while it is read could still swap a node in between: that someone could write anything.
  Result<std::string> read(const std::string& path, size_t limit) const override {
    auto [parent, name] = split_parent(path);
    if (plain_name(name))
      if (auto r = read_below(parent, name, limit, &path)) return std::move(*r);
    return read_walked(path, limit);
  }

  // The same names below one directory, without joining and splitting each path again.
  std::vector<Result<std::string>> read_each(const std::string& dir,
                                             const std::vector<std::string>& names,
                                             size_t limit) const override {
    std::vector<Result<std::string>> out;
    out.reserve(names.size());
    for (const auto& name : names) {
      std::optional<Result<std::string>> r;
      if (plain_name(name)) r = read_below(dir, name, limit, nullptr);
      out.push_back(r ? std::move(*r) : read_walked(join_path(dir, name), limit));
    }
    return out;
  }

  // One name in a directory kept open: a one-component lookup. nullopt where it is a link,
  // which read_walked follows inside the root. Errors name `path`, else dir/name.
  std::optional<Result<std::string>> read_below(std::string_view dir, const std::string& name,
                                                size_t limit, const std::string* path) const {
    auto fail = [&](const char* what) {
      int e = errno;
      return Error::io(what, path ? *path : join_path(dir, name), e);
    };
    std::unique_lock<std::mutex> hold(mu_);
    int d = dir_fd(dir);
    if (d < 0) return fail("open");
    struct stat st {};
    if (::fstatat(d, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return fail("open");
    if (S_ISLNK(st.st_mode)) return std::nullopt;
    if (!S_ISREG(st.st_mode)) return not_regular(path ? *path : join_path(dir, name), st.st_mode);
    FdCloser fd(::openat(d, name.c_str(), kReadFlags | O_NOFOLLOW | O_CLOEXEC));
    hold.unlock();
    if (fd.get() < 0) return fail("open");
    std::string out;
    if (!read_open(fd.get(), limit, out)) return fail("read");
    return out;
  }

  // A link, or a path to walk: its target's type first (O_PATH opens nothing), then the file.
  Result<std::string> read_walked(const std::string& path, size_t limit) const {
    {
      FdCloser probe(open_in_root(path, O_PATH));
      if (probe.get() < 0) return Error::io("open", path, errno);
      struct stat st {};
      if (::fstat(probe.get(), &st) != 0) return Error::io("stat", path, errno);
      if (!S_ISREG(st.st_mode)) return not_regular(path, st.st_mode);
    }
    FdCloser fd(open_in_root(path, kReadFlags));
    if (fd.get() < 0) return Error::io("open", path, errno);
    return read_regular(fd.get(), path, limit);
  }

  Result<std::string> read_tail(const std::string& path, size_t limit) const override {
    FdCloser fd(open_in_root(path, kReadFlags));
    if (fd.get() < 0) return Error::io("open", path, errno);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return Error::io("stat", path, errno);
    if (!S_ISREG(st.st_mode)) return not_regular(path, st.st_mode);
    auto size = static_cast<size_t>(st.st_size);
    if (size > limit && ::lseek(fd.get(), static_cast<off_t>(size - limit), SEEK_SET) < 0)
      return Error::io("seek", path, errno);
    std::string out;
    if (!read_open(fd.get(), limit, out)) return Error::io("read", path, errno);
    return out;
  }

  // Each read(2) of /dev/kmsg returns one record; EAGAIN is the end of what is there, EPIPE a
  // record overwritten while reading (skipped).
  Result<std::string> read_kmsg(size_t limit) const override {
    const std::string path = "/dev/kmsg";
    {
      FdCloser probe(open_in_root(path, O_PATH));
      struct stat st {};
      if (probe.get() < 0 || ::fstat(probe.get(), &st) != 0) return Error::io("open", path, errno);
      if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 11))
        return Error::io("open", path, ENOTSUP);
    }
    FdCloser fd(open_in_root(path, O_RDONLY | O_NONBLOCK | O_NOCTTY));
    if (fd.get() < 0) return Error::io("open", path, errno);
    std::string out;
    char record[8192];
    for (;;) {
      ssize_t n = ::read(fd.get(), record, sizeof record);
      if (n < 0 && (errno == EINTR || errno == EPIPE)) continue;
      if (n < 0 && errno == EAGAIN) break;
      if (n < 0) return Error::io("read", path, errno);
      if (n == 0) break;
      out.append(record, static_cast<size_t>(n));
      if (out.size() > 2 * limit) out.erase(0, out.size() - limit);
    }
    if (out.size() > limit) out.erase(0, out.size() - limit);
    return out;
  }

  Result<std::string> read_link(const std::string& path) const override {
    auto [parent, name] = split_parent(path);
    if (plain_name(name)) {
      std::lock_guard<std::mutex> hold(mu_);
      int dir = dir_fd(parent);
      if (dir < 0) return Error::io("readlink", path, errno);
      char buf[PATH_MAX];
      ssize_t n = ::readlinkat(dir, name.c_str(), buf, sizeof buf - 1);
      if (n < 0) return Error::io("readlink", path, errno);
      return std::string(buf, static_cast<size_t>(n));
    }
    FdCloser fd(open_in_root(path, O_PATH | O_NOFOLLOW));
    if (fd.get() < 0) return Error::io("readlink", path, errno);
    char buf[PATH_MAX];
    ssize_t n = ::readlinkat(fd.get(), "", buf, sizeof buf - 1);
    if (n < 0) return Error::io("readlink", path, errno == ENOENT ? EINVAL : errno);
    return std::string(buf, static_cast<size_t>(n));
  }

  Result<std::string> resolve(const std::string& path) const override {
    if (!openat2_.load(std::memory_order_relaxed) || root_fd_ < 0) return resolve_checked(path);
    FdCloser fd(open_in_root(path, O_PATH));
    if (fd.get() < 0) return Error::io("realpath", path, errno);
    char buf[PATH_MAX];
    std::string self = "/proc/self/fd/" + std::to_string(fd.get());
    ssize_t n = ::readlink(self.c_str(), buf, sizeof buf - 1);
    if (n < 0) return resolve_checked(path);  // no /proc on this machine
    std::string r(buf, static_cast<size_t>(n));
    if (root_.empty()) return r;
    if (r == root_) return std::string("/");
    if (r.compare(0, root_.size(), root_) == 0 && r[root_.size()] == '/')
      return r.substr(root_.size());
    return Error::io("realpath", path, EXDEV, "the link leaves the root " + root());
  }

  Result<std::vector<std::string>> list(const std::string& dir) const override {
    int fd = open_in_root(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return Error::io("opendir", dir, errno);
    DIR* d = ::fdopendir(fd);
    if (!d) {
      int e = errno;
      ::close(fd);
      return Error::io("opendir", dir, e);
    }
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
    if (!stat_in_root(path, follow_links, st)) return FileType::kMissing;
    return file_type(st.st_mode);
  }

  Result<Owner> owner(const std::string& path) const override {
    struct stat st {};
    if (!stat_in_root(path, true, st)) return Error::io("stat", path, errno);
    return Owner{st.st_uid, st.st_gid, st.st_mode};
  }

  Status write(const std::string& path, std::string_view data) override {
    forget_dirs();
    FdCloser fd(open_in_root(path, O_WRONLY | O_NONBLOCK | O_NOCTTY));
    if (fd.get() < 0) {
      int e = errno;
      struct stat st {};
      // A FIFO without a reader refuses a non-blocking writer with ENXIO: say what it is.
      if (e == ENXIO && stat_in_root(path, true, st) && !S_ISREG(st.st_mode))
        return not_regular(path, st.st_mode);
      return Error::io("open", path, e);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return Error::io("stat", path, errno);
    if (!S_ISREG(st.st_mode)) return not_regular(path, st.st_mode);
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
    return replace(path, data, o);
  }

  // The directory is opened inside the root like every other path; replace_file_at does the
  // rest relative to it (temporary, metadata, fsync, rename, directory fsync).
  Status replace(const std::string& path, std::string_view data,
                 const ReplaceOptions& options) override {
    forget_dirs();
    auto [parent, name] = split_parent(path);
    FdCloser dir(open_in_root(std::string(parent), O_RDONLY | O_DIRECTORY));
    if (dir.get() < 0) return Error::io("open the directory of", path, errno);
    return replace_file_at(dir.get(), name, data, options, path);
  }

  Status make_dirs(const std::string& path, mode_t mode) override {
    forget_dirs();
    std::string cur;
    for (const auto& part : path_components(path)) {
      FdCloser dir(open_in_root(cur.empty() ? "/" : cur, O_PATH | O_DIRECTORY));
      cur += "/" + part;
      if (dir.get() < 0) return Error::io("mkdir", cur, errno);
      if (::mkdirat(dir.get(), part.c_str(), mode) != 0 && errno != EEXIST)
        return Error::io("mkdir", cur, errno);
    }
    return {};
  }

  Status remove(const std::string& path) override {
    forget_dirs();
    auto [parent, name] = split_parent(path);
    FdCloser dir(open_in_root(std::string(parent), O_PATH | O_DIRECTORY));
    if (dir.get() < 0) {
      if (errno == ENOENT) return {};
      return Error::io("unlink", path, errno);
    }
    if (::unlinkat(dir.get(), name.c_str(), 0) != 0 && errno != ENOENT)
      return Error::io("unlink", path, errno);
    return {};
  }

  Status remove_dir(const std::string& path) override {
    forget_dirs();
    auto [parent, name] = split_parent(path);
    FdCloser dir(open_in_root(std::string(parent), O_PATH | O_DIRECTORY));
    if (dir.get() < 0) {
      if (errno == ENOENT) return {};
      return Error::io("rmdir", path, errno);
    }
    if (::unlinkat(dir.get(), name.c_str(), AT_REMOVEDIR) == 0 || errno == ENOENT) return {};
    int e = errno;
    Error err = Error::io("rmdir", path, e);
    if (e == ENOTEMPTY || e == EEXIST) {
      err.message = path + " is not empty: pcipass removes only directories it created, once empty";
      err.fix = "move what was put in it since elsewhere, then run the command again";
    }
    return err;
  }

  Status make_link(const std::string& path, const std::string& target) override {
    forget_dirs();
    auto [parent, name] = split_parent(path);
    FdCloser dir(open_in_root(std::string(parent), O_RDONLY | O_DIRECTORY));
    if (dir.get() < 0) return Error::io("open the directory of", path, errno);
    return replace_link_at(dir.get(), name, target, path);
  }

  Result<Xattrs> xattrs(const std::string& path) const override {
    FdCloser fd(open_in_root(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW));
    if (fd.get() < 0) return Error::io("open", path, errno);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return Error::io("stat", path, errno);
    if (!S_ISREG(st.st_mode)) return not_regular(path, st.st_mode);
    return read_xattrs(fd.get(), path);
  }

  Status change_owner(const std::string& path, uid_t uid, gid_t gid) override {
    FdCloser fd(open_in_root(path, O_PATH));
    if (fd.get() < 0) return Error::io("chown", path, errno);
    if (::fchownat(fd.get(), "", uid, gid, AT_EMPTY_PATH) != 0)
      return Error::io("chown", path, errno);
    return {};
  }

  Result<std::unique_ptr<Lock>> lock(const std::string& path) override {
    FdCloser fd(open_in_root(path, O_RDWR | O_CREAT | O_NONBLOCK | O_NOCTTY, 0600));
    if (fd.get() < 0) return Error::io("open", path, errno);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return Error::io("stat", path, errno);
    if (!S_ISREG(st.st_mode)) return not_regular(path, st.st_mode);
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK)
        return Error::state("another pcipass is changing the host (lock " + path + " is held)",
                            "wait for it to finish, then run the command again");
      return Error::io("flock", path, errno);
    }
    return std::unique_ptr<Lock>(new FlockHandle(fd.release()));
  }

  std::string root() const override { return root_.empty() ? "/" : root_; }

  std::optional<std::string> local_path(const std::string& host_path) const override {
    auto r = resolve(host_path);
    if (!r) return std::nullopt;
    return root_.empty() ? *r : (*r == "/" ? root_ : root_ + *r);
  }

 private:
  static std::string normalize_root(std::string root) {
    while (!root.empty() && root.back() == '/') root.pop_back();
    if (root.empty()) return root;
    char buf[PATH_MAX];
    if (::realpath(root.c_str(), buf)) root = buf;
    return root == "/" ? std::string() : root;
  }

  static bool plain_name(const std::string& name) {
    return !name.empty() && name != "." && name != "..";
  }

  // A borrowed O_PATH descriptor of a directory resolved inside the root, or -1 with errno set.
  // Attributes come in runs from one directory (a device's config, driver, iommu_group...), so
  // the last few directories stay open and each file costs a one-component lookup below them:
  // the last component is then opened with O_NOFOLLOW, and a link takes the full in-root walk.
  // Every change pcipass makes drops them (a sysfs write may replace a directory). Call with mu_
  // held.
  // The least recently used one goes first: a scan alternates between the bus directory and
  // each device's, and the bus directory must stay.
  int dir_fd(std::string_view dir, bool via_parent = true) const {
    ++clock_;
    // The last directory first: a device's files come in a run (each comparison of two long
    // sysfs paths with a common prefix runs far before they differ).
    if (OpenDir& last = dirs_[last_]; last.fd >= 0 && last.path == dir) {
      last.used = clock_;
      return last.fd;
    }
    for (auto& d : dirs_)
      if (d.fd >= 0 && d.path == dir) {
        d.used = clock_;
        last_ = static_cast<size_t>(&d - dirs_.data());
        return d.fd;
      }
    int fd = via_parent ? open_dir(dir) : open_in_root(std::string(dir), O_PATH | O_DIRECTORY);
    if (fd < 0) return -1;
    auto& slot = *std::min_element(dirs_.begin(), dirs_.end(),
                                   [](const auto& a, const auto& b) { return a.used < b.used; });
    if (slot.fd >= 0) ::close(slot.fd);
    slot.path.assign(dir);  // the slot's buffer is reused
    slot.fd = fd;
    slot.used = clock_;
    last_ = static_cast<size_t>(&slot - dirs_.data());
    return fd;
  }
  // A directory below one kept open is one plain name away from it: opened from there without
  // following a link (a link, or anything else odd, takes the walk from the root). A scan opens
  // each device's directory once, and its siblings share the parent: a one-component lookup
  // instead of a walk of /sys/devices/pci0000:00/... from the root for each device.
  int open_dir(std::string_view dir) const {
    auto [parent, name] = split_parent(dir);
    if (plain_name(name) && parent != dir && parent.size() > 1) {
      int p = dir_fd(parent, false);  // one level: a deep first path must not fill every slot
      if (p >= 0) {
        int fd = ::openat(p, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) return fd;
      }
    }
    return open_in_root(std::string(dir), O_PATH | O_DIRECTORY);
  }
  void forget_dirs() {
    std::lock_guard<std::mutex> hold(mu_);
    for (auto& d : dirs_) {
      if (d.fd >= 0) ::close(d.fd);
      d = {};
    }
  }

  // An fd for `path` resolved inside the root (O_CLOEXEC added), or -1 with errno set.
  int open_in_root(const std::string& path, int flags, mode_t mode = 0) const {
    if (root_fd_ < 0) {
      errno = root_errno_;
      return -1;
    }
    if (openat2_.load(std::memory_order_relaxed)) {
      auto fd =
          try_openat2(root_fd_, path.c_str(), flags, mode, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
      if (fd) return *fd;
      openat2_ = false;
      g_openat2 = false;
    }
    return open_lexical(path, flags, mode);
  }

  // Without openat2: the live root is the kernel's own "/", a tree is walked link by link.
  int open_lexical(const std::string& path, int flags, mode_t mode) const {
    if (root_.empty()) return ::open(path.c_str(), flags | O_CLOEXEC, mode);
    std::string host;
    if (int e = resolve_lexically(path, !(flags & O_NOFOLLOW), host)) {
      errno = e;
      return -1;
    }
    // O_NOFOLLOW: the walk followed every link, so one appearing now is a race, not a path.
    return ::open((root_ + host).c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode);
  }

  // Follows `path` inside the root as the kernel would with RESOLVE_IN_ROOT: absolute link
  // targets restart at the root, ".." stops there, at most kMaxLinks links. Returns an errno
  // (0 on success) and the canonical host path; a missing last component is kept as is.
  int resolve_lexically(const std::string& path, bool follow_last, std::string& host) const {
    auto todo_v = path_components(path);
    std::deque<std::string> todo(todo_v.begin(), todo_v.end());
    std::vector<std::string> done;
    int links = 0;
    while (!todo.empty()) {
      std::string part = std::move(todo.front());
      todo.pop_front();
      if (part == ".") continue;
      if (part == "..") {
        if (!done.empty()) done.pop_back();
        continue;
      }
      done.push_back(std::move(part));
      if (todo.empty() && !follow_last) break;
      std::string real = root_;
      for (const auto& d : done) real += "/" + d;
      struct stat st {};
      if (::lstat(real.c_str(), &st) != 0) {
        if (errno == ENOENT && todo.empty()) break;
        return errno;
      }
      if (!S_ISLNK(st.st_mode)) continue;
      if (++links > kMaxLinks) return ELOOP;
      char buf[PATH_MAX];
      ssize_t n = ::readlink(real.c_str(), buf, sizeof buf - 1);
      if (n < 0) return errno;
      std::string_view target(buf, static_cast<size_t>(n));
      done.pop_back();
      if (target.starts_with('/')) done.clear();
      auto more = path_components(target);
      todo.insert(todo.begin(), more.begin(), more.end());
    }
    host.clear();
    for (const auto& d : done) host += "/" + d;
    if (host.empty()) host = "/";
    return 0;
  }

  Result<std::string> resolve_checked(const std::string& path) const {
    std::string host;
    if (root_.empty()) {
      char buf[PATH_MAX];
      if (!::realpath(path.c_str(), buf)) return Error::io("realpath", path, errno);
      return std::string(buf);
    }
    if (int e = resolve_lexically(path, true, host)) return Error::io("realpath", path, e);
    struct stat st {};
    if (::lstat((root_ + host).c_str(), &st) != 0) return Error::io("realpath", path, errno);
    return host;
  }

  bool stat_in_root(const std::string& path, bool follow, struct stat& st) const {
    auto [parent, name] = split_parent(path);
    if (plain_name(name)) {
      std::lock_guard<std::mutex> hold(mu_);
      int dir = dir_fd(parent);
      if (dir < 0) return false;
      if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return false;
      if (!follow || !S_ISLNK(st.st_mode)) return true;
    }
    FdCloser fd(open_in_root(path, O_PATH | (follow ? 0 : O_NOFOLLOW)));
    if (fd.get() < 0) return false;
    return ::fstat(fd.get(), &st) == 0;
  }

  static Error short_write(const std::string& path, ssize_t n, size_t want) {
    Error e = Error::io("write", path, EIO);
    e.message = "write " + path + ": short write (" + std::to_string(n) + " of " +
                std::to_string(want) + " bytes)";
    return e;
  }

  std::string root_;  // canonical, empty for the live host
  int root_fd_ = -1;  // O_PATH descriptor of the root every lookup starts from
  int root_errno_ = 0;
  mutable std::atomic<bool> openat2_;
  struct OpenDir {
    std::string path;
    int fd = -1;
    uint64_t used = 0;
  };
  mutable std::mutex mu_;
  mutable std::array<OpenDir, 4> dirs_;
  mutable size_t last_ = 0;  // the slot found or opened last
  mutable uint64_t clock_ = 0;
};

}  // namespace

std::unique_ptr<HostFs> make_real_host_fs(std::string root) {
  return std::make_unique<RealHostFs>(std::move(root), g_openat2.load());
}

std::unique_ptr<HostFs> make_lexical_host_fs(std::string root) {
  return std::make_unique<RealHostFs>(std::move(root), false);
}

}  // namespace pcipass
