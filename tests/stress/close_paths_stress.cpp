// Races on the three removal paths (DEL, closing an instance, the last close of a watched file)
// and on the wake-up path, through the C API. Each test ends by checking that every file,
// instance and item was freed exactly once: the live counts return to where they started.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/eventfd.h>

#include <atomic>
#include <barrier>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

#include "uepoll/lock_mode.hpp"
#include "uepoll/stats.hpp"
#include "uepoll/uepoll.h"

namespace {

int iterations(int ci_default) {
  const char* env = std::getenv("UEPOLL_STRESS_ITERATIONS");
  return env != nullptr ? std::atoi(env) : ci_default;
}

// Live counts before a test; compared after it.
class StressTest : public ::testing::Test {
 protected:
  void SetUp() override { before_ = uepoll::stats::quiesce_and_read(); }
  void TearDown() override {
    uepoll::stats::Snapshot after = uepoll::stats::quiesce_and_read();
    EXPECT_EQ(after.files, before_.files);
    EXPECT_EQ(after.instances, before_.instances);
    EXPECT_EQ(after.watches, before_.watches);
    EXPECT_EQ(after.user_watches, before_.user_watches);
  }
  uepoll::stats::Snapshot before_;
};

void add(int ep, int fd, std::uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  ASSERT_EQ(uepoll_epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0) << errno;
}

// ep ⊃ efd (LT), plus efd's dup registered too. Two threads close ep and efd at the same moment
// (paths B and C race); a third sometimes waits on ep meanwhile.
TEST_F(StressTest, InstanceAndWatchedFileClosedAtOnce) {
  const int rounds = iterations(2000);
  std::barrier sync(2);
  std::atomic<int> ep{-1};
  std::atomic<int> efd{-1};
  std::thread other([&] {
    for (int i = 0; i < rounds; ++i) {
      sync.arrive_and_wait();  // objects ready
      EXPECT_EQ(uepoll_close(efd.load()), 0);
      sync.arrive_and_wait();  // both closed
    }
  });
  for (int i = 0; i < rounds; ++i) {
    ep = uepoll_epoll_create1(0);
    efd = uepoll_eventfd(1, EFD_NONBLOCK);
    ASSERT_GE(ep.load(), 0);
    ASSERT_GE(efd.load(), 0);
    add(ep, efd, EPOLLIN);
    int dup = uepoll_dup(efd);
    add(ep, dup, EPOLLIN | EPOLLET);
    ASSERT_EQ(uepoll_close(dup), 0);  // the registration outlives this number
    sync.arrive_and_wait();
    if (i % 2 == 0) {
      epoll_event out[2];
      EXPECT_GE(uepoll_epoll_wait(ep, out, 2, 0), 0);
    }
    EXPECT_EQ(uepoll_close(ep), 0);
    sync.arrive_and_wait();
  }
  other.join();
}

// An instance watched by another instance: the parent and the child (itself a watched file)
// are closed at once, in both orders.
TEST_F(StressTest, NestedInstancesClosedAtOnce) {
  const int rounds = iterations(1000);
  std::barrier sync(2);
  std::atomic<int> parent{-1};
  std::atomic<int> child{-1};
  std::thread other([&] {
    for (int i = 0; i < rounds; ++i) {
      sync.arrive_and_wait();
      EXPECT_EQ(uepoll_close(i % 2 == 0 ? child.load() : parent.load()), 0);
      sync.arrive_and_wait();
    }
  });
  for (int i = 0; i < rounds; ++i) {
    parent = uepoll_epoll_create1(0);
    child = uepoll_epoll_create1(0);
    int efd = uepoll_eventfd(1, EFD_NONBLOCK);
    add(child, efd, EPOLLIN);
    add(parent, child, EPOLLIN);
    sync.arrive_and_wait();
    EXPECT_EQ(uepoll_close(i % 2 == 0 ? parent.load() : child.load()), 0);
    sync.arrive_and_wait();
    EXPECT_EQ(uepoll_close(efd), 0);
  }
  other.join();
}

// DEL of an item races with the last close of its file: DEL either wins (0) or finds the
// descriptor gone (EBADF); the item is removed exactly once either way.
TEST_F(StressTest, DelRacesLastClose) {
  const int rounds = iterations(2000);
  std::barrier sync(2);
  std::atomic<int> fd{-1};
  int ep = uepoll_epoll_create1(0);
  std::thread closer([&] {
    for (int i = 0; i < rounds; ++i) {
      sync.arrive_and_wait();
      EXPECT_EQ(uepoll_close(fd.load()), 0);
      sync.arrive_and_wait();
    }
  });
  for (int i = 0; i < rounds; ++i) {
    int fds[2];
    ASSERT_EQ(uepoll_pipe2(fds, O_NONBLOCK), 0);
    ASSERT_EQ(uepoll_close(fds[1]), 0);  // reader sees EPOLLHUP: ready at once
    fd = fds[0];
    add(ep, fds[0], EPOLLIN);
    sync.arrive_and_wait();
    int r = uepoll_epoll_ctl(ep, EPOLL_CTL_DEL, fds[0], nullptr);
    if (r != 0) {
      EXPECT_EQ(errno, EBADF);
    }
    sync.arrive_and_wait();
  }
  closer.join();
  epoll_event out[1];
  EXPECT_EQ(uepoll_epoll_wait(ep, out, 1, 0), 0);  // nothing left behind
  EXPECT_EQ(uepoll_close(ep), 0);
}

// Writers, waiters, a ctl thread and a churn thread on one shared instance. Checks that nothing
// crashes, leaks or deadlocks, and that every write is eventually seen.
TEST_F(StressTest, SharedInstanceCtlWaitWriteClose) {
  const int rounds = iterations(3000);
  constexpr int kFds = 8;
  int ep = uepoll_epoll_create1(0);
  int efds[kFds];
  for (int& f : efds) {
    f = uepoll_eventfd(0, EFD_NONBLOCK);
    add(ep, f, EPOLLIN);
  }
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> written{0};
  std::atomic<std::uint64_t> read_total{0};
  auto waiter = [&] {
    epoll_event out[4];
    while (!stop.load()) {
      int n = uepoll_epoll_wait(ep, out, 4, 5);
      for (int i = 0; i < n; ++i) {
        std::uint64_t v;
        if (uepoll_read(out[i].data.fd, &v, sizeof v) == 8) {
          read_total += v;
        }
      }
    }
  };
  std::thread w1(waiter);
  std::thread w2(waiter);
  std::thread ctl([&] {
    std::mt19937 rng(1);
    for (int i = 0; i < rounds; ++i) {
      int f = efds[rng() % kFds];
      epoll_event ev{};
      ev.events = (rng() % 2) != 0 ? EPOLLIN : EPOLLIN | EPOLLET;
      ev.data.fd = f;
      EXPECT_EQ(uepoll_epoll_ctl(ep, EPOLL_CTL_MOD, f, &ev), 0);
    }
  });
  std::thread churn([&] {
    for (int i = 0; i < rounds; ++i) {
      int f = uepoll_eventfd(1, EFD_NONBLOCK);
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = -1;  // waiters skip it (read of -1 fails)
      EXPECT_EQ(uepoll_epoll_ctl(ep, EPOLL_CTL_ADD, f, &ev), 0);
      EXPECT_EQ(uepoll_close(f), 0);
    }
  });
  for (int i = 0; i < rounds; ++i) {
    std::uint64_t one = 1;
    ASSERT_EQ(uepoll_write(efds[i % kFds], &one, sizeof one), 8);
    ++written;
  }
  ctl.join();
  churn.join();
  // Everything written must be read: the waiters keep going until it is.
  for (int spins = 0; read_total.load() < written.load() && spins < 20000; ++spins) {
    std::this_thread::yield();
  }
  stop = true;
  w1.join();
  w2.join();
  EXPECT_EQ(read_total.load(), written.load());
  for (int f : efds) {
    EXPECT_EQ(uepoll_close(f), 0);
  }
  EXPECT_EQ(uepoll_close(ep), 0);
}

// The close paths take no process-wide lock: many threads churn instances and watched files
// (no instance inside another) while the global mutex's acquisition count stays put. In legacy
// mode (UEPOLL_LOCK_MODE=legacy) the same run must take it, as Linux's epmutex was.
TEST_F(StressTest, ClosePathsTakeNoGlobalLock) {
  const int rounds = iterations(1500);
  const std::uint64_t before = uepoll::stats::quiesce_and_read().global_mutex;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < rounds; ++i) {
        int ep = uepoll_epoll_create1(0);
        int efd = uepoll_eventfd(1, EFD_NONBLOCK);
        int fds[2];
        ASSERT_EQ(uepoll_pipe2(fds, O_NONBLOCK), 0);
        add(ep, efd, EPOLLIN | EPOLLET);
        add(ep, fds[0], EPOLLIN);
        ASSERT_EQ(uepoll_write(fds[1], "x", 1), 1);
        epoll_event out[2];
        EXPECT_EQ(uepoll_epoll_wait(ep, out, 2, -1), 2);
        // Alternate which side goes first: last close of watched files, then the instance,
        // or the instance first.
        if ((i + t) % 2 == 0) {
          uepoll_close(efd);
          uepoll_close(fds[0]);
          uepoll_close(ep);
        } else {
          uepoll_close(ep);
          uepoll_close(fds[0]);
          uepoll_close(efd);
        }
        uepoll_close(fds[1]);
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  const std::uint64_t after_churn = uepoll::stats::quiesce_and_read().global_mutex;
  const bool legacy = uepoll::lock_mode_from_environment() == uepoll::LockMode::kLegacy;
  std::printf("lock mode %s: %llu global mutex acquisitions\n", legacy ? "legacy" : "fine",
              static_cast<unsigned long long>(after_churn - before));
  if (legacy) {
    EXPECT_GE(after_churn - before, 4u * rounds * 2);  // every instance close and watched close
  } else {
    EXPECT_EQ(after_churn, before);
  }

  // The counter does count: an instance added into an instance takes the mutex.
  int outer = uepoll_epoll_create1(0);
  int inner = uepoll_epoll_create1(0);
  add(outer, inner, EPOLLIN);
  EXPECT_GT(uepoll::stats::quiesce_and_read().global_mutex, before);
  uepoll_close(inner);
  uepoll_close(outer);
}

// A into B and B into A at once: never both (that would be a cycle).
TEST_F(StressTest, ConcurrentCrossAddsNeverMakeACycle) {
  const int rounds = iterations(2000);
  std::barrier sync(2);
  std::atomic<int> a{-1};
  std::atomic<int> b{-1};
  std::atomic<int> b_into_a{0};
  std::thread other([&] {
    for (int i = 0; i < rounds; ++i) {
      sync.arrive_and_wait();
      epoll_event ev{};
      ev.events = EPOLLIN;
      b_into_a = uepoll_epoll_ctl(a, EPOLL_CTL_ADD, b, &ev) == 0 ? 1 : 0;
      sync.arrive_and_wait();
    }
  });
  for (int i = 0; i < rounds; ++i) {
    a = uepoll_epoll_create1(0);
    b = uepoll_epoll_create1(0);
    sync.arrive_and_wait();
    epoll_event ev{};
    ev.events = EPOLLIN;
    int ok = uepoll_epoll_ctl(b, EPOLL_CTL_ADD, a, &ev) == 0 ? 1 : 0;
    if (ok == 0) {
      EXPECT_EQ(errno, ELOOP);
    }
    sync.arrive_and_wait();
    EXPECT_EQ(ok + b_into_a.load(), 1);
    uepoll_close(a);
    uepoll_close(b);
  }
  other.join();
}

}  // namespace
