// The interposer's state: its configuration, the table of the program's uepoll descriptors, and
// the registry of uepoll's own kernel descriptors. See docs/interposer.md.
///
// The table is a uepoll::Process whose descriptor numbers are the kernel's: every uepoll object
// the program gets is backed by a kernel descriptor of the same kind (a reservation: an epoll, an
// eventfd, a pipe, a socketpair), so the kernel picks the number, and numbering, EMFILE,
// /proc/self/fd, fstat and FD_CLOEXEC behave as on Linux. A number whose slot is empty is a
// kernel descriptor: the call goes to libc untouched.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstdint>

#include "core/fd_table.hpp"
#include "preload/libc.hpp"
#include "uepoll/process.hpp"

namespace uepoll::preload {

struct Config {
  bool objects;   // UEPOLL_PRELOAD_OBJECTS != 0: eventfd, pipe, AF_UNIX socketpair
  bool loopback;  // UEPOLL_PRELOAD_INET=loopback: in-process AF_INET/AF_INET6 streams
};

/// What a descriptor number is, as far as the interposer is concerned.
/// The two kinds with the low bit set are the table's (ours()).
enum class Kind : std::uint8_t {
  kKernel = 0,    // the program's kernel descriptor, or nothing: libc answers
  kUepoll = 1,    // the program's uepoll descriptor: the table answers
  kOwn = 2,       // one of uepoll's own kernel descriptors, hidden from the program
  kListener = 3,  // a kernel listener with an in-process twin in the table (loopback.cpp)
};

/// Descriptor numbers the interposer tracks (FdTable::kMaxLimit).
inline constexpr int kMaxFds = 1 << 20;

/// Everything a call on a kernel descriptor reads before it reaches libc, in one page: the
/// first 4K numbers' kinds sit beside libc's entry points. After a system call (which, on a
/// kernel with page-table isolation and no PCID, empties the TLB) each page touched again is a
/// page walk; this keeps a passed-through call at one data page.
///
/// Trivial, so that it is all zeros before any code runs (an interposed call can come before
/// this library's constructors); `ready` and `kind` are accessed through std::atomic_ref.
struct alignas(4096) Hot {
  bool ready;  // libc and config are set
  Libc libc;
  Config config;
  Kind kind[kMaxFds];  // written after the table changes, read without locks
};
[[gnu::visibility("hidden")]] extern Hot g_hot;

/// Loads the configuration and resolves libc; idempotent, cheap after the first call.
void init() noexcept;

/// The next definitions of the functions the interposer stands in for (libc's).
inline const Libc& libc() noexcept {
  if (!std::atomic_ref<bool>(g_hot.ready).load(std::memory_order_acquire)) [[unlikely]] {
    init();
  }
  return g_hot.libc;
}

inline const Config& config() noexcept {
  (void)libc();
  return g_hot.config;
}

/// The program's uepoll descriptors, numbered as the kernel numbers them.
Process& table() noexcept;

/// A number's kind: one byte load, lock-free and async-signal-safe.
inline Kind kind_of(int fd) noexcept {
  return fd >= 0 && fd < kMaxFds
             ? std::atomic_ref<Kind>(g_hot.kind[fd]).load(std::memory_order_acquire)
             : Kind::kKernel;
}

/// True when `fd` is in the table (a uepoll descriptor, or a listener's in-process twin).
inline bool ours(int fd) noexcept { return (static_cast<unsigned>(kind_of(fd)) & 1) != 0; }

/// True when `fd` is one of uepoll's own kernel descriptors, which the program must not see.
inline bool internal(int fd) noexcept { return kind_of(fd) == Kind::kOwn; }

/// Puts `file` in the table at `fd` (a number the kernel gave its reservation), then marks the
/// number `kind` (kUepoll, or kListener for one more number of a listener's twin). Fails only
/// without memory for the table.
Result<void> install(int fd, Ref<File> file, bool cloexec, Kind kind = Kind::kUepoll) noexcept;

/// Takes `fd` out of the table (a reader between the two steps gets EBADF, as after a close),
/// then marks the number the kernel's. Returns what was there.
Ref<File> uninstall(int fd) noexcept;

/// A new descriptor of uepoll's own for the kernel object behind `fd` (F_DUPFD_CLOEXEC into the
/// top quarter of the limit, marked kOwn), or -1.
int own_dup(int fd) noexcept;

// --- UEPOLL_PRELOAD_INET=loopback (loopback.cpp) ---
/// After the kernel's listen() succeeded on `fd`: a twin in-process listener on the same address,
/// when it is a loopback or wildcard one. Nothing changes when that is not possible.
void add_in_process_twin(int fd, int backlog) noexcept;
/// connect() to an address where an in-process listener waits: `fd` becomes an in-process
/// socket. Returns false (and changes nothing) when `fd` cannot: the kernel connects it.
bool connect_in_process(int fd, const sockaddr* addr, socklen_t len, int* rc) noexcept;
/// accept4() on a descriptor in the table: the in-process twin's queue, then the kernel's.
int accept_either(int fd, sockaddr* addr, socklen_t* len, int flags) noexcept;
/// epoll_ctl() on a uepoll instance for a listener with a twin: both the twin and the kernel
/// listener are watched.
int listener_epoll_ctl(int epfd, int op, int fd, epoll_event* event) noexcept;
/// The kernel listener behind a twin, as one of uepoll's own descriptors (-1: none).
int listener_kernel_fd(const File* twin) noexcept;
/// One number fewer for a twin: the last one closes its own kernel descriptor.
void listener_number_gone(const File* twin) noexcept;
/// One number more for a twin (dup of a listener).
void listener_number_added(const File* twin) noexcept;
/// Runs `fork` (returning fork()'s result). The child's listeners lose their twins: a copy of
/// an in-process listener would take connections meant for the parent's, so the child's
/// numbers go back to the kernel listeners they share with the parent.
pid_t fork_keeping_listeners(pid_t (*fork)()) noexcept;

/// Hands every uepoll object but epoll instances over to the kernel object behind it (before
/// fork, vfork, posix_spawn, exec): handover.cpp.
void hand_over_all() noexcept;

/// A uepoll descriptor's object, or null.
inline Ref<File> object(int fd) noexcept { return fd >= 0 ? table().get(fd) : nullptr; }

/// For the C functions: -1 with errno set to `error`.
inline int fail(int error) noexcept {
  errno = error;
  return -1;
}

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
