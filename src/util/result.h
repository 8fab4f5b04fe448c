// Result<T>: a value or an Error that names what failed, where, why and how to fix it.
// The library never prints or exits; callers format errors (see cli/format.h).
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace pcipass {

enum class ErrorKind {
  kIo,        // a syscall on a host path failed
  kInvalid,   // bad user input (exit status 2)
  kNotFound,  // a named thing does not exist
  kRefused,   // a safety rule refused the operation
  kState,     // the host is not in the state the operation needs
  kInternal,
};

struct Error {
  ErrorKind kind = ErrorKind::kInternal;
  std::string message;  // what failed, complete sentence without the fix
  std::string path;     // host path involved, if any
  int err = 0;          // errno, if a syscall failed
  std::string fix;      // what the user can do about it, if known

  // "open /sys/x: No such file or directory" style constructor for syscall failures.
  static Error io(std::string op, std::string path, int err, std::string fix = {});
  static Error invalid(std::string message, std::string fix = {});
  static Error not_found(std::string message, std::string fix = {});
  static Error refused(std::string message, std::string fix = {});
  static Error state(std::string message, std::string fix = {});

  Error&& with_fix(std::string f) && {
    fix = std::move(f);
    return std::move(*this);
  }
  // message plus errno text when it is not already part of the message.
  std::string describe() const;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }
  T value_or(T fallback) const& { return ok() ? value() : std::move(fallback); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), failed_(true) {}  // NOLINT
  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  void value() const {}
  const Error& error() const& { return error_; }
  Error&& error() && { return std::move(error_); }

 private:
  Error error_;
  bool failed_ = false;
};

using Status = Result<void>;

}  // namespace pcipass

// TRY(expr): evaluates a Result; on error returns the error from the enclosing function,
// otherwise yields the value (GNU statement expression, as SerenityOS's TRY).
#define TRY(expr)                                                 \
  ({                                                              \
    auto _try_result = (expr);                                    \
    if (!_try_result.ok()) return std::move(_try_result).error(); \
    std::move(_try_result).value();                               \
  })
