// In-process AF_INET / AF_INET6 stream sockets, uepoll only: what the kernel does differently by
// design (a full backlog) and what needs uepoll's private address space (stress, leaks). The
// scenarios both backends share are tests/conformance/inet_loopback_test.cpp.
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
#include <string>
#include <thread>
#include <vector>

#include "support/backend.hpp"
#include "support/inet.hpp"
#include "uepoll/uepoll.h"

namespace {

using namespace uepoll_test;  // NOLINT: the tests' own helpers

// Writers here race closes: an EPIPE must fail a check, not kill the test binary with SIGPIPE.
const bool g_sigpipe_ignored = [] {
  signal(SIGPIPE, SIG_IGN);
  return true;
}();

int u_listener(int backlog, int* port) {
  int l = uepoll_socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = addr4("127.0.0.1", 0);
  EXPECT_EQ(uepoll_bind(l, sa(a), sizeof a), 0);
  EXPECT_EQ(uepoll_listen(l, backlog), 0);
  sockaddr_in name{};
  socklen_t len = sizeof name;
  EXPECT_EQ(uepoll_getsockname(l, reinterpret_cast<sockaddr*>(&name), &len), 0);
  *port = ntohs(name.sin_port);
  return l;
}

unsigned u_mask(int fd) {
  pollfd p{fd, 0x7fff, 0};
  uepoll_poll(&p, 1, 0);
  return static_cast<unsigned short>(p.revents);
}

// Linux retries a SYN dropped by a full backlog after 1 s; uepoll completes the parked
// connection as soon as accept() makes room.
TEST(InetStreamUepoll, ParkedConnectCompletesWhenAcceptMakesRoom) {
  int port;
  int l = u_listener(0, &port);
  sockaddr_in a = addr4("127.0.0.1", port);
  int c1 = uepoll_socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(uepoll_connect(c1, sa(a), sizeof a), 0);  // fills the queue (backlog 0: one)
  int c2 = uepoll_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  errno = 0;
  ASSERT_EQ(uepoll_connect(c2, sa(a), sizeof a), -1);
  EXPECT_EQ(errno, EINPROGRESS);
  EXPECT_EQ(u_mask(c2), 0u);
  int c3 = uepoll_socket(AF_INET, SOCK_STREAM, 0);
  std::atomic<int> c3_result{1};
  std::thread blocked([&] { c3_result = uepoll_connect(c3, sa(a), sizeof a); });
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(c3_result.load(), 1);  // still waiting
  int s1 = uepoll_accept(l, nullptr, nullptr);
  ASSERT_GE(s1, 0);
  EXPECT_EQ(u_mask(c2), kEstablished);  // promoted at once
  EXPECT_EQ(uepoll_connect(c2, sa(a), sizeof a), 0);
  int s2 = uepoll_accept(l, nullptr, nullptr);
  ASSERT_GE(s2, 0);
  blocked.join();
  EXPECT_EQ(c3_result.load(), 0);
  int s3 = uepoll_accept(l, nullptr, nullptr);
  ASSERT_GE(s3, 0);
  ASSERT_EQ(uepoll_write(c3, "p", 1), 1);
  char b;
  EXPECT_EQ(uepoll_read(s3, &b, 1), 1);
  for (int fd : {c1, c2, c3, s1, s2, s3, l}) {
    uepoll_close(fd);
  }
}

TEST(InetStreamUepoll, ListenerCloseRefusesParkedConnects) {
  int port;
  int l = u_listener(0, &port);
  sockaddr_in a = addr4("127.0.0.1", port);
  int c1 = uepoll_socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(uepoll_connect(c1, sa(a), sizeof a), 0);
  int c2 = uepoll_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  ASSERT_EQ(uepoll_connect(c2, sa(a), sizeof a), -1);
  int c3 = uepoll_socket(AF_INET, SOCK_STREAM, 0);
  std::atomic<int> c3_result{1};
  int c3_errno = 0;
  std::thread blocked([&] {
    c3_result = uepoll_connect(c3, sa(a), sizeof a);
    c3_errno = errno;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  uepoll_close(l);
  blocked.join();
  EXPECT_EQ(c3_result.load(), -1);
  EXPECT_EQ(c3_errno, ECONNREFUSED);
  EXPECT_EQ(u_mask(c3), kFresh);
  EXPECT_EQ(u_mask(c2), kReset);
  int e = 0;
  socklen_t len = sizeof e;
  ASSERT_EQ(uepoll_getsockopt(c2, SOL_SOCKET, SO_ERROR, &e, &len), 0);
  EXPECT_EQ(e, ECONNREFUSED);
  ASSERT_EQ(uepoll_getsockopt(c1, SOL_SOCKET, SO_ERROR, &e, &len), 0);
  EXPECT_EQ(e, ECONNRESET);  // it was queued: reset
  for (int fd : {c1, c2, c3}) {
    uepoll_close(fd);
  }
}

TEST(InetStreamUepoll, ClosingAParkedClientLeavesTheQueueConsistent) {
  int port;
  int l = u_listener(0, &port);
  sockaddr_in a = addr4("127.0.0.1", port);
  int c1 = uepoll_socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(uepoll_connect(c1, sa(a), sizeof a), 0);
  std::vector<int> parked;
  for (int i = 0; i < 4; ++i) {
    int c = uepoll_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    ASSERT_EQ(uepoll_connect(c, sa(a), sizeof a), -1);
    parked.push_back(c);
  }
  uepoll_close(parked[0]);
  uepoll_close(parked[2]);
  int s1 = uepoll_accept(l, nullptr, nullptr);
  EXPECT_EQ(u_mask(parked[1]), kEstablished);
  EXPECT_EQ(u_mask(parked[3]), 0u);
  int s2 = uepoll_accept(l, nullptr, nullptr);
  EXPECT_EQ(u_mask(parked[3]), kEstablished);
  ASSERT_EQ(uepoll_shutdown(parked[3], SHUT_RDWR), 0);
  for (int fd : {c1, parked[1], parked[3], s1, s2, l}) {
    uepoll_close(fd);
  }
}

TEST(InetStreamUepoll, ConnectAcceptCloseChurnFromManyThreads) {
  int port;
  int l = u_listener(64, &port);
  ASSERT_EQ(uepoll_fcntl(l, F_SETFL, O_NONBLOCK), 0);
  sockaddr_in a = addr4("127.0.0.1", port);
  constexpr int kClients = 4;
  constexpr int kPerClient = 1500;
  std::atomic<int> served{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> servers;
  for (int i = 0; i < 2; ++i) {
    servers.emplace_back([&] {
      int ep = uepoll_epoll_create1(0);
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLEXCLUSIVE;
      ASSERT_EQ(uepoll_epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev), 0);
      while (!stop) {
        epoll_event out[1];
        if (uepoll_epoll_wait(ep, out, 1, 20) < 1) {
          continue;
        }
        for (;;) {
          int s = uepoll_accept4(l, nullptr, nullptr, 0);
          if (s < 0) {
            break;
          }
          char b[16];
          ssize_t r = uepoll_read(s, b, sizeof b);  // blocking: waits for the client's ping
          if (r > 0) {
            uepoll_write(s, b, static_cast<size_t>(r));
          }
          uepoll_close(s);
          served.fetch_add(1);
        }
      }
      uepoll_close(ep);
    });
  }
  std::vector<std::thread> clients;
  std::atomic<int> echoed{0};
  for (int t = 0; t < kClients; ++t) {
    clients.emplace_back([&] {
      for (int i = 0; i < kPerClient; ++i) {
        int c = uepoll_socket(AF_INET, SOCK_STREAM, 0);
        ASSERT_GE(c, 0);
        ASSERT_EQ(uepoll_connect(c, sa(a), sizeof a), 0) << errno;
        ASSERT_EQ(uepoll_write(c, "ping", 4), 4);
        char b[8];
        if (uepoll_read(c, b, sizeof b) == 4) {
          echoed.fetch_add(1);
        }
        uepoll_close(c);
      }
    });
  }
  for (auto& t : clients) {
    t.join();
  }
  for (int i = 0; i < 500 && served.load() < kClients * kPerClient; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop = true;
  for (auto& t : servers) {
    t.join();
  }
  EXPECT_EQ(served.load(), kClients * kPerClient);
  EXPECT_EQ(echoed.load(), kClients * kPerClient);
  uepoll_close(l);
}

// connect() reads the port's listeners without a lock while listeners on the same port come and
// go: a connect to the listener that stays must always find it, one to the listeners that come
// and go either connects or is refused, and once everything is closed nothing holds the port.
TEST(InetStreamUepoll, ListenersComeAndGoWhileClientsConnect) {
  int port;
  int stable = u_listener(4096, &port);
  ASSERT_EQ(uepoll_fcntl(stable, F_SETFL, O_NONBLOCK), 0);
  std::atomic<bool> stop{false};
  std::atomic<int> accepted{0};
  std::thread server([&] {
    while (!stop) {
      int s = uepoll_accept4(stable, nullptr, nullptr, 0);
      if (s >= 0) {
        uepoll_close(s);
        accepted.fetch_add(1);
      }
    }
  });
  std::atomic<int> churned{0};
  // Listeners on 127.0.0.2, same port; each accepts what it got and closes those sockets after
  // itself, so that their ports move from its queue to the slot (Listener::stop) first.
  std::thread churner([&] {
    sockaddr_in a = addr4("127.0.0.2", port);
    std::vector<int> children;
    while (!stop) {
      int l = uepoll_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      // A socket reset by the last close still holds the port while a client's call in flight
      // holds the socket (docs/deviations.md, "No TIME_WAIT"): a moment at most.
      int bound = -1;
      for (int tries = 0; tries < 100000 && bound != 0; ++tries) {
        bound = uepoll_bind(l, sa(a), sizeof a);
        ASSERT_TRUE(bound == 0 || errno == EADDRINUSE) << errno;
        std::this_thread::yield();
      }
      ASSERT_EQ(bound, 0) << "the port stayed held";
      ASSERT_EQ(uepoll_listen(l, 64), 0);
      for (int s; (s = uepoll_accept4(l, nullptr, nullptr, 0)) >= 0;) {
        children.push_back(s);
      }
      uepoll_close(l);
      for (int s : children) {
        uepoll_close(s);
      }
      children.clear();
      churned.fetch_add(1);
    }
  });
  constexpr int kPerClient = 2000;
  std::atomic<int> refused{0};
  std::vector<std::thread> clients;
  for (const char* ip : {"127.0.0.1", "127.0.0.2"}) {
    clients.emplace_back([&, ip] {
      const bool to_stable = std::strcmp(ip, "127.0.0.1") == 0;
      sockaddr_in a = addr4(ip, port);
      for (int i = 0; i < kPerClient; ++i) {
        int c = uepoll_socket(AF_INET, SOCK_STREAM, 0);
        ASSERT_GE(c, 0);
        if (uepoll_connect(c, sa(a), sizeof a) != 0) {
          ASSERT_FALSE(to_stable) << "the listener that stays was not found, errno " << errno;
          ASSERT_EQ(errno, ECONNREFUSED);
          refused.fetch_add(1);
        }
        uepoll_close(c);
      }
    });
  }
  for (auto& t : clients) {
    t.join();
  }
  for (int i = 0; i < 500 && accepted.load() < kPerClient; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop = true;
  server.join();
  churner.join();
  EXPECT_EQ(accepted.load(), kPerClient);
  EXPECT_GT(churned.load(), 0);
  std::printf("%d listeners came and went, %d connects to them refused\n", churned.load(),
              refused.load());
  uepoll_close(stable);
  int n = uepoll_socket(AF_INET, SOCK_STREAM, 0);  // no SO_REUSEADDR: nothing may hold the port
  sockaddr_in any = addr4("0.0.0.0", port);
  EXPECT_EQ(uepoll_bind(n, sa(any), sizeof any), 0) << errno;
  uepoll_close(n);
}

// An accepted socket that disconnects (AF_UNSPEC) keeps the port it was accepted on and may
// listen there (docs/deviations.md: Linux answers EINVAL, or picks another port): next to its
// listener only with SO_REUSEPORT on both, alone once the listener is closed. Its binding moves
// from the listener's queue to the port's slot first (Listener::return_port); afterwards the
// port's lists must be intact: closing everything frees the port.
TEST(InetStreamUepoll, AnAcceptedSocketThatDisconnectsMayListenOnItsPort) {
  for (const bool reuseport : {false, true}) {
    for (const bool listener_closed : {false, true}) {
      SCOPED_TRACE(std::string(reuseport ? "SO_REUSEPORT, " : "") +
                   (listener_closed ? "listener closed" : "listener open"));
      int l = uepoll_socket(AF_INET, SOCK_STREAM, 0);
      const int one = reuseport ? 1 : 0;
      ASSERT_EQ(uepoll_setsockopt(l, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one), 0);
      sockaddr_in a = addr4("127.0.0.1", 0);
      ASSERT_EQ(uepoll_bind(l, sa(a), sizeof a), 0);
      ASSERT_EQ(uepoll_listen(l, 4), 0);
      socklen_t len = sizeof a;
      ASSERT_EQ(uepoll_getsockname(l, reinterpret_cast<sockaddr*>(&a), &len), 0);
      int c = uepoll_socket(AF_INET, SOCK_STREAM, 0);
      ASSERT_EQ(uepoll_connect(c, sa(a), sizeof a), 0);
      int s = uepoll_accept4(l, nullptr, nullptr, 0);
      ASSERT_GE(s, 0);
      if (listener_closed) {
        uepoll_close(l);
      }
      sockaddr unspec{};
      unspec.sa_family = AF_UNSPEC;
      ASSERT_EQ(uepoll_connect(s, &unspec, sizeof unspec), 0);
      const int expected = reuseport || listener_closed ? 0 : EADDRINUSE;
      EXPECT_EQ(uepoll_listen(s, 4) == 0 ? 0 : errno, expected);
      int n = uepoll_socket(AF_INET, SOCK_STREAM, 0);  // the port is taken either way
      EXPECT_EQ(uepoll_bind(n, sa(a), sizeof a), -1);
      EXPECT_EQ(errno, EADDRINUSE);
      uepoll_close(n);
      uepoll_close(s);
      uepoll_close(c);
      if (!listener_closed) {
        uepoll_close(l);
      }
      int m = uepoll_socket(AF_INET, SOCK_STREAM, 0);
      EXPECT_EQ(uepoll_bind(m, sa(a), sizeof a), 0) << "errno " << errno;
      uepoll_close(m);
    }
  }
}

TEST(InetStreamUepoll, BulkTransferWithBlockingCalls) {
  int port;
  int l = u_listener(4, &port);
  sockaddr_in a = addr4("127.0.0.1", port);
  int c = uepoll_socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(uepoll_connect(c, sa(a), sizeof a), 0);
  int s = uepoll_accept(l, nullptr, nullptr);
  constexpr std::size_t kTotal = 24 << 20;  // several times the buffer: the writer blocks
  std::thread writer([&] {
    std::vector<unsigned char> buf(100003);
    std::size_t sent = 0;
    while (sent < kTotal) {
      std::size_t n = std::min(buf.size(), kTotal - sent);
      for (std::size_t i = 0; i < n; ++i) {
        buf[i] = static_cast<unsigned char>((sent + i) % 253);
      }
      ssize_t r = uepoll_send(c, buf.data(), n, 0);
      ASSERT_GT(r, 0);
      sent += static_cast<std::size_t>(r);
    }
    uepoll_close(c);
  });
  std::vector<unsigned char> buf(70000);
  std::size_t got = 0;
  bool ok = true;
  for (;;) {
    ssize_t r = uepoll_recv(s, buf.data(), 1 + (got * 7) % buf.size(), 0);
    ASSERT_GE(r, 0);
    if (r == 0) {
      break;
    }
    for (ssize_t i = 0; i < r && ok; ++i) {
      ok = buf[i] == static_cast<unsigned char>((got + i) % 253);
    }
    got += static_cast<std::size_t>(r);
  }
  writer.join();
  EXPECT_TRUE(ok);
  EXPECT_EQ(got, kTotal);
  uepoll_close(s);
  uepoll_close(l);
}

TEST(InetStreamUepoll, SeparateProcessesShareTheAddressSpace) {
  // The address space is per OS process: a listener in the C API's process is reachable from
  // a second uepoll::Process through the same ports.
  int port;
  int l = u_listener(4, &port);
  int c = uepoll_socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 a = addr6("::ffff:127.0.0.1", port);
  ASSERT_EQ(uepoll_connect(c, sa(a), sizeof a), 0);
  sockaddr_in peer{};
  socklen_t len = sizeof peer;
  int s = uepoll_accept(l, reinterpret_cast<sockaddr*>(&peer), &len);
  ASSERT_GE(s, 0);
  EXPECT_EQ(peer.sin_family, AF_INET);  // an AF_INET listener sees the mapped client as IPv4
  EXPECT_EQ(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
  for (int fd : {c, s, l}) {
    uepoll_close(fd);
  }
}

TEST(InetStreamUepoll, UnreachableAddresses) {
  int c = uepoll_socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = addr4("10.0.0.1", 80);
  errno = 0;
  EXPECT_EQ(uepoll_connect(c, sa(a), sizeof a), -1);
  EXPECT_EQ(errno, ENETUNREACH);
  int c6 = uepoll_socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 a6 = addr6("2001:db8::1", 80);
  errno = 0;
  EXPECT_EQ(uepoll_connect(c6, sa(a6), sizeof a6), -1);
  EXPECT_EQ(errno, ENETUNREACH);
  uepoll_close(c);
  uepoll_close(c6);
}

}  // namespace
