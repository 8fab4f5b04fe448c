// HostFs: the one door to everything the operating system exposes as files
// (/sys, /proc, /dev, /etc, /boot, /lib/modules, /run). Paths are absolute host paths;
// an implementation maps them below its root, so tests and `--root DIR` see a captured tree.
// Every path resolves inside the root: an absolute symbolic link in a captured tree points into
// the tree, and ".." never climbs out of it (docs/host-tree.md).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "host/atomic_file.h"
#include "util/result.h"

namespace pcipass {

enum class FileType { kMissing, kFile, kDir, kLink, kCharDevice, kOther };

class HostFs {
 public:
  virtual ~HostFs() = default;

  // Whole contents (at most `limit` bytes) of a regular file. Anything else (a FIFO, a device
  // node, a socket) is refused without blocking: sysfs and procfs attributes are regular files.
  virtual Result<std::string> read(const std::string& path, size_t limit = 1 << 20) const = 0;
  // Several small files of one directory (a device's sysfs attributes): implementations may look
  // the directory up once instead of once per file. Entry i is names[i]'s contents or its error.
  virtual std::vector<Result<std::string>> read_each(const std::string& dir,
                                                     const std::vector<std::string>& names,
                                                     size_t limit = 4096) const;
  // The last `limit` bytes of a regular file (a log that grows without bound), with read()'s
  // refusals. The default, for doubles: read() of at most 64 MiB, cut to its tail.
  virtual Result<std::string> read_tail(const std::string& path, size_t limit) const;
  // The kernel's log as /dev/kmsg gives it: one record per line ("6,1024,5301,-;text"), the last
  // `limit` bytes of the records present when it was opened, read without blocking. Only the
  // kernel's own node (character device 1:11) is opened, never whatever a captured tree holds
  // there. The default, for doubles: ENOTSUP; callers fall back to a log file.
  virtual Result<std::string> read_kmsg(size_t limit) const;
  // Target of a symbolic link, as stored.
  virtual Result<std::string> read_link(const std::string& path) const = 0;
  // Canonical host path with every symbolic link followed.
  virtual Result<std::string> resolve(const std::string& path) const = 0;
  // Entry names of a directory, sorted, without "." and "..".
  virtual Result<std::vector<std::string>> list(const std::string& dir) const = 0;
  virtual FileType type(const std::string& path, bool follow_links = true) const = 0;
  // Owner, group and mode of a path (following links).
  struct Owner {
    uid_t uid;
    gid_t gid;
    mode_t mode;
  };
  virtual Result<Owner> owner(const std::string& path) const = 0;
  // Every extended attribute of a regular file, name to value (user.*, security.selinux, POSIX
  // ACLs as system.posix_acl_*), so that undo can give a removed file its own back. A file
  // system without them gives an empty map. The default, for doubles: none.
  virtual Result<Xattrs> xattrs(const std::string& path) const;

  // One write(2) of `data` to an existing regular file, as sysfs attributes need; a short write
  // is an error.
  virtual Status write(const std::string& path, std::string_view data) = 0;
  // Replace a regular file atomically: write a temporary file beside it, fsync, rename. A new
  // file gets `mode`; an existing one keeps its mode, owner and extended attributes.
  virtual Status write_atomic(const std::string& path, std::string_view data, mode_t mode) = 0;
  // The same with the metadata chosen (undo puts a file's mode and owner back). The default
  // is write_atomic then change_owner, for doubles; the real one does it in the temporary.
  virtual Status replace(const std::string& path, std::string_view data,
                         const ReplaceOptions& options);
  virtual Status make_dirs(const std::string& path, mode_t mode) = 0;
  virtual Status remove(const std::string& path) = 0;
  // rmdir(2): removes an empty directory (nothing when it is absent). A directory that is not
  // empty is refused with the reason and left as it is; nothing below it is ever removed. The
  // default, for doubles that do not model directories: refused.
  virtual Status remove_dir(const std::string& path);
  virtual Status change_owner(const std::string& path, uid_t uid, gid_t gid) = 0;
  // Makes `path` a symbolic link to `target` (stored as given), replacing a link that is there,
  // atomically (replace_link_at). The default, for doubles that do not model links: refused.
  virtual Status make_link(const std::string& path, const std::string& target);
  // Exclusive advisory lock held until the returned handle is destroyed.
  class Lock {
   public:
    virtual ~Lock() = default;
  };
  virtual Result<std::unique_ptr<Lock>> lock(const std::string& path) = 0;

  // Where this view of the host is rooted ("/" for the live host), for messages only: whether
  // the view is the running machine is ProcessContext::live, never a test of this name.
  virtual std::string root() const = 0;

  // The only way out of this door: the path on the machine pcipass runs on of an existing host
  // path, its links resolved inside the root, for libraries that must open files themselves
  // (libkmod's module index and modprobe.d files, libpci's pci.ids). What such a library opens
  // below a returned directory is resolved by the kernel as usual, so callers pass it files, or
  // directories whose contents they trust. nullopt when the path is missing or the view has no
  // files on this machine (test doubles).
  virtual std::optional<std::string> local_path(const std::string& host_path) const;

  // Conveniences built on the primitives.
  bool exists(const std::string& path) const { return type(path) != FileType::kMissing; }
  bool is_dir(const std::string& path) const { return type(path) == FileType::kDir; }
  // One value (an attribute: at most its first page) with surrounding whitespace removed; nullopt
  // when there is no such file (ENOENT). Any other error is returned: a file that cannot be read
  // is not one that is absent (a root-only file, a device that stopped answering).
  Result<std::optional<std::string>> read_value(const std::string& path) const;
  // The same where an unreadable value may be taken as none; nullopt when unreadable.
  std::optional<std::string> read_trimmed(const std::string& path) const;
  // An integer attribute such as "0x10de", "3" or "-1"; nullopt when missing or malformed.
  std::optional<int64_t> read_number(const std::string& path) const;
  // Last component of a link's target ("../../bus/pci/drivers/e1000e" -> "e1000e").
  std::optional<std::string> link_basename(const std::string& path) const;
};

// The live host or a captured tree, rooted at `root`: every path is opened with openat2(2)
// RESOLVE_IN_ROOT relative to the root directory (a lexical resolver where the kernel lacks it).
std::unique_ptr<HostFs> make_real_host_fs(std::string root);
// The same with the lexical resolver only, as on kernels without openat2 (tests).
std::unique_ptr<HostFs> make_lexical_host_fs(std::string root);

// A directory's entries where one that is not there has none (no mdev parents, no VFs): ENOENT
// gives none; any other error gives none too, with its text added to `problems`, so that a
// listing it was part of says it is partial instead of passing "unreadable" off as "empty".
std::vector<std::string> list_or_problem(const HostFs& fs, const std::string& dir,
                                         std::vector<std::string>& problems);
// A directory's entries where one that is not there has none (no kernels installed, no vendor
// directory on the ESP), for callers that cannot give a partial answer: ENOENT gives none, any
// other error is returned (a grub.cfg or initramfs image passed over would make a setup that
// does not take effect look done).
Result<std::vector<std::string>> list_if_present(const HostFs& fs, const std::string& dir);

std::string join_path(std::string_view dir, std::string_view name);
std::string base_name(std::string_view path);
std::string trim(std::string_view s);
// Whitespace-separated words, as procfs tables lay out their columns.
std::vector<std::string> split_words(std::string_view s);
// The names between slashes: "/a//b/" -> {"a", "b"}.
std::vector<std::string> path_components(std::string_view path);

}  // namespace pcipass
