// Addresses and readiness masks for the AF_INET tests (tests/conformance/inet_loopback_test.cpp
// and the uepoll-only ones in tests/unit/inet_stream_test.cpp).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstdint>

namespace uepoll_test {

// Masks measured on Linux 6.18 loopback TCP.
constexpr unsigned kFresh = POLLOUT | POLLWRNORM | POLLHUP;                    // 0x114
constexpr unsigned kEstablished = POLLOUT | POLLWRNORM;                        // 0x104
constexpr unsigned kPeerFin = kEstablished | POLLIN | POLLRDNORM | POLLRDHUP;  // 0x2145
constexpr unsigned kBothShut = kPeerFin | POLLHUP;                             // 0x2155
constexpr unsigned kReset = kBothShut | POLLERR;                               // 0x215d
constexpr unsigned kListenerReady = POLLIN | POLLRDNORM;                       // 0x41

inline sockaddr_in addr4(const char* ip, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

inline sockaddr_in6 addr6(const char* ip, int port) {
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(static_cast<std::uint16_t>(port));
  inet_pton(AF_INET6, ip, &a.sin6_addr);
  return a;
}

template <class A>
const sockaddr* sa(const A& a) {
  return reinterpret_cast<const sockaddr*>(&a);
}

}  // namespace uepoll_test
