#include "objects/socket_common.hpp"

#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "sync/sys.hpp"

namespace uepoll::sockcommon {

// ---------------------------------------------------------------------------------------------
// User-memory conventions

Result<void> put_option(void* val, socklen_t* len, const void* src, std::size_t size) noexcept {
  if (len == nullptr) {
    return Error{EFAULT};
  }
  int want = static_cast<int>(*len);
  if (want < 0) {
    return Error{EINVAL};
  }
  std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(want), size);
  if (n > 0) {
    if (val == nullptr) {
      return Error{EFAULT};
    }
    std::memcpy(val, src, n);
  }
  *len = static_cast<socklen_t>(n);
  return {};
}

Result<int> get_int_option(const void* val, socklen_t len) noexcept {
  if (len < sizeof(int)) {
    return Error{EINVAL};
  }
  if (val == nullptr) {
    return Error{EFAULT};
  }
  int v;
  std::memcpy(&v, val, sizeof v);
  return v;
}

Result<void> put_sockaddr(sockaddr* addr, socklen_t* len, const void* src,
                          socklen_t size) noexcept {
  if (len == nullptr) {
    return Error{EFAULT};
  }
  int want = static_cast<int>(*len);
  if (want < 0) {
    return Error{EINVAL};
  }
  socklen_t n = std::min<socklen_t>(static_cast<socklen_t>(want), size);
  if (n > 0) {
    if (addr == nullptr) {
      return Error{EFAULT};
    }
    std::memcpy(addr, src, n);
  }
  *len = size;
  return {};
}

Result<void> check_sockaddr_in(const sockaddr* addr, socklen_t len) noexcept {
  if (static_cast<int>(len) < 0 || len > sizeof(sockaddr_storage)) {
    return Error{EINVAL};
  }
  if (len > 0 && addr == nullptr) {
    return Error{EFAULT};
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Host defaults

namespace {

long read_sysctl(const char* path, long fallback) noexcept {
  long v = 0;
  return sys::read_numbers(path, &v, 1) == 1 ? v : fallback;
}

int clamp_int(long v) noexcept { return static_cast<int>(std::clamp<long>(v, 0, INT_MAX)); }

}  // namespace

int wmem_default() noexcept {
  static const int v = clamp_int(read_sysctl("/proc/sys/net/core/wmem_default", 212992));
  return v;
}
int wmem_max() noexcept {
  static const int v = clamp_int(read_sysctl("/proc/sys/net/core/wmem_max", 212992));
  return v;
}
int rmem_default() noexcept {
  static const int v = clamp_int(read_sysctl("/proc/sys/net/core/rmem_default", 212992));
  return v;
}
int rmem_max() noexcept {
  static const int v = clamp_int(read_sysctl("/proc/sys/net/core/rmem_max", 212992));
  return v;
}
int somaxconn() noexcept {
  static const int v = clamp_int(read_sysctl("/proc/sys/net/core/somaxconn", 4096));
  return v;
}

void local_port_range(int* low, int* high) noexcept {
  struct Range {
    int low = 32768;
    int high = 60999;
    Range() noexcept {
      long v[2] = {};
      if (sys::read_numbers("/proc/sys/net/ipv4/ip_local_port_range", v, 2) == 2 && v[0] > 0 &&
          v[1] >= v[0] && v[1] < 65536) {
        low = static_cast<int>(v[0]);
        high = static_cast<int>(v[1]);
      }
    }
  };
  static const Range range;
  *low = range.low;
  *high = range.high;
}

// ---------------------------------------------------------------------------------------------
// SOL_SOCKET options

void SockOptions::copy_from(const SockOptions& o) noexcept {
  auto copy = [](auto& to, const auto& from) {
    to.store(from.load(std::memory_order_relaxed), std::memory_order_relaxed);
  };
  copy(reuseaddr, o.reuseaddr);
  copy(reuseport, o.reuseport);
  copy(keepalive, o.keepalive);
  copy(broadcast, o.broadcast);
  copy(oobinline, o.oobinline);
  copy(priority, o.priority);
  copy(rcvlowat, o.rcvlowat);
  copy(passcred, o.passcred);
  copy(sndbuf, o.sndbuf);
  copy(rcvbuf, o.rcvbuf);
  copy(linger_onoff, o.linger_onoff);
  copy(linger_secs, o.linger_secs);
  copy(rcvtimeo, o.rcvtimeo);
  copy(sndtimeo, o.sndtimeo);
}

namespace {

// Linux's minimum buffer sizes (SOCK_MIN_SNDBUF / SOCK_MIN_RCVBUF on x86-64).
constexpr int kMinSndbuf = 4608;
constexpr int kMinRcvbuf = 2304;

int load(const std::atomic<int>& a) noexcept { return a.load(std::memory_order_relaxed); }

Result<void> put_timeout(void* val, socklen_t* len, TimeoutUs t) noexcept {
  timeval tv{};
  if (t > 0) {
    tv.tv_sec = static_cast<time_t>(t / 1'000'000);
    tv.tv_usec = static_cast<suseconds_t>(t % 1'000'000);
  }
  return put_option(val, len, &tv, sizeof tv);
}

// Beyond this, microseconds would overflow a TimeoutUs.
constexpr long long kMaxTimeoutSeconds = (LLONG_MAX - 999'999) / 1'000'000;

Result<void> set_timeout(std::atomic<TimeoutUs>& to, const void* val, socklen_t len) noexcept {
  timeval tv{};
  if (len < sizeof tv) {
    return Error{EINVAL};
  }
  if (val == nullptr) {
    return Error{EFAULT};
  }
  std::memcpy(&tv, val, sizeof tv);
  if (tv.tv_usec < 0 || tv.tv_usec >= 1'000'000) {
    return Error{EDOM};
  }
  TimeoutUs t;
  if (tv.tv_sec < 0) {
    t = -1;  // Linux: a zero timeout, i.e. never wait
  } else if (tv.tv_sec == 0 && tv.tv_usec == 0) {
    t = 0;  // no timeout
  } else if (tv.tv_sec >= kMaxTimeoutSeconds) {
    t = 0;  // longer than anyone waits: Linux stores "forever" too
  } else {
    t = static_cast<TimeoutUs>(tv.tv_sec) * 1'000'000 + tv.tv_usec;
  }
  to.store(t, std::memory_order_relaxed);
  return {};
}

// SO_*BUF: Linux stores twice the value (the bookkeeping overhead), at least the minimum, the
// request clamped by the sysctl maximum unless forced (SO_*BUFFORCE, root only).
enum class Clamp { kToMax, kForced };

Result<void> set_buffer(std::atomic<int>& to, int v, Clamp clamp, int max, int min) noexcept {
  long n;
  if (clamp == Clamp::kForced) {
    if (geteuid() != 0) {
      return Error{EPERM};
    }
    n = std::max(v, 0);
  } else {
    n = std::min<long>(static_cast<unsigned>(v), max);
  }
  to.store(static_cast<int>(std::clamp<long>(n * 2, min, INT_MAX)), std::memory_order_relaxed);
  return {};
}

}  // namespace

Result<void> get_common_option(const SockOptions& o, const SockIdentity& id, int name, void* val,
                               socklen_t* len) noexcept {
  switch (name) {
    case SO_TYPE: return put_int_option(val, len, SOCK_STREAM);
    case SO_DOMAIN: return put_int_option(val, len, id.domain);
    case SO_PROTOCOL: return put_int_option(val, len, id.protocol);
    case SO_ACCEPTCONN: return put_int_option(val, len, id.accepting ? 1 : 0);
    case SO_REUSEADDR: return put_int_option(val, len, load(o.reuseaddr));
    case SO_REUSEPORT: return put_int_option(val, len, load(o.reuseport));
    case SO_KEEPALIVE: return put_int_option(val, len, load(o.keepalive));
    case SO_BROADCAST: return put_int_option(val, len, load(o.broadcast));
    case SO_OOBINLINE: return put_int_option(val, len, load(o.oobinline));
    case SO_PRIORITY: return put_int_option(val, len, load(o.priority));
    case SO_RCVLOWAT: return put_int_option(val, len, load(o.rcvlowat));
    case SO_SNDLOWAT: return put_int_option(val, len, 1);
    case SO_PASSCRED: return put_int_option(val, len, load(o.passcred));
    case SO_SNDBUF: return put_int_option(val, len, load(o.sndbuf));
    case SO_RCVBUF: return put_int_option(val, len, load(o.rcvbuf));
    case SO_LINGER: {
      linger l{load(o.linger_onoff), load(o.linger_secs)};
      return put_option(val, len, &l, sizeof l);
    }
    case SO_RCVTIMEO: return put_timeout(val, len, o.rcvtimeo.load(std::memory_order_relaxed));
    case SO_SNDTIMEO: return put_timeout(val, len, o.sndtimeo.load(std::memory_order_relaxed));
    default: return Error{ENOPROTOOPT};
  }
}

Result<void> set_common_option(SockOptions& o, int name, const void* val, socklen_t len) noexcept {
  // Timeouts take a struct timeval, checked before the generic int argument.
  if (name == SO_RCVTIMEO) {
    return set_timeout(o.rcvtimeo, val, len);
  }
  if (name == SO_SNDTIMEO) {
    return set_timeout(o.sndtimeo, val, len);
  }
  Result<int> iv = get_int_option(val, len);
  if (!iv) {
    return Error{iv.error()};
  }
  const int v = iv.value();
  const int flag = v != 0 ? 1 : 0;
  auto store = [](std::atomic<int>& a, int x) { a.store(x, std::memory_order_relaxed); };
  switch (name) {
    case SO_REUSEADDR: store(o.reuseaddr, flag); return {};
    case SO_REUSEPORT: store(o.reuseport, flag); return {};
    case SO_KEEPALIVE: store(o.keepalive, flag); return {};
    case SO_BROADCAST: store(o.broadcast, flag); return {};
    case SO_OOBINLINE: store(o.oobinline, flag); return {};
    case SO_PASSCRED: store(o.passcred, flag); return {};
    case SO_PRIORITY:
      if ((v < 0 || v > 6) && geteuid() != 0) {
        return Error{EPERM};
      }
      store(o.priority, v);
      return {};
    case SO_RCVLOWAT: store(o.rcvlowat, v < 0 ? INT_MAX : std::max(v, 1)); return {};
    case SO_SNDBUF: return set_buffer(o.sndbuf, v, Clamp::kToMax, wmem_max(), kMinSndbuf);
    case SO_SNDBUFFORCE: return set_buffer(o.sndbuf, v, Clamp::kForced, 0, kMinSndbuf);
    case SO_RCVBUF: return set_buffer(o.rcvbuf, v, Clamp::kToMax, rmem_max(), kMinRcvbuf);
    case SO_RCVBUFFORCE: return set_buffer(o.rcvbuf, v, Clamp::kForced, 0, kMinRcvbuf);
    case SO_LINGER: {
      linger l{};
      if (len < sizeof l) {
        return Error{EINVAL};
      }
      std::memcpy(&l, val, sizeof l);
      store(o.linger_onoff, l.l_onoff != 0 ? 1 : 0);
      store(o.linger_secs, l.l_linger);
      return {};
    }
    default: return Error{ENOPROTOOPT};
  }
}

Timeout socket_timeout(TimeoutUs t) noexcept {
  if (t == 0) {
    return Timeout::none();
  }
  if (t < 0) {
    return Timeout::zero();
  }
  return Timeout::after(
      timespec{static_cast<time_t>(t / 1'000'000), static_cast<long>(t % 1'000'000) * 1000});
}

}  // namespace uepoll::sockcommon
