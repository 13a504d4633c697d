// Linux's socket layer as both socket families see it (unix_stream.cpp, inet/): the
// getsockopt/setsockopt/sockaddr copy conventions, the SOL_SOCKET options every socket has, and
// host sysctl defaults. The byte streams themselves are stream.hpp's.
//
// Thread safety: SockOptions is a set of atomics; the free functions are thread-safe.
#pragma once

#include <sys/socket.h>
#include <time.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "uepoll/blocking.hpp"
#include "uepoll/result.hpp"

namespace uepoll::sockcommon {

// --- user-memory conventions of the socket layer ---

/// getsockopt's copy-out: `*len` is read (EFAULT if `len` is null, EINVAL if negative),
/// min(*len, size) bytes are copied and `*len` becomes that count.
Result<void> put_option(void* val, socklen_t* len, const void* src, std::size_t size) noexcept;
inline Result<void> put_int_option(void* val, socklen_t* len, int v) noexcept {
  return put_option(val, len, &v, sizeof v);
}
/// setsockopt's int argument: EINVAL when shorter than an int, EFAULT for a null pointer.
Result<int> get_int_option(const void* val, socklen_t len) noexcept;
/// accept/getsockname's address copy-out: min(*len, size) bytes, then `*len = size`.
Result<void> put_sockaddr(sockaddr* addr, socklen_t* len, const void* src, socklen_t size) noexcept;
/// bind/connect's address copy-in checks: EINVAL for a length over sizeof(sockaddr_storage),
/// EFAULT for a null address with a non-zero length.
Result<void> check_sockaddr_in(const sockaddr* addr, socklen_t len) noexcept;

// --- host defaults, read once from /proc/sys (fallback: Linux's defaults) ---
int wmem_default() noexcept;  // net.core.wmem_default (212992)
int wmem_max() noexcept;      // net.core.wmem_max
int rmem_default() noexcept;  // net.core.rmem_default
int rmem_max() noexcept;      // net.core.rmem_max
int somaxconn() noexcept;     // net.core.somaxconn (4096)
/// net.ipv4.ip_local_port_range.
void local_port_range(int* low, int* high) noexcept;

// --- SOL_SOCKET options common to all sockets ---

/// Timeout used by blocking calls: 0 = none (block forever), -1 = zero timeout (a negative
/// SO_RCVTIMEO/SO_SNDTIMEO, which Linux turns into "do not wait"), else microseconds.
using TimeoutUs = long long;

struct SockOptions {
  std::atomic<int> reuseaddr{0};
  std::atomic<int> reuseport{0};
  std::atomic<int> keepalive{0};
  std::atomic<int> broadcast{0};
  std::atomic<int> oobinline{0};
  std::atomic<int> priority{0};
  std::atomic<int> rcvlowat{1};
  std::atomic<int> passcred{0};
  std::atomic<int> sndbuf{0};
  std::atomic<int> rcvbuf{0};
  std::atomic<int> linger_onoff{0};
  std::atomic<int> linger_secs{0};
  std::atomic<TimeoutUs> rcvtimeo{0};
  std::atomic<TimeoutUs> sndtimeo{0};

  void copy_from(const SockOptions& o) noexcept;
};

/// What a socket tells the common option code about itself.
struct SockIdentity {
  int domain;
  int protocol;
  bool accepting;  // SO_ACCEPTCONN
};

/// Handles the SOL_SOCKET options that do not depend on the socket's protocol state (SO_ERROR,
/// SO_SNDBUF's side effects and the like are the caller's). Unknown names: ENOPROTOOPT.
Result<void> get_common_option(const SockOptions& o, const SockIdentity& id, int name, void* val,
                               socklen_t* len) noexcept;
/// As above for setsockopt (SO_SNDBUF/SO_RCVBUF store Linux's doubled, clamped value).
Result<void> set_common_option(SockOptions& o, int name, const void* val, socklen_t len) noexcept;

/// A blocking call's SO_RCVTIMEO/SO_SNDTIMEO as a Timeout: 0 is none, negative never sleeps
/// (Linux's zero timeout, what a negative setting stores).
Timeout socket_timeout(TimeoutUs t) noexcept;

}  // namespace uepoll::sockcommon
