// The real CommandRunner against Debian's coreutils (sh only produces test output), and the
// FakeRunner that tests of update-grub, dracut and mdevctl callers use.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "fake_runner.h"
#include "host/runner.h"
#include "temp_tree.h"

namespace pcipass::test {
namespace {

Invocation inv(std::vector<std::string> argv, std::map<std::string, std::string> env = {}) {
  Invocation i;
  i.argv = std::move(argv);
  i.environment = std::move(env);
  return i;
}

CommandResult run_ok(const Invocation& i) {
  auto r = make_real_runner()->run(i);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? *r : CommandResult{};
}

Invocation sh(const std::string& script) {
  return inv({"/bin/sh", "-c", script});
}

TEST(Runner, ReportsTheExitStatus) {
  auto t = run_ok(inv({"/bin/true"}));
  EXPECT_TRUE(t.ok());
  EXPECT_EQ(t.exit_status, 0);
  auto f = run_ok(inv({"/bin/false"}));
  EXPECT_FALSE(f.ok());
  EXPECT_EQ(f.exit_status, 1);
  EXPECT_EQ(f.signal, 0);
  EXPECT_EQ(run_ok(sh("exit 42")).exit_status, 42);
}

TEST(Runner, ReportsTheSignal) {
  auto r = run_ok(sh("kill -TERM $$"));
  EXPECT_EQ(r.signal, SIGTERM);
  EXPECT_FALSE(r.timed_out);
  EXPECT_FALSE(r.ok());
}

TEST(Runner, CapturesMoreThanAPipeOnBothStreamsAtOnce) {
  // Both writers run at the same time: a runner that drains one stream to its end before
  // reading the other deadlocks here (and hits the timeout).
  Invocation i =
      sh("(head -c 3000000 /dev/zero | tr '\\0' a) & "
         "(head -c 2500000 /dev/zero | tr '\\0' b >&2); wait");
  i.timeout_ms = 20000;
  auto r = run_ok(i);
  ASSERT_TRUE(r.ok()) << r.err.substr(0, 200);
  EXPECT_EQ(r.out, std::string(3000000, 'a'));
  EXPECT_EQ(r.err, std::string(2500000, 'b'));
}

TEST(Runner, RoundTripsStdinThroughCat) {
  Invocation i = inv({"/bin/cat"});
  std::string data;
  for (int n = 0; data.size() < 3'000'000; ++n) data += "line " + std::to_string(n) + "\n";
  data += std::string("\0binary\xff", 8);
  i.stdin_data = data;
  i.timeout_ms = 20000;
  auto r = run_ok(i);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.out.size(), data.size());
  EXPECT_TRUE(r.out == data);
}

TEST(Runner, StdinIsDevNullWithoutData) {
  auto r = run_ok(inv({"/bin/cat"}));
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.out, "");
}

TEST(Runner, SurvivesAChildThatDoesNotReadItsStdin) {
  // 4 MiB does not fit in the pipe: the write fails with EPIPE once /bin/true has exited. The
  // SIGPIPE that comes with it must neither kill this process nor stay pending.
  Invocation i = inv({"/bin/true"});
  i.stdin_data = std::string(4 << 20, 'x');
  auto r = run_ok(i);
  EXPECT_TRUE(r.ok());
  sigset_t pending;
  sigpending(&pending);
  EXPECT_FALSE(sigismember(&pending, SIGPIPE));

  // A child that keeps running without reading: the runner waits for its exit, not for the pipe.
  Invocation slow = sh("sleep 0.2; echo finished");
  slow.stdin_data = std::string(4 << 20, 'x');
  slow.timeout_ms = 10000;
  auto s = run_ok(slow);
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.out, "finished\n");
}

TEST(Runner, GivesTheChildExactlyTheEnvironment) {
  auto r = run_ok(inv({"/usr/bin/env"}, {{"A", "1"}, {"B", "two words"}, {"EMPTY", ""}}));
  EXPECT_EQ(r.out, "A=1\nB=two words\nEMPTY=\n");
  EXPECT_EQ(run_ok(inv({"/usr/bin/env"})).out, "");
}

TEST(Runner, SearchesThePathOfTheInvocationNotOurs) {
  TempTree t;
  t.file("/bin/pcipass-hello", "#!/bin/sh\necho hello from \"$0\"\n");
  ::chmod(t.real("/bin/pcipass-hello").c_str(), 0755);
  t.file("/empty/.keep", "");
  std::string path = t.real("/empty") + "::" + t.real("/bin");
  auto r = run_ok(inv({"pcipass-hello"}, {{"PATH", path}}));
  EXPECT_EQ(r.out, "hello from " + t.real("/bin/pcipass-hello") + "\n");

  // Our own PATH surely has `true`; the invocation's does not.
  auto missing = make_real_runner()->run(inv({"true"}, {{"PATH", t.real("/empty")}}));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
}

TEST(Runner, DefaultPathIsTheSystemsWhenTheEnvironmentHasNone) {
  auto r = run_ok(inv({"true"}));
  EXPECT_TRUE(r.ok());
}

TEST(Runner, NotFoundNamesTheProgramAndThePath) {
  auto r = make_real_runner()->run(inv({"pcipass-no-such-program", "--x"}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(r.error().message,
            "pcipass-no-such-program: program not found in PATH /usr/sbin:/usr/bin:/sbin:/bin");
  EXPECT_EQ(r.error().fix, "install the package that provides pcipass-no-such-program");

  auto abs = make_real_runner()->run(inv({"/nonexistent/dracut"}));
  ASSERT_FALSE(abs.ok());
  EXPECT_EQ(abs.error().message, "/nonexistent/dracut: program not found");
  EXPECT_EQ(abs.error().fix, "install the package that provides /nonexistent/dracut");
}

TEST(Runner, AFileThatIsNotExecutableIsAnError) {
  TempTree t;
  t.file("/prog", "#!/bin/sh\n");
  auto r = make_real_runner()->run(inv({t.real("/prog")}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().err, EACCES);
  EXPECT_NE(r.error().message.find(t.real("/prog")), std::string::npos);
  EXPECT_FALSE(make_real_runner()->run(inv({})).ok());
}

TEST(Runner, PassesArgumentsLiterallyWithoutAShell) {
  TempTree t;
  std::string marker = t.real("/touched");
  std::string arg = "$(touch " + marker + ") `touch " + marker + "`; touch " + marker + " *";
  auto r = run_ok(inv({"/bin/echo", arg, "a b", "'q'"}));
  EXPECT_EQ(r.out, arg + " a b 'q'\n");
  EXPECT_FALSE(std::ifstream(marker).good());
}

TEST(Runner, TimeoutKillsTheChild) {
  Invocation i = inv({"/bin/sleep", "30"});
  i.timeout_ms = 300;
  auto start = std::chrono::steady_clock::now();
  auto r = run_ok(i);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_FALSE(r.ok());
  EXPECT_LT(took, std::chrono::seconds(5));
  EXPECT_GE(took, std::chrono::milliseconds(300));
}

bool process_gone(pid_t pid) {
  for (int i = 0; i < 200; ++i) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return true;
    auto close = line.rfind(')');
    if (close != std::string::npos && line.substr(close + 2, 1) == "Z") return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

TEST(Runner, TimeoutKillsTheWholeProcessGroup) {
  Invocation i = sh("sleep 30 & echo $!; wait");
  i.timeout_ms = 500;
  auto start = std::chrono::steady_clock::now();
  auto r = run_ok(i);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_TRUE(r.timed_out);
  pid_t grandchild = std::atoi(r.out.c_str());
  ASSERT_GT(grandchild, 0) << r.out;
  EXPECT_TRUE(process_gone(grandchild)) << "sleep " << grandchild << " survived the timeout";
}

TEST(Runner, DoesNotWaitForADescendantHoldingThePipes) {
  // The background sleep inherits stdout and stderr; the runner returns when sh exits.
  Invocation i = sh("echo started; sleep 5 & exit 0");
  auto start = std::chrono::steady_clock::now();
  auto r = run_ok(i);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.out, "started\n");
}

void count_alarm(int) {}

// A signal every millisecond, with a handler installed without SA_RESTART: every poll, read,
// write and waitpid of the runner is interrupted many times.
TEST(Runner, CarriesOnThroughInterruptedSystemCalls) {
  struct sigaction sa {
  }, old{};
  sa.sa_handler = count_alarm;
  ASSERT_EQ(::sigaction(SIGALRM, &sa, &old), 0);
  itimerval every_ms{{0, 1000}, {0, 1000}}, off{};
  ASSERT_EQ(::setitimer(ITIMER_REAL, &every_ms, nullptr), 0);
  Invocation i = sh("cat; sleep 0.3; echo done >&2");
  i.stdin_data = std::string(3 << 20, 'z');
  i.timeout_ms = 20000;
  auto r = make_real_runner()->run(i);
  ::setitimer(ITIMER_REAL, &off, nullptr);
  ::sigaction(SIGALRM, &old, nullptr);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->ok()) << r->err;
  EXPECT_TRUE(r->out == *i.stdin_data) << r->out.size();
  EXPECT_EQ(r->err, "done\n");
}

TEST(Runner, LeaksNoDescriptorIntoTheChild) {
  // Without O_CLOEXEC, as a library's lock fd may be; one low, one high.
  int leaked = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(leaked, 0);
  ASSERT_EQ(::dup2(leaked, 100), 100);
  auto r = run_ok(inv({"/bin/ls", "/proc/self/fd"}));
  ::close(leaked), ::close(100);
  EXPECT_EQ(r.out, "0\n1\n2\n3\n");  // 3: the directory ls is reading
}

TEST(Runner, CapsWhatItKeepsOfAChattyProgram) {
  Invocation i = sh("head -c 17825792 /dev/zero");  // 17 MiB
  i.timeout_ms = 30000;
  auto r = run_ok(i);
  EXPECT_TRUE(r.ok());
  const size_t limit = 16u << 20;
  ASSERT_GT(r.out.size(), limit);
  EXPECT_EQ(r.out.substr(0, limit), std::string(limit, '\0'));
  EXPECT_EQ(r.out.substr(limit), "\n[pcipass: 1048576 more bytes discarded after 16 MiB]\n");
}

TEST(Runner, CheckedNamesTheProgramTheStatusAndTheTailOfStderr) {
  auto runner = make_real_runner();
  auto r = runner->checked(sh("echo out; echo first >&2; echo second >&2; exit 3"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "/bin/sh exited with status 3; its error output ends:\nfirst\nsecond");
  EXPECT_EQ(r.error().fix,
            "run it by hand to see its whole output: /bin/sh -c 'echo out; echo first >&2; echo "
            "second >&2; exit 3'");

  EXPECT_TRUE(runner->checked(inv({"/bin/true"})).ok());
  EXPECT_EQ(runner->checked(inv({"/bin/false"})).error().message,
            "/bin/false exited with status 1");
}

TEST(Runner, CheckedKeepsTheLastTwentyLines) {
  auto r =
      make_real_runner()->checked(sh("for i in $(seq 1 30); do echo line$i >&2; done; exit 1"));
  ASSERT_FALSE(r.ok());
  std::string expected = "/bin/sh exited with status 1; its error output ends:\n";
  for (int n = 11; n <= 30; ++n) expected += "line" + std::to_string(n) + (n < 30 ? "\n" : "");
  EXPECT_EQ(r.error().message, expected);
}

TEST(Runner, CheckedKeepsTheLastTwoKibibytes) {
  auto r = make_real_runner()->checked(sh("head -c 5000 /dev/zero | tr '\\0' x >&2; exit 1"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "/bin/sh exited with status 1; its error output ends:\n" + std::string(2048, 'x'));
}

TEST(Runner, CheckedNamesTheSignalAndTheTimeout) {
  auto runner = make_real_runner();
  EXPECT_EQ(runner->checked(sh("kill -KILL $$")).error().message,
            "/bin/sh was killed by signal 9 (SIGKILL)");
  Invocation slow = inv({"/bin/sleep", "30"});
  slow.timeout_ms = 200;
  EXPECT_EQ(runner->checked(slow).error().message,
            "/bin/sleep did not finish within 200 ms and was killed");
  auto missing = runner->checked(inv({"pcipass-no-such-program"}));
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
}

TEST(Invocation, QuotesForDisplay) {
  EXPECT_EQ(inv({"update-grub"}).text(), "update-grub");
  EXPECT_EQ(inv({"/usr/bin/dracut", "--force", "--kver=6.1.0-18-amd64", "/boot/x.img"}).text(),
            "/usr/bin/dracut --force --kver=6.1.0-18-amd64 /boot/x.img");
  EXPECT_EQ(inv({"echo", "a b", "", "it's", "$HOME", "*"}).text(),
            "echo 'a b' '' 'it'\\''s' '$HOME' '*'");
}

// The fake.

TEST(FakeRunner, RecordsEveryInvocation) {
  FakeRunner f;
  Invocation a = inv({"update-grub"}, {{"PATH", "/usr/sbin"}});
  Invocation b = inv({"mdevctl", "list", "--dumpjson"});
  b.stdin_data = "input";
  ASSERT_TRUE(f.run(a).ok());
  ASSERT_TRUE(f.run(b).ok());
  ASSERT_EQ(f.calls.size(), 2u);
  EXPECT_EQ(f.calls[0].environment.at("PATH"), "/usr/sbin");
  EXPECT_EQ(f.calls[1].stdin_data, "input");
  EXPECT_EQ(f.argvs(),
            (std::vector<FakeRunner::Argv>{{"update-grub"}, {"mdevctl", "list", "--dumpjson"}}));
}

TEST(FakeRunner, ExactArgvWinsOverTheProgramWhichWinsOverTheDefault) {
  FakeRunner f;
  f.on({"mdevctl", "list"}, FakeRunner::success("exact"));
  f.on_program("mdevctl", FakeRunner::success("by name"));
  f.default_result = FakeRunner::success("default");
  EXPECT_EQ(f.run(inv({"mdevctl", "list"}))->out, "exact");
  EXPECT_EQ(f.run(inv({"mdevctl", "start"}))->out, "by name");
  EXPECT_EQ(f.run(inv({"dracut"}))->out, "default");
  FakeRunner plain;
  auto r = plain.run(inv({"anything"}));
  EXPECT_TRUE(r->ok());
  EXPECT_EQ(r->out, "");
}

TEST(FakeRunner, ReplaysQueuedAnswersThenRepeatsTheLast) {
  FakeRunner f;
  f.on({"dracut"}, FakeRunner::failure(1, "dracut: busy\n"));
  f.on({"dracut"}, FakeRunner::success());
  EXPECT_EQ(f.run(inv({"dracut"}))->exit_status, 1);
  EXPECT_TRUE(f.run(inv({"dracut"}))->ok());
  EXPECT_TRUE(f.run(inv({"dracut"}))->ok());
  EXPECT_EQ(f.checked(inv({"x"})).ok(), true);
}

TEST(FakeRunner, ScriptedFailuresGoThroughChecked) {
  FakeRunner f;
  f.on_program("update-grub", FakeRunner::failure(1, "grub-mkconfig: error: bad\n"));
  auto r = f.checked(inv({"update-grub"}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "update-grub exited with status 1; its error output ends:\ngrub-mkconfig: error: bad");
  f.on_program("kernel-install", Error::state("scripted"));
  EXPECT_EQ(f.run(inv({"kernel-install"})).error().message, "scripted");
}

TEST(FakeRunner, NotFoundIsTheRealRunnersError) {
  FakeRunner f;
  f.not_found("pcipass-no-such-program");
  for (auto env : {std::map<std::string, std::string>{},
                   std::map<std::string, std::string>{{"PATH", "/nonexistent"}}}) {
    Invocation i = inv({"pcipass-no-such-program"}, env);
    auto fake = f.run(i);
    auto real = make_real_runner()->run(i);
    ASSERT_FALSE(fake.ok());
    ASSERT_FALSE(real.ok());
    EXPECT_EQ(fake.error().kind, real.error().kind);
    EXPECT_EQ(fake.error().message, real.error().message);
    EXPECT_EQ(fake.error().fix, real.error().fix);
  }
  EXPECT_EQ(f.calls.size(), 2u);
}

}  // namespace
}  // namespace pcipass::test
