// Allocation failures on every allocating path: each call below is made with its n-th
// allocation failing, for n = 1, 2, ... until the call no longer allocates that often. Every
// failing call must return ENOMEM (ENOBUFS for a connect) and leave everything as
// it was: live files, instances and items, the max_user_watches count, the lowest free
// descriptor, and what the instance reports. Runs in builds with UEPOLL_FAULT_INJECTION.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <thread>
#include <utility>

#include "objects/inet/listener.hpp"
#include "sync/fault_injection.hpp"
#include "uepoll/process.hpp"
#include "uepoll/stats.hpp"

namespace {

using uepoll::Process;

struct State {
  uepoll::stats::Snapshot live;
  int lowest_free_fd;
  int ready;  // events the instance under test reports (level-triggered: not consumed)
  bool operator==(const State& o) const {
    return live.files == o.live.files && live.instances == o.live.instances &&
           live.watches == o.live.watches && live.user_watches == o.live.user_watches &&
           lowest_free_fd == o.lowest_free_fd && ready == o.ready;
  }
};

class FaultInjection : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!uepoll::testing::fail_nth_allocation(0) || !uepoll::stats::enabled()) {
      GTEST_SKIP() << "needs UEPOLL_FAULT_INJECTION and UEPOLL_STATS (debug/sanitizer presets)";
    }
    ep_ = p_.epoll_create1(0).value();
  }

  State capture() {
    State s;
    s.live = uepoll::stats::quiesce_and_read();
    int probe = p_.dup(ep_).value();
    s.lowest_free_fd = probe;
    EXPECT_TRUE(p_.close(probe));
    epoll_event ev[8];
    s.ready = p_.epoll_wait(ep_, ev, 8, 0).value();
    return s;
  }

  // Runs `call` with its n-th allocation failing, for every n until it succeeds untouched.
  // `call` returns 0 or an errno; `undo` reverts a success.
  void each_failure(const std::function<int()>& call, const std::function<void()>& undo,
                    bool allocates = true) {
    int failures = 0;
    for (long n = 1; n < 1000; ++n) {
      State before = capture();
      ASSERT_TRUE(uepoll::testing::fail_nth_allocation(n));
      int error = call();
      const bool injected = !uepoll::testing::allocation_failure_pending();
      uepoll::testing::fail_nth_allocation(0);
      if (error == 0) {
        undo();
        if (!injected) {
          EXPECT_EQ(failures > 0, allocates) << "allocations that failed: " << failures;
          std::printf("%d faults injected\n", failures);
          return;  // the call made fewer than n allocations: every one has been tried
        }
        continue;  // a failure uepoll absorbs (a hash table that stays small, an RCU batch)
      }
      ++failures;
      EXPECT_TRUE(injected) << "failed without an injected failure: errno " << error;
      // ENOMEM; a connect that cannot allocate its connection says ENOBUFS, as Linux's TCP does.
      EXPECT_TRUE(error == ENOMEM || error == ENOBUFS) << "allocation " << n << ": errno " << error;
      EXPECT_TRUE(capture() == before) << "state changed after failing allocation " << n;
    }
    FAIL() << "the call never stopped allocating";
  }

  Process p_;
  int ep_ = -1;
};

int err(const uepoll::Result<int>& r) { return r ? 0 : r.error(); }
int err(const uepoll::Result<void>& r) { return r ? 0 : r.error(); }

TEST_F(FaultInjection, EpollCreate) {
  int fd = -1;
  each_failure(
      [&] {
        auto r = p_.epoll_create1(0);
        fd = r ? *r : -1;
        return err(r);
      },
      [&] { ASSERT_TRUE(p_.close(fd)); });
}

TEST_F(FaultInjection, Eventfd) {
  int fd = -1;
  each_failure(
      [&] {
        auto r = p_.eventfd(1, 0);
        fd = r ? *r : -1;
        return err(r);
      },
      [&] { ASSERT_TRUE(p_.close(fd)); });
}

TEST_F(FaultInjection, PipeAndSocketpair) {
  int fds[2];
  each_failure([&] { return err(p_.pipe2(fds, O_NONBLOCK)); },
               [&] {
                 ASSERT_TRUE(p_.close(fds[0]));
                 ASSERT_TRUE(p_.close(fds[1]));
               });
  each_failure([&] { return err(p_.socketpair(AF_UNIX, SOCK_STREAM, 0, fds)); },
               [&] {
                 ASSERT_TRUE(p_.close(fds[0]));
                 ASSERT_TRUE(p_.close(fds[1]));
               });
}

TEST_F(FaultInjection, Dup) {
  int fd = -1;
  // Within the table's first block of slots a dup allocates nothing...
  each_failure(
      [&] {
        auto r = p_.dup(ep_);
        fd = r ? *r : -1;
        return err(r);
      },
      [&] { ASSERT_TRUE(p_.close(fd)); }, /*allocates=*/false);
  // ...but one that needs a new block of the table does, like Linux's table expansion.
  each_failure(
      [&] {
        auto r = p_.fcntl(ep_, F_DUPFD, 1000);
        fd = r ? *r : -1;
        return err(r);
      },
      [&] { ASSERT_TRUE(p_.close(fd)); });
}

TEST_F(FaultInjection, AddOfAReadyFileAndOfAPipe) {
  int efd = p_.eventfd(1, 0).value();  // readable: a successful ADD makes it ready at once
  epoll_event ev{};
  ev.events = EPOLLIN;
  each_failure([&] { return err(p_.epoll_ctl(ep_, EPOLL_CTL_ADD, efd, &ev)); },
               [&] { ASSERT_TRUE(p_.epoll_ctl(ep_, EPOLL_CTL_DEL, efd, nullptr)); });
  int fds[2];
  ASSERT_TRUE(p_.pipe2(fds, O_NONBLOCK));
  ASSERT_TRUE(p_.write(fds[1], "x", 1));
  each_failure([&] { return err(p_.epoll_ctl(ep_, EPOLL_CTL_ADD, fds[0], &ev)); },
               [&] { ASSERT_TRUE(p_.epoll_ctl(ep_, EPOLL_CTL_DEL, fds[0], nullptr)); });
  ASSERT_TRUE(p_.close(efd));
  ASSERT_TRUE(p_.close(fds[0]));
  ASSERT_TRUE(p_.close(fds[1]));
}

TEST_F(FaultInjection, NestedAdd) {
  int inner = p_.epoll_create1(0).value();
  int efd = p_.eventfd(1, 0).value();
  epoll_event ev{};
  ev.events = EPOLLIN;
  ASSERT_TRUE(p_.epoll_ctl(inner, EPOLL_CTL_ADD, efd, &ev));
  each_failure([&] { return err(p_.epoll_ctl(ep_, EPOLL_CTL_ADD, inner, &ev)); },
               [&] { ASSERT_TRUE(p_.epoll_ctl(ep_, EPOLL_CTL_DEL, inner, nullptr)); });
  ASSERT_TRUE(p_.close(efd));
  ASSERT_TRUE(p_.close(inner));
}

// A nested ADD whose nesting check runs out of memory while another thread closes the file the
// inner instance watches: the check pins that file under the inner instance's mutex, and may
// hold its last reference, so no failure path may drop a pin under that mutex (the last put
// takes it again). In debug builds every reference drop checks that no instance mutex is held.
TEST_F(FaultInjection, FailingNestedAddRacesTheLastCloseOfAWatchedFile) {
  for (uepoll::LockMode mode : {uepoll::LockMode::kFine, uepoll::LockMode::kLegacy}) {
    Process p(mode);
    int failures = 0;
    for (int round = 0; round < 300; ++round) {
      int outer = p.epoll_create1(0).value();
      int inner = p.epoll_create1(0).value();
      int efd = p.eventfd(1, 0).value();
      epoll_event ev{};
      ev.events = EPOLLIN;
      ASSERT_TRUE(p.epoll_ctl(inner, EPOLL_CTL_ADD, efd, &ev));
      std::atomic<bool> go{false};
      std::thread closer([&] {
        while (!go.load()) {
        }
        for (int spin = round % 64; spin > 0; --spin) {
          __builtin_ia32_pause();
        }
        EXPECT_TRUE(p.close(efd));
      });
      ASSERT_TRUE(uepoll::testing::fail_nth_allocation(1 + round % 4));
      go = true;
      auto added = p.epoll_ctl(outer, EPOLL_CTL_ADD, inner, &ev);
      uepoll::testing::fail_nth_allocation(0);
      closer.join();
      if (!added) {
        EXPECT_EQ(added.error(), ENOMEM);
        ++failures;
      }
      ASSERT_TRUE(p.close(outer));
      ASSERT_TRUE(p.close(inner));
    }
    EXPECT_GT(failures, 0);
  }
}

TEST_F(FaultInjection, ConnectAndAccept) {
  int listener = p_.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0).value();
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_TRUE(p_.bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr));
  ASSERT_TRUE(p_.listen(listener, 16));
  socklen_t len = sizeof addr;
  ASSERT_TRUE(p_.getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len));
  int client = -1;
  each_failure(
      [&] {
        auto s = p_.socket(AF_INET, SOCK_STREAM, 0);
        if (!s) {
          return s.error();
        }
        client = *s;
        auto r = p_.connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        if (!r) {
          EXPECT_TRUE(p_.close(client));
        }
        return err(r);
      },
      [&] {
        ASSERT_TRUE(p_.close(client));
        auto server = p_.accept4(listener, nullptr, nullptr, 0);
        ASSERT_TRUE(server);
        ASSERT_TRUE(p_.close(*server));
      });
  // accept: a connection waits in the queue; a failed accept must leave it there.
  int c = p_.socket(AF_INET, SOCK_STREAM, 0).value();
  ASSERT_TRUE(p_.connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr));
  int server = -1;
  // The connection was built by connect(); accept only installs it (no allocation).
  each_failure(
      [&] {
        auto r = p_.accept4(listener, nullptr, nullptr, 0);
        server = r ? *r : -1;
        return err(r);
      },
      [&] {
        ASSERT_TRUE(p_.close(server));
        // Queue another connection for the next round.
        ASSERT_TRUE(p_.close(c));
        c = p_.socket(AF_INET, SOCK_STREAM, 0).value();
        ASSERT_TRUE(p_.connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr));
      },
      /*allocates=*/false);
  ASSERT_TRUE(p_.close(c));
  auto leftover = p_.accept4(listener, nullptr, nullptr, SOCK_NONBLOCK);
  if (leftover) {
    ASSERT_TRUE(p_.close(*leftover));
  }
  ASSERT_TRUE(p_.close(listener));
}

// A listener closed while its port's copy for connect() cannot be rebuilt (ports.hpp): the old
// copy stays published with the stopped listener in it, and a connect skips it for the next
// best one, here a wildcard listener of the same SO_REUSEPORT port.
TEST_F(FaultInjection, AListenerClosedWithoutMemoryIsSkippedByConnect) {
  auto listener_at = [&](const char* ip, int port) {
    int l = p_.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0).value();
    const int one = 1;
    EXPECT_TRUE(p_.setsockopt(l, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    inet_pton(AF_INET, ip, &a.sin_addr);
    EXPECT_TRUE(p_.bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a));
    EXPECT_TRUE(p_.listen(l, 16));
    socklen_t len = sizeof a;
    EXPECT_TRUE(p_.getsockname(l, reinterpret_cast<sockaddr*>(&a), &len));
    return std::pair{l, static_cast<int>(ntohs(a.sin_port))};
  };
  const auto [wildcard, port] = listener_at("0.0.0.0", 0);
  const int exact = listener_at("127.0.0.1", port).first;
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(static_cast<std::uint16_t>(port));
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  auto connect_and_accept = [&](int from) {
    int c = p_.socket(AF_INET, SOCK_STREAM, 0).value();
    EXPECT_TRUE(p_.connect(c, reinterpret_cast<sockaddr*>(&dst), sizeof dst));
    auto s = p_.accept4(from, nullptr, nullptr, 0);
    EXPECT_TRUE(s) << "the connection did not reach the expected listener";
    EXPECT_TRUE(p_.close(c));
    if (s) {
      EXPECT_TRUE(p_.close(*s));
    }
  };
  connect_and_accept(exact);  // the exact address wins while it listens
  ASSERT_TRUE(uepoll::testing::fail_nth_allocation(1));
  ASSERT_TRUE(p_.close(exact));
  const bool injected = !uepoll::testing::allocation_failure_pending();
  uepoll::testing::fail_nth_allocation(0);
  EXPECT_TRUE(injected) << "closing a listener no longer allocates: this test tests nothing";
  {
    // The failure hit the copy: the old one, with the stopped listener, is still published.
    const uepoll::inet::ListeningSet* set =
        uepoll::inet::g_ports[port].listening_set.load(std::memory_order_acquire);
    ASSERT_NE(set, nullptr);
    ASSERT_EQ(set->end() - set->begin(), 2);
    EXPECT_EQ(std::count_if(set->begin(), set->end(),
                            [](const auto& e) { return e.listener->stopped(); }),
              1);
  }
  connect_and_accept(wildcard);
  ASSERT_TRUE(p_.close(wildcard));
}

}  // namespace
