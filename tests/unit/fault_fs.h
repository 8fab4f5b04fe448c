// A HostFs over a TempTree that fails on demand: the n-th change (write, atomic write, replace,
// mkdir, remove, rmdir, chown, link) fails, or the process "dies" after the n-th and every later
// change fails. For plans of files, as FakeKernel is for sysfs.
#pragma once

#include <cerrno>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "host/host_fs.h"
#include "temp_tree.h"

namespace pcipass::test {

class FaultFs : public HostFs {
 public:
  explicit FaultFs(TempTree& t) : real_(make_real_host_fs(t.root())) {}

  void fail_at(int n) { fail_at_ = n; }
  void crash_after(int n) { crash_after_ = n; }
  // Listing exactly `dir` fails with EACCES; what is in it still reads.
  void deny_listing(std::string dir) { unlistable_.insert(std::move(dir)); }
  int changes() const { return count_; }
  const std::vector<std::string>& log() const { return log_; }

  Result<std::string> read(const std::string& p, size_t limit) const override {
    return real_->read(p, limit);
  }
  Result<std::string> read_link(const std::string& p) const override { return real_->read_link(p); }
  Result<std::string> resolve(const std::string& p) const override { return real_->resolve(p); }
  Result<std::vector<std::string>> list(const std::string& d) const override {
    if (unlistable_.count(d)) return Error::io("opendir", d, EACCES);
    return real_->list(d);
  }
  FileType type(const std::string& p, bool follow) const override { return real_->type(p, follow); }
  Result<Owner> owner(const std::string& p) const override { return real_->owner(p); }
  Result<Xattrs> xattrs(const std::string& p) const override { return real_->xattrs(p); }
  Status write(const std::string& p, std::string_view d) override {
    TRY(next("write", p));
    return real_->write(p, d);
  }
  Status write_atomic(const std::string& p, std::string_view d, mode_t m) override {
    TRY(next("write_atomic", p));
    return real_->write_atomic(p, d, m);
  }
  Status replace(const std::string& p, std::string_view d, const ReplaceOptions& o) override {
    TRY(next("replace", p));
    return real_->replace(p, d, o);
  }
  Status make_dirs(const std::string& p, mode_t m) override {
    TRY(next("mkdir", p));
    return real_->make_dirs(p, m);
  }
  Status remove(const std::string& p) override {
    TRY(next("remove", p));
    return real_->remove(p);
  }
  Status remove_dir(const std::string& p) override {
    TRY(next("rmdir", p));
    return real_->remove_dir(p);
  }
  Status change_owner(const std::string& p, uid_t u, gid_t g) override {
    TRY(next("chown", p));
    return real_->change_owner(p, u, g);
  }
  Status make_link(const std::string& p, const std::string& target) override {
    TRY(next("link", p));
    return real_->make_link(p, target);
  }
  Result<std::unique_ptr<Lock>> lock(const std::string& p) override { return real_->lock(p); }
  std::string root() const override { return real_->root(); }

 private:
  Status next(const char* op, const std::string& p) {
    ++count_;
    log_.push_back(std::string(op) + " " + p);
    if (count_ == fail_at_ || (crash_after_ >= 0 && count_ > crash_after_))
      return Error::io(op, p, EIO);
    return {};
  }
  std::unique_ptr<HostFs> real_;
  int fail_at_ = -1, crash_after_ = -1, count_ = 0;
  std::vector<std::string> log_;
  std::set<std::string> unlistable_;
};

}  // namespace pcipass::test
