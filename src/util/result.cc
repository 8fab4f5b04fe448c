#include "util/result.h"

#include <cstring>

namespace pcipass {

Error Error::io(std::string op, std::string path, int err, std::string fix) {
  Error e;
  e.kind = ErrorKind::kIo;
  e.message = op + " " + path + ": " + std::strerror(err);
  e.path = std::move(path);
  e.err = err;
  e.fix = std::move(fix);
  return e;
}

static Error make(ErrorKind kind, std::string message, std::string fix) {
  Error e;
  e.kind = kind;
  e.message = std::move(message);
  e.fix = std::move(fix);
  return e;
}

Error Error::invalid(std::string m, std::string f) {
  return make(ErrorKind::kInvalid, std::move(m), std::move(f));
}
Error Error::not_found(std::string m, std::string f) {
  return make(ErrorKind::kNotFound, std::move(m), std::move(f));
}
Error Error::refused(std::string m, std::string f) {
  return make(ErrorKind::kRefused, std::move(m), std::move(f));
}
Error Error::state(std::string m, std::string f) {
  return make(ErrorKind::kState, std::move(m), std::move(f));
}

std::string Error::describe() const {
  return message;
}

}  // namespace pcipass
