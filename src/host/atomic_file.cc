#include "host/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

namespace pcipass {

namespace {

// Holds the termination signals for its lifetime; a pending one is delivered at the end.
class SignalsHeld {
 public:
  SignalsHeld() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaddset(&set, s);
    ::pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  ~SignalsHeld() { ::pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  SignalsHeld(const SignalsHeld&) = delete;
  SignalsHeld& operator=(const SignalsHeld&) = delete;

 private:
  sigset_t old_;
};

std::string random_name() {
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  unsigned char bytes[6];
  size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  std::string name(kTempPrefix);
  for (unsigned char b : bytes) name += kAlphabet[b % (sizeof kAlphabet - 1)];
  return name;
}

Status set_xattrs(int to, const Xattrs& xattrs, const std::string& shown) {
  for (const auto& [name, value] : xattrs)
    if (::fsetxattr(to, name.c_str(), value.data(), value.size(), 0) != 0)
      return Error::io("setxattr " + name, shown, errno);
  return {};
}

// Every extended attribute of `from` onto `to` (ACLs and the SELinux label are among them).
Status copy_xattrs(int from, int to, const std::string& shown) {
  return set_xattrs(to, TRY(read_xattrs(from, shown)), shown);
}

Status write_all(int fd, std::string_view data, const std::string& shown) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Error::io("write", shown, n < 0 ? errno : EIO);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

// The temporary's metadata: the original's (when there is one), then what the caller forces.
Status set_metadata(int orig, int tmp, const ReplaceOptions& o, const std::string& shown) {
  struct stat st {};
  bool have = orig >= 0 && ::fstat(orig, &st) == 0;
  if (o.xattrs)
    TRY(set_xattrs(tmp, *o.xattrs, shown));
  else if (have)
    TRY(copy_xattrs(orig, tmp, shown));
  struct stat mine {};
  if (::fstat(tmp, &mine) != 0) return Error::io("stat", shown, errno);
  uid_t uid = o.uid ? *o.uid : have ? st.st_uid : mine.st_uid;
  gid_t gid = o.gid ? *o.gid : have ? st.st_gid : mine.st_gid;
  if ((uid != mine.st_uid || gid != mine.st_gid) && ::fchown(tmp, uid, gid) != 0)
    return Error::io("chown", shown, errno);
  mode_t mode = (have && !o.force_mode) ? (st.st_mode & 07777) : o.mode;
  // After chown, which clears set-id bits; fchmod also escapes the umask.
  if (::fchmod(tmp, mode) != 0) return Error::io("chmod", shown, errno);
  return {};
}

Status fill(int dirfd, const std::string& name, int tmp, std::string_view data,
            const ReplaceOptions& o, const std::string& shown) {
  int orig = ::openat(dirfd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (orig < 0 && errno != ENOENT) return Error::io("open", shown, errno);
  Status meta = set_metadata(orig, tmp, o, shown);
  if (orig >= 0) ::close(orig);
  TRY(std::move(meta));
  TRY(write_all(tmp, data, shown));
  if (o.sync && ::fsync(tmp) != 0) return Error::io("fsync", shown, errno);
  return {};
}

}  // namespace

Result<Xattrs> read_xattrs(int fd, const std::string& shown) {
  Xattrs out;
  ssize_t len = ::flistxattr(fd, nullptr, 0);
  if (len < 0) return errno == ENOTSUP ? Result<Xattrs>(out) : Error::io("listxattr", shown, errno);
  std::vector<char> names(static_cast<size_t>(len));
  len = ::flistxattr(fd, names.data(), names.size());
  if (len < 0) return Error::io("listxattr", shown, errno);
  for (size_t i = 0; i < static_cast<size_t>(len);) {
    std::string name(names.data() + i);
    i += name.size() + 1;
    ssize_t vlen = ::fgetxattr(fd, name.c_str(), nullptr, 0);
    if (vlen < 0) return Error::io("getxattr " + name, shown, errno);
    std::string value(static_cast<size_t>(vlen), '\0');
    vlen = ::fgetxattr(fd, name.c_str(), value.data(), value.size());
    if (vlen < 0) return Error::io("getxattr " + name, shown, errno);
    value.resize(static_cast<size_t>(vlen));
    out[name] = std::move(value);
  }
  return out;
}

Status replace_file(const std::string& real_path, std::string_view data,
                    const ReplaceOptions& options, const std::string& shown) {
  auto slash = real_path.rfind('/');
  std::string dir = slash == 0 ? "/" : real_path.substr(0, slash);
  int dirfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) return Error::io("open the directory of", shown, errno);
  Status st = replace_file_at(dirfd, real_path.substr(slash + 1), data, options, shown);
  ::close(dirfd);
  return st;
}

Status replace_file_at(int dirfd, const std::string& name, std::string_view data,
                       const ReplaceOptions& options, const std::string& shown) {
  SignalsHeld held;
  std::string tmp_name;
  int tmp = -1;
  for (int attempt = 0; attempt < 16 && tmp < 0; ++attempt) {
    tmp_name = random_name();
    tmp = ::openat(dirfd, tmp_name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (tmp < 0 && errno != EEXIST) return Error::io("create a temporary beside", shown, errno);
  }
  if (tmp < 0) return Error::io("create a temporary beside", shown, EEXIST);
  Status st = fill(dirfd, name, tmp, data, options, shown);
  if (::close(tmp) != 0 && st) st = Error::io("close", shown, errno);
  if (st && ::renameat(dirfd, tmp_name.c_str(), dirfd, name.c_str()) != 0)
    st = Error::io("rename", shown, errno);
  if (!st) {
    ::unlinkat(dirfd, tmp_name.c_str(), 0);
    return st;
  }
  // The rename is durable only once the directory is.
  if (options.sync && ::fsync(dirfd) != 0) return Error::io("fsync the directory of", shown, errno);
  return {};
}

Status replace_link_at(int dirfd, const std::string& name, const std::string& target,
                       const std::string& shown) {
  SignalsHeld held;
  std::string tmp_name;
  bool made = false;
  for (int attempt = 0; attempt < 16 && !made; ++attempt) {
    tmp_name = random_name();
    made = ::symlinkat(target.c_str(), dirfd, tmp_name.c_str()) == 0;
    if (!made && errno != EEXIST) return Error::io("create a temporary link beside", shown, errno);
  }
  if (!made) return Error::io("create a temporary link beside", shown, EEXIST);
  if (::renameat(dirfd, tmp_name.c_str(), dirfd, name.c_str()) != 0) {
    int e = errno;
    ::unlinkat(dirfd, tmp_name.c_str(), 0);
    return Error::io("rename", shown, e);
  }
  if (::fsync(dirfd) != 0) return Error::io("fsync the directory of", shown, errno);
  return {};
}

}  // namespace pcipass
