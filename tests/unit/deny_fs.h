// A HostFs over a TempTree that answers "Permission denied" below chosen directories, as the
// real one does for a user other than root (tests run as root, for whom chmod changes nothing):
// the directory itself stats as a directory but cannot be listed; what lies below it cannot be
// read, listed, followed or even stat'ed (stat fails, so type() says kMissing, as it does live).
// A denied file is a root-only file in a readable directory: it stats, its contents are denied.
#pragma once

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "host/host_fs.h"
#include "temp_tree.h"

namespace pcipass::test {

class DenyFs : public HostFs {
 public:
  DenyFs(TempTree& t, std::vector<std::string> denied)
      : real_(make_real_host_fs(t.root())), denied_(std::move(denied)) {}

  Result<std::string> read(const std::string& p, size_t limit) const override {
    if (below(p) || at(p)) return Error::io("open", p, EACCES);
    return real_->read(p, limit);
  }
  Result<std::string> read_link(const std::string& p) const override {
    if (below(p)) return Error::io("readlink", p, EACCES);
    return real_->read_link(p);
  }
  Result<std::string> resolve(const std::string& p) const override {
    if (below(p)) return Error::io("resolve", p, EACCES);
    return real_->resolve(p);
  }
  Result<std::vector<std::string>> list(const std::string& d) const override {
    if (below(d) || at(d)) return Error::io("opendir", d, EACCES);
    return real_->list(d);
  }
  FileType type(const std::string& p, bool follow) const override {
    return below(p) ? FileType::kMissing : real_->type(p, follow);
  }
  Result<Owner> owner(const std::string& p) const override {
    if (below(p)) return Error::io("stat", p, EACCES);
    return real_->owner(p);
  }
  Status write(const std::string& p, std::string_view d) override {
    if (below(p)) return Error::io("open", p, EACCES);
    return real_->write(p, d);
  }
  Status write_atomic(const std::string& p, std::string_view d, mode_t m) override {
    if (below(p) || at(p)) return Error::io("open", p, EACCES);
    return real_->write_atomic(p, d, m);
  }
  Status make_dirs(const std::string& p, mode_t m) override { return real_->make_dirs(p, m); }
  Status remove(const std::string& p) override {
    if (below(p)) return Error::io("unlink", p, EACCES);
    return real_->remove(p);
  }
  Status change_owner(const std::string& p, uid_t, gid_t) override {
    return Error::io("chown", p, EPERM);
  }
  Result<std::unique_ptr<Lock>> lock(const std::string& p) override {
    if (below(p)) return Error::io("open", p, EACCES);
    return real_->lock(p);
  }
  std::string root() const override { return real_->root(); }

 private:
  bool at(const std::string& p) const {
    for (const auto& d : denied_)
      if (p == d) return true;
    return false;
  }
  bool below(const std::string& p) const {
    for (const auto& d : denied_)
      if (p.size() > d.size() && p.compare(0, d.size(), d) == 0 && p[d.size()] == '/') return true;
    return false;
  }
  std::unique_ptr<HostFs> real_;
  std::vector<std::string> denied_;
};

}  // namespace pcipass::test
