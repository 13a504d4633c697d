// The system-call backends the benchmarks run the same code on: the host kernel, one
// uepoll::Process (a descriptor table of its own, like a process of its own), and uepoll's C API
// (uepoll.h: the one process-wide table a C program has). All expose the syscall signatures (-1
// and errno on failure), so benchmark code is written once as a template over the backend.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "uepoll/lock_mode.hpp"
#include "uepoll/process.hpp"
#include "uepoll/uepoll.h"

namespace uepoll_bench {

/// The host kernel: real descriptors, real epoll, real loopback TCP.
struct KernelBackend {
  static constexpr const char* kName = "kernel";
  int epoll_create1(int flags) { return ::epoll_create1(flags); }
  int epoll_ctl(int ep, int op, int fd, epoll_event* ev) { return ::epoll_ctl(ep, op, fd, ev); }
  /// A kernel descriptor in an instance: on the kernel, plain epoll_ctl.
  int epoll_ctl_kernel(int ep, int op, int kfd, epoll_event* ev) {
    return ::epoll_ctl(ep, op, kfd, ev);
  }
  int epoll_wait(int ep, epoll_event* evs, int n, int timeout) {
    return ::epoll_wait(ep, evs, n, timeout);
  }
  int eventfd(unsigned v, int flags) { return ::eventfd(v, flags); }
  int pipe2(int fds[2], int flags) { return ::pipe2(fds, flags); }
  int socketpair(int d, int t, int p, int sv[2]) { return ::socketpair(d, t, p, sv); }
  int socket(int d, int t, int p) { return ::socket(d, t, p); }
  int bind(int fd, const sockaddr* a, socklen_t l) { return ::bind(fd, a, l); }
  int listen(int fd, int backlog) { return ::listen(fd, backlog); }
  int accept4(int fd, sockaddr* a, socklen_t* l, int flags) { return ::accept4(fd, a, l, flags); }
  int connect(int fd, const sockaddr* a, socklen_t l) { return ::connect(fd, a, l); }
  int setsockopt(int fd, int lv, int n, const void* v, socklen_t l) {
    return ::setsockopt(fd, lv, n, v, l);
  }
  int getsockopt(int fd, int lv, int n, void* v, socklen_t* l) {
    return ::getsockopt(fd, lv, n, v, l);
  }
  int getsockname(int fd, sockaddr* a, socklen_t* l) { return ::getsockname(fd, a, l); }
  int shutdown(int fd, int how) { return ::shutdown(fd, how); }
  ssize_t read(int fd, void* b, size_t n) { return ::read(fd, b, n); }
  ssize_t write(int fd, const void* b, size_t n) { return ::write(fd, b, n); }
  ssize_t recv(int fd, void* b, size_t n, int f) { return ::recv(fd, b, n, f); }
  ssize_t send(int fd, const void* b, size_t n, int f) { return ::send(fd, b, n, f); }
  int close(int fd) { return ::close(fd); }
  int dup(int fd) { return ::dup(fd); }
};

/// One uepoll::Process: its own descriptor table; lock mode chosen at construction.
class UepollBackend {
 public:
  static constexpr const char* kName = "uepoll";
  explicit UepollBackend(uepoll::LockMode mode) : process_(mode) {}
  uepoll::Process& process() { return process_; }

  int epoll_create1(int flags) { return v(process_.epoll_create1(flags)); }
  int epoll_ctl(int ep, int op, int fd, epoll_event* ev) {
    return z(process_.epoll_ctl(ep, op, fd, ev));
  }
  int epoll_ctl_kernel(int ep, int op, int kfd, epoll_event* ev) {
    return z(process_.epoll_ctl_kernel(ep, op, kfd, ev));
  }
  int epoll_wait(int ep, epoll_event* evs, int n, int timeout) {
    return v(process_.epoll_wait(ep, evs, n, timeout));
  }
  int eventfd(unsigned val, int flags) { return v(process_.eventfd(val, flags)); }
  int pipe2(int fds[2], int flags) { return z(process_.pipe2(fds, flags)); }
  int socketpair(int d, int t, int p, int sv[2]) { return z(process_.socketpair(d, t, p, sv)); }
  int socket(int d, int t, int p) { return v(process_.socket(d, t, p)); }
  int bind(int fd, const sockaddr* a, socklen_t l) { return z(process_.bind(fd, a, l)); }
  int listen(int fd, int backlog) { return z(process_.listen(fd, backlog)); }
  int accept4(int fd, sockaddr* a, socklen_t* l, int flags) {
    return v(process_.accept4(fd, a, l, flags));
  }
  int connect(int fd, const sockaddr* a, socklen_t l) { return z(process_.connect(fd, a, l)); }
  int setsockopt(int fd, int lv, int n, const void* val, socklen_t l) {
    return z(process_.setsockopt(fd, lv, n, val, l));
  }
  int getsockopt(int fd, int lv, int n, void* val, socklen_t* l) {
    return z(process_.getsockopt(fd, lv, n, val, l));
  }
  int getsockname(int fd, sockaddr* a, socklen_t* l) { return z(process_.getsockname(fd, a, l)); }
  int shutdown(int fd, int how) { return z(process_.shutdown(fd, how)); }
  ssize_t read(int fd, void* b, size_t n) { return s(process_.read(fd, b, n)); }
  ssize_t write(int fd, const void* b, size_t n) { return s(process_.write(fd, b, n)); }
  ssize_t recv(int fd, void* b, size_t n, int f) { return s(process_.recv(fd, b, n, f)); }
  ssize_t send(int fd, const void* b, size_t n, int f) { return s(process_.send(fd, b, n, f)); }
  int close(int fd) { return z(process_.close(fd)); }
  int dup(int fd) { return v(process_.dup(fd)); }

 private:
  static int v(uepoll::Result<int> r) {
    if (!r) {
      errno = r.error();
      return -1;
    }
    return r.value();
  }
  static int z(uepoll::Result<void> r) {
    if (!r) {
      errno = r.error();
      return -1;
    }
    return 0;
  }
  static ssize_t s(uepoll::Result<size_t> r) {
    if (!r) {
      errno = r.error();
      return -1;
    }
    return static_cast<ssize_t>(r.value());
  }

  uepoll::Process process_;
};

/// The C API, as a C program calls it: every thread shares the one process-wide descriptor table
/// (Process::global()), in the lock mode UEPOLL_LOCK_MODE names (read once, at first use).
/// Stateless: every CapiBackend is a view of that table.
struct CapiBackend {
  static constexpr const char* kName = "capi";
  int epoll_create1(int flags) { return ::uepoll_epoll_create1(flags); }
  int epoll_ctl(int ep, int op, int fd, epoll_event* ev) {
    return ::uepoll_epoll_ctl(ep, op, fd, ev);
  }
  int epoll_ctl_kernel(int ep, int op, int kfd, epoll_event* ev) {
    return ::uepoll_epoll_ctl_kernel(ep, op, kfd, ev);
  }
  int epoll_wait(int ep, epoll_event* evs, int n, int timeout) {
    return ::uepoll_epoll_wait(ep, evs, n, timeout);
  }
  int eventfd(unsigned v, int flags) { return ::uepoll_eventfd(v, flags); }
  int pipe2(int fds[2], int flags) { return ::uepoll_pipe2(fds, flags); }
  int socketpair(int d, int t, int p, int sv[2]) { return ::uepoll_socketpair(d, t, p, sv); }
  int socket(int d, int t, int p) { return ::uepoll_socket(d, t, p); }
  int bind(int fd, const sockaddr* a, socklen_t l) { return ::uepoll_bind(fd, a, l); }
  int listen(int fd, int backlog) { return ::uepoll_listen(fd, backlog); }
  int accept4(int fd, sockaddr* a, socklen_t* l, int flags) {
    return ::uepoll_accept4(fd, a, l, flags);
  }
  int connect(int fd, const sockaddr* a, socklen_t l) { return ::uepoll_connect(fd, a, l); }
  int setsockopt(int fd, int lv, int n, const void* v, socklen_t l) {
    return ::uepoll_setsockopt(fd, lv, n, v, l);
  }
  int getsockopt(int fd, int lv, int n, void* v, socklen_t* l) {
    return ::uepoll_getsockopt(fd, lv, n, v, l);
  }
  int getsockname(int fd, sockaddr* a, socklen_t* l) { return ::uepoll_getsockname(fd, a, l); }
  int shutdown(int fd, int how) { return ::uepoll_shutdown(fd, how); }
  ssize_t read(int fd, void* b, size_t n) { return ::uepoll_read(fd, b, n); }
  ssize_t write(int fd, const void* b, size_t n) { return ::uepoll_write(fd, b, n); }
  ssize_t recv(int fd, void* b, size_t n, int f) { return ::uepoll_recv(fd, b, n, f); }
  ssize_t send(int fd, const void* b, size_t n, int f) { return ::uepoll_send(fd, b, n, f); }
  int close(int fd) { return ::uepoll_close(fd); }
  int dup(int fd) { return ::uepoll_dup(fd); }

  /// The lock mode of the C API's table (what Process::global() was built with).
  static const char* lock_mode() {
    return uepoll::lock_mode_from_environment() == uepoll::LockMode::kLegacy ? "legacy" : "fine";
  }
  /// Descriptors open in the process-wide table (the benchmark never opens more than 1 << 16).
  static long open_descriptors() {
    long n = 0;
    for (int fd = 0; fd < (1 << 16); ++fd) {
      n += ::uepoll_fcntl(fd, F_GETFD) >= 0 ? 1 : 0;
    }
    return n;
  }
};

}  // namespace uepoll_bench
