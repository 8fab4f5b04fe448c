#include "host/runner.h"

#include <fmt/format.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

namespace pcipass {

namespace {

constexpr const char* kDefaultPath = "/usr/sbin:/usr/bin:/sbin:/bin";
// A chatty program must not exhaust memory: past this, output is read and thrown away.
constexpr size_t kCaptureLimit = 16u << 20;
constexpr size_t kTailBytes = 2048;
constexpr int kTailLines = 20;

bool plain_word(const std::string& s) {
  if (s.empty()) return false;
  for (unsigned char c : s)
    if (!std::isalnum(c) && !std::strchr("_@%+=:,./-", c)) return false;
  return true;
}

// Closes on scope exit; the runner holds several descriptors across many early returns.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) reset(), fd_ = o.fd_, o.fd_ = -1;
    return *this;
  }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// Keeps pipe ends off 0, 1 and 2: a dup2 onto the same number would keep O_CLOEXEC and the
// child would start with its stdin closed.
Result<Fd> above_stdio(int fd) {
  if (fd > 2) return Fd(fd);
  int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  int err = errno;
  ::close(fd);
  if (moved < 0) return Error::io("fcntl", "pipe", err);
  return Fd(moved);
}

struct Pipe {
  Fd read, write;
};

Result<Pipe> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Error::io("pipe2", "pipe", errno);
  Pipe p;
  auto r = above_stdio(fds[0]);
  auto w = above_stdio(fds[1]);
  if (!r) return std::move(r).error();
  if (!w) return std::move(w).error();
  p.read = std::move(*r);
  p.write = std::move(*w);
  return p;
}

std::string path_of(const Invocation& cmd) {
  auto it = cmd.environment.find("PATH");
  return it == cmd.environment.end() ? kDefaultPath : it->second;
}

bool executable_file(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// argv[0] as execve needs it: a name without '/' is searched in the child's PATH, not ours.
Result<std::string> resolve(const Invocation& cmd) {
  const std::string& name = cmd.argv[0];
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), F_OK) != 0)
      return Error::not_found(name + ": program not found",
                              "install the package that provides " + name);
    return name;
  }
  std::string path = path_of(cmd);
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    // An empty entry means the working directory; pcipass never runs programs from there.
    if (!dir.empty() && executable_file(dir + "/" + name)) return dir + "/" + name;
    start = end + 1;
  }
  return Error::not_found(name + ": program not found in PATH " + path,
                          "install the package that provides " + name);
}

std::vector<std::string> environment_strings(const Invocation& cmd) {
  std::vector<std::string> env;
  for (const auto& [k, v] : cmd.environment) env.push_back(k + "=" + v);
  return env;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> p;
  for (auto& s : strings) p.push_back(s.data());
  p.push_back(nullptr);
  return p;
}

// posix_spawn's attributes and file actions, destroyed on scope exit.
struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnSetup() {
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawnattr_init(&attr);
  }
  ~SpawnSetup() {
    ::posix_spawn_file_actions_destroy(&actions);
    ::posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

// The child: its own process group (so a timeout kills its children too), default signal
// dispositions and an empty mask whatever pcipass ignores or blocks, only fds 0-2 open.
void prepare(SpawnSetup& s, const Pipe* in, const Pipe& out, const Pipe& err) {
  if (in)
    ::posix_spawn_file_actions_adddup2(&s.actions, in->read.get(), 0);
  else
    ::posix_spawn_file_actions_addopen(&s.actions, 0, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_adddup2(&s.actions, out.write.get(), 1);
  ::posix_spawn_file_actions_adddup2(&s.actions, err.write.get(), 2);
  ::posix_spawn_file_actions_addclosefrom_np(&s.actions, 3);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  ::posix_spawnattr_setsigmask(&s.attr, &none);
  ::posix_spawnattr_setsigdefault(&s.attr, &all);
  ::posix_spawnattr_setpgroup(&s.attr, 0);
  ::posix_spawnattr_setflags(
      &s.attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
}

// Monotonic nanoseconds: the deadline must not come early by a rounded-off millisecond.
int64_t now_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// One captured stream: everything up to the limit, then a count of what was thrown away.
struct Sink {
  Fd fd;
  std::string* text;
  size_t dropped = 0;
  // Reads what is there; false at end of file or error.
  bool drain() {
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return true;
      if (n <= 0) return false;
      size_t take = std::min(static_cast<size_t>(n), kCaptureLimit - text->size());
      text->append(buf, take);
      dropped += static_cast<size_t>(n) - take;
    }
  }
  void note() {
    if (dropped)
      *text += "\n[pcipass: " + std::to_string(dropped) + " more bytes discarded after " +
               std::to_string(kCaptureLimit >> 20) + " MiB]\n";
  }
};

// SIGPIPE is blocked while the runner writes a child's stdin (a child may exit without reading
// it); a SIGPIPE the runner itself raised is consumed before the mask is restored.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE);
    ::pthread_sigmask(SIG_BLOCK, &set_, &old_);
  }
  ~SigpipeGuard() {
    if (raised && !was_pending_) {
      timespec zero{0, 0};
      while (::sigtimedwait(&set_, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;
  bool raised = false;

 private:
  sigset_t set_, old_;
  bool was_pending_ = false;
};

void set_nonblocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

Result<int> wait_for(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return Error::io("waitpid", std::to_string(pid), errno);
  return status;
}

// Feeds stdin, drains stdout and stderr and watches the child, until it exits or the deadline
// passes. Returns false on timeout.
class Session {
 public:
  Session(pid_t pid, Fd in, const std::string* data, Fd out, Fd err, CommandResult& r)
      : pid_(pid),
        in_(std::move(in)),
        data_(data),
        out_{std::move(out), &r.out},
        err_{std::move(err), &r.err} {
    pidfd_ = Fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    for (int fd : {in_.get(), out_.fd.get(), err_.fd.get()})
      if (fd >= 0) set_nonblocking(fd);
    if (data_ && data_->empty()) in_.reset();
  }

  bool run(int64_t deadline, SigpipeGuard& guard) {
    for (;;) {
      if (exited()) return finish();
      int64_t left_ns = deadline - now_ns();
      if (left_ns <= 0) return false;
      int64_t left = (left_ns + 999999) / 1000000;  // poll's milliseconds, rounded up
      pollfd p[4];
      int n = 0;
      if (in_.get() >= 0) p[n++] = {in_.get(), POLLOUT, 0};
      if (out_.fd.get() >= 0) p[n++] = {out_.fd.get(), POLLIN, 0};
      if (err_.fd.get() >= 0) p[n++] = {err_.fd.get(), POLLIN, 0};
      // Without a pidfd (old kernels) the exit is noticed by polling waitpid.
      if (pidfd_.get() >= 0) p[n++] = {pidfd_.get(), POLLIN, 0};
      int wait = pidfd_.get() >= 0 ? static_cast<int>(std::min<int64_t>(left, 1 << 30))
                                   : static_cast<int>(std::min<int64_t>(left, 20));
      int k = ::poll(p, static_cast<nfds_t>(n), wait);
      if (k < 0 && errno != EINTR) return false;
      if (k <= 0) continue;
      for (int i = 0; i < n; ++i) {
        if (!p[i].revents) continue;
        if (p[i].fd == in_.get())
          feed(guard);
        else if (p[i].fd == out_.fd.get() && !out_.drain())
          out_.fd.reset();
        else if (p[i].fd == err_.fd.get() && !err_.drain())
          err_.fd.reset();
      }
    }
  }

  int status() const { return status_; }
  void close_all() {
    in_.reset(), out_.fd.reset(), err_.fd.reset();
    out_.note(), err_.note();
  }

 private:
  void feed(SigpipeGuard& guard) {
    while (written_ < data_->size()) {
      ssize_t w = ::write(in_.get(), data_->data() + written_, data_->size() - written_);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && errno == EAGAIN) return;
      if (w < 0) {
        guard.raised = errno == EPIPE;
        break;  // the child closed its stdin; the rest is not wanted
      }
      written_ += static_cast<size_t>(w);
    }
    in_.reset();
  }

  bool exited() {
    pid_t r;
    while ((r = ::waitpid(pid_, &status_, WNOHANG)) < 0 && errno == EINTR) {
    }
    return r == pid_;
  }

  // The child is gone; what it wrote is in the pipes. A descendant that still holds them open
  // is not waited for.
  bool finish() {
    if (out_.fd.get() >= 0) out_.drain();
    if (err_.fd.get() >= 0) err_.drain();
    return true;
  }

  pid_t pid_;
  Fd in_;
  const std::string* data_;
  Sink out_, err_;
  Fd pidfd_;
  int status_ = 0;
  size_t written_ = 0;
};

std::string tail_of(const std::string& err) {
  size_t start = err.size() > kTailBytes ? err.size() - kTailBytes : 0;
  size_t end = err.size();
  while (end > start && err[end - 1] == '\n') --end;
  int lines = 0;
  for (size_t i = end; i > start; --i) {
    if (err[i - 1] == '\n' && ++lines == kTailLines) {
      start = i;
      break;
    }
  }
  return err.substr(start, end - start);
}

std::string duration(int ms) {
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  return std::to_string(ms) + " ms";
}

std::string signal_name(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return std::to_string(sig) + (abbrev ? std::string(" (SIG") + abbrev + ")" : std::string());
}

class RealRunner final : public CommandRunner {
 public:
  Result<CommandResult> run(const Invocation& cmd) override {
    if (cmd.argv.empty()) return Error::invalid("empty command line");
    std::string program = TRY(resolve(cmd));
    std::optional<Pipe> in;
    if (cmd.stdin_data) in = TRY(make_pipe());
    Pipe out = TRY(make_pipe());
    Pipe err = TRY(make_pipe());
    SpawnSetup setup;
    prepare(setup, in ? &*in : nullptr, out, err);
    std::vector<std::string> args = cmd.argv, env = environment_strings(cmd);
    auto argv = pointers(args), envp = pointers(env);
    SigpipeGuard guard;
    int64_t deadline = now_ns() + int64_t{cmd.timeout_ms} * 1000000;
    pid_t pid = 0;
    int rc =
        ::posix_spawn(&pid, program.c_str(), &setup.actions, &setup.attr, argv.data(), envp.data());
    if (rc != 0) return Error::io("run", program, rc);
    if (in) in->read.reset();
    out.write.reset(), err.write.reset();

    CommandResult result;
    Session session(pid, in ? std::move(in->write) : Fd(),
                    cmd.stdin_data ? &*cmd.stdin_data : nullptr, std::move(out.read),
                    std::move(err.read), result);
    bool finished = session.run(deadline, guard);
    int status = session.status();
    if (!finished) {
      ::kill(-pid, SIGKILL);
      status = TRY(wait_for(pid));
      result.timed_out = true;
    }
    session.close_all();
    if (WIFEXITED(status)) result.exit_status = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
    return result;
  }
};

}  // namespace

std::string Invocation::text() const {
  std::string s;
  for (const auto& a : argv) {
    if (!s.empty()) s += ' ';
    if (plain_word(a)) {
      s += a;
      continue;
    }
    s += '\'';
    for (char c : a) s += c == '\'' ? std::string("'\\''") : std::string(1, c);
    s += '\'';
  }
  return s;
}

Result<CommandResult> CommandRunner::checked(const Invocation& cmd) {
  CommandResult r = TRY(run(cmd));
  if (r.ok()) return r;
  return failure(cmd, r);
}

Error CommandRunner::failure(const Invocation& cmd, const CommandResult& r) {
  std::string name = cmd.argv.empty() ? std::string("(empty command)") : cmd.argv[0];
  std::string what;
  if (r.timed_out)
    what = name + " did not finish within " + duration(cmd.timeout_ms) + " and was killed";
  else if (r.signal)
    what = name + " was killed by signal " + signal_name(r.signal);
  else
    what = name + " exited with status " + std::to_string(r.exit_status);
  std::string tail = tail_of(r.err);
  if (!tail.empty()) what += "; its error output ends:\n" + tail;
  return Error::state(what, "run it by hand to see its whole output: " + cmd.text());
}

std::unique_ptr<CommandRunner> make_real_runner() {
  return std::make_unique<RealRunner>();
}

namespace {

class TreeRunner : public CommandRunner {
 public:
  explicit TreeRunner(std::string root) : root_(std::move(root)) {}
  Result<CommandResult> run(const Invocation& cmd) override {
    return Error::refused(
        fmt::format("not running {} for the captured tree {}: it would act on this machine",
                    cmd.argv.empty() ? std::string("a program") : cmd.argv[0], root_),
        "run pcipass on the host itself (without --root) for what needs programs");
  }

 private:
  std::string root_;
};

}  // namespace

std::unique_ptr<CommandRunner> make_tree_runner(std::string root) {
  return std::make_unique<TreeRunner>(std::move(root));
}

}  // namespace pcipass
