// FakeRunner: a CommandRunner for tests, as ninja's FakeCommandRunner. It runs nothing: it
// records every Invocation (argv, environment, stdin) and replays scripted results, looked up by
// the exact argv, else by argv[0], else the default (success, empty output). Tests of code that
// runs update-grub, dracut or mdevctl script the answers and assert the recorded argv.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "host/runner.h"

namespace pcipass::test {

class FakeRunner : public CommandRunner {
 public:
  using Argv = std::vector<std::string>;
  using Answer = std::variant<CommandResult, Error>;

  // Scripts the answer for an exact argv, or for every argv starting with a program name.
  // Scripting the same key again queues answers: each call takes the next, the last repeats.
  void on(const Argv& argv, Answer a) { by_argv_[argv].push_back(std::move(a)); }
  void on_program(const std::string& argv0, Answer a) { by_name_[argv0].push_back(std::move(a)); }

  // The program is not installed: run() fails as the real runner does, naming the PATH.
  void not_found(const std::string& argv0) { missing_.push_back(argv0); }

  static CommandResult success(std::string out = {}, std::string err = {}) {
    CommandResult r;
    r.out = std::move(out), r.err = std::move(err);
    return r;
  }
  static CommandResult failure(int status, std::string err = {}, std::string out = {}) {
    CommandResult r = success(std::move(out), std::move(err));
    r.exit_status = status;
    return r;
  }

  Result<CommandResult> run(const Invocation& cmd) override {
    calls.push_back(cmd);
    const std::string name = cmd.argv.empty() ? std::string() : cmd.argv[0];
    for (const auto& m : missing_)
      if (m == name) return missing_error(cmd);
    if (observe) observe(cmd);  // only a program that starts sees the host
    if (auto it = by_argv_.find(cmd.argv); it != by_argv_.end()) return take(it->second);
    if (auto it = by_name_.find(name); it != by_name_.end()) return take(it->second);
    return default_result;
  }

  // The argv of every call, in order.
  std::vector<Argv> argvs() const {
    std::vector<Argv> v;
    for (const auto& c : calls) v.push_back(c.argv);
    return v;
  }

  std::vector<Invocation> calls;
  CommandResult default_result;
  // Called with each invocation that starts (not one not_found), before it is answered: lets a test
  // see the host as the program would (which files are in place when update-grub runs).
  std::function<void(const Invocation&)> observe;

 private:
  static Error missing_error(const Invocation& cmd) {
    auto it = cmd.environment.find("PATH");
    std::string path = it == cmd.environment.end() ? "/usr/sbin:/usr/bin:/sbin:/bin" : it->second;
    const std::string& name = cmd.argv[0];
    return Error::not_found(name + ": program not found in PATH " + path,
                            "install the package that provides " + name);
  }
  static Result<CommandResult> take(std::deque<Answer>& q) {
    Answer a = q.front();
    if (q.size() > 1) q.pop_front();
    if (auto* e = std::get_if<Error>(&a)) return *e;
    return std::get<CommandResult>(a);
  }

  std::map<Argv, std::deque<Answer>> by_argv_;
  std::map<std::string, std::deque<Answer>> by_name_;
  std::vector<std::string> missing_;
};

}  // namespace pcipass::test
