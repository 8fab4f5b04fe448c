// A scripted QMP server on one end of a socketpair, in a thread: the greeting on connect, then
// for each command the client sends, the next scripted bytes ("$ID" becomes the command's id).
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "vm/qmp.h"

namespace pcipass::test {

inline constexpr const char* kQemuGreeting =
    R"({"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}})"
    "\r\n";

struct Reply {
  std::string command;  // what the client must send (empty: anything)
  std::string bytes;    // sent back, "$ID" replaced by the command's id
  bool close = false;   // close the connection after sending
};

inline std::string ok_reply(const std::string& value = "{}") {
  return R"({"return": )" + value + R"(, "id": $ID})" + "\r\n";
}

// Virtual time: the clock of FakeQmp::process() moves only when a read waited in vain, by the
// whole wait the client asked for, while the real wait is at most `max_wait_ms`: a guest that
// never answers costs the test milliseconds, not the timeout's seconds.
class ChunkedStream final : public vm::QmpStream {
 public:
  ChunkedStream(std::unique_ptr<vm::QmpStream> inner, size_t chunk, int max_wait_ms,
                std::shared_ptr<int64_t> clock_ms)
      : inner_(std::move(inner)),
        chunk_(chunk),
        max_wait_ms_(max_wait_ms),
        clock_ms_(std::move(clock_ms)) {}
  Result<vm::Chunk> read(int timeout_ms, size_t max_bytes) override {
    auto r = inner_->read(std::min(timeout_ms, max_wait_ms_), std::min(max_bytes, chunk_));
    if (r && r->kind == vm::Chunk::Kind::kTimeout) *clock_ms_ += timeout_ms;
    return r;
  }
  Status write(std::string_view b) override { return inner_->write(b); }

 private:
  std::unique_ptr<vm::QmpStream> inner_;
  size_t chunk_;
  int max_wait_ms_;
  std::shared_ptr<int64_t> clock_ms_;
};

class FakeQmp final : public vm::QmpConnector {
 public:
  std::string greeting = kQemuGreeting;
  std::vector<Reply> script;
  size_t chunk = 1 << 20;  // the client's reads return at most this many bytes
  int max_wait_ms = 50;    // and wait at most this long
  std::shared_ptr<int64_t> clock_ms = std::make_shared<int64_t>(1'000'000);

  // A process whose clock is this server's virtual time (seconds).
  ProcessContext process(bool live = false) const {
    ProcessContext p;
    p.live = live;
    p.now = [c = clock_ms] { return *c / 1000; };
    return p;
  }
  std::string connect_error;

  ~FakeQmp() override {
    if (server_.joinable()) server_.join();
  }

  Result<std::unique_ptr<vm::QmpStream>> connect(const std::string& path) override {
    paths.push_back(path);
    if (!connect_error.empty()) return Error::state(connect_error);
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
      return Error::io("socketpair", "", errno);
    server_ = std::thread([this, fd = fds[1]] { serve(fd); });
    return std::unique_ptr<vm::QmpStream>(
        std::make_unique<ChunkedStream>(vm::make_fd_stream(fds[0]), chunk, max_wait_ms, clock_ms));
  }

  // The commands the client sent, once it has hung up.
  std::vector<nlohmann::ordered_json> commands() {
    if (server_.joinable()) server_.join();
    return received_;
  }
  std::vector<std::string> executed() {
    std::vector<std::string> out;
    for (const auto& c : commands()) out.push_back(c.value("execute", "?"));
    return out;
  }
  std::vector<std::string> paths;
  std::vector<std::string> mismatches;

 private:
  void send(int fd, const std::string& s) {
    for (size_t off = 0; off < s.size();) {
      ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }
  void serve(int fd) {
    send(fd, greeting);
    std::string buf;
    size_t next = 0;
    char c;
    while (::read(fd, &c, 1) == 1) {
      if (c != '\n') {
        buf += c;
        continue;
      }
      auto cmd = nlohmann::ordered_json::parse(buf, nullptr, false);
      buf.clear();
      received_.push_back(cmd);
      if (next >= script.size()) continue;  // unscripted: no reply
      const Reply& r = script[next++];
      std::string name = cmd.is_object() ? cmd.value("execute", "") : "";
      if (!r.command.empty() && r.command != name)
        mismatches.push_back("expected " + r.command + ", got " + name);
      std::string bytes = r.bytes;
      std::string id = cmd.is_object() && cmd.contains("id") ? cmd["id"].dump() : "null";
      for (size_t p; (p = bytes.find("$ID")) != std::string::npos;) bytes.replace(p, 3, id);
      send(fd, bytes);
      if (r.close) break;
    }
    ::close(fd);
  }

  std::thread server_;
  std::vector<nlohmann::ordered_json> received_;
};

}  // namespace pcipass::test
