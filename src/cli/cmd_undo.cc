// pcipass undo: list durable change sets, or revert one byte for byte.
#include <fmt/format.h>
#include <time.h>

#include <CLI/CLI.hpp>
#include <algorithm>

#include "change/store.h"
#include "cli/commands.h"

namespace pcipass::cli {

namespace {

std::string utc(int64_t t) {
  time_t tt = static_cast<time_t>(t);
  struct tm tm {};
  ::gmtime_r(&tt, &tm);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

// A guarded file its program left as it was is no change of the set's.
std::vector<std::string> paths(const change::ChangeSet& s) {
  std::vector<std::string> out;
  for (const auto& f : s.files)
    if (!f.untouched()) out.push_back(f.path);
  return out;
}

std::vector<std::string> dirs(const change::ChangeSet& s) {
  std::vector<std::string> out;
  for (const auto& d : s.dirs) out.push_back(d.path);
  return out;
}

Json programs_json(const change::ChangeSet& s) {
  Json out = Json::array();
  for (const auto& p : s.programs) {
    Json ran = nullptr;
    if (p.ran)
      ran = {{"exit_status", p.ran->exit_status},
             {"signal", p.ran->signal},
             {"timed_out", p.ran->timed_out},
             {"time", p.ran->time}};
    out.push_back({{"argv", p.argv}, {"undo_argv", or_null(p.undo_argv)}, {"ran", ran}});
  }
  return out;
}

std::string argv_text(const std::vector<std::string>& argv) {
  Invocation i;
  i.argv = argv;
  return i.text();
}

// "update-grub (exit 0, 2026-11-18 11:06:40)", "dracut (not run)".
std::string program_text(const change::ProgramRecord& p) {
  std::string how = "not run";
  if (p.ran && p.ran->timed_out)
    how = "timed out";
  else if (p.ran && p.ran->signal)
    how = fmt::format("killed by signal {}", p.ran->signal);
  else if (p.ran)
    how = fmt::format("exit {}", p.ran->exit_status);
  if (p.ran) how += ", " + utc(p.ran->time);
  return fmt::format("{} ({})", argv_text(p.argv), how);
}

int run_list(Context& ctx) {
  auto sets = change::list_change_sets(ctx.fs());
  if (!sets) return fail(ctx, sets.error());
  if (ctx.json) {
    Json list = Json::array();
    for (const auto& s : *sets)
      list.push_back({{"id", s.id},
                      {"time", s.time},
                      {"command", s.command},
                      {"state", change::state_name(s.state)},
                      {"files", paths(s)},
                      {"dirs", dirs(s)},
                      {"programs", programs_json(s)}});
    ctx.out << dump_json(Json{{"schema", "pcipass.undo/1"}, {"change_sets", list}}) << '\n';
    return kExitOk;
  }
  if (sets->empty()) {
    ctx.out << "no change sets: pcipass has changed no file\n";
    return kExitOk;
  }
  bool any_programs = std::any_of(sets->begin(), sets->end(),
                                  [](const change::ChangeSet& s) { return !s.programs.empty(); });
  std::vector<std::string> head = {"ID", "TIME (UTC)", "STATE", "COMMAND", "FILES"};
  if (any_programs) head.push_back("RAN");
  Table t(head);
  for (const auto& s : *sets) {
    std::vector<Table::Cell> row = {
        {s.id},
        {utc(s.time)},
        {change::state_name(s.state),
         s.state == change::SetState::kApplied ? Style::kGood : Style::kPlain},
        {s.command},
        {fmt::format("{}", fmt::join(paths(s), " "))}};
    std::vector<std::string> ran;
    for (const auto& p : s.programs) ran.push_back(program_text(p));
    if (any_programs) row.push_back({fmt::format("{}", fmt::join(ran, "; "))});
    t.add(row);
  }
  t.print(ctx.out, ctx.term);
  return kExitOk;
}

Json undone_json(const change::Undone& u, bool dry_run) {
  Json files = Json::array(), conflicts = Json::array();
  for (const auto& f : u.set.files)
    if (!f.untouched())
      files.push_back({{"path", f.path}, {"action", f.before.absent ? "removed" : "restored"}});
  for (const auto& c : u.conflicts)
    conflicts.push_back({{"path", c.path}, {"diff", c.diff}, {"reason", or_null(c.reason)}});
  return Json{{"schema", "pcipass.undo/1"},
              {"dry_run", dry_run},
              {"id", u.set.id},
              {"command", u.set.command},
              {"refused", !u.conflicts.empty()},
              {"files", files},
              {"conflicts", conflicts},
              {"dirs", dirs(u.set)},
              {"programs", programs_json(u.set)},
              {"steps", steps_json(u.steps)}};
}

}  // namespace

void setup_undo(CLI::App& app, Args& a) {
  app.add_option("ID", a.id, "The change set to revert (default: the newest applied one)");
  app.add_flag("--list", a.list, "List every change set: id, time, command, files, state");
  app.add_flag("--dry-run", a.dry_run, "Print what would be written and write nothing");
}

int run_undo(Context& ctx, const Args& a) {
  if (a.list) return run_list(ctx);
  const auto& env = ctx.env();
  change::Ports ports{env.loader, env.runner, env.sleep_ms,
                      [&env] { return env.process.time_now(); }, env.vf_links};
  std::optional<std::string> id;
  if (!a.id.empty()) id = a.id;
  auto r = change::undo_change_set(ctx.fs(), id, ports, a.dry_run);
  if (!r) return fail(ctx, r.error());
  bool refused = !r->conflicts.empty();
  if (ctx.json) {
    ctx.out << dump_json(undone_json(*r, a.dry_run)) << '\n';
    return refused ? kExitFailure : kExitOk;
  }
  if (refused) {
    std::vector<std::string> names, reasons;
    for (const auto& c : r->conflicts) {
      print_lines(ctx.out, c.diff);
      (c.reason.empty() ? names : reasons).push_back(c.reason.empty() ? c.path : c.reason);
    }
    if (!reasons.empty())
      return fail(
          ctx, Error::refused(fmt::format("refusing to undo change set {}: {}; nothing was written",
                                          r->set.id, fmt::join(reasons, "; ")),
                              "move what was put there since elsewhere, then undo again"));
    return fail(
        ctx, Error::refused(fmt::format("refusing to undo change set {}: {} changed since pcipass "
                                        "wrote it (the diff above shows how); nothing was written",
                                        r->set.id, fmt::join(names, ", ")),
                            "put the file back as pcipass wrote it, or revert it by hand"));
  }
  if (a.dry_run) {
    for (const auto& p : r->set.programs)
      ctx.out << fmt::format("change set {} ran {}\n", r->set.id, program_text(p));
    print_steps(ctx, r->steps);
    return kExitOk;
  }
  for (const auto& f : r->set.files)
    if (!f.untouched())
      print_line(ctx.out, fmt::format("{} {}", f.before.absent ? "removed" : "restored", f.path));
  for (auto it = r->set.dirs.rbegin(); it != r->set.dirs.rend(); ++it)
    print_line(ctx.out, fmt::format("removed directory {}", it->path));
  for (const auto& s : r->steps)
    if (s.kind == change::StepKind::kRun) print_line(ctx.out, fmt::format("ran {}", s.data));
  print_line(ctx.out, fmt::format("undid change set {} ({})", r->set.id, r->set.command));
  return kExitOk;
}

}  // namespace pcipass::cli
