// Replacing a file so that a reader, a crash or a signal sees either the old bytes or the new
// ones, never a mix, and the file keeps what makes it the same file to the system: its mode,
// owner, POSIX ACLs and SELinux label (extended attributes).
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "util/result.h"

namespace pcipass {

// Every temporary starts with this, so `recover` can find strays after a power loss.
inline constexpr std::string_view kTempPrefix = ".pcipass-";

// Extended attributes, name to value.
using Xattrs = std::map<std::string, std::string>;

struct ReplaceOptions {
  mode_t mode = 0644;  // for a new file; an existing file keeps its own unless `force_mode`
  bool force_mode = false;
  std::optional<uid_t> uid;  // set the owner (default: a new file is the caller's, an existing
  std::optional<gid_t> gid;  // file keeps its owner)
  bool sync = true;          // fsync the file and the directory (off only for tmpfs journals)
  // Exactly these extended attributes instead of the original's (undo recreating a removed
  // file, or putting back a label someone changed).
  std::optional<Xattrs> xattrs;
};

// In directory `dirfd`, replace (or create) `name` with `data`: a temporary `.pcipass-XXXXXX`
// made with O_EXCL beside it, the original's mode, owner and every extended attribute copied,
// all bytes written, fsync, renameat over `name`, fsync of the directory. On any failure the
// temporary is unlinked and `name` is untouched. SIGINT, SIGTERM, SIGHUP and SIGQUIT are held
// between creating the temporary and the rename. `shown` is the host path for messages.
Status replace_file_at(int dirfd, const std::string& name, std::string_view data,
                       const ReplaceOptions& options, const std::string& shown);

// In directory `dirfd`, make `name` a symbolic link to `target`, atomically: a link with a
// temporary `.pcipass-XXXXXX` name made beside it, renamed over `name` (a link or a missing
// entry), then fsync of the directory. `shown` is the host path for messages.
Status replace_link_at(int dirfd, const std::string& name, const std::string& target,
                       const std::string& shown);

// Every extended attribute of the open file `fd`; a file system without them gives none.
Result<Xattrs> read_xattrs(int fd, const std::string& shown);

// The same for an absolute path on this machine (its directory opened first).
Status replace_file(const std::string& real_path, std::string_view data,
                    const ReplaceOptions& options, const std::string& shown);

}  // namespace pcipass
