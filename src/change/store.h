// Durable change sets: changes to files that outlive a reboot (/etc, /boot) keep a manifest and
// byte-exact copies of every file before and after under /var/lib/pcipass/changes/ID, so that
// `pcipass undo` can revert them later, refusing when someone else edited a file since, and
// `pcipass recover` can finish or roll back a set a crash interrupted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "change/executor.h"

namespace pcipass::change {

inline constexpr const char* kStoreDir = "/var/lib/pcipass/changes";
inline constexpr const char* kChangeSetSchema = "pcipass.changes/1";
// Where durable file changes may go; a manifest naming anything else is refused.
inline constexpr const char* kDurableRoots[] = {"/etc/", "/boot/"};

// applying -> applied -> undoing -> undone; applying -> rolled-back after a failure.
enum class SetState { kApplying, kApplied, kRolledBack, kUndoing, kUndone };
std::string state_name(SetState s);

struct FileRecord {
  std::string path;
  // A symbolic link (a unit's enablement) instead of a file: its target before and after,
  // nullopt where there was or is no entry; no copies are kept.
  bool link = false;
  std::optional<std::string> before_link, after_link;
  FileState before;  // bytes from the backup, checked against before_sha256
  std::string before_sha256;
  bool after_absent = false;
  std::string after_sha256;
  std::string after_bytes;
  // A file a program rewrote (Change::file_guard): its after-state is what the program left,
  // known once the plan ran (`after_known`; a set a crash interrupted may not have it).
  bool guard = false;
  bool after_known = true;
  // A guarded file the program left as it was: undo neither checks nor writes it.
  bool untouched() const;
};

// A directory the set created (it did not exist before); undo removes it once empty.
struct DirRecord {
  std::string path;
  mode_t mode = 0755;
};

// A program the set runs, and once run, how it ended and when.
struct ProgramRecord {
  std::vector<std::string> argv;
  std::optional<std::vector<std::string>> undo_argv;  // what undo runs (after the files)
  std::optional<Change::Ran> ran;                     // nullopt: not run (yet)
};

struct ChangeSet {
  std::string id;       // "20261122-043512"
  std::string command;  // "setup --vfio"
  int64_t time = 0;     // seconds since the epoch, from ProcessContext
  SetState state = SetState::kApplying;
  std::vector<FileRecord> files;
  std::vector<DirRecord> dirs;  // outermost first
  std::vector<ProgramRecord> programs;
  std::string manifest_path() const;
};

struct DurableRun {
  std::string command;
  int64_t now = 0;
  bool dry_run = false;
};

struct Applied {
  std::optional<std::string> id;  // nullopt: nothing to change (or a dry run)
  std::vector<Step> steps;
  bool changed = false;  // false: every file already as the plan wants
};

// Runs a plan of file changes as one change set: locked, backed up, applied, committed; a
// failure rolls every file back.
Result<Applied> apply_durable(HostFs& fs, std::vector<Change>& plan, const Ports& ports,
                              const DurableRun& run);

// The durable half of a plan that also makes runtime changes (bind --persist: the device moves
// under the runtime journal, the assignments file and the boot unit as a change set), run by the
// caller's executor under the caller's lock, with the plan captured.
class DurableSet {
 public:
  // A set for the plan's file, directory and link changes; writes that change nothing are
  // dropped from the plan.
  DurableSet(HostFs& fs, std::vector<Change>& plan, const DurableRun& run);
  ~DurableSet();
  bool changed() const;  // false: every file already as the plan wants: nothing is recorded
  const std::string& id() const;
  // The executor's record: the set begins first, then `runtime` (the journal; null when the
  // plan moves no device); a failure rolls both back.
  Record& record(Record* runtime);
  // Once the plan ran: the set is applied (before the runtime record commits).
  Status mark_applied(std::vector<Step>& steps, bool dry_run);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Every change set, oldest first; a damaged manifest is an error naming it.
Result<std::vector<ChangeSet>> list_change_sets(const HostFs& fs);

struct Conflict {
  std::string path;
  std::string diff;    // from what pcipass wrote to what the file holds now
  std::string reason;  // a directory the set created holds something else now: what
};

struct Undone {
  ChangeSet set;
  std::vector<Conflict> conflicts;  // non-empty: refused, nothing written
  std::vector<Step> steps;
};

// Reverts change set `id` (default: the newest applied one) byte for byte, mode, owner and
// extended attributes too, removes the directories it created, then runs the undo programs of
// the programs it ran.
Result<Undone> undo_change_set(HostFs& fs, const std::optional<std::string>& id, const Ports& ports,
                               bool dry_run);

// Sets a crash left applying or undoing: their files back to before, stray temporaries removed.
// Returns the ids handled.
Result<std::vector<std::string>> recover_durable(HostFs& fs, const Ports& ports);

// A manifest's text to a change set, validated (schema, types, ranges, paths); exposed for tests.
Result<ChangeSet> parse_manifest(const std::string& text, const std::string& path);

}  // namespace pcipass::change
