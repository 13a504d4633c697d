// The interposer's state: its configuration, the table of the program's uepoll descriptors, and
// the registry of uepoll's own kernel descriptors. See docs/interposer.md.
//
// The table is a uepoll::Process whose descriptor numbers are the kernel's: every uepoll object
// the program gets is backed by a kernel descriptor of the same kind (a reservation: an epoll, an
// eventfd, a pipe, a socketpair), so the kernel picks the number, and numbering, EMFILE,
// /proc/self/fd, fstat and FD_CLOEXEC behave as on Linux. A number whose slot is empty is a
// kernel descriptor: the call goes to libc untouched.
#pragma once

#include <cerrno>

#include "uepoll/process.hpp"

namespace uepoll::preload {

struct Config {
  bool objects = true;   // UEPOLL_PRELOAD_OBJECTS != 0: eventfd, pipe, AF_UNIX socketpair
  bool loopback = false;  // UEPOLL_PRELOAD_INET=loopback: in-process AF_INET/AF_INET6 streams
};

/// Loads the configuration and resolves libc; idempotent, cheap after the first call.
void init() noexcept;
const Config& config() noexcept;

/// The program's uepoll descriptors, numbered as the kernel numbers them.
Process& table() noexcept;

/// True when `fd` is a uepoll descriptor (lock-free, async-signal-safe: one load per level).
inline bool ours(int fd) noexcept { return fd >= 0 && table().fds().occupied(fd); }

/// True when `fd` is one of uepoll's own kernel descriptors, which the program must not see.
bool internal(int fd) noexcept;

/// Hands every uepoll object but epoll instances over to the kernel object behind it (before
/// fork, vfork, posix_spawn, exec): handover.cpp.
void hand_over_all() noexcept;

/// A uepoll descriptor's object, or null.
inline Ref<File> object(int fd) noexcept { return fd >= 0 ? table().get(fd) : nullptr; }

/// For the C functions: a Result as a return value with errno.
template <class T>
T errno_of(Result<T> r) noexcept {
  if (!r) {
    errno = r.error();
    return static_cast<T>(-1);
  }
  return r.value();
}
inline int errno_of(Result<void> r) noexcept {
  if (!r) {
    errno = r.error();
    return -1;
  }
  return 0;
}
inline ssize_t errno_of_size(Result<size_t> r) noexcept {
  if (!r) {
    errno = r.error();
    return -1;
  }
  return static_cast<ssize_t>(r.value());
}

}  // namespace uepoll::preload
