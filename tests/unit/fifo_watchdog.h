// Runs a call that must not block on a FIFO: if it has not returned within `limit`, the test
// fails, and the FIFO is opened and closed again and again (a reader and a writer at once) so
// that every blocked open(2) completes and every read(2) sees end of file: the test ends, failed,
// instead of hanging the suite.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <string>
#include <thread>

namespace pcipass::test {

template <typename F>
auto without_blocking_on(const std::string& fifo, F call,
                         std::chrono::milliseconds limit = std::chrono::milliseconds(1000)) {
  auto result = std::async(std::launch::async, std::move(call));
  if (result.wait_for(limit) != std::future_status::ready) {
    ADD_FAILURE() << "blocked on the FIFO " << fifo;
    for (int i = 0; result.wait_for(std::chrono::milliseconds(10)) != std::future_status::ready;
         ++i) {
      int fd = ::open(fifo.c_str(), O_RDWR | O_NONBLOCK);
      if (fd >= 0) ::close(fd);
      if (i > 1000) {
        ADD_FAILURE() << "still blocked after 10 s more; giving up";
        std::abort();
      }
    }
  }
  return result.get();
}

}  // namespace pcipass::test
