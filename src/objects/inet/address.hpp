// Addresses of the in-process AF_INET/AF_INET6 sockets: IPv4 is kept as an IPv4-mapped IPv6
// address, so one type and one comparison serve both families.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "uepoll/result.hpp"

namespace uepoll::inet {

struct IpAddr {
  std::uint8_t b[16];
  bool operator==(const IpAddr& o) const noexcept { return std::memcmp(b, o.b, 16) == 0; }
};

inline IpAddr mapped(std::uint32_t v4_be) noexcept {
  IpAddr a{};
  a.b[10] = 0xff;
  a.b[11] = 0xff;
  std::memcpy(a.b + 12, &v4_be, 4);
  return a;
}
inline IpAddr from_in6(const in6_addr& a6) noexcept {
  IpAddr a;
  std::memcpy(a.b, &a6, 16);
  return a;
}
inline bool is_mapped(const IpAddr& a) noexcept {
  static const std::uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a.b, prefix, 12) == 0;
}
inline std::uint32_t v4_of(const IpAddr& a) noexcept {  // network order
  std::uint32_t v;
  std::memcpy(&v, a.b + 12, 4);
  return v;
}
inline bool is_any6(const IpAddr& a) noexcept {
  static const IpAddr zero{};
  return a == zero;
}
inline bool is_any4(const IpAddr& a) noexcept { return is_mapped(a) && v4_of(a) == 0; }
inline bool is_loopback4(std::uint32_t v4_be) noexcept { return (ntohl(v4_be) >> 24) == 127; }
inline bool is_loopback6(const IpAddr& a) noexcept {
  static const IpAddr one = [] {
    IpAddr x{};
    x.b[15] = 1;
    return x;
  }();
  return a == one;
}
inline constexpr IpAddr kLoopback4{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1}};
inline constexpr IpAddr kLoopback6{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}};

struct Endpoint {
  IpAddr addr{};
  std::uint16_t port = 0;  // host order
};

/// The sockaddr a socket of `family` reports for `e` (AF_INET sockets hold mapped addresses).
/// The address and port of a sockaddr given to an AF_INET6 socket (IPv4 stays mapped): EINVAL
/// when shorter than RFC 2133's sockaddr_in6 (24 bytes, no sin6_scope_id), EAFNOSUPPORT for
/// another family.
inline Result<Endpoint> read_sockaddr_in6(const sockaddr* addr, socklen_t len) noexcept {
  if (len < 24) {
    return Error{EINVAL};
  }
  sockaddr_in6 in6{};
  std::memcpy(&in6, addr, std::min<std::size_t>(len, sizeof in6));
  if (in6.sin6_family != AF_INET6) {
    return Error{EAFNOSUPPORT};
  }
  return Endpoint{from_in6(in6.sin6_addr), ntohs(in6.sin6_port)};
}

inline socklen_t to_sockaddr(int family, const Endpoint& e, sockaddr_storage* out) noexcept {
  std::memset(out, 0, sizeof *out);
  if (family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(out);
    in->sin_family = AF_INET;
    in->sin_port = htons(e.port);
    in->sin_addr.s_addr = v4_of(e.addr);
    return sizeof(sockaddr_in);
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(out);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(e.port);
  std::memcpy(&in6->sin6_addr, e.addr.b, 16);
  return sizeof(sockaddr_in6);
}

inline std::uint32_t random32() noexcept {
  thread_local std::uint64_t state = [] {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    std::uint64_t seed = static_cast<std::uint64_t>(ts.tv_nsec) ^
                         (static_cast<std::uint64_t>(ts.tv_sec) << 32) ^
                         reinterpret_cast<std::uintptr_t>(&ts);
    return seed | 1;
  }();
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return static_cast<std::uint32_t>(state >> 16);
}

}  // namespace uepoll::inet
