// `pcipass snapshot`: capture the parts of a host that pcipass reads (docs/host-tree.md) into a
// .tar.gz that `--root` can use once extracted, so users can attach their host to bug reports.
#pragma once

#include <map>
#include <string>

#include "host/host_fs.h"

namespace pcipass {

struct SnapshotEntry {
  enum Type { kFile, kLink, kDir } type = kFile;
  std::string data;  // file contents or link target
};

// Host path -> entry, parents included. Device nodes and ACPI tables become empty files.
using SnapshotTree = std::map<std::string, SnapshotEntry>;

SnapshotTree collect_snapshot(const HostFs& fs);

// Writes the tree as a gzip'd tar to `output` (a local path), atomically.
Status write_snapshot(const SnapshotTree& tree, const std::string& output);

}  // namespace pcipass
