// In-process AF_INET / AF_INET6 stream sockets against loopback TCP on the host kernel (values
// measured on Linux 6.18). What the kernel does differently by design (a full backlog) or what
// needs uepoll's private address space (stress, leaks) is in tests/unit/inet_stream_test.cpp.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include "conformance.hpp"
#include "support/backend.hpp"
#include "support/blocked.hpp"
#include "support/inet.hpp"
#include "uepoll/uepoll.h"

namespace {

using uepoll_conformance::sigpipes_so_far;
using namespace uepoll_test;  // NOLINT: the tests' own helpers

// The middle value of a "min default max" sysctl (net.ipv4.tcp_wmem / tcp_rmem).
int sysctl_middle(const char* path, int fallback) {
  int v[3] = {0, fallback, 0};
  if (FILE* f = std::fopen(path, "re")) {
    if (std::fscanf(f, "%d %d %d", &v[0], &v[1], &v[2]) != 3) {
      v[1] = fallback;
    }
    std::fclose(f);
  }
  return v[1];
}

class InetLoopback : public testing::TestWithParam<const Api*> {
 protected:
  const Api& api() const { return *GetParam(); }

  void TearDown() override {
    for (int fd : fds_) {
      api().close(fd);
    }
  }
  int track(int fd) {
    EXPECT_GE(fd, 0) << "errno " << errno;
    if (fd >= 0) {
      fds_.push_back(fd);
    }
    return fd;
  }
  void close_fd(int fd) {
    for (auto it = fds_.begin(); it != fds_.end(); ++it) {
      if (*it == fd) {
        fds_.erase(it);
        break;
      }
    }
    ASSERT_EQ(api().close(fd), 0);
  }
  int sock(int family = AF_INET, int flags = 0) {
    return track(api().socket(family, SOCK_STREAM | flags, 0));
  }
  void setopt(int fd, int name, int v) {
    ASSERT_EQ(api().setsockopt(fd, SOL_SOCKET, name, &v, sizeof v), 0);
  }
  int port_of(int fd) {
    sockaddr_storage ss{};
    socklen_t l = sizeof ss;
    EXPECT_EQ(api().getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &l), 0);
    if (ss.ss_family == AF_INET) {
      return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    }
    return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  }
  // A listener on 127.0.0.1 (or [::1]) and an ephemeral port.
  int listener(int backlog = 16, int family = AF_INET) {
    int l = sock(family);
    if (family == AF_INET) {
      sockaddr_in a = addr4("127.0.0.1", 0);
      EXPECT_EQ(api().bind(l, sa(a), sizeof a), 0);
    } else {
      sockaddr_in6 a = addr6("::1", 0);
      EXPECT_EQ(api().bind(l, sa(a), sizeof a), 0);
    }
    EXPECT_EQ(api().listen(l, backlog), 0);
    return l;
  }
  int connect_to(int l, int flags = 0) {
    int c = sock(AF_INET, flags);
    sockaddr_in a = addr4("127.0.0.1", port_of(l));
    int r = api().connect(c, sa(a), sizeof a);
    if ((flags & SOCK_NONBLOCK) != 0) {
      EXPECT_TRUE(r == 0 || errno == EINPROGRESS);
    } else {
      EXPECT_EQ(r, 0) << "errno " << errno;
    }
    return c;
  }
  // A connected pair: {client, server}.
  std::pair<int, int> pair(int l) {
    int c = connect_to(l);
    int s = track(api().accept(l, nullptr, nullptr));
    return {c, s};
  }
  // Resets and closes an accepted pair (no TIME_WAIT left on the kernel); then nothing may hold
  // the port of `a`.
  void close_and_expect_port_free(int client, int server, const sockaddr_in& a) {
    linger lg{1, 0};
    ASSERT_EQ(api().setsockopt(server, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close_fd(server);
    close_fd(client);
    int m = sock();
    EXPECT_EQ(api().bind(m, sa(a), sizeof a), 0);
  }
  unsigned mask(int fd) {
    pollfd p{fd, 0x7fff, 0};
    int n = api().poll(&p, 1, 0);
    EXPECT_EQ(n, p.revents != 0 ? 1 : 0);
    return static_cast<unsigned short>(p.revents);
  }
  // Loopback TCP delivers in softirq context: let it settle (a no-op for uepoll).
  void settle() {
    if (api().is_kernel) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  int sockerr(int fd) {
    int e = -1;
    socklen_t l = sizeof e;
    EXPECT_EQ(api().getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l), 0);
    return e;
  }
  int fails(long r) {
    EXPECT_EQ(r, -1);
    return r == -1 ? errno : 0;
  }

  std::vector<int> fds_;
};

std::string api_name(const testing::TestParamInfo<const Api*>& info) { return info.param->name; }

INSTANTIATE_TEST_SUITE_P(Backends, InetLoopback,
                         testing::ValuesIn(uepoll_test::both_apis_begin(),
                                           uepoll_test::both_apis_end()),
                         api_name);

TEST_P(InetLoopback, FreshSocket) {
  int f = sock();
  EXPECT_EQ(mask(f), kFresh);
  char b[4];
  int before = sigpipes_so_far();
  EXPECT_EQ(fails(api().send(f, "x", 1, 0)), EPIPE);
  EXPECT_EQ(fails(api().write(f, "", 0)), EPIPE);
  EXPECT_EQ(sigpipes_so_far(), before + 2);
  EXPECT_EQ(fails(api().send(f, "x", 1, MSG_NOSIGNAL)), EPIPE);
  EXPECT_EQ(sigpipes_so_far(), before + 2);
  EXPECT_EQ(fails(api().recv(f, b, 1, 0)), ENOTCONN);
  EXPECT_EQ(fails(api().recv(f, b, 0, 0)), ENOTCONN);
  EXPECT_EQ(api().read(f, b, 0), 0);
  EXPECT_EQ(fails(api().accept(f, nullptr, nullptr)), EINVAL);
  EXPECT_EQ(fails(api().shutdown(f, SHUT_WR)), ENOTCONN);
  EXPECT_EQ(mask(f), kFresh);
  EXPECT_EQ(fails(api().shutdown(f, SHUT_RD)), ENOTCONN);  // but the bit is set
  EXPECT_EQ(mask(f), kBothShut);
  EXPECT_EQ(fails(api().shutdown(f, 5)), EINVAL);
  EXPECT_EQ(fails(api().shutdown(f, -1)), EINVAL);
  sockaddr_in a{};
  socklen_t l = sizeof a;
  ASSERT_EQ(api().getsockname(f, reinterpret_cast<sockaddr*>(&a), &l), 0);
  EXPECT_EQ(l, sizeof a);
  EXPECT_EQ(a.sin_family, AF_INET);
  EXPECT_EQ(a.sin_port, 0);
  EXPECT_EQ(a.sin_addr.s_addr, htonl(INADDR_ANY));
  int f6 = sock(AF_INET6);
  sockaddr_in6 a6;
  std::memset(&a6, 0x55, sizeof a6);
  l = sizeof a6;
  ASSERT_EQ(api().getsockname(f6, reinterpret_cast<sockaddr*>(&a6), &l), 0);
  EXPECT_EQ(l, sizeof a6);
  EXPECT_EQ(a6.sin6_family, AF_INET6);
  EXPECT_TRUE(IN6_IS_ADDR_UNSPECIFIED(&a6.sin6_addr));
  EXPECT_EQ(a6.sin6_flowinfo, 0u);
  EXPECT_EQ(a6.sin6_scope_id, 0u);
}

TEST_P(InetLoopback, ListenerReadinessAndCalls) {
  int l = listener();
  EXPECT_EQ(mask(l), 0u);
  char b[4];
  EXPECT_EQ(fails(api().recv(l, b, 1, 0)), ENOTCONN);
  EXPECT_EQ(fails(api().read(l, b, 1)), ENOTCONN);
  EXPECT_EQ(fails(api().send(l, "x", 1, MSG_NOSIGNAL)), EPIPE);
  sockaddr_in a = addr4("127.0.0.1", port_of(l));
  EXPECT_EQ(fails(api().connect(l, sa(a), sizeof a)), EISCONN);
  EXPECT_EQ(fails(api().bind(l, sa(a), sizeof a)), EINVAL);
  int v = 0;
  socklen_t len = sizeof v;
  ASSERT_EQ(api().getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &v, &len), 0);
  EXPECT_EQ(v, 1);
  int c = connect_to(l);
  settle();
  EXPECT_EQ(mask(l), kListenerReady);
  sockaddr_in peer{};
  len = sizeof peer;
  int s = track(api().accept(l, reinterpret_cast<sockaddr*>(&peer), &len));
  EXPECT_EQ(len, sizeof peer);
  EXPECT_EQ(mask(l), 0u);
  // The accepted socket's peer is the client's own name, and vice versa.
  sockaddr_in cname{};
  len = sizeof cname;
  ASSERT_EQ(api().getsockname(c, reinterpret_cast<sockaddr*>(&cname), &len), 0);
  EXPECT_EQ(peer.sin_port, cname.sin_port);
  EXPECT_EQ(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
  EXPECT_EQ(cname.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
  sockaddr_in sname{};
  len = sizeof sname;
  ASSERT_EQ(api().getsockname(s, reinterpret_cast<sockaddr*>(&sname), &len), 0);
  EXPECT_EQ(ntohs(sname.sin_port), port_of(l));
  EXPECT_EQ(mask(c), kEstablished);
  EXPECT_EQ(mask(s), kEstablished);
  EXPECT_EQ(fails(api().connect(c, sa(a), sizeof a)), EISCONN);
  EXPECT_EQ(fails(api().listen(c, 5)), EINVAL);
  EXPECT_EQ(fails(api().listen(s, 5)), EINVAL);
  EXPECT_EQ(fails(api().bind(c, sa(a), sizeof a)), EINVAL);
  EXPECT_EQ(fails(api().accept(c, nullptr, nullptr)), EINVAL);
}

TEST_P(InetLoopback, AcceptTruncatesTheAddressAndHonoursFlags) {
  int l = listener();
  ASSERT_EQ(api().fcntl(l, F_SETFL, O_NONBLOCK), 0);
  EXPECT_EQ(fails(api().accept(l, nullptr, nullptr)), EAGAIN);
  connect_to(l);
  connect_to(l);
  settle();
  sockaddr_in peer;
  std::memset(&peer, 0x55, sizeof peer);
  socklen_t len = 4;
  int s = track(api().accept(l, reinterpret_cast<sockaddr*>(&peer), &len));
  EXPECT_EQ(len, sizeof peer);
  EXPECT_EQ(peer.sin_family, AF_INET);
  EXPECT_EQ(reinterpret_cast<unsigned char*>(&peer)[4], 0x55);  // only 4 bytes copied
  EXPECT_EQ(api().fcntl(s, F_GETFL, 0) & O_NONBLOCK, 0);        // not inherited from the listener
  int s2 = track(api().accept4(l, nullptr, nullptr, SOCK_NONBLOCK));
  EXPECT_NE(api().fcntl(s2, F_GETFL, 0) & O_NONBLOCK, 0);
}

TEST_P(InetLoopback, ShutWrThenBoth) {
  int l = listener();
  const auto [c0, s0] = pair(l);
  const int c = c0;
  const int s = s0;
  ASSERT_EQ(api().shutdown(c, SHUT_WR), 0);
  settle();
  EXPECT_EQ(mask(c), kEstablished);
  EXPECT_EQ(mask(s), kPeerFin);
  char b[4];
  EXPECT_EQ(api().read(s, b, sizeof b), 0);
  EXPECT_EQ(fails(api().send(c, "x", 1, MSG_NOSIGNAL)), EPIPE);
  ASSERT_EQ(api().write(s, "ab", 2), 2);  // the other direction still works
  settle();
  EXPECT_EQ(api().read(c, b, sizeof b), 2);
  ASSERT_EQ(api().shutdown(s, SHUT_WR), 0);
  settle();
  EXPECT_EQ(mask(c), kBothShut);
  EXPECT_EQ(mask(s), kBothShut);
  EXPECT_EQ(api().read(c, b, sizeof b), 0);
  EXPECT_EQ(fails(api().send(s, "x", 1, MSG_NOSIGNAL)), EPIPE);
  EXPECT_EQ(sockerr(s), 0);
  EXPECT_EQ(fails(api().shutdown(s, SHUT_RDWR)), ENOTCONN);
}

TEST_P(InetLoopback, ShutRdOnlyAffectsTheCaller) {
  int l = listener();
  const auto [c0, s0] = pair(l);
  const int c = c0;
  const int s = s0;
  ASSERT_EQ(api().shutdown(c, SHUT_RD), 0);
  settle();
  EXPECT_EQ(mask(c), kPeerFin);
  EXPECT_EQ(mask(s), kEstablished);
  ASSERT_EQ(api().write(s, "abc", 3), 3);  // still delivered
  settle();
  char b[8];
  EXPECT_EQ(api().read(c, b, sizeof b), 3);
  EXPECT_EQ(api().read(c, b, sizeof b), 0);
}

TEST_P(InetLoopback, PeerCloseThenWriteIsResetWithEpipe) {
  int l = listener();
  const auto [c0, s0] = pair(l);
  const int c = c0;
  const int s = s0;
  close_fd(c);
  settle();
  EXPECT_EQ(mask(s), kPeerFin);  // no EPOLLHUP, unlike AF_UNIX
  char b[4];
  EXPECT_EQ(api().read(s, b, sizeof b), 0);
  EXPECT_EQ(api().write(s, "x", 1), 1);  // the closed end answers with a RST
  settle();
  EXPECT_EQ(mask(s), kReset);
  EXPECT_EQ(api().read(s, b, sizeof b), 0);  // EOF first: the FIN was seen
  EXPECT_EQ(sockerr(s), EPIPE);              // a reset in CLOSE_WAIT
  EXPECT_EQ(mask(s), kBothShut);
  int before = sigpipes_so_far();
  EXPECT_EQ(fails(api().write(s, "x", 1)), EPIPE);
  EXPECT_EQ(sigpipes_so_far(), before + 1);
}

TEST_P(InetLoopback, ResetErrorIsReturnedByTheNextWrite) {
  int l = listener();
  const auto [c0, s0] = pair(l);
  const int c = c0;
  const int s = s0;
  close_fd(c);
  settle();
  ASSERT_EQ(api().write(s, "x", 1), 1);
  settle();
  int before = sigpipes_so_far();
  EXPECT_EQ(fails(api().write(s, "x", 1)), EPIPE);  // the pending EPIPE itself
  EXPECT_EQ(sigpipes_so_far(), before + 1);
  EXPECT_EQ(sockerr(s), 0);
}

TEST_P(InetLoopback, CloseWithUnreadDataResetsThePeer) {
  int l = listener();
  const auto [c0, s0] = pair(l);
  const int c = c0;
  const int s = s0;
  ASSERT_EQ(api().write(s, "xyz", 3), 3);  // never read by c
  ASSERT_EQ(api().write(c, "abc", 3), 3);
  settle();
  close_fd(c);
  settle();
  EXPECT_EQ(mask(s), kReset);
  char b[8];
  EXPECT_EQ(api().read(s, b, 1), 1);  // what arrived before the reset stays readable
  EXPECT_EQ(api().read(s, b, sizeof b), 2);
  EXPECT_EQ(fails(api().read(s, b, sizeof b)), ECONNRESET);
  EXPECT_EQ(api().read(s, b, sizeof b), 0);
  int before = sigpipes_so_far();
  EXPECT_EQ(fails(api().write(s, "x", 1)), EPIPE);
  EXPECT_EQ(sigpipes_so_far(), before + 1);
}

TEST_P(InetLoopback, PendingResetIsReturnedByWriteWithoutSigpipe) {
  int l = listener();
  const auto [c0, s0] = pair(l);
  const int c = c0;
  const int s = s0;
  ASSERT_EQ(api().write(s, "xyz", 3), 3);
  settle();
  close_fd(c);
  settle();
  int before = sigpipes_so_far();
  EXPECT_EQ(fails(api().write(s, "x", 1)), ECONNRESET);
  EXPECT_EQ(sigpipes_so_far(), before);
  EXPECT_EQ(fails(api().write(s, "x", 1)), EPIPE);
  EXPECT_EQ(sigpipes_so_far(), before + 1);
}

TEST_P(InetLoopback, LingerZeroCloseResets) {
  int l = listener();
  const auto [c0, s0] = pair(l);
  const int c = c0;
  const int s = s0;
  linger lg{1, 0};
  ASSERT_EQ(api().setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  close_fd(c);
  settle();
  EXPECT_EQ(mask(s), kReset);
  EXPECT_EQ(sockerr(s), ECONNRESET);
  EXPECT_EQ(mask(s), kBothShut);
}

TEST_P(InetLoopback, AcceptAfterTheClientReset) {
  int l = listener();
  int c = connect_to(l);
  linger lg{1, 0};
  ASSERT_EQ(api().setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  close_fd(c);
  int c2 = connect_to(l);
  ASSERT_EQ(api().write(c2, "hi", 2), 2);
  close_fd(c2);
  settle();
  int s = track(api().accept(l, nullptr, nullptr));
  char b[4];
  EXPECT_EQ(fails(api().read(s, b, sizeof b)), ECONNRESET);
  int s2 = track(api().accept(l, nullptr, nullptr));
  EXPECT_EQ(api().read(s2, b, sizeof b), 2);
  EXPECT_EQ(api().read(s2, b, sizeof b), 0);
}

TEST_P(InetLoopback, ListenerCloseResetsQueuedConnections) {
  int l = listener();
  int c = connect_to(l);
  settle();
  close_fd(l);
  settle();
  EXPECT_EQ(mask(c), kReset);
  EXPECT_EQ(sockerr(c), ECONNRESET);
  EXPECT_EQ(mask(c), kBothShut);
}

TEST_P(InetLoopback, BlockingConnectRefused) {
  int l = listener();
  int port = port_of(l);
  close_fd(l);  // nobody listens there any more
  int c = sock();
  sockaddr_in a = addr4("127.0.0.1", port);
  EXPECT_EQ(fails(api().connect(c, sa(a), sizeof a)), ECONNREFUSED);
  EXPECT_EQ(mask(c), kFresh);
  EXPECT_EQ(sockerr(c), 0);
  EXPECT_EQ(fails(api().connect(c, sa(a), sizeof a)), ECONNREFUSED);  // a new attempt
  EXPECT_EQ(fails(api().send(c, "x", 1, MSG_NOSIGNAL)), EPIPE);
  char b[2];
  EXPECT_EQ(fails(api().recv(c, b, 1, 0)), ENOTCONN);
  a = addr4("127.0.0.1", 0);
  EXPECT_EQ(fails(api().connect(c, sa(a), sizeof a)), ECONNREFUSED);
}

TEST_P(InetLoopback, NonblockingConnectRefused) {
  int l = listener();
  int port = port_of(l);
  close_fd(l);
  int c = sock(AF_INET, SOCK_NONBLOCK);
  sockaddr_in a = addr4("127.0.0.1", port);
  EXPECT_EQ(fails(api().connect(c, sa(a), sizeof a)), EINPROGRESS);
  settle();
  EXPECT_EQ(mask(c), kReset);
  EXPECT_EQ(fails(api().connect(c, sa(a), sizeof a)), ECONNREFUSED);  // reports, resets
  EXPECT_EQ(mask(c), kFresh);
  EXPECT_EQ(sockerr(c), 0);
  EXPECT_EQ(fails(api().connect(c, sa(a), sizeof a)), EINPROGRESS);  // tries again
  settle();
  EXPECT_EQ(sockerr(c), ECONNREFUSED);
  EXPECT_EQ(mask(c), kBothShut);
  EXPECT_EQ(fails(api().connect(c, sa(a), sizeof a)), ECONNABORTED);  // error already read
  EXPECT_EQ(fails(api().send(c, "x", 1, MSG_NOSIGNAL)), EPIPE);
  char b[2];
  EXPECT_EQ(fails(api().recv(c, b, 1, 0)), ENOTCONN);
}

TEST_P(InetLoopback, NonblockingConnectRefusedErrorThroughSend) {
  int l = listener();
  int port = port_of(l);
  close_fd(l);
  int c = sock(AF_INET, SOCK_NONBLOCK);
  sockaddr_in a = addr4("127.0.0.1", port);
  EXPECT_EQ(fails(api().connect(c, sa(a), sizeof a)), EINPROGRESS);
  settle();
  int before = sigpipes_so_far();
  EXPECT_EQ(fails(api().send(c, "x", 1, 0)), ECONNREFUSED);
  EXPECT_EQ(sigpipes_so_far(), before);
}

TEST_P(InetLoopback, NonblockingConnectSucceeds) {
  int l = listener();
  int c = sock(AF_INET, SOCK_NONBLOCK);
  int ep = track(api().epoll_create1(0));
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ASSERT_EQ(api().epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev), 0);
  epoll_event out[2];
  ASSERT_EQ(api().epoll_wait(ep, out, 2, 0), 1);  // a fresh socket is EPOLLOUT|EPOLLHUP
  EXPECT_EQ(out[0].events, static_cast<unsigned>(EPOLLOUT | EPOLLHUP));
  sockaddr_in a = addr4("127.0.0.1", port_of(l));
  EXPECT_EQ(fails(api().connect(c, sa(a), sizeof a)), EINPROGRESS);
  ASSERT_EQ(api().epoll_wait(ep, out, 2, 1000), 1);  // the connection's wake-up
  EXPECT_EQ(out[0].events, static_cast<unsigned>(EPOLLOUT));
  EXPECT_EQ(mask(c), kEstablished);
  EXPECT_EQ(api().connect(c, sa(a), sizeof a), 0);  // reports the completion once
  EXPECT_EQ(fails(api().connect(c, sa(a), sizeof a)), EISCONN);
}

// A FIN wakes the peer before the socket that sent it: the peer's event is ahead on the ready
// list.
TEST_P(InetLoopback, ShutdownWakesThePeerFirst) {
  int l = listener();
  const auto [c, s] = pair(l);
  int ep = track(api().epoll_create1(0));
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.fd = c;
  ASSERT_EQ(api().epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev), 0);
  ev.data.fd = s;
  ASSERT_EQ(api().epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev), 0);
  epoll_event out[4];
  ASSERT_EQ(api().epoll_wait(ep, out, 4, 0), 2);  // both writable
  ASSERT_EQ(api().shutdown(c, SHUT_WR), 0);
  ASSERT_EQ(api().epoll_wait(ep, out, 4, 1000), 2);
  EXPECT_EQ(out[0].data.fd, s);
  EXPECT_EQ(out[0].events, static_cast<unsigned>(EPOLLIN | EPOLLOUT | EPOLLRDHUP));
  EXPECT_EQ(out[1].data.fd, c);
  EXPECT_EQ(out[1].events, static_cast<unsigned>(EPOLLOUT));
}

TEST_P(InetLoopback, BindChecks) {
  int s = sock();
  sockaddr_in a = addr4("127.0.0.1", 0);
  EXPECT_EQ(fails(api().bind(s, sa(a), sizeof a - 1)), EINVAL);
  EXPECT_EQ(fails(api().bind(s, nullptr, sizeof a)), EFAULT);
  EXPECT_EQ(fails(api().bind(s, sa(a), 0)), EINVAL);
  EXPECT_EQ(fails(api().bind(s, sa(a), 200)), EINVAL);
  a.sin_family = AF_INET6;
  EXPECT_EQ(fails(api().bind(s, sa(a), sizeof a)), EAFNOSUPPORT);
  a.sin_family = AF_UNSPEC;
  EXPECT_EQ(fails(api().bind(s, sa(a), sizeof a)), EAFNOSUPPORT);  // only with INADDR_ANY
  sockaddr_in6 a6 = addr6("::1", 0);
  EXPECT_EQ(fails(api().bind(s, sa(a6), sizeof a6)), EAFNOSUPPORT);
  a = addr4("10.1.2.3", 0);
  EXPECT_EQ(fails(api().bind(s, sa(a), sizeof a)), EADDRNOTAVAIL);
  a = addr4("0.0.0.0", 0);
  a.sin_family = AF_UNSPEC;
  ASSERT_EQ(api().bind(s, sa(a), sizeof a), 0);
  int port = port_of(s);
  EXPECT_GE(port, 1024);
  a = addr4("127.0.0.1", 0);
  EXPECT_EQ(fails(api().bind(s, sa(a), sizeof a)), EINVAL);  // already bound
  a = addr4("10.1.2.3", 0);
  EXPECT_EQ(fails(api().bind(s, sa(a), sizeof a)), EADDRNOTAVAIL);  // checked first

  int t = sock();
  a = addr4("127.0.0.5", 0);
  ASSERT_EQ(api().bind(t, sa(a), sizeof a), 0);
  sockaddr_in name{};
  socklen_t len = sizeof name;
  ASSERT_EQ(api().getsockname(t, reinterpret_cast<sockaddr*>(&name), &len), 0);
  char ip[32];
  EXPECT_STREQ(inet_ntop(AF_INET, &name.sin_addr, ip, sizeof ip), "127.0.0.5");

  int s6 = sock(AF_INET6);
  a = addr4("127.0.0.1", 0);
  EXPECT_EQ(fails(api().bind(s6, sa(a), sizeof a)), EINVAL);  // shorter than a sockaddr_in6
  EXPECT_EQ(fails(api().bind(s6, sa(a6), 23)), EINVAL);
  a6 = addr6("2001:db8::1", 0);
  EXPECT_EQ(fails(api().bind(s6, sa(a6), sizeof a6)), EADDRNOTAVAIL);
  a6 = addr6("::ffff:10.0.0.1", 0);
  EXPECT_EQ(fails(api().bind(s6, sa(a6), sizeof a6)), EADDRNOTAVAIL);
  a6 = addr6("::ffff:127.0.0.1", 0);
  ASSERT_EQ(api().bind(s6, sa(a6), 24), 0);  // the RFC 2133 length is enough
  sockaddr_in6 name6{};
  len = sizeof name6;
  ASSERT_EQ(api().getsockname(s6, reinterpret_cast<sockaddr*>(&name6), &len), 0);
  EXPECT_TRUE(IN6_IS_ADDR_V4MAPPED(&name6.sin6_addr));
  int one = 1;
  EXPECT_EQ(fails(api().setsockopt(s6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one)), EINVAL);
}

TEST_P(InetLoopback, EphemeralPorts) {
  int low = 32768;
  int high = 60999;
  if (FILE* f = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "re")) {
    EXPECT_EQ(std::fscanf(f, "%d %d", &low, &high), 2);
    std::fclose(f);
  }
  int s = sock();
  sockaddr_in a = addr4("127.0.0.1", 0);
  ASSERT_EQ(api().bind(s, sa(a), sizeof a), 0);
  int p = port_of(s);
  EXPECT_GE(p, low);
  EXPECT_LE(p, high);
  EXPECT_EQ(p % 2, 1);  // bind() prefers odd ports
  int l = sock();
  ASSERT_EQ(api().listen(l, 4), 0);  // listen() binds an unbound socket itself
  EXPECT_GE(port_of(l), low);
  sockaddr_in name{};
  socklen_t len = sizeof name;
  ASSERT_EQ(api().getsockname(l, reinterpret_cast<sockaddr*>(&name), &len), 0);
  EXPECT_EQ(name.sin_addr.s_addr, htonl(INADDR_ANY));
  int c = connect_to(l);
  EXPECT_EQ(port_of(c) % 2, 0);  // connect() prefers even ones
  int l6 = sock(AF_INET6);
  ASSERT_EQ(api().listen(l6, 4), 0);
  sockaddr_in6 name6{};
  len = sizeof name6;
  ASSERT_EQ(api().getsockname(l6, reinterpret_cast<sockaddr*>(&name6), &len), 0);
  EXPECT_TRUE(IN6_IS_ADDR_UNSPECIFIED(&name6.sin6_addr));
}

struct ConflictCase {
  const char* what;
  int family1;
  const char* ip1;
  int reuseaddr1, reuseport1;
  bool listen1;
  int family2;
  const char* ip2;
  int reuseaddr2, reuseport2;
  bool listen2;
  int bind2;     // expected errno of the second bind (0: success)
  int listen2e;  // expected errno of the second listen
};

TEST_P(InetLoopback, BindConflictRules) {
  const ConflictCase cases[] = {
      {"same address", AF_INET, "127.0.0.1", 0, 0, false, AF_INET, "127.0.0.1", 0, 0, false,
       EADDRINUSE, 0},
      {"two loopback addresses", AF_INET, "127.0.0.1", 0, 0, true, AF_INET, "127.0.0.2", 0, 0, true,
       0, 0},
      {"wildcard and specific", AF_INET, "0.0.0.0", 0, 0, false, AF_INET, "127.0.0.1", 0, 0, false,
       EADDRINUSE, 0},
      {"reuseaddr, neither listening, then both listen", AF_INET, "127.0.0.1", 1, 0, true, AF_INET,
       "127.0.0.1", 1, 0, true, 0, EADDRINUSE},
      {"reuseaddr, second listens first", AF_INET, "127.0.0.1", 1, 0, false, AF_INET, "127.0.0.1",
       1, 0, true, 0, 0},
      {"reuseaddr on one only", AF_INET, "127.0.0.1", 1, 0, false, AF_INET, "127.0.0.1", 0, 0,
       false, EADDRINUSE, 0},
      {"reuseport group", AF_INET, "127.0.0.1", 0, 1, true, AF_INET, "127.0.0.1", 0, 1, true, 0, 0},
      {"reuseport on the second only", AF_INET, "127.0.0.1", 0, 0, true, AF_INET, "127.0.0.1", 0, 1,
       false, EADDRINUSE, 0},
      {"reuseport wildcard and specific", AF_INET, "0.0.0.0", 0, 1, true, AF_INET, "127.0.0.1", 0,
       1, true, 0, 0},
      {"v6 wildcard covers v4", AF_INET6, "::", 0, 0, true, AF_INET, "127.0.0.1", 0, 0, false,
       EADDRINUSE, 0},
      {"::1 and 0.0.0.0", AF_INET6, "::1", 0, 0, true, AF_INET, "0.0.0.0", 0, 0, true, 0, 0},
      {"::1 and ::", AF_INET6, "::1", 0, 0, true, AF_INET6, "::", 0, 0, false, EADDRINUSE, 0},
      {"listening wildcard vs reuseaddr specific", AF_INET, "0.0.0.0", 1, 0, true, AF_INET,
       "127.0.0.1", 1, 0, false, EADDRINUSE, 0},
  };
  for (const ConflictCase& k : cases) {
    SCOPED_TRACE(k.what);
    int x = sock(k.family1);
    int y = sock(k.family2);
    setopt(x, SO_REUSEADDR, k.reuseaddr1);
    setopt(x, SO_REUSEPORT, k.reuseport1);
    setopt(y, SO_REUSEADDR, k.reuseaddr2);
    setopt(y, SO_REUSEPORT, k.reuseport2);
    sockaddr_storage ss{};
    socklen_t len;
    auto fill = [&](int family, const char* ip, int port) {
      if (family == AF_INET) {
        sockaddr_in a = addr4(ip, port);
        std::memcpy(&ss, &a, sizeof a);
        len = sizeof a;
      } else {
        sockaddr_in6 a = addr6(ip, port);
        std::memcpy(&ss, &a, sizeof a);
        len = sizeof a;
      }
    };
    fill(k.family1, k.ip1, 0);
    ASSERT_EQ(api().bind(x, reinterpret_cast<sockaddr*>(&ss), len), 0);
    const int port = port_of(x);
    if (k.listen1 && k.listen2e == 0) {
      ASSERT_EQ(api().listen(x, 5), 0);
    }
    fill(k.family2, k.ip2, port);
    errno = 0;
    int r = api().bind(y, reinterpret_cast<sockaddr*>(&ss), len);
    EXPECT_EQ(r == 0 ? 0 : errno, k.bind2);
    if (r == 0 && k.listen2) {
      errno = 0;
      r = api().listen(y, 5);
      EXPECT_EQ(r == 0 ? 0 : errno, 0);
      if (k.listen1 && k.listen2e != 0) {
        errno = 0;
        r = api().listen(x, 5);
        EXPECT_EQ(r == 0 ? 0 : errno, k.listen2e);
      }
    }
    close_fd(x);
    close_fd(y);
  }
}

TEST_P(InetLoopback, AnAcceptedSocketHoldsTheListenersPort) {
  int l = sock();
  setopt(l, SO_REUSEADDR, 1);  // inherited by the accepted socket
  sockaddr_in a = addr4("127.0.0.1", 0);
  ASSERT_EQ(api().bind(l, sa(a), sizeof a), 0);
  ASSERT_EQ(api().listen(l, 4), 0);
  a.sin_port = htons(static_cast<std::uint16_t>(port_of(l)));
  const auto [c0, s0] = pair(l);
  const int c = c0;
  const int s = s0;
  close_fd(l);
  int n = sock();
  EXPECT_EQ(fails(api().bind(n, sa(a), sizeof a)), EADDRINUSE);
  int r = sock();
  setopt(r, SO_REUSEADDR, 1);
  EXPECT_EQ(api().bind(r, sa(a), sizeof a), 0);  // allowed: the accepted socket does not listen
  EXPECT_EQ(api().listen(r, 4), 0);
  close_fd(r);
  close_and_expect_port_free(c, s, a);
}

// A listener stopped by shutdown() keeps its explicit port as a plain binding, and the sockets
// accepted from it keep holding the port after it closes too.
TEST_P(InetLoopback, AcceptedSocketsHoldThePortAfterTheListenerStops) {
  int probe = sock();
  sockaddr_in a = addr4("127.0.0.1", 0);
  ASSERT_EQ(api().bind(probe, sa(a), sizeof a), 0);
  a.sin_port = htons(static_cast<std::uint16_t>(port_of(probe)));
  close_fd(probe);
  int l = sock();
  setopt(l, SO_REUSEADDR, 1);
  ASSERT_EQ(api().bind(l, sa(a), sizeof a), 0);
  ASSERT_EQ(api().listen(l, 4), 0);
  const auto [c0, s0] = pair(l);
  const int c = c0;
  const int s = s0;
  ASSERT_EQ(api().shutdown(l, SHUT_RD), 0);
  int r = sock();
  setopt(r, SO_REUSEADDR, 1);
  EXPECT_EQ(api().bind(r, sa(a), sizeof a), 0);  // neither the stopped listener nor s listens
  close_fd(r);
  int n = sock();
  EXPECT_EQ(fails(api().bind(n, sa(a), sizeof a)), EADDRINUSE);
  close_fd(l);
  int n2 = sock();
  EXPECT_EQ(fails(api().bind(n2, sa(a), sizeof a)), EADDRINUSE);  // s still holds it
  close_and_expect_port_free(c, s, a);
}

TEST_P(InetLoopback, Ipv6ListenerAcceptsIpv4) {
  int l = sock(AF_INET6);
  sockaddr_in6 any = addr6("::", 0);
  ASSERT_EQ(api().bind(l, sa(any), sizeof any), 0);
  ASSERT_EQ(api().listen(l, 8), 0);
  const int port = port_of(l);
  int c = sock(AF_INET);
  sockaddr_in a = addr4("127.0.0.1", port);
  ASSERT_EQ(api().connect(c, sa(a), sizeof a), 0);
  sockaddr_in6 peer{};
  socklen_t len = sizeof peer;
  int s = track(api().accept(l, reinterpret_cast<sockaddr*>(&peer), &len));
  EXPECT_EQ(len, sizeof peer);
  EXPECT_TRUE(IN6_IS_ADDR_V4MAPPED(&peer.sin6_addr));
  EXPECT_EQ(ntohs(peer.sin6_port), port_of(c));
  sockaddr_in6 name{};
  len = sizeof name;
  ASSERT_EQ(api().getsockname(s, reinterpret_cast<sockaddr*>(&name), &len), 0);
  EXPECT_TRUE(IN6_IS_ADDR_V4MAPPED(&name.sin6_addr));
  // An IPv6 client to :: reaches ::1.
  int c6 = sock(AF_INET6);
  sockaddr_in6 d = addr6("::", port);
  ASSERT_EQ(api().connect(c6, sa(d), sizeof d), 0);
  len = sizeof name;
  ASSERT_EQ(api().getsockname(c6, reinterpret_cast<sockaddr*>(&name), &len), 0);
  EXPECT_TRUE(IN6_IS_ADDR_LOOPBACK(&name.sin6_addr));
  int s6 = track(api().accept(l, reinterpret_cast<sockaddr*>(&peer), &len));
  EXPECT_TRUE(IN6_IS_ADDR_LOOPBACK(&peer.sin6_addr));
  // Data both ways over the mixed connection.
  ASSERT_EQ(api().write(c, "v4", 2), 2);
  settle();
  char b[4];
  EXPECT_EQ(api().read(s, b, sizeof b), 2);
  ASSERT_EQ(api().write(s6, "v6", 2), 2);
  settle();
  EXPECT_EQ(api().read(c6, b, sizeof b), 2);
  // Address checks of connect.
  int e = sock(AF_INET6);
  EXPECT_EQ(fails(api().connect(e, sa(a), sizeof a)), EINVAL);
  int e4 = sock(AF_INET);
  EXPECT_EQ(fails(api().connect(e4, sa(d), sizeof d)), EAFNOSUPPORT);
  EXPECT_EQ(fails(api().connect(e4, sa(a), 1)), EINVAL);
}

TEST_P(InetLoopback, V6onlyListenerRefusesIpv4) {
  int l = sock(AF_INET6);
  int one = 1;
  ASSERT_EQ(api().setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one), 0);
  sockaddr_in6 any = addr6("::", 0);
  ASSERT_EQ(api().bind(l, sa(any), sizeof any), 0);
  ASSERT_EQ(api().listen(l, 8), 0);
  int c = sock(AF_INET);
  sockaddr_in a = addr4("127.0.0.1", port_of(l));
  EXPECT_EQ(fails(api().connect(c, sa(a), sizeof a)), ECONNREFUSED);
  int l4 = sock(AF_INET);
  EXPECT_EQ(api().bind(l4, sa(a), sizeof a), 0);  // no conflict with a v6-only wildcard
}

TEST_P(InetLoopback, ConnectToTheWildcardAddressReachesLoopback) {
  int l = listener();
  int c = sock();
  sockaddr_in a = addr4("0.0.0.0", port_of(l));
  ASSERT_EQ(api().connect(c, sa(a), sizeof a), 0);
  sockaddr_in name{};
  socklen_t len = sizeof name;
  ASSERT_EQ(api().getsockname(c, reinterpret_cast<sockaddr*>(&name), &len), 0);
  EXPECT_EQ(name.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
}

TEST_P(InetLoopback, DisconnectWithAfUnspecAndReconnect) {
  int l = listener();
  const auto [c0, s0] = pair(l);
  const int c = c0;
  const int s = s0;
  sockaddr unspec{};
  unspec.sa_family = AF_UNSPEC;
  ASSERT_EQ(api().connect(c, &unspec, sizeof unspec), 0);
  settle();
  EXPECT_EQ(mask(c), kFresh | POLLERR);
  EXPECT_EQ(sockerr(c), ECONNRESET);
  EXPECT_EQ(mask(c), kFresh);
  EXPECT_EQ(mask(s), kReset);
  sockaddr_in a = addr4("127.0.0.1", port_of(l));
  ASSERT_EQ(api().connect(c, sa(a), sizeof a), 0);
  int s2 = track(api().accept(l, nullptr, nullptr));
  ASSERT_EQ(api().write(c, "again", 5), 5);
  settle();
  char b[8];
  EXPECT_EQ(api().read(s2, b, sizeof b), 5);
}

TEST_P(InetLoopback, SocketOptions) {
  int s = sock();
  auto get = [&](int level, int name) {
    int v = -12345;
    socklen_t l = sizeof v;
    EXPECT_EQ(api().getsockopt(s, level, name, &v, &l), 0) << level << "/" << name;
    return v;
  };
  EXPECT_EQ(get(SOL_SOCKET, SO_TYPE), SOCK_STREAM);
  EXPECT_EQ(get(SOL_SOCKET, SO_DOMAIN), AF_INET);
  EXPECT_EQ(get(SOL_SOCKET, SO_PROTOCOL), IPPROTO_TCP);
  EXPECT_EQ(get(SOL_SOCKET, SO_ACCEPTCONN), 0);
  EXPECT_EQ(get(SOL_SOCKET, SO_REUSEADDR), 0);
  EXPECT_EQ(get(SOL_SOCKET, SO_RCVLOWAT), 1);
  EXPECT_EQ(get(SOL_SOCKET, SO_SNDBUF), sysctl_middle("/proc/sys/net/ipv4/tcp_wmem", 16384));
  EXPECT_EQ(get(SOL_SOCKET, SO_RCVBUF), sysctl_middle("/proc/sys/net/ipv4/tcp_rmem", 131072));
  EXPECT_EQ(get(IPPROTO_TCP, TCP_NODELAY), 0);
  EXPECT_EQ(get(IPPROTO_TCP, TCP_MAXSEG), 536);
  EXPECT_EQ(get(IPPROTO_TCP, TCP_KEEPIDLE), 7200);
  EXPECT_EQ(get(IPPROTO_IP, IP_TTL), 64);
  int one = 5;
  ASSERT_EQ(api().setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
  EXPECT_EQ(get(SOL_SOCKET, SO_REUSEADDR), 1);
  ASSERT_EQ(api().setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one), 0);
  EXPECT_EQ(get(SOL_SOCKET, SO_REUSEPORT), 1);
  ASSERT_EQ(api().setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
  EXPECT_EQ(get(IPPROTO_TCP, TCP_NODELAY), 1);
  int v = 100000;
  ASSERT_EQ(api().setsockopt(s, SOL_SOCKET, SO_SNDBUF, &v, sizeof v), 0);
  EXPECT_EQ(get(SOL_SOCKET, SO_SNDBUF), 200000);
  linger lg{1, 7};
  ASSERT_EQ(api().setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  linger got{};
  socklen_t l = sizeof got;
  ASSERT_EQ(api().getsockopt(s, SOL_SOCKET, SO_LINGER, &got, &l), 0);
  EXPECT_EQ(l, sizeof got);
  EXPECT_EQ(got.l_onoff, 1);
  EXPECT_EQ(got.l_linger, 7);
  EXPECT_EQ(fails(api().setsockopt(s, SOL_SOCKET, SO_LINGER, &v, sizeof v)), EINVAL);
  EXPECT_EQ(fails(api().setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &v, 2)), EINVAL);
  EXPECT_EQ(fails(api().setsockopt(s, SOL_SOCKET, SO_REUSEADDR, nullptr, sizeof v)), EFAULT);
  v = 1;
  EXPECT_EQ(fails(api().setsockopt(s, IPPROTO_TCP, TCP_MAXSEG, &v, sizeof v)), EINVAL);
  EXPECT_EQ(fails(api().setsockopt(s, IPPROTO_TCP, TCP_KEEPCNT, &v, 0)), EINVAL);
  v = 0;
  EXPECT_EQ(fails(api().setsockopt(s, IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof v)), EINVAL);
  l = sizeof v;
  EXPECT_EQ(fails(api().getsockopt(s, SOL_SOCKET, 1000, &v, &l)), ENOPROTOOPT);
  EXPECT_EQ(fails(api().getsockopt(s, IPPROTO_TCP, 1000, &v, &l)), ENOPROTOOPT);
  EXPECT_EQ(fails(api().getsockopt(s, IPPROTO_IP, 1000, &v, &l)), ENOPROTOOPT);
  EXPECT_EQ(fails(api().getsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &v, &l)), EOPNOTSUPP);
  EXPECT_EQ(fails(api().getsockopt(s, 1000, 1, &v, &l)), EOPNOTSUPP);
  EXPECT_EQ(fails(api().setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof v)), ENOPROTOOPT);
  EXPECT_EQ(fails(api().setsockopt(s, 1000, 1, &v, sizeof v)), ENOPROTOOPT);
  EXPECT_EQ(fails(api().setsockopt(s, SOL_SOCKET, SO_TYPE, &v, sizeof v)), ENOPROTOOPT);
  l = static_cast<socklen_t>(-1);
  EXPECT_EQ(fails(api().getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &v, &l)), EINVAL);
  EXPECT_EQ(fails(api().getsockopt(s, SOL_SOCKET, SO_TYPE, &v, nullptr)), EFAULT);

  int s6 = sock(AF_INET6);
  l = sizeof v;
  ASSERT_EQ(api().getsockopt(s6, IPPROTO_IPV6, IPV6_V6ONLY, &v, &l), 0);
  EXPECT_EQ(v, 0);
  ASSERT_EQ(api().getsockopt(s6, SOL_SOCKET, SO_DOMAIN, &v, &l), 0);
  EXPECT_EQ(v, AF_INET6);
  EXPECT_EQ(fails(api().getsockopt(s6, 1000, 1, &v, &l)), ENOPROTOOPT);

  // A connected loopback socket reports the autotuned buffer and the loopback segment size.
  int lis = listener();
  const auto [c0, srv0] = pair(lis);
  const int c = c0;
  const int srv = srv0;
  socklen_t cl = sizeof v;
  ASSERT_EQ(api().getsockopt(c, SOL_SOCKET, SO_SNDBUF, &v, &cl), 0);
  EXPECT_EQ(v, 3939840);
  ASSERT_EQ(api().getsockopt(c, IPPROTO_TCP, TCP_MAXSEG, &v, &cl), 0);
  EXPECT_EQ(v, 32741);
  ASSERT_EQ(api().getsockopt(srv, IPPROTO_TCP, TCP_MAXSEG, &v, &cl), 0);
  EXPECT_EQ(v, 32768);
  // Accepted sockets inherit the listener's options.
  int lo = sock();
  setopt(lo, SO_KEEPALIVE, 1);
  ASSERT_EQ(api().listen(lo, 4), 0);
  const int s2 = pair(lo).second;
  ASSERT_EQ(api().getsockopt(s2, SOL_SOCKET, SO_KEEPALIVE, &v, &cl), 0);
  EXPECT_EQ(v, 1);
}

TEST_P(InetLoopback, EdgeTriggeredWakeUps) {
  int l = listener();
  int ep = track(api().epoll_create1(0));
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u32 = 9;
  ASSERT_EQ(api().epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev), 0);
  epoll_event out[4];
  int c = connect_to(l);
  settle();
  ASSERT_EQ(api().epoll_wait(ep, out, 4, 0), 1);  // the connection's edge on the listener
  EXPECT_EQ(out[0].data.u32, 9u);
  connect_to(l);
  settle();
  ASSERT_EQ(api().epoll_wait(ep, out, 4, 0), 1);  // every new connection is an edge
  int s = track(api().accept(l, nullptr, nullptr));
  ASSERT_EQ(api().fcntl(s, F_SETFL, O_NONBLOCK), 0);
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u32 = 1;
  ASSERT_EQ(api().epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev), 0);
  ev.data.u32 = 2;
  ASSERT_EQ(api().epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev), 0);
  ASSERT_EQ(api().epoll_wait(ep, out, 4, 0), 2);
  ASSERT_EQ(api().write(c, "a", 1), 1);
  settle();
  ASSERT_EQ(api().epoll_wait(ep, out, 4, 0), 1);
  EXPECT_EQ(out[0].data.u32, 2u);
  EXPECT_EQ(out[0].events, static_cast<unsigned>(EPOLLIN | EPOLLOUT));
  ASSERT_EQ(api().write(c, "a", 1), 1);  // unread data, a new edge
  settle();
  ASSERT_EQ(api().epoll_wait(ep, out, 4, 0), 1);
  char b[4];
  ASSERT_EQ(api().read(s, b, 1), 1);  // reading wakes nobody (the writer had room)
  settle();
  EXPECT_EQ(api().epoll_wait(ep, out, 4, 0), 0);
  ASSERT_EQ(api().write(c, "", 0), 0);
  settle();
  EXPECT_EQ(api().epoll_wait(ep, out, 4, 0), 0);
  ASSERT_EQ(api().shutdown(c, SHUT_WR), 0);  // the FIN, and the caller's own state change
  settle();
  ASSERT_EQ(api().epoll_wait(ep, out, 4, 0), 2);
  for (int i = 0; i < 2; ++i) {
    if (out[i].data.u32 == 1) {
      EXPECT_EQ(out[i].events, static_cast<unsigned>(EPOLLOUT));
    } else {
      EXPECT_EQ(out[i].events, static_cast<unsigned>(EPOLLIN | EPOLLOUT | EPOLLRDHUP));
    }
  }
  close_fd(s);  // with one byte unread: a reset
  settle();
  ASSERT_EQ(api().epoll_wait(ep, out, 4, 0), 1);
  EXPECT_EQ(out[0].events,
            static_cast<unsigned>(EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLHUP | EPOLLERR));
}

TEST_P(InetLoopback, OutDropsWhenThePeerDoesNotRead) {
  int l = listener();
  const auto [c0, s0] = pair(l);
  const int c = c0;
  const int s = s0;
  ASSERT_EQ(api().fcntl(c, F_SETFL, O_NONBLOCK), 0);
  std::vector<char> buf(1000, 'x');
  long total = 0;
  long drop = -1;
  for (;;) {
    ssize_t r = api().write(c, buf.data(), buf.size());
    if (r < 0) {
      ASSERT_EQ(errno, EAGAIN);
      break;
    }
    total += r;
    pollfd p{c, POLLOUT, 0};
    api().poll(&p, 1, 0);
    if (drop < 0 && (p.revents & POLLOUT) == 0) {
      drop = total;
    }
  }
  // 2/3 of the autotuned 3939840-byte send buffer (uepoll reproduces the kernel's value).
  if (api().is_kernel) {
    EXPECT_NEAR(drop, 2622000, 100000);
  } else {
    EXPECT_EQ(drop, 2622000);
  }
  EXPECT_GE(total, 3800000);
  // The kernel's total moves with its receive-buffer autotuning under load (4219632 seen with
  // ThreadSanitizer's load); uepoll's limits are fixed.
  EXPECT_LE(total, api().is_kernel ? 4500000 : 4100000);
  // Draining brings EPOLLOUT (and an edge) back.
  std::vector<char> sink(65536);
  long got = 0;
  for (;;) {
    pollfd p{c, POLLOUT, 0};
    api().poll(&p, 1, 0);
    if ((p.revents & POLLOUT) != 0) {
      break;
    }
    ssize_t r = api().recv(s, sink.data(), sink.size(), MSG_DONTWAIT);
    if (r > 0) {
      got += r;
    } else {
      settle();
    }
    ASSERT_LT(got, total);
  }
  EXPECT_GT(got, 0);
}

TEST_P(InetLoopback, BacklogBoundsTheAcceptQueue) {
  for (int backlog : {0, 1, 3}) {
    SCOPED_TRACE(backlog);
    int l = listener(backlog);
    std::vector<int> clients;
    for (int i = 0; i < backlog + 3; ++i) {
      clients.push_back(connect_to(l, SOCK_NONBLOCK));
    }
    settle();
    settle();
    for (int i = 0; i < backlog + 3; ++i) {
      // backlog+1 connections complete; the others wait (SYN_SENT: nothing to report).
      EXPECT_EQ(mask(clients[i]), i <= backlog ? kEstablished : 0u) << "client " << i;
    }
    EXPECT_EQ(mask(l), kListenerReady);
    char b[2];
    EXPECT_EQ(fails(api().recv(clients.back(), b, 1, 0)), EAGAIN);
    EXPECT_EQ(fails(api().send(clients.back(), "x", 1, 0)), EAGAIN);
    sockaddr_in a = addr4("127.0.0.1", port_of(l));
    EXPECT_EQ(fails(api().connect(clients.back(), sa(a), sizeof a)), EALREADY);
    for (int fd : clients) {
      close_fd(fd);
    }
    close_fd(l);
  }
}

TEST_P(InetLoopback, ReuseportSpreadsConnections) {
  int first = sock();
  setopt(first, SO_REUSEPORT, 1);
  sockaddr_in a = addr4("127.0.0.1", 0);
  ASSERT_EQ(api().bind(first, sa(a), sizeof a), 0);
  a.sin_port = htons(static_cast<std::uint16_t>(port_of(first)));
  std::vector<int> ls{first};
  for (int i = 0; i < 3; ++i) {
    int l = sock();
    setopt(l, SO_REUSEPORT, 1);
    ASSERT_EQ(api().bind(l, sa(a), sizeof a), 0);
    ls.push_back(l);
  }
  for (int l : ls) {
    ASSERT_EQ(api().listen(l, 128), 0);
    ASSERT_EQ(api().fcntl(l, F_SETFL, O_NONBLOCK), 0);
  }
  std::vector<int> counts(ls.size(), 0);
  for (int i = 0; i < 120; ++i) {
    int c = sock();
    ASSERT_EQ(api().connect(c, sa(a), sizeof a), 0);
    settle();
    int hit = 0;
    for (std::size_t k = 0; k < ls.size(); ++k) {
      int s = api().accept(ls[k], nullptr, nullptr);
      if (s >= 0) {
        ++counts[k];
        ++hit;
        api().close(s);
      }
    }
    EXPECT_EQ(hit, 1);
    close_fd(c);
  }
  for (std::size_t k = 0; k < ls.size(); ++k) {
    EXPECT_GT(counts[k], 5) << "listener " << k;
  }
}

// --- blocking calls, on both backends ---

TEST_P(InetLoopback, BlockingAcceptWakesOnConnect) {
  int l = listener();
  long r = run_blocked([&] { return static_cast<long>(api().accept(l, nullptr, nullptr)); },
                       [&] { connect_to(l); });
  ASSERT_GE(r, 0);
  track(static_cast<int>(r));
}

TEST_P(InetLoopback, BlockingRecvWakesOnDataAndOnFin) {
  int l = listener();
  const auto [c0, s0] = pair(l);
  const int c = c0;
  const int s = s0;
  char b[8];
  long r = run_blocked([&] { return static_cast<long>(api().recv(s, b, sizeof b, 0)); },
                       [&] { ASSERT_EQ(api().write(c, "data", 4), 4); });
  EXPECT_EQ(r, 4);
  r = run_blocked([&] { return static_cast<long>(api().recv(s, b, sizeof b, 0)); },
                  [&] { ASSERT_EQ(api().shutdown(c, SHUT_WR), 0); });
  EXPECT_EQ(r, 0);
}

TEST_P(InetLoopback, BlockedWriterGetsTheReset) {
  int l = listener();
  const auto [c0, s0] = pair(l);
  const int c = c0;
  const int s = s0;
  ASSERT_EQ(api().fcntl(c, F_SETFL, O_NONBLOCK), 0);
  // Until a pass after settling writes nothing: the kernel's receiver may grow its window
  // (buffer autotuning) for a while after the first full pass.
  std::vector<char> buf(65536, 'f');
  for (int pass = 0, wrote = 1; wrote > 0 && pass < 100; ++pass) {
    wrote = 0;
    while (api().write(c, buf.data(), buf.size()) > 0) {
      ++wrote;
    }
    settle();
  }
  ASSERT_EQ(api().fcntl(c, F_SETFL, 0), 0);
  int before = sigpipes_so_far();
  // The reader closes with everything unread: a reset, reported by the blocked write itself.
  long r =
      run_blocked([&] { return static_cast<long>(api().write(c, "x", 1)); }, [&] { close_fd(s); });
  EXPECT_EQ(r, -1);
  EXPECT_EQ(errno, ECONNRESET);
  EXPECT_EQ(sigpipes_so_far(), before);
}

TEST_P(InetLoopback, EdgeWhenAFullSendBufferDrains) {
  int l = listener();
  const auto [c0, s0] = pair(l);
  const int c = c0;
  const int s = s0;
  ASSERT_EQ(api().fcntl(c, F_SETFL, O_NONBLOCK), 0);
  int ep = track(api().epoll_create1(0));
  epoll_event ev{};
  ev.events = EPOLLOUT | EPOLLET;
  ASSERT_EQ(api().epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev), 0);
  epoll_event out[1];
  ASSERT_EQ(api().epoll_wait(ep, out, 1, 0), 1);
  std::vector<char> buf(65536, 'f');
  while (api().write(c, buf.data(), buf.size()) > 0) {
  }
  EXPECT_EQ(api().epoll_wait(ep, out, 1, 0), 0);
  long got = 0;
  int n = 0;
  while (n == 0 && got < 8000000) {
    ssize_t r = api().recv(s, buf.data(), buf.size(), MSG_DONTWAIT);
    if (r > 0) {
      got += r;
    } else {
      settle();
    }
    n = api().epoll_wait(ep, out, 1, 0);
  }
  EXPECT_EQ(n, 1);
  EXPECT_EQ(out[0].events, static_cast<unsigned>(EPOLLOUT));
}

TEST_P(InetLoopback, DataSentBeforeAcceptIsDelivered) {
  int l = listener();
  int c = connect_to(l);
  ASSERT_EQ(api().write(c, "early", 5), 5);
  ASSERT_EQ(api().shutdown(c, SHUT_WR), 0);
  settle();
  int s = track(api().accept(l, nullptr, nullptr));
  EXPECT_EQ(mask(s), kPeerFin);
  char b[8];
  EXPECT_EQ(api().read(s, b, sizeof b), 5);
  EXPECT_EQ(api().read(s, b, sizeof b), 0);
}

TEST_P(InetLoopback, ShutdownOfAListenerFailsBlockedAccept) {
  int l = listener();
  long r = run_blocked([&] { return static_cast<long>(api().accept(l, nullptr, nullptr)); },
                       [&] { ASSERT_EQ(api().shutdown(l, SHUT_RD), 0); });
  EXPECT_EQ(r, -1);
  EXPECT_EQ(errno, EINVAL);
  int v = 1;
  socklen_t len = sizeof v;
  ASSERT_EQ(api().getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &v, &len), 0);
  EXPECT_EQ(v, 0);
  EXPECT_EQ(api().listen(l, 4), 0);  // it may listen again
  pair(l);
}

TEST_P(InetLoopback, SignalInterruptsBlockedAcceptAndRecv) {
  int l = listener();
  const int s = pair(l).second;
  for (int which = 0; which < 2; ++which) {
    std::atomic<bool> done{false};
    long r = 0;
    int err = 0;
    std::thread t([&] {
      char b[4];
      errno = 0;
      r = which == 0 ? api().accept(l, nullptr, nullptr) : api().recv(s, b, sizeof b, 0);
      err = errno;
      done = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    while (!done) {
      pthread_kill(t.native_handle(), SIGUSR1);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    t.join();
    EXPECT_EQ(r, -1);
    EXPECT_EQ(err, EINTR);
  }
}

TEST_P(InetLoopback, AcceptTimeout) {
  int l = listener();
  timeval tv{0, 30'000};
  ASSERT_EQ(api().setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(fails(api().accept(l, nullptr, nullptr)), EAGAIN);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(25));
}

TEST_P(InetLoopback, OneConnectionWakesOneOfTwoBlockedAcceptors) {
  int l = listener();
  std::atomic<int> accepted{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> ts;
  std::vector<int> got(2, -1);
  for (int i = 0; i < 2; ++i) {
    ts.emplace_back([&, i] {
      int fd = api().accept(l, nullptr, nullptr);
      got[i] = fd;
      if (fd >= 0) {
        accepted.fetch_add(1);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  connect_to(l);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(accepted.load(), 1);
  connect_to(l);
  for (int i = 0; i < 200 && accepted.load() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(accepted.load(), 2);
  for (auto& t : ts) {
    t.join();
  }
  for (int fd : got) {
    if (fd >= 0) {
      track(fd);
    }
  }
  (void)stop;
}

TEST_P(InetLoopback, ExclusiveListenerWakesOneOfTwoInstances) {
  int l = listener();
  int eps[2];
  for (int& ep : eps) {
    ep = track(api().epoll_create1(0));
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    ASSERT_EQ(api().epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev), 0);
  }
  std::atomic<int> woken{0};
  std::atomic<int> started{0};
  std::vector<std::thread> ts;
  for (int ep : eps) {
    ts.emplace_back([&, ep] {
      epoll_event out[1];
      started.fetch_add(1);
      if (api().epoll_wait(ep, out, 1, 600) == 1) {
        woken.fetch_add(1);
      }
    });
  }
  // Both must be asleep before the connection arrives: the listener stays readable (nobody
  // accepts), so a late epoll_wait would report it whatever the wake-up did.
  while (started.load() < 2) {
    std::this_thread::yield();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  connect_to(l);
  for (auto& t : ts) {
    t.join();
  }
  EXPECT_EQ(woken.load(), 1);
}

}  // namespace
