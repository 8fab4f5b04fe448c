#include "vm/qmp.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "util/json_text.h"

namespace pcipass::vm {
namespace {

// "QMP socket S: WHAT: strerror" (Error::io would put the path after the operation).
Error socket_error(const std::string& socket, const std::string& what, int err) {
  Error e = Error::io("", socket, err);
  e.message = fmt::format("QMP socket {}: {}: {}", socket, what, std::strerror(err));
  return e;
}

const char* kQmpFix =
    "check that QEMU runs with -qmp unix:SOCKET,server=on,wait=off (or libvirt's monitor is not "
    "in use by another client) and that you may open the socket";

class FdStream final : public QmpStream {
 public:
  explicit FdStream(int fd) : fd_(fd) {}
  ~FdStream() override { ::close(fd_); }

  Result<Chunk> read(int timeout_ms, size_t max_bytes) override {
    pollfd p{fd_, POLLIN, 0};
    int n = 0;
    do n = ::poll(&p, 1, timeout_ms);
    while (n < 0 && errno == EINTR);
    if (n < 0) return Error::io("poll", "", errno);
    if (n == 0) return Chunk{Chunk::Kind::kTimeout, {}};
    std::string buf(std::min<size_t>(max_bytes, 65536), '\0');
    ssize_t got = 0;
    do got = ::read(fd_, buf.data(), buf.size());
    while (got < 0 && errno == EINTR);
    if (got < 0 && errno == ECONNRESET) return Chunk{Chunk::Kind::kClosed, {}};
    if (got < 0) return Error::io("read", "", errno);
    if (got == 0) return Chunk{Chunk::Kind::kClosed, {}};
    buf.resize(static_cast<size_t>(got));
    return Chunk{Chunk::Kind::kData, std::move(buf)};
  }

  Status write(std::string_view bytes) override {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::io("write", "", errno);
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return {};
  }

 private:
  int fd_;
};

class UnixConnector final : public QmpConnector {
 public:
  Result<std::unique_ptr<QmpStream>> connect(const std::string& path) override {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof(addr.sun_path) || path.find('\0') != path.npos)
      return Error::invalid(fmt::format("'{}' cannot be a unix socket path (at most {} bytes)",
                                        path, sizeof(addr.sun_path) - 1));
    std::memcpy(addr.sun_path, path.data(), path.size());
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Error::io("socket", path, errno);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      int err = errno;
      ::close(fd);
      Error e = socket_error(path, "connect", err);
      e.fix = kQmpFix;
      return e;
    }
    return std::unique_ptr<QmpStream>(std::make_unique<FdStream>(fd));
  }
};

std::string error_desc(const Json& error) {
  if (!error.is_object()) return "(no description)";
  auto d = error.find("desc");
  return d != error.end() && d->is_string() ? d->get<std::string>() : "(no description)";
}

std::string clip(std::string_view s) {
  std::string out(s.substr(0, 80));
  if (s.size() > 80) out += "...";
  return out;
}

}  // namespace

std::unique_ptr<QmpStream> make_fd_stream(int fd) {
  return std::make_unique<FdStream>(fd);
}

std::unique_ptr<QmpConnector> make_unix_connector() {
  return std::make_unique<UnixConnector>();
}

QmpClient::QmpClient(std::unique_ptr<QmpStream> stream, std::string socket,
                     const ProcessContext& process, QmpOptions options)
    : stream_(std::move(stream)),
      socket_(std::move(socket)),
      process_(process),
      options_(options) {}

Result<std::unique_ptr<QmpClient>> QmpClient::open(QmpConnector& connector,
                                                   const std::string& socket_path,
                                                   const ProcessContext& process,
                                                   QmpOptions options) {
  auto stream = TRY(connector.connect(socket_path));
  auto client = std::make_unique<QmpClient>(std::move(stream), socket_path, process, options);
  auto greeting =
      TRY(client->next_message(process.time_now() + options.reply_timeout_s, "the greeting"));
  if (!greeting || !greeting->contains("QMP"))
    return Error::state(
        fmt::format("QMP socket {}: {} instead of the QMP greeting", socket_path,
                    greeting
                        ? "another message"
                        : "no message within " + std::to_string(options.reply_timeout_s) + " s"),
        "is this a QMP socket (-qmp), not a human monitor (-monitor) or a serial port?");
  client->greeting_ = std::move(*greeting);
  TRY(client->execute("qmp_capabilities"));
  return client;
}

Result<Json> QmpClient::execute(const std::string& command, const Json& arguments,
                                int reply_timeout_s) {
  int64_t id = next_id_++;
  Json msg{{"execute", command}};
  if (!arguments.is_null()) msg["arguments"] = arguments;
  msg["id"] = id;
  // A command with an argument that is not UTF-8 cannot be sent, and replacing its bytes would
  // send another one. The callers check their arguments; this is the last line.
  auto text = strict_dump(msg);
  if (!text)
    return Error::invalid(
        fmt::format("QMP socket {}: {} has an argument that is not UTF-8, which QMP cannot carry",
                    socket_, command));
  if (auto w = stream_->write(*text + "\n"); !w)
    return socket_error(socket_, "send " + command, w.error().err);
  return await_reply(id, command, reply_timeout_s > 0 ? reply_timeout_s : options_.reply_timeout_s);
}

Result<Json> QmpClient::await_reply(int64_t id, const std::string& command, int timeout_s) {
  int64_t deadline = now() + timeout_s;
  std::string what = "the reply to " + command;
  for (;;) {
    auto msg = TRY(next_message(deadline, what));
    if (!msg)
      return Error::state(
          fmt::format("QMP socket {}: no reply to {} within {} s", socket_, command, timeout_s),
          "QEMU may be busy or hung; try again, or check it with `virsh "
          "qemu-monitor-command` or its log");
    if (msg->contains("event")) {
      queue_event(std::move(*msg));
      continue;
    }
    auto mid = msg->find("id");
    if (mid == msg->end() || !mid->is_number_integer() || mid->get<int64_t>() != id)
      continue;  // a reply to someone else's command (or to none): not ours
    if (auto e = msg->find("error"); e != msg->end())
      return Error::state(
          fmt::format("QMP socket {}: {} failed: {}", socket_, command, error_desc(*e)));
    auto r = msg->find("return");
    if (r == msg->end())
      return Error::state(
          fmt::format("QMP socket {}: the reply to {} has neither \"return\" "
                      "nor \"error\"",
                      socket_, command));
    return *r;
  }
}

void QmpClient::queue_event(Json event) {
  events_.push_back(std::move(event));
  while (events_.size() > options_.max_queued_events) events_.pop_front();
}

Result<std::optional<Json>> QmpClient::wait_event(const std::function<bool(const Json&)>& match,
                                                  int64_t deadline) {
  for (;;) {
    for (auto it = events_.begin(); it != events_.end(); ++it)
      if (match(*it)) {
        Json e = std::move(*it);
        events_.erase(it);
        return std::optional<Json>(std::move(e));
      }
    auto msg = TRY(next_message(deadline, "an event"));
    if (!msg) return std::optional<Json>();
    if (msg->contains("event")) queue_event(std::move(*msg));
  }
}

Result<std::optional<Json>> QmpClient::next_message(int64_t deadline, const std::string& what) {
  for (;;) {
    size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded() || !j.is_object())
        return Error::state(
            fmt::format("QMP socket {}: malformed message while waiting for {}: '{}'", socket_,
                        what, clip(line)),
            "is this a QMP socket (-qmp), not a human monitor (-monitor) or a serial port?");
      return std::optional<Json>(std::move(j));
    }
    if (buffer_.size() > options_.max_message)
      return Error::state(
          fmt::format("QMP socket {}: a message longer than {} bytes while "
                      "waiting for {}",
                      socket_, options_.max_message, what));
    int64_t left = deadline - now();
    // "> deadline": the clock counts whole seconds, so a wait lasts at least the full timeout.
    if (left < 0) return std::optional<Json>();
    auto chunk = stream_->read(options_.poll_slice_ms, options_.max_message + 1 - buffer_.size());
    if (!chunk) return socket_error(socket_, "read while waiting for " + what, chunk.error().err);
    if (chunk->kind == Chunk::Kind::kClosed)
      return Error::state(fmt::format("QMP socket {}: QEMU closed the connection while pcipass "
                                      "waited for {}",
                                      socket_, what),
                          "QEMU may have exited: see its log (libvirt: "
                          "/var/log/libvirt/qemu/DOMAIN.log)");
    buffer_ += chunk->data;
  }
}

}  // namespace pcipass::vm
