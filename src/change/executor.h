// The one executor of plans: applies changes in order (or, in a dry run, only says what it would
// write), and on the first failure undoes what it applied, last first, from the before-states
// captured ahead of the first write.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "change/change.h"
#include "host/module_loader.h"
#include "host/runner.h"

namespace pcipass::change {

// What changes reach besides HostFs.
struct Ports {
  ModuleLoader* loader = nullptr;        // kModuleLoad
  CommandRunner* runner = nullptr;       // kProgram
  std::function<void(int ms)> sleep_ms;  // kWaitFor; null: nanosleep
  std::function<int64_t()> now;          // when a program ran (ProcessContext's clock); null: 0
  VfLinkPort* vf_links = nullptr;        // kVfLink
};

// Where a plan's progress is kept so that a crash can be undone: the runtime journal under
// /run/pcipass (assign/journal.h) or a durable change set under /var/lib/pcipass (store.h).
class Record {
 public:
  virtual ~Record() = default;
  // Before the first recorded change is applied. In a dry run: only the steps it would take.
  virtual Status begin(std::vector<Step>& steps, bool dry_run) = 0;
  // After a program ran (its `ran` is set), failed or not: a durable record keeps how it ended.
  virtual Status ran(const Change&) { return {}; }
  // After a successful rollback: the record is no longer needed.
  virtual Status discard() = 0;
  // Fixes for the error that stopped the plan.
  struct Texts {
    std::string restored;        // "every device was rolled back to where it was"
    std::string discard_failed;  // rolled back, but the record could not be cleared
    std::string kept;            // rolling back failed: what to do
  };
  virtual Texts texts() const = 0;
};

class Executor {
 public:
  Executor(HostFs& fs, Ports ports, bool dry_run)
      : fs_(fs), ports_(std::move(ports)), dry_(dry_run) {}

  // Each change's before-state, read before anything is written.
  Status capture(std::vector<Change>& plan) const;
  // Applies the plan in order; `record` begins before the first recorded change. A failure
  // after that rolls back and returns the error with what happened in its fix; a failure
  // before it is returned as it is (nothing needed undoing).
  Status run(std::vector<Change>& plan, Record* record);
  // Undoes every applied change, last first, trying them all; the first error is returned.
  Status roll_back(std::vector<Change>& plan);
  // Roll back, clear the record, and say so in `e` (also for a failed commit).
  Error fail(std::vector<Change>& plan, Record& record, Error e);

  bool began() const { return began_; }
  bool dry_run() const { return dry_; }
  std::vector<Step> steps;  // made (or, in a dry run, that would be made), in order

 private:
  Result<std::optional<std::string>> attribute_before(const std::string& path) const;
  Status apply(Change& c);
  Status undo(const Change& c);
  Status write(const std::string& path, const std::string& data);
  Status move(const Change& c);
  Status restore(const PciAddress& a, const DeviceState& target);
  Status replace_file(const Change& c);
  Status write_file(const std::string& path, const std::string& bytes, const ReplaceOptions& o);
  Status put_back_file(const std::string& path, const FileState& s);
  Status wait_for(const Change& c);
  Status run_program(Change& c);
  Status load_module(const Change& c);
  Status create_mdev(const Change& c);
  Status set_vf(const Change& c, const VfSetting& s);
  Status put_link(const std::string& path, const std::optional<std::string>& now,
                  const std::optional<std::string>& want);

  HostFs& fs_;
  Ports ports_;
  bool dry_;
  bool began_ = false;
};

}  // namespace pcipass::change
