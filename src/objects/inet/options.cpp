// Socket options: SOL_SOCKET, IPPROTO_TCP, IPPROTO_IP and IPPROTO_IPV6.
#include <netinet/tcp.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "objects/inet/socket.hpp"

namespace uepoll::inet {

Result<void> InetSocket::get_socket_option(int name, void* val, socklen_t* len) noexcept {
  switch (name) {
    case SO_ERROR: {
      int err;
      int s;
      if (InetConn* c = conn(&s); c != nullptr) {
        SpinGuard guard(c->lock);
        err = std::exchange(c->side[s].err, 0);
      } else {
        SpinGuard guard(lock_);
        err = std::exchange(err_, 0);
      }
      return put_int_option(val, len, err);
    }
    case SO_SNDBUF: {
      int s;
      const bool user_set = opts_.sndbuf.load(std::memory_order_relaxed) != tcp_sndbuf_default();
      if (conn(&s) != nullptr && !user_set) {
        return put_int_option(val, len, kConnectedSndbuf);  // loopback autotuning
      }
      return put_int_option(val, len, opts_.sndbuf.load(std::memory_order_relaxed));
    }
    default: {
      bool listening;
      {
        SpinGuard guard(lock_);
        listening = mode_ == Mode::kListen;
      }
      return get_common_option(opts_, SockIdentity{family_, IPPROTO_TCP, listening}, name, val,
                               len);
    }
  }
}

namespace {

int load(const std::atomic<int>& a) noexcept { return a.load(std::memory_order_relaxed); }

Result<void> store(std::atomic<int>& a, int v) noexcept {
  a.store(v, std::memory_order_relaxed);
  return {};
}

}  // namespace

Result<void> InetSocket::get_tcp_option(int name, void* val, socklen_t* len) noexcept {
  if (len == nullptr) {
    return Error{EFAULT};
  }
  if (static_cast<int>(*len) < 0) {
    return Error{EINVAL};
  }
  int v;
  switch (name) {
    case TCP_NODELAY: v = load(tcp_.nodelay); break;
    case TCP_CORK: v = load(tcp_.cork); break;
    case TCP_KEEPIDLE: v = load(tcp_.keepidle); break;
    case TCP_KEEPINTVL: v = load(tcp_.keepintvl); break;
    case TCP_KEEPCNT: v = load(tcp_.keepcnt); break;
    case TCP_SYNCNT: v = load(tcp_.syncnt); break;
    case TCP_DEFER_ACCEPT: v = load(tcp_.defer_accept); break;
    case TCP_QUICKACK: v = load(tcp_.quickack); break;
    case TCP_USER_TIMEOUT: v = load(tcp_.user_timeout); break;
    case TCP_NOTSENT_LOWAT: v = load(tcp_.notsent_lowat); break;
    case TCP_FASTOPEN: v = load(tcp_.fastopen); break;
    case TCP_LINGER2: v = load(tcp_.linger2); break;
    case TCP_WINDOW_CLAMP: v = load(tcp_.window_clamp); break;
    case TCP_MAXSEG: {
      int s;
      v = load(tcp_.maxseg);
      if (v == 0) {
        if (conn(&s) == nullptr) {
          v = kUnconnectedMss;
        } else {
          v = s == 0 && !sent_data_.load(std::memory_order_relaxed) ? kFirstLoopbackMss
                                                                    : kLoopbackMss;
        }
      }
      break;
    }
    default: return Error{ENOPROTOOPT};
  }
  return put_int_option(val, len, v);
}

// IPPROTO_IP, and IPPROTO_IPV6 on an AF_INET6 socket.
Result<void> InetSocket::get_ip_option(int level, int name, void* val, socklen_t* len) noexcept {
  if (level == IPPROTO_IP) {
    switch (name) {
      case IP_TOS: return put_int_option(val, len, load(tcp_.tos));
      case IP_TTL: {
        int ttl = load(tcp_.ttl);
        return put_int_option(val, len, ttl < 0 ? 64 : ttl);
      }
      default: return Error{ENOPROTOOPT};
    }
  }
  switch (name) {
    case IPV6_V6ONLY: return put_int_option(val, len, load(tcp_.v6only));
    case IPV6_UNICAST_HOPS: {
      int hops = load(tcp_.unicast_hops);
      return put_int_option(val, len, hops < 0 ? 64 : hops);
    }
    case IPV6_TCLASS: return put_int_option(val, len, load(tcp_.tclass));
    default: return Error{ENOPROTOOPT};
  }
}

Result<void> InetSocket::getsockopt(int level, int name, void* val, socklen_t* len) noexcept {
  switch (level) {
    case SOL_SOCKET: return get_socket_option(name, val, len);
    case IPPROTO_TCP: return get_tcp_option(name, val, len);
    case IPPROTO_IP: return get_ip_option(level, name, val, len);
    default:
      if (family_ == AF_INET6) {
        return level == IPPROTO_IPV6 ? get_ip_option(level, name, val, len)
                                     : Result<void>(Error{ENOPROTOOPT});
      }
      return Error{EOPNOTSUPP};
  }
}

Result<void> InetSocket::set_tcp_option(int name, int v) noexcept {
  switch (name) {
    case TCP_NODELAY: return store(tcp_.nodelay, v != 0);
    case TCP_CORK: return store(tcp_.cork, v != 0);
    case TCP_QUICKACK: return store(tcp_.quickack, v != 0);
    case TCP_KEEPIDLE:
    case TCP_KEEPINTVL:
      if (v < 1 || v > 32767) {
        return Error{EINVAL};
      }
      return store(name == TCP_KEEPIDLE ? tcp_.keepidle : tcp_.keepintvl, v);
    case TCP_KEEPCNT:
    case TCP_SYNCNT:
      if (v < 1 || v > 127) {
        return Error{EINVAL};
      }
      return store(name == TCP_KEEPCNT ? tcp_.keepcnt : tcp_.syncnt, v);
    case TCP_DEFER_ACCEPT: return store(tcp_.defer_accept, std::max(v, 0));
    case TCP_USER_TIMEOUT:
    case TCP_FASTOPEN:
      if (v < 0) {
        return Error{EINVAL};
      }
      return store(name == TCP_USER_TIMEOUT ? tcp_.user_timeout : tcp_.fastopen, v);
    case TCP_NOTSENT_LOWAT: return store(tcp_.notsent_lowat, v);
    case TCP_LINGER2: return store(tcp_.linger2, v);
    case TCP_WINDOW_CLAMP: return store(tcp_.window_clamp, std::max(v, 0));
    case TCP_MAXSEG:
      if (v != 0 && (v < 88 || v > 32767)) {
        return Error{EINVAL};
      }
      return store(tcp_.maxseg, v);
    default: return Error{ENOPROTOOPT};
  }
}

Result<void> InetSocket::set_ip_option(int level, int name, int v) noexcept {
  if (level == IPPROTO_IP) {
    switch (name) {
      case IP_TOS: return store(tcp_.tos, v & 0xff);
      case IP_TTL:
        if (v != -1 && (v < 1 || v > 255)) {
          return Error{EINVAL};
        }
        return store(tcp_.ttl, v);
      default: return Error{ENOPROTOOPT};
    }
  }
  switch (name) {
    case IPV6_V6ONLY: {
      MutexLock op(op_mu_);
      if (bind_.in_table) {
        return Error{EINVAL};
      }
      return store(tcp_.v6only, v != 0);
    }
    case IPV6_UNICAST_HOPS:
    case IPV6_TCLASS:
      if (v < -1 || v > 255) {
        return Error{EINVAL};
      }
      return name == IPV6_TCLASS ? store(tcp_.tclass, std::max(v, 0)) : store(tcp_.unicast_hops, v);
    default: return Error{ENOPROTOOPT};
  }
}

Result<void> InetSocket::setsockopt(int level, int name, const void* val, socklen_t len) noexcept {
  if (level == SOL_SOCKET) {
    Result<void> r = set_common_option(opts_, name, val, len);
    if (r && (name == SO_SNDBUF || name == SO_RCVBUF || name == SO_SNDBUFFORCE ||
              name == SO_RCVBUFFORCE)) {
      retune();
    }
    return r;
  }
  if (level != IPPROTO_TCP && level != IPPROTO_IP &&
      !(level == IPPROTO_IPV6 && family_ == AF_INET6)) {
    return Error{ENOPROTOOPT};
  }
  Result<int> v = get_int_option(val, len);
  if (!v) {
    return Error{v.error()};
  }
  return level == IPPROTO_TCP ? set_tcp_option(name, *v) : set_ip_option(level, name, *v);
}

}  // namespace uepoll::inet
