// Minimal runner pieces the change engine needs (Invocation::text, CommandRunner::checked).
// The real runner (make_real_runner) is another branch's work: on merge, take that branch's file.
#include "host/runner.h"

#include <fmt/format.h>

namespace pcipass {

namespace {

std::string quoted(const std::string& arg) {
  bool plain = !arg.empty() && arg.find_first_not_of(
                                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQR"
                                   "STUVWXYZ0123456789_@%+=:,./-") == std::string::npos;
  if (plain) return arg;
  std::string out = "'";
  for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

std::string Invocation::text() const {
  std::string out;
  for (const auto& a : argv) out += (out.empty() ? "" : " ") + quoted(a);
  return out;
}

Result<CommandResult> CommandRunner::checked(const Invocation& cmd) {
  CommandResult r = TRY(run(cmd));
  if (r.ok()) return r;
  std::string name = cmd.argv.empty() ? std::string("(nothing)") : cmd.argv[0];
  std::string how = r.timed_out ? fmt::format("timed out after {} ms", cmd.timeout_ms)
                    : r.signal  ? fmt::format("was killed by signal {}", r.signal)
                                : fmt::format("exited with status {}", r.exit_status);
  std::string tail = r.err.size() > 400 ? r.err.substr(r.err.size() - 400) : r.err;
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == ' ')) tail.pop_back();
  return Error::state(fmt::format("{} {}{}", name, how, tail.empty() ? "" : ": " + tail),
                      "its output above says why; fix that and run pcipass again");
}

}  // namespace pcipass
