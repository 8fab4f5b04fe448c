// RecordingHostFs: a read-only HostFs that forwards every read to another one and remembers what
// it found, path by path, so `pcipass snapshot` can archive exactly what the read commands used.
// Paths are recorded canonically: every symbolic link passed on the way is recorded as a link and
// the entry itself is stored where the link chain leads, as a captured tree must lay it out.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "host/host_fs.h"

namespace pcipass {

struct RecordedEntry {
  enum Kind { kFile, kDir, kLink, kAbsent };
  Kind kind = kAbsent;
  std::string data;                 // file contents (what was read) or link target
  bool contents_read = false;       // kFile: data holds what a read returned, not just presence
  bool maybe_truncated = false;     // a read stopped at its limit: there may be more
  bool unreadable = false;          // kFile exists but reading it failed (write-only attribute)
  FileType node = FileType::kFile;  // kCharDevice or kOther for device nodes, FIFOs...
  std::optional<HostFs::Owner> owner = std::nullopt;  // when a command asked
};

class RecordingHostFs : public HostFs {
 public:
  explicit RecordingHostFs(const HostFs& inner) : inner_(inner) {}

  // read_each is HostFs's default: one read() each, so every file goes through the recording.
  Result<std::string> read(const std::string& path, size_t limit = 1 << 20) const override;
  Result<std::string> read_link(const std::string& path) const override;
  Result<std::string> resolve(const std::string& path) const override;
  Result<std::vector<std::string>> list(const std::string& dir) const override;
  FileType type(const std::string& path, bool follow_links) const override;
  Result<Owner> owner(const std::string& path) const override;

  // A recording never changes the host: every write is refused.
  Status write(const std::string& path, std::string_view data) override;
  Status write_atomic(const std::string& path, std::string_view data, mode_t mode) override;
  Status make_dirs(const std::string& path, mode_t mode) override;
  Status remove(const std::string& path) override;
  Status change_owner(const std::string& path, uid_t uid, gid_t gid) override;
  Result<std::unique_ptr<Lock>> lock(const std::string& path) override;

  std::string root() const override { return inner_.root(); }

  // Canonical host path -> what was found there. Directories on the way to a recorded entry are
  // not listed unless a command listed or stat'ed them.
  const std::map<std::string, RecordedEntry>& entries() const { return entries_; }
  const HostFs& inner() const { return inner_; }

 private:
  // Follows `path` through the inner view, recording each link passed (and the last component's
  // link when !follow_last); returns the canonical path, or nullopt when a component is missing.
  std::optional<std::string> walk(const std::string& path, bool follow_last) const;
  void note_type(const std::string& canonical, FileType t) const;
  void note_read(const std::string& path, const Result<std::string>& r, size_t limit) const;

  const HostFs& inner_;
  mutable std::map<std::string, RecordedEntry> entries_;
  // Answers already given, by the path as asked: a command that reads the same file again (show
  // compares every device's irq) gets the recorded answer without another walk. It also keeps
  // the snapshot one consistent moment.
  struct Answer {
    size_t limit;
    Result<std::string> data;
  };
  mutable std::unordered_map<std::string, Answer> reads_;
  mutable std::unordered_map<std::string, FileType> types_[2];  // [follow_links]
  mutable std::unordered_map<std::string, Result<std::string>> links_;
  // Paths (below a canonical directory) already examined: their own type and link target.
  struct Seen {
    FileType type;
    std::string target;
  };
  const Seen& examine(const std::string& path) const;
  mutable std::map<std::string, Seen> seen_;
};

}  // namespace pcipass
