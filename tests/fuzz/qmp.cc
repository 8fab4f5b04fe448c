// The QMP client and the query-pci reader (src/vm/qmp.*, src/vm/hotplug.*): the bytes a QEMU (or
// whatever listens on the socket) sends are untrusted. The input is the server's whole output,
// handed over in pieces whose sizes the input's first byte picks; a session is the greeting,
// qmp_capabilities, query-pci and a wait for DEVICE_DELETED. Oracles: no crash, every failure an
// Error with a message, and a reply that parses always yields a machine with a root bus.
#include <algorithm>
#include <memory>
#include <string>

#include "fuzz_support.h"
#include "vm/hotplug.h"
#include "vm/qmp.h"

using namespace pcipass;

namespace {

class Replay final : public vm::QmpStream {
 public:
  Replay(std::string data, size_t piece, std::shared_ptr<int64_t> clock)
      : data_(std::move(data)), piece_(piece), clock_(std::move(clock)) {}
  Result<vm::Chunk> read(int, size_t max_bytes) override {
    if (off_ >= data_.size()) {
      ++*clock_;  // nothing more will come: let the deadlines pass
      return vm::Chunk{vm::Chunk::Kind::kTimeout, {}};
    }
    size_t n = std::min({piece_, max_bytes, data_.size() - off_});
    vm::Chunk c{vm::Chunk::Kind::kData, data_.substr(off_, n)};
    off_ += n;
    return c;
  }
  Status write(std::string_view) override { return {}; }

 private:
  std::string data_;
  size_t piece_, off_ = 0;
  std::shared_ptr<int64_t> clock_;
};

class ReplayConnector final : public vm::QmpConnector {
 public:
  ReplayConnector(std::string data, size_t piece, std::shared_ptr<int64_t> clock)
      : data_(std::move(data)), piece_(piece), clock_(std::move(clock)) {}
  Result<std::unique_ptr<vm::QmpStream>> connect(const std::string&) override {
    return std::unique_ptr<vm::QmpStream>(std::make_unique<Replay>(data_, piece_, clock_));
  }

 private:
  std::string data_;
  size_t piece_;
  std::shared_ptr<int64_t> clock_;
};

template <typename T>
void check(const Result<T>& r, const char* what) {
  if (!r && r.error().message.empty()) fuzz::violated(std::string(what) + ": empty error message");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t piece = 1 + data[0] % 64;
  std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto clock = std::make_shared<int64_t>(0);
  ProcessContext process;
  process.now = [clock] { return *clock; };
  vm::QmpOptions options;
  options.max_message = 4096;
  options.max_queued_events = 8;
  ReplayConnector connector(text, piece, clock);
  auto client = vm::QmpClient::open(connector, "/fuzz.qmp", process, options);
  check(client, "open");
  if (!client) return 0;
  auto reply = (*client)->execute("query-pci");
  check(reply, "query-pci");
  if (reply) {
    auto slots = vm::parse_query_pci(*reply);
    check(slots, "parse_query_pci");
    if (slots && slots->root_bus.empty()) fuzz::violated("parsed query-pci without a root bus");
  }
  auto e = (*client)->wait_event([](const Json& j) { return j.value("event", Json()).is_string(); },
                                 *clock + 2);
  check(e, "wait_event");
  if ((*client)->events().size() > options.max_queued_events)
    fuzz::violated("event queue beyond its bound");
  return 0;
}
