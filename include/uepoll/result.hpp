// Result<T>: a value or a Linux errno. The C++ API never throws and never touches errno; the C
// API turns an error into -1 and errno. The member names follow std::expected so that a move to
// C++23 is an alias.
#pragma once

#include <cerrno>
#include <utility>

namespace uepoll {

/// A Linux errno value (EBADF, EINVAL, ...), as a distinct type so it cannot be mistaken for
/// a successful int result.
struct Error {
  int code;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)), error_(0) {}  // NOLINT: implicit on purpose
  Result(Error e) : value_(), error_(e.code) {}             // NOLINT: implicit on purpose

  bool has_value() const noexcept { return error_ == 0; }
  explicit operator bool() const noexcept { return has_value(); }
  T& value() & noexcept { return value_; }
  T&& value() && noexcept { return std::move(value_); }
  const T& value() const& noexcept { return value_; }
  T& operator*() noexcept { return value_; }
  T* operator->() noexcept { return &value_; }
  int error() const noexcept { return error_; }

 private:
  T value_;
  int error_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error e) : error_(e.code) {}  // NOLINT: implicit on purpose
  bool has_value() const noexcept { return error_ == 0; }
  explicit operator bool() const noexcept { return has_value(); }
  int error() const noexcept { return error_; }

 private:
  int error_ = 0;
};

}  // namespace uepoll
