// Pieces shared by the HTTP server and the load generator: the run's phases, the clock, and the
// few operations that differ between backends (sharing a listener between descriptor tables).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "backend.hpp"

namespace uepoll_bench::http {

/// The phases of a run, set by the main thread and polled by every worker once per loop turn.
enum Phase : int {
  kWarmup = 0,   // running, nothing recorded
  kMeasure = 1,  // running, requests / latencies / errors recorded
  kDrain = 2,    // running, nothing recorded (the main thread reads the counters)
  kStop = 3,     // tear down and exit
};

struct RunControl {
  std::atomic<int> client_phase{kWarmup};
  std::atomic<int> server_phase{kWarmup};
};

inline std::uint64_t now_ns() noexcept {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<std::uint64_t>(t.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(t.tv_nsec);
}

inline std::string errno_text(int e) { return std::string(std::strerror(e)); }

inline sockaddr_in loopback_address(std::uint16_t port) noexcept {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

/// Installs the open file description behind `fd` of `from` as a new descriptor of `to`: what
/// fork() gives each nginx worker for the listener. For the kernel (threads share one table) a
/// dup() gives each worker a descriptor of its own for the same description.
inline int share_descriptor(KernelBackend& /*from*/, int fd, KernelBackend& /*to*/) {
  return ::dup(fd);
}
/// The C API: one table for every thread, as for the kernel.
inline int share_descriptor(CapiBackend& /*from*/, int fd, CapiBackend& to) { return to.dup(fd); }
inline int share_descriptor(UepollBackend& from, int fd, UepollBackend& to) {
  uepoll::Ref<uepoll::File> file = from.process().get(fd);
  if (!file) {
    errno = EBADF;
    return -1;
  }
  uepoll::Result<int> r = to.process().install(std::move(file));
  if (!r) {
    errno = r.error();
    return -1;
  }
  return r.value();
}

/// A non-blocking listening socket on 127.0.0.1:`port` (0: any free port). With `reuseport`
/// SO_REUSEPORT is set before bind(), so several listeners may share the port. Returns the
/// descriptor or -1 with `err` set.
template <class B>
int open_listener(B& b, std::uint16_t port, bool reuseport, int backlog, std::string* err) {
  const int fd = b.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    *err = "socket(AF_INET, SOCK_STREAM): " + errno_text(errno);
    return -1;
  }
  auto fail = [&](const char* what) {
    *err = std::string(what) + ": " + errno_text(errno);
    b.close(fd);
    return -1;
  };
  const int one = 1;
  // SO_REUSEADDR only matters for restarting on a fixed port; a backend without it still works.
  (void)b.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuseport && b.setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
    return fail("setsockopt(SO_REUSEPORT)");
  }
  const sockaddr_in a = loopback_address(port);
  if (b.bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) < 0) {
    return fail("bind(127.0.0.1)");
  }
  if (b.listen(fd, backlog) < 0) {
    return fail("listen");
  }
  return fd;
}

/// The port `fd` is bound to, or -1.
template <class B>
int bound_port(B& b, int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  if (b.getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) < 0 || a.sin_family != AF_INET) {
    return -1;
  }
  return ntohs(a.sin_port);
}

}  // namespace uepoll_bench::http
