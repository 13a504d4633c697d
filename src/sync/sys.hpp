// The system calls uepoll itself makes, through one table of function pointers: libc's functions,
// except inside the interposer (libuepoll-preload.so), whose own definitions of these very names
// would otherwise catch uepoll's internal calls; it points the table at the next definitions,
// libc's, before anything else runs.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

namespace uepoll::sys {

/// socket()'s `type`: the type in the low bits (Linux's SOCK_TYPE_MASK), flags above them.
constexpr int kSocketTypeMask = 0xf;
/// The flags socket(), socketpair() and accept4() accept.
constexpr int kSocketFlags = SOCK_NONBLOCK | SOCK_CLOEXEC;

struct Calls {
  int (*close)(int fd);
  ssize_t (*read)(int fd, void* buf, size_t count);
  ssize_t (*write)(int fd, const void* buf, size_t count);
  int (*eventfd)(unsigned int initval, int flags);
  int (*ppoll)(pollfd* fds, nfds_t nfds, const timespec* timeout, const sigset_t* sigmask);
  int (*epoll_create1)(int flags);
  int (*epoll_ctl)(int epfd, int op, int fd, epoll_event* event);
  int (*epoll_wait)(int epfd, epoll_event* events, int maxevents, int timeout);
  int (*epoll_pwait2)(int epfd, epoll_event* events, int maxevents, const timespec* timeout,
                      const sigset_t* sigmask);
  int (*fcntl)(int fd, int cmd, ...);
  long (*syscall)(long number, ...);

  // uepoll's own kernel descriptors (doorbells, bells, kernel epolls): null outside the
  // interposer, which moves each one out of the program's way as it is made and guards it
  // against the program's close, dup2 and close_range until uepoll closes it.
  int (*adopt_own_fd)(int fd);
  void (*forget_own_fd)(int fd);
  // For an epoll instance that gets a kernel side: a new own descriptor of the kernel epoll that
  // already stands for it (the interposer's reservation), or -1 to make a new one.
  int (*kernel_twin_of)(const void* instance);
};

/// Written only while the process is single-threaded (static initialisation, the interposer's
/// constructor); read everywhere without synchronisation.
extern Calls calls;

/// A descriptor uepoll has just made for itself (negative: passed through).
inline int own_kernel_fd(int fd) noexcept {
  return fd >= 0 && calls.adopt_own_fd != nullptr ? calls.adopt_own_fd(fd) : fd;
}

/// Reads up to `n` integers, separated by white space, from a file such as one under /proc/sys
/// (for a setting read once, at first use); returns how many it read, 0 if it cannot be opened.
int read_numbers(const char* path, long* values, int n) noexcept;

/// Closes one of uepoll's own descriptors.
inline void close_own_kernel_fd(int fd) noexcept {
  if (calls.forget_own_fd != nullptr) {
    calls.forget_own_fd(fd);
  }
  calls.close(fd);
}

}  // namespace uepoll::sys
