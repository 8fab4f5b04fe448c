// MemFs: a whole host in memory behind HostFs, for fuzzing and tests: files, directories, links,
// character devices and FIFOs, resolved inside the root as the real HostFs resolves a captured
// tree (absolute targets restart at the root, ".." stops there, at most 40 links), with the same
// errors for the same cases. Nothing touches the disk; a FIFO reads as "not a regular file", so
// nothing blocks. An optional backing directory answers local_path() for the libraries that open
// files themselves (libpci's pci.ids, libkmod's indexes); without one they get nothing.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "host/host_fs.h"

namespace pcipass::test {

class MemFs : public HostFs {
 public:
  explicit MemFs(std::string root_name = "/mem", std::optional<std::string> backing = {});

  // --- building the tree; parents are created as directories, an existing entry is replaced
  void put_file(const std::string& path, std::string data, mode_t mode = 0644);
  void put_dir(const std::string& path, mode_t mode = 0755);
  void put_link(const std::string& path, std::string target);
  void put_char_device(const std::string& path);
  void put_fifo(const std::string& path);
  // Reading or listing the entry fails with `err` (EACCES: a file root alone may read).
  void deny(const std::string& path, int err = EACCES);
  // Every file of a directory on disk, links as links (a fixture), below `at` ("/").
  void load_dir(const std::string& dir, const std::string& at = "/");
  size_t entries() const { return nodes_.size(); }
  // Every path changed through HostFs (write, write_atomic, make_dirs, remove, remove_dir,
  // change_owner, lock), in order: what the code under test did to the host.
  const std::vector<std::string>& changed() const { return changed_; }
  // From checkpoint() on, every change to the tree (put_*, deny and the HostFs writes) is
  // recorded so that rollback() puts the tree, changed() and deny() back as they were at the
  // checkpoint; the record starts again empty. A fuzz target runs each input on one fixture host
  // this way: copying the host for every input cost most of an execution (journal: a whole
  // intel-workstation tree per input). rollback() without a checkpoint does nothing.
  void checkpoint();
  void rollback();

  // --- HostFs
  Result<std::string> read(const std::string& path, size_t limit) const override;
  Result<std::string> read_link(const std::string& path) const override;
  Result<std::string> resolve(const std::string& path) const override;
  Result<std::vector<std::string>> list(const std::string& dir) const override;
  FileType type(const std::string& path, bool follow_links) const override;
  Result<Owner> owner(const std::string& path) const override;
  Status write(const std::string& path, std::string_view data) override;
  Status write_atomic(const std::string& path, std::string_view data, mode_t mode) override;
  Status make_dirs(const std::string& path, mode_t mode) override;
  Status remove(const std::string& path) override;
  Status remove_dir(const std::string& path) override;
  Status change_owner(const std::string& path, uid_t uid, gid_t gid) override;
  Result<std::unique_ptr<Lock>> lock(const std::string& path) override;
  std::string root() const override { return root_name_; }
  std::optional<std::string> local_path(const std::string& host_path) const override;

 private:
  struct Node {
    FileType type = FileType::kFile;
    std::string data;  // a file's bytes, a link's target
    mode_t mode = 0644;
    uid_t uid = 0;
    gid_t gid = 0;
    int deny = 0;  // errno for reads and listings
    std::set<std::string> children;
    bool operator==(const Node&) const = default;
  };
  // Canonical path of `path` (every link followed, the last one too when `follow_last`), or an
  // errno; a missing last component is kept as is, as the real resolver does.
  // `cached`: may answer through walk_cached(), which walks a parent (uncached: one level deep,
  // never a recursion per component).
  int walk(const std::string& path, bool follow_last, std::string& out, bool cached = true) const;
  std::optional<std::string> walk_cached(const std::string& path, bool follow_last) const;
  const Node* find(const std::string& path, bool follow_last, int& err) const;
  Node& make(const std::string& canonical, FileType type);
  void unlink_node(const std::string& canonical);
  Status remove_entry(const std::string& path, bool dir);
  // Keeps the node at `canonical` (or its absence) as it was at the checkpoint, once per path.
  void remember(const std::string& canonical);

  std::vector<std::string> changed_;
  std::string root_name_;
  std::optional<std::string> backing_;
  std::unordered_map<std::string, Node> nodes_;  // by canonical path; "/" always present
  // A directory's path as asked -> its canonical path; emptied by every change of the tree's
  // shape (make, unlink_node). Not thread-safe, as nothing of MemFs is.
  mutable std::unordered_map<std::string, std::string> dir_cache_;
  int denied_ = 0;  // deny() calls: while none, walk() may answer a canonical path by lookup
  struct Checkpoint {
    std::unordered_map<std::string, std::optional<Node>> before;  // by canonical path
    size_t changed = 0;
    int denied = 0;
  };
  std::optional<Checkpoint> checkpoint_;
};

}  // namespace pcipass::test
