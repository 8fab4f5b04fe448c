// A QMP client (QEMU Machine Protocol, docs/interop/qmp-spec in QEMU): greeting, capabilities
// negotiation, then commands whose replies are matched by "id"; events that arrive before or
// between replies are queued for wait_event. Everything the server sends is untrusted: every read
// has a deadline, every message a size bound, and malformed JSON, a closed socket or an "error"
// reply become Errors naming the socket, the command and QEMU's "desc" verbatim.
//
// The socket is reached through QmpConnector, so tests serve the protocol on a socketpair and the
// library never opens a socket itself. Its path is NOT resolved under --root: --root is a view of
// the host's files, while a QMP socket is the endpoint of a running QEMU; a captured tree has no
// server behind its sockets (and tests can pair a fixture tree with a socket they serve).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "host/context.h"
#include "util/json.h"
#include "util/result.h"

namespace pcipass::vm {

// One read of a byte stream: data, nothing within the timeout, or the peer closed it.
struct Chunk {
  enum class Kind { kData, kTimeout, kClosed } kind = Kind::kData;
  std::string data;
};

// A connected stream to a QMP server.
class QmpStream {
 public:
  virtual ~QmpStream() = default;
  // Waits at most timeout_ms (0: do not wait) for bytes; returns at most max_bytes.
  virtual Result<Chunk> read(int timeout_ms, size_t max_bytes) = 0;
  virtual Status write(std::string_view bytes) = 0;
};

class QmpConnector {
 public:
  virtual ~QmpConnector() = default;
  virtual Result<std::unique_ptr<QmpStream>> connect(const std::string& socket_path) = 0;
};

// A stream over a file descriptor it owns (a connected unix socket, one end of a socketpair).
std::unique_ptr<QmpStream> make_fd_stream(int fd);
// The real one: socket(AF_UNIX) + connect(). Only the executable's main path makes it.
std::unique_ptr<QmpConnector> make_unix_connector();

struct QmpOptions {
  int reply_timeout_s = 10;         // for the greeting and each reply
  size_t max_message = 8u << 20;    // bytes of one message (query-pci of a big guest: KiB)
  size_t max_queued_events = 1024;  // older events are dropped beyond this
  int poll_slice_ms = 1000;         // longest single wait between clock readings
};

class QmpClient {
 public:
  // Connects, reads the greeting and negotiates capabilities (`qmp_capabilities`).
  static Result<std::unique_ptr<QmpClient>> open(QmpConnector& connector,
                                                 const std::string& socket_path,
                                                 const ProcessContext& process,
                                                 QmpOptions options = {});
  // Sends {"execute": command, "arguments": arguments, "id": N} and returns the reply's "return".
  // reply_timeout_s: 0 for the options' default (device_add of vfio-pci pins all guest memory
  // before it answers: seconds per 10s of GiB).
  Result<Json> execute(const std::string& command, const Json& arguments = nullptr,
                       int reply_timeout_s = 0);
  // The first queued or arriving event for which `match` is true (it is removed from the queue;
  // others stay), or nullopt when none came by `deadline` (seconds, the process clock).
  Result<std::optional<Json>> wait_event(const std::function<bool(const Json&)>& match,
                                         int64_t deadline);

  const Json& greeting() const { return greeting_; }
  const std::deque<Json>& events() const { return events_; }
  const std::string& socket_path() const { return socket_; }
  int64_t now() const { return process_.time_now(); }

  QmpClient(std::unique_ptr<QmpStream> stream, std::string socket, const ProcessContext& process,
            QmpOptions options);

 private:
  // The next complete message (a JSON object), or nullopt at the deadline. `what` names the
  // awaited message for errors ("the reply to query-pci").
  Result<std::optional<Json>> next_message(int64_t deadline, const std::string& what);
  Result<Json> await_reply(int64_t id, const std::string& command, int timeout_s);
  void queue_event(Json event);

  std::unique_ptr<QmpStream> stream_;
  std::string socket_;
  const ProcessContext& process_;
  QmpOptions options_;
  std::string buffer_;
  Json greeting_;
  std::deque<Json> events_;
  int64_t next_id_ = 1;
};

}  // namespace pcipass::vm
