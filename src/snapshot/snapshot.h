// `pcipass snapshot`: capture what pcipass's read commands use (docs/host-tree.md) into a
// .tar.gz that `--root` can use once extracted, so users can attach their host to bug reports.
// The CLI drives the read commands through a RecordingHostFs; this part turns the recording into
// a safe tree and writes it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "host/host_fs.h"
#include "host/recording_fs.h"

namespace pcipass {

struct SnapshotEntry {
  enum Type { kFile, kLink, kDir } type = kFile;
  std::string data;  // file contents or link target
  mode_t mode = 0;   // 0: the default (0644 files, 0755 directories)
  std::optional<uid_t> uid = std::nullopt;
  std::optional<gid_t> gid = std::nullopt;
};

// Host path -> entry, parents included. Device nodes become empty files.
using SnapshotTree = std::map<std::string, SnapshotEntry>;

// Stored in the archive as /.pcipass-snapshot.json (docs/host-tree.md).
struct SnapshotManifest {
  int64_t created = 0;                        // seconds since the epoch
  std::string kernel;                         // /proc/sys/kernel/osrelease
  std::map<std::string, std::string> nodes;   // path -> "char-device" | "other"
  std::map<std::string, uint64_t> truncated;  // path -> bytes kept
  std::vector<std::string> dropped;           // links left out as unsafe
  std::string json() const;
};

struct Snapshot {
  SnapshotTree tree;
  SnapshotManifest manifest;
};

inline constexpr const char* kManifestPath = "/.pcipass-snapshot.json";
inline constexpr size_t kSnapshotFileCap = 1 << 20;

// Reads through `fs` (the recording) what no command reads itself but a snapshot must hold:
// the files libraries open on their own and a few kept for bug reports (snapshot.cc says why).
void read_snapshot_extras(const HostFs& fs);

// The recording as a tree that is safe to extract: normalized relative paths, no link leaving
// the tree, other processes only as far as a command looked at them.
Snapshot build_snapshot(const RecordingHostFs& recording, int64_t now);

// Writes the snapshot as a gzip'd tar to `output` (a local path), atomically. libarchive is
// loaded here, and only here.
Status write_snapshot(const Snapshot& snapshot, const std::string& output);

}  // namespace pcipass
