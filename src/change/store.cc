#include "change/store.h"

#include <fmt/format.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <nlohmann/json.hpp>

#include "change/validate.h"
#include "util/diff.h"
#include "util/json_text.h"
#include "util/sha256.h"

namespace pcipass::change {

namespace {

constexpr const char* kRunDir = "/run/pcipass";
constexpr const char* kLockPath = "/run/pcipass/lock";
constexpr std::pair<SetState, const char*> kStates[] = {{SetState::kApplying, "applying"},
                                                        {SetState::kApplied, "applied"},
                                                        {SetState::kRolledBack, "rolled-back"},
                                                        {SetState::kUndoing, "undoing"},
                                                        {SetState::kUndone, "undone"}};

std::string set_dir(const std::string& id) {
  return std::string(kStoreDir) + "/" + id;
}

Error damaged(const std::string& path, const std::string& why) {
  Error e = Error::state(fmt::format("{} is damaged: {}", path, why),
                         "inspect it; restore the files it names by hand from the before-N "
                         "copies beside it, then move the directory away");
  e.path = path;
  return e;
}

std::string hex(const std::string& bytes) {
  std::string out;
  for (unsigned char b : bytes) out += fmt::format("{:02x}", b);
  return out;
}

Json xattrs_json(const Xattrs& x) {
  Json out = Json::object();
  for (const auto& [name, value] : x) out[name] = hex(value);
  return out;
}

Json link_json(const FileRecord& f) {
  Json before{{"absent", !f.before_link}}, after{{"absent", !f.after_link}};
  if (f.before_link) before["target"] = *f.before_link;
  if (f.after_link) after["target"] = *f.after_link;
  return {{"path", f.path}, {"link", true}, {"before", before}, {"after", after}};
}

Json file_json(const FileRecord& f, size_t i) {
  if (f.link) return link_json(f);
  Json before{{"absent", f.before.absent}};
  if (!f.before.absent) {
    before.update({{"sha256", f.before_sha256},
                   {"mode", f.before.mode},
                   {"uid", f.before.uid},
                   {"gid", f.before.gid},
                   {"backup", fmt::format("before-{}", i)}});
    if (f.before.xattrs) before["xattrs"] = xattrs_json(*f.before.xattrs);
  }
  Json after{{"absent", f.after_absent}};
  if (!f.after_absent)
    after.update({{"sha256", f.after_sha256}, {"backup", fmt::format("after-{}", i)}});
  Json j{{"path", f.path}, {"before", before}, {"after", after}};
  if (!f.guard) return j;
  j["guard"] = true;
  if (!f.after_known) j["after"] = nullptr;  // the program has not run yet
  return j;
}

Json program_json(const ProgramRecord& p) {
  Json j{{"argv", p.argv}, {"undo_argv", or_null(p.undo_argv)}};
  if (!p.ran) {
    j["ran"] = nullptr;
    return j;
  }
  j["ran"] = {{"exit_status", p.ran->exit_status},
              {"signal", p.ran->signal},
              {"timed_out", p.ran->timed_out},
              {"time", p.ran->time}};
  return j;
}

Status save_manifest(HostFs& fs, const ChangeSet& s) {
  Json files = Json::array(), dirs = Json::array(), programs = Json::array();
  for (size_t i = 0; i < s.files.size(); ++i) files.push_back(file_json(s.files[i], i));
  for (const auto& d : s.dirs) dirs.push_back({{"path", d.path}, {"mode", d.mode}});
  for (const auto& p : s.programs) programs.push_back(program_json(p));
  Json j{{"schema", kChangeSetSchema},
         {"id", s.id},
         {"command", s.command},
         {"time", s.time},
         {"state", state_name(s.state)},
         {"files", files},
         {"dirs", dirs},
         {"programs", programs}};
  return fs.write_atomic(s.manifest_path(), TRY(json_file_text(j, s.manifest_path())), 0600);
}

// A file's byte-exact copies beside the manifest: before-N when it existed, after-N unless the
// set removes it.
struct Copy {
  std::string path;
  std::string* bytes;
  const std::string* sha256;
};

std::vector<Copy> copies(FileRecord& f, const std::string& id, size_t i) {
  std::vector<Copy> out;
  if (f.link) return out;
  if (!f.before.absent)
    out.push_back({fmt::format("{}/before-{}", set_dir(id), i), &f.before.bytes, &f.before_sha256});
  if (f.after_known && !f.after_absent)
    out.push_back({fmt::format("{}/after-{}", set_dir(id), i), &f.after_bytes, &f.after_sha256});
  return out;
}

Result<std::unique_ptr<HostFs::Lock>> lock(HostFs& fs) {
  TRY(fs.make_dirs(kRunDir, 0700));
  return fs.lock(kLockPath);
}

std::string new_id(const HostFs& fs, int64_t now) {
  time_t t = static_cast<time_t>(now);
  struct tm tm {};
  ::gmtime_r(&t, &tm);
  std::string base = fmt::format("{:04}{:02}{:02}-{:02}{:02}{:02}", tm.tm_year + 1900,
                                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  std::string id = base;
  for (int n = 2; fs.exists(set_dir(id)); ++n) id = fmt::format("{}-{}", base, n);
  return id;
}

// The durable record: the set's directory, copies and manifest before the first file changes.
class SetRecord : public Record {
 public:
  SetRecord(HostFs& fs, ChangeSet& set, const std::vector<Change>& plan)
      : fs_(fs), set_(set), plan_(plan) {}
  Status begin(std::vector<Step>& steps, bool dry) override {
    steps.push_back({StepKind::kChangeSet, set_.id, "applying", {}});
    if (dry) return {};
    TRY(fs_.make_dirs(set_dir(set_.id), 0700));
    for (size_t i = 0; i < set_.files.size(); ++i)
      for (const auto& c : copies(set_.files[i], set_.id, i))
        TRY(fs_.write_atomic(c.path, *c.bytes, 0600));
    return save_manifest(fs_, set_);
  }
  // The manifest learns each program's end as soon as it ran, so a crash after it knows.
  Status ran(const Change& c) override {
    size_t k = 0;
    for (const auto& p : plan_) {
      if (&p == &c) break;
      if (p.kind == Kind::kProgram) ++k;
    }
    if (k >= set_.programs.size()) return {};
    set_.programs[k].ran = c.ran;
    return save_manifest(fs_, set_);
  }
  Status discard() override {
    set_.state = SetState::kRolledBack;
    return save_manifest(fs_, set_);
  }
  Texts texts() const override {
    return {"every file was put back as it was",
            fmt::format("every file was put back, but {} could not be marked rolled back: run "
                        "`pcipass recover`",
                        set_.manifest_path()),
            fmt::format("run `pcipass recover` once the cause is fixed ({} has the original files)",
                        set_dir(set_.id))};
  }

 private:
  HostFs& fs_;
  ChangeSet& set_;
  const std::vector<Change>& plan_;
};

// The record of an undo: the set's manifest, already marked undoing; a failed undo is applied.
class UndoRecord : public Record {
 public:
  UndoRecord(HostFs& fs, ChangeSet& set) : fs_(fs), set_(set) {}
  Status begin(std::vector<Step>& steps, bool dry) override {
    steps.push_back({StepKind::kChangeSet, set_.id, "undoing", {}});
    if (dry) return {};
    set_.state = SetState::kUndoing;
    return save_manifest(fs_, set_);
  }
  Status discard() override {
    set_.state = SetState::kApplied;
    return save_manifest(fs_, set_);
  }
  Texts texts() const override {
    return {"every file is as pcipass had written it; nothing was undone",
            "the files are back, but the change set is still marked undoing: run `pcipass "
            "recover`",
            "run `pcipass recover` once the cause is fixed: it finishes the undo"};
  }

 private:
  HostFs& fs_;
  ChangeSet& set_;
};

Result<ChangeSet> load_set(const HostFs& fs, const std::string& id) {
  std::string path = set_dir(id) + "/manifest.json";
  auto text = fs.read(path, 1 << 20);
  if (!text) return std::move(text).error();
  ChangeSet s = TRY(parse_manifest(*text, path));
  if (s.id != id) return damaged(path, fmt::format("its id {} is not its directory's", s.id));
  for (size_t i = 0; i < s.files.size(); ++i)
    for (const auto& c : copies(s.files[i], id, i)) {
      *c.bytes = TRY(fs.read(c.path, 64 << 20));
      if (sha256_hex(*c.bytes) != *c.sha256)
        return damaged(c.path, "its bytes do not match the manifest's sha256");
    }
  return s;
}

// What undo writes: every file back to its before-state, last first.
std::vector<Change> undo_plan(const ChangeSet& s) {
  std::vector<Change> plan;
  for (auto it = s.files.rbegin(); it != s.files.rend(); ++it) {
    if (it->untouched()) continue;
    if (it->link) {
      plan.push_back(Change::link(it->path, it->before_link));
      continue;
    }
    if (it->before.absent) {
      plan.push_back(Change::file_remove(it->path));
      continue;
    }
    Change c = Change::file_write(it->path, it->before.bytes, it->before.mode);
    c.force_mode = true;
    c.uid = it->before.uid;
    c.gid = it->before.gid;
    c.xattrs = it->before.xattrs;
    plan.push_back(std::move(c));
  }
  for (auto it = s.dirs.rbegin(); it != s.dirs.rend(); ++it)
    plan.push_back(Change::dir_remove(it->path, it->mode));
  for (auto it = s.programs.rbegin(); it != s.programs.rend(); ++it) {
    if (!it->undo_argv || !it->ran) continue;
    Invocation undo;
    undo.argv = *it->undo_argv;
    plan.push_back(Change::program_run(std::move(undo)));
  }
  return plan;
}

// The directories the set created that hold more now than what undo removes from them. One
// that cannot be listed is an error, not "nothing else": undo would remove files from it and
// then fail to remove it, half done.
Result<std::vector<Conflict>> foreign_entries(const HostFs& fs, const ChangeSet& s) {
  std::vector<Conflict> out;
  for (const auto& d : s.dirs) {
    auto names = fs.list(d.path);
    if (!names && names.error().err == ENOENT) continue;  // gone: nothing to remove
    if (!names)
      return Error::state(
          fmt::format("cannot tell what {} holds now: {}", d.path, names.error().describe()),
          "run pcipass as root, then undo again");
    std::vector<std::string> foreign;
    for (const auto& n : *names) {
      std::string p = d.path + "/" + n;
      bool ours =
          std::any_of(s.files.begin(), s.files.end(),
                      [&](const FileRecord& f) { return f.path == p && f.before.absent; }) ||
          std::any_of(s.dirs.begin(), s.dirs.end(),
                      [&](const DirRecord& o) { return o.path == p; });
      if (!ours) foreign.push_back(n);
    }
    if (!foreign.empty())
      out.push_back({d.path,
                     {},
                     fmt::format("{} was created by this change set and now also holds {}", d.path,
                                 fmt::join(foreign, ", "))});
  }
  return out;
}

// Runs the plan under its record, then marks the set `done`; a failure to mark it rolls the
// plan back like any other failure.
// What the programs left in each guarded file, once they ran: the after-state undo checks
// (a file edited since is refused) and the copy beside the manifest.
Status settle_guards(HostFs& fs, ChangeSet& set) {
  for (size_t i = 0; i < set.files.size(); ++i) {
    FileRecord& f = set.files[i];
    if (!f.guard || f.after_known) continue;
    FileState now = TRY(read_file_state(fs, f.path));
    f.after_absent = now.absent;
    f.after_bytes = std::move(now.bytes);
    f.after_sha256 = sha256_hex(f.after_bytes);
    f.after_known = true;
    if (!f.after_absent)
      TRY(fs.write_atomic(fmt::format("{}/after-{}", set_dir(set.id), i), f.after_bytes, 0600));
  }
  return {};
}

Status run_and_mark(HostFs& fs, Executor& ex, std::vector<Change>& plan, Record& record,
                    ChangeSet& set, SetState done) {
  TRY(ex.run(plan, &record));
  if (!ex.dry_run()) {
    Status c = settle_guards(fs, set);
    set.state = done;
    if (c) c = save_manifest(fs, set);
    if (!c) return ex.fail(plan, record, std::move(c).error());
  }
  ex.steps.push_back({StepKind::kChangeSet, set.id, state_name(done), {}});
  return {};
}

// Stray `.pcipass-*` temporaries in the directories of a set's files.
Status remove_temporaries(HostFs& fs, const ChangeSet& s) {
  for (const auto& f : s.files) {
    std::string dir = f.path.substr(0, f.path.rfind('/'));
    auto names = fs.list(dir);
    if (!names) continue;
    for (const auto& n : *names)
      if (n.starts_with(kTempPrefix)) TRY(fs.remove(dir + "/" + n));
  }
  return {};
}

}  // namespace

std::string state_name(SetState s) {
  for (auto [k, n] : kStates)
    if (k == s) return n;
  return "?";
}

bool FileRecord::untouched() const {
  return guard && after_known && after_absent == before.absent && after_bytes == before.bytes;
}

std::string ChangeSet::manifest_path() const {
  return set_dir(id) + "/manifest.json";
}

namespace {

// Names in the four namespaces Linux has, printable; values in hex, at most 64 KiB.
Result<Xattrs> xattrs_from(const Checker& c, const Json& b) {
  const Json& x = *TRY(c.object(b, "xattrs"));
  Xattrs out;
  for (const auto& [name, value] : x.items()) {
    bool known = false;
    for (const char* ns : {"user.", "security.", "trusted.", "system."})
      known |= name.starts_with(ns) && name.size() > std::string_view(ns).size();
    bool printable = std::all_of(name.begin(), name.end(),
                                 [](unsigned char ch) { return ch > 0x20 && ch < 0x7f; });
    if (!known || !printable || name.size() > 255)
      return c.bad("xattrs", "has a name that is not an extended attribute's");
    if (!value.is_string()) return c.bad("xattrs", "has a value that is not a string");
    std::string h = value.get<std::string>();
    if (h.size() % 2 || h.size() > 131072 ||
        h.find_first_not_of("0123456789abcdef") != std::string::npos)
      return c.bad("xattrs", "has a value that is not hex");
    std::string bytes;
    for (size_t i = 0; i < h.size(); i += 2)
      bytes += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
    out[name] = std::move(bytes);
  }
  return out;
}

// 1-256 arguments of at most 4 KiB, none holding a NUL, the first not empty.
Result<std::vector<std::string>> argv_from(const Checker& c, const Json& p, const char* key) {
  const Json& a = *TRY(c.array(p, key));
  std::vector<std::string> out;
  if (a.empty() || a.size() > 256) return c.bad(key, "does not hold 1 to 256 arguments");
  for (const auto& arg : a) {
    if (!arg.is_string()) return c.bad(key, "holds something that is not a string");
    std::string s = arg.get<std::string>();
    if (s.size() > 4096 || s.find('\0') != std::string::npos)
      return c.bad(key, "holds an argument that is not one");
    out.push_back(std::move(s));
  }
  // A name looked up on PATH, or an absolute path: never one relative to where undo runs.
  if (out[0].empty() || (out[0].find('/') != std::string::npos && !path_under(out[0], {"/"})))
    return c.bad(key, "does not start with a program name or an absolute path");
  return out;
}

// {"absent": true} or {"absent": false, "target": an absolute, normalized path}.
Result<std::optional<std::string>> link_target_from(const Checker& c, const Json& j) {
  if (TRY(c.boolean(j, "absent"))) return std::optional<std::string>();
  std::string t = TRY(c.string(j, "target"));
  bool printable = std::all_of(t.begin(), t.end(), [](unsigned char ch) { return ch >= 0x20; });
  if (t.size() > 4096 || !printable || !path_under(t, {"/"}))
    return c.bad("target", "is not an absolute, normalized path");
  return std::optional<std::string>(t);
}

Result<ProgramRecord> program_from(const Checker& c, const Json& p) {
  ProgramRecord r;
  r.argv = TRY(argv_from(c, p, "argv"));
  if (!p.contains("undo_argv")) return c.bad("undo_argv", "is missing");
  if (!p["undo_argv"].is_null()) r.undo_argv = TRY(argv_from(c, p, "undo_argv"));
  if (!p.contains("ran")) return c.bad("ran", "is missing");
  if (p["ran"].is_null()) return r;
  const Json& ran = *TRY(c.object(p, "ran"));
  Change::Ran x;
  x.exit_status = static_cast<int>(TRY(c.integer(ran, "exit_status", 0, 255)));
  x.signal = static_cast<int>(TRY(c.integer(ran, "signal", 0, 64)));
  x.timed_out = TRY(c.boolean(ran, "timed_out"));
  x.time = TRY(c.integer(ran, "time", 0, INT64_MAX));
  r.ran = x;
  return r;
}

// One entry of "files": a link with its before and after targets, or a file with its before
// state (hash, mode, owner, xattrs) and after state. A guarded file's after state is null until
// its program ran: only in a set that never got to applied.
Result<FileRecord> file_from(const Checker& c, const Json& f, SetState state) {
  FileRecord r;
  r.path = TRY(c.string(f, "path"));
  if (!path_under(r.path, kDurableRoots))
    return c.bad("path", r.path + " is not a normalized path under /etc or /boot");
  if (f.contains("link")) {
    r.link = TRY(c.boolean(f, "link"));
    if (!r.link) return c.bad("link", "is false (only links carry it)");
    r.before_link = TRY(link_target_from(c, *TRY(c.object(f, "before"))));
    r.after_link = TRY(link_target_from(c, *TRY(c.object(f, "after"))));
    r.before.absent = !r.before_link;
    r.after_absent = !r.after_link;
    return r;
  }
  if (f.contains("guard")) {
    r.guard = TRY(c.boolean(f, "guard"));
    if (!r.guard) return c.bad("guard", "is false (only guarded files carry it)");
  }
  const Json& b = *TRY(c.object(f, "before"));
  r.before.absent = TRY(c.boolean(b, "absent"));
  if (!r.before.absent) {
    r.before_sha256 = TRY(c.sha256(b, "sha256"));
    r.before.mode = static_cast<mode_t>(TRY(c.integer(b, "mode", 0, 07777)));
    r.before.uid = static_cast<uid_t>(TRY(c.integer(b, "uid", 0, 0xfffffffe)));
    r.before.gid = static_cast<gid_t>(TRY(c.integer(b, "gid", 0, 0xfffffffe)));
    if (b.contains("xattrs")) r.before.xattrs = TRY(xattrs_from(c, b));
  }
  if (r.guard && f.contains("after") && f["after"].is_null()) {
    if (state != SetState::kApplying && state != SetState::kRolledBack)
      return c.bad("after", "is null in a change set that was applied");
    r.after_known = false;
    return r;
  }
  const Json& a = *TRY(c.object(f, "after"));
  r.after_absent = TRY(c.boolean(a, "absent"));
  if (!r.after_absent) r.after_sha256 = TRY(c.sha256(a, "sha256"));
  return r;
}

Result<DirRecord> dir_from(const Checker& c, const Json& d) {
  DirRecord r;
  r.path = TRY(c.string(d, "path"));
  if (!path_under(r.path, kDurableRoots))
    return c.bad("path", r.path + " is not a normalized path under /etc or /boot");
  r.mode = static_cast<mode_t>(TRY(c.integer(d, "mode", 0, 07777)));
  return r;
}

}  // namespace

Result<ChangeSet> parse_manifest(const std::string& text, const std::string& path) {
  const std::string fix =
      "inspect it; restore the files it names by hand from the before-N copies beside it, then "
      "move its directory away";
  Json j = TRY(parse_json(text, path, fix));
  Checker c(path, fix);
  ChangeSet s;
  TRY(c.schema(j, kChangeSetSchema));
  s.id = TRY(c.string(j, "id"));
  if (!plain_id(s.id)) return c.bad("id", "is not a change set id");
  s.command = TRY(c.string(j, "command"));
  s.time = TRY(c.integer(j, "time", 0, INT64_MAX));
  std::string state = TRY(c.string(j, "state"));
  auto it = std::find_if(std::begin(kStates), std::end(kStates),
                         [&](const auto& p) { return state == p.second; });
  if (it == std::end(kStates)) return c.bad("state", "is not a change set state");
  s.state = it->first;
  for (const auto& f : *TRY(c.array(j, "files"))) s.files.push_back(TRY(file_from(c, f, s.state)));
  // Sets written before pcipass recorded directories and programs have neither.
  if (j.contains("dirs"))
    for (const auto& d : *TRY(c.array(j, "dirs"))) s.dirs.push_back(TRY(dir_from(c, d)));
  if (j.contains("programs"))
    for (const auto& p : *TRY(c.array(j, "programs")))
      s.programs.push_back(TRY(program_from(c, p)));
  return s;
}

namespace {

FileRecord file_record(const Change& c) {
  FileRecord f;
  f.path = c.path;
  if (c.kind == Kind::kLink) {
    f.link = true;
    f.before_link = c.before.link;
    if (!c.remove_link) f.after_link = c.data;
    f.before.absent = !f.before_link;
    f.after_absent = !f.after_link;
    return f;
  }
  f.before = c.before.file;
  f.before_sha256 = sha256_hex(c.before.file.bytes);
  if (c.kind == Kind::kFileGuard) {
    f.guard = true;
    f.after_known = false;
    return f;
  }
  f.after_absent = c.kind == Kind::kFileRemove;
  f.after_bytes = f.after_absent ? std::string() : c.data;
  f.after_sha256 = sha256_hex(f.after_bytes);
  return f;
}

bool unchanged(const FileRecord& f) {
  if (f.link) return f.before_link == f.after_link;
  if (!f.after_known) return false;
  return f.after_absent == f.before.absent && f.after_bytes == f.before.bytes;
}

// The change set of a captured plan's files, links, directories and programs; `changed` says
// whether any file or link would change. Writes that change nothing leave the plan.
ChangeSet make_set(const HostFs& fs, std::vector<Change>& plan, const DurableRun& run,
                   bool& changed) {
  ChangeSet set;
  set.command = run.command;
  set.time = run.now;
  changed = false;
  for (const auto& c : plan) {
    if (c.kind != Kind::kFileWrite && c.kind != Kind::kFileRemove && c.kind != Kind::kLink &&
        c.kind != Kind::kFileGuard)
      continue;
    set.files.push_back(file_record(c));
    if (c.kind != Kind::kFileGuard) changed |= !unchanged(set.files.back());  // its program counts
  }
  // A program is a change of its own (setsebool), and regenerates what the files changed.
  for (const auto& c : plan)
    if (c.kind == Kind::kProgram) changed = true;
  if (!changed) return set;
  // Unchanged files stay out of the plan: a no-op replace would still touch them.
  std::erase_if(plan, [](const Change& c) {
    if (c.kind == Kind::kLink)
      return c.before.link == (c.remove_link ? std::nullopt : std::optional(c.data));
    return c.kind == Kind::kFileWrite && !c.before.file.absent && c.before.file.bytes == c.data;
  });
  std::erase_if(set.files, [](const FileRecord& f) {
    return unchanged(f) && (f.link || (!f.before.absent && !f.after_absent));
  });
  for (const auto& c : plan) {
    if (c.kind == Kind::kDirCreate)
      for (const auto& d : c.before.created) set.dirs.push_back({d, c.mode});
    if (c.kind == Kind::kProgram)
      set.programs.push_back({c.program.argv,
                              c.undo_program ? std::optional(c.undo_program->argv) : std::nullopt,
                              std::nullopt});
  }
  set.id = new_id(fs, run.now);
  return set;
}

// The set, then the runtime journal: begun in that order, discarded in the other.
class PairRecord : public Record {
 public:
  PairRecord(Record& set, Record* runtime) : set_(set), runtime_(runtime) {}
  Status begin(std::vector<Step>& steps, bool dry) override {
    TRY(set_.begin(steps, dry));
    if (!runtime_) return {};
    Status st = runtime_->begin(steps, dry);
    if (!st && !dry) (void)set_.discard();
    return st;
  }
  Status ran(const Change& c) override { return set_.ran(c); }
  Status discard() override {
    Status a = runtime_ ? runtime_->discard() : Status();
    Status b = set_.discard();
    return a ? b : a;
  }
  Texts texts() const override {
    Texts s = set_.texts();
    if (!runtime_) return s;
    Texts r = runtime_->texts();
    return {s.restored + "; " + r.restored, s.discard_failed + "; " + r.discard_failed,
            r.kept + "; " + s.kept};
  }

 private:
  Record& set_;
  Record* runtime_;
};

}  // namespace

struct DurableSet::Impl {
  Impl(HostFs& f, std::vector<Change>& plan, const DurableRun& run)
      : fs(f), set(make_set(f, plan, run, changed)), record(f, set, plan) {}
  HostFs& fs;
  bool changed = false;
  ChangeSet set;
  SetRecord record;
  std::unique_ptr<PairRecord> pair;
};

DurableSet::DurableSet(HostFs& fs, std::vector<Change>& plan, const DurableRun& run)
    : impl_(std::make_unique<Impl>(fs, plan, run)) {}
DurableSet::~DurableSet() = default;

bool DurableSet::changed() const {
  return impl_->changed;
}

const std::string& DurableSet::id() const {
  return impl_->set.id;
}

Record& DurableSet::record(Record* runtime) {
  impl_->pair = std::make_unique<PairRecord>(impl_->record, runtime);
  return *impl_->pair;
}

Status DurableSet::mark_applied(std::vector<Step>& steps, bool dry_run) {
  steps.push_back({StepKind::kChangeSet, impl_->set.id, state_name(SetState::kApplied), {}});
  if (dry_run) return {};
  TRY(settle_guards(impl_->fs, impl_->set));
  impl_->set.state = SetState::kApplied;
  return save_manifest(impl_->fs, impl_->set);
}

Result<Applied> apply_durable(HostFs& fs, std::vector<Change>& plan, const Ports& ports,
                              const DurableRun& run) {
  std::unique_ptr<HostFs::Lock> held;
  if (!run.dry_run) held = TRY(lock(fs));
  Executor ex(fs, ports, run.dry_run);
  TRY(ex.capture(plan));
  Applied out;
  ChangeSet set = make_set(fs, plan, run, out.changed);
  if (!out.changed) return out;
  SetRecord record(fs, set, plan);
  TRY(run_and_mark(fs, ex, plan, record, set, SetState::kApplied));
  if (!run.dry_run) out.id = set.id;
  out.steps = std::move(ex.steps);
  return out;
}

Result<std::vector<ChangeSet>> list_change_sets(const HostFs& fs) {
  std::vector<ChangeSet> out;
  if (!fs.is_dir(kStoreDir)) return out;
  for (const auto& name : TRY(fs.list(kStoreDir))) {
    // A set whose manifest was never written changed no file.
    if (!plain_id(name) || !fs.exists(set_dir(name) + "/manifest.json")) continue;
    out.push_back(TRY(load_set(fs, name)));
  }
  std::sort(out.begin(), out.end(), [](const ChangeSet& a, const ChangeSet& b) {
    return a.time != b.time ? a.time < b.time : a.id < b.id;
  });
  return out;
}

Result<Undone> undo_change_set(HostFs& fs, const std::optional<std::string>& id, const Ports& ports,
                               bool dry_run) {
  std::unique_ptr<HostFs::Lock> held;
  if (!dry_run) held = TRY(lock(fs));
  auto sets = TRY(list_change_sets(fs));
  Undone out;
  auto chosen = std::find_if(sets.rbegin(), sets.rend(), [&](const ChangeSet& s) {
    return id ? s.id == *id : s.state == SetState::kApplied;
  });
  if (chosen == sets.rend())
    return id ? Error::not_found("no change set " + *id, "see `pcipass undo --list`")
              : Error::not_found("no applied change set to undo", "see `pcipass undo --list`");
  out.set = *chosen;
  if (out.set.state != SetState::kApplied)
    return Error::state(
        fmt::format("change set {} is {}, not applied", out.set.id, state_name(out.set.state)),
        "see `pcipass undo --list`; `pcipass recover` finishes interrupted ones");
  for (const auto& f : out.set.files) {
    if (f.untouched()) continue;
    if (f.link) {
      auto now = TRY(read_link_state(fs, f.path));
      if (now == f.after_link) continue;
      out.conflicts.push_back({f.path,
                               {},
                               fmt::format("{} points to {} now; pcipass made it {}", f.path,
                                           now.value_or("nothing (it is gone)"),
                                           f.after_link ? "point to " + *f.after_link : "absent")});
      continue;
    }
    FileState now = TRY(read_file_state(fs, f.path));
    if (now.absent == f.after_absent && now.bytes == f.after_bytes) continue;
    out.conflicts.push_back(
        {f.path, unified_diff(f.after_bytes, now.bytes, f.path, f.after_absent, now.absent), {}});
  }
  for (auto& c : TRY(foreign_entries(fs, out.set))) out.conflicts.push_back(std::move(c));
  if (!out.conflicts.empty()) return out;
  std::vector<Change> plan = undo_plan(out.set);
  Executor ex(fs, ports, dry_run);
  TRY(ex.capture(plan));
  UndoRecord record(fs, out.set);
  TRY(run_and_mark(fs, ex, plan, record, out.set, SetState::kUndone));
  out.steps = std::move(ex.steps);
  return out;
}

Result<std::vector<std::string>> recover_durable(HostFs& fs, const Ports& ports) {
  std::vector<std::string> done;
  if (!fs.is_dir(kStoreDir)) return done;
  auto held = TRY(lock(fs));
  for (auto& s : TRY(list_change_sets(fs))) {
    if (s.state != SetState::kApplying && s.state != SetState::kUndoing) continue;
    TRY(remove_temporaries(fs, s));
    std::vector<Change> plan = undo_plan(s);
    Executor ex(fs, ports, false);
    TRY(ex.capture(plan));
    TRY(ex.run(plan, nullptr));
    s.state = s.state == SetState::kApplying ? SetState::kRolledBack : SetState::kUndone;
    TRY(save_manifest(fs, s));
    done.push_back(s.id);
  }
  return done;
}

}  // namespace pcipass::change
