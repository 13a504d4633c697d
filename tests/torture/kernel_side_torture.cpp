// Races of the kernel side (uepoll_epoll_ctl_kernel, uepoll_epoll_kernel_fd) through the C API,
// both lock modes (ctest runs the binary twice): kernel members, nesting and mirrors, the bell
// of an exported instance, against closes, harvests and waits on other threads. Each test checks
// what must hold whatever the interleaving: no event carries an internal tag, every wait that
// must return does, an exported instance's kernel descriptor is readable exactly while it has
// events once things are quiet, and every file, instance and item is freed.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cstdint>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "epoll/kernel_side.hpp"
#include "torture/rounds.hpp"
#include "uepoll/stats.hpp"
#include "uepoll/uepoll.h"

namespace {

using uepoll_torture::Rounds;

bool internal(std::uint64_t data) {
  return data == uepoll::detail::kernel_bell_tag() || data == uepoll::detail::kernel_mirror_tag();
}

int ctl(bool kernel, int ep, int op, int fd, std::uint32_t events, std::uint64_t data) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = data;
  epoll_event* arg = op == EPOLL_CTL_DEL ? nullptr : &ev;
  return kernel ? uepoll_epoll_ctl_kernel(ep, op, fd, arg) : uepoll_epoll_ctl(ep, op, fd, arg);
}

void kwrite(int fd) {
  const std::uint64_t one = 1;
  EXPECT_EQ(::write(fd, &one, sizeof one), 8);
}

class KernelSideTorture : public ::testing::Test {
 protected:
  void TearDown() override {
    uepoll::stats::Snapshot after = uepoll::stats::quiesce_and_read();
    EXPECT_EQ(after.files, before_.files);
    EXPECT_EQ(after.instances, before_.instances);
    EXPECT_EQ(after.watches, before_.watches);
    EXPECT_EQ(after.user_watches, before_.user_watches);
  }
  uepoll::stats::Snapshot before_ = uepoll::stats::quiesce_and_read();
};

// Y -u-> X -k-> K built in a random order while a writer writes K and a waiter waits on Y; then
// torn down in a random order. The waiter's events always carry Y's data for X.
TEST_F(KernelSideTorture, NestingAndKernelMembersAgainstWritesAndWaits) {
  Rounds rounds(400);
  int bad = 0;
  int harvested = 0;
  std::mt19937 rng(5);
  while (rounds.next()) {
    const int k = ::eventfd(0, EFD_NONBLOCK);
    const int x = uepoll_epoll_create1(0);
    const int y = uepoll_epoll_create1(0);
    std::barrier sync(3);
    const bool member_first = rng() % 2 == 0;
    std::thread builder([&] {
      sync.arrive_and_wait();
      if (member_first) {
        EXPECT_EQ(ctl(true, x, EPOLL_CTL_ADD, k, EPOLLIN, 1), 0);
        EXPECT_EQ(ctl(false, y, EPOLL_CTL_ADD, x, EPOLLIN, 2), 0);
      } else {
        EXPECT_EQ(ctl(false, y, EPOLL_CTL_ADD, x, EPOLLIN, 2), 0);
        EXPECT_EQ(ctl(true, x, EPOLL_CTL_ADD, k, EPOLLIN, 1), 0);
      }
      sync.arrive_and_wait();
    });
    std::thread writer([&] {
      sync.arrive_and_wait();
      for (int i = 0; i < 3; ++i) {
        kwrite(k);
      }
      sync.arrive_and_wait();
    });
    sync.arrive_and_wait();
    epoll_event ev[4];
    const int n = uepoll_epoll_wait(y, ev, 4, 2);
    for (int i = 0; i < n; ++i) {
      bad += ev[i].data.u64 != 2 ? 1 : 0;
    }
    sync.arrive_and_wait();
    builder.join();
    writer.join();
    // Everything is in place and K is readable: the wait must see it now.
    const int settled = uepoll_epoll_wait(y, ev, 4, 10'000);
    EXPECT_EQ(settled, 1);
    harvested += settled == 1 ? 1 : 0;
    bad += settled == 1 && ev[0].data.u64 != 2 ? 1 : 0;
    int order[3] = {x, y, k};
    std::shuffle(order, order + 3, rng);
    for (int fd : order) {
      if (fd == k) {
        ::close(k);
      } else {
        EXPECT_EQ(uepoll_close(fd), 0);
      }
    }
  }
  EXPECT_EQ(bad, 0);
  std::printf("%d rounds, %d harvests\n", rounds.done(), harvested);
}

// Kernel members added and removed on one thread while another closes the instance's last
// descriptor: every call succeeds or fails cleanly (EBADF once the descriptor is gone).
TEST_F(KernelSideTorture, KernelMembersAgainstTheLastClose) {
  Rounds rounds(400);
  std::vector<int> ks;
  for (int i = 0; i < 8; ++i) {
    ks.push_back(::eventfd(1, EFD_NONBLOCK));
  }
  while (rounds.next()) {
    const int x = uepoll_epoll_create1(0);
    std::atomic<bool> go{false};
    std::thread closer([&] {
      while (!go.load()) {
      }
      EXPECT_EQ(uepoll_close(x), 0);
    });
    go = true;
    for (int k : ks) {
      const int rc = ctl(true, x, EPOLL_CTL_ADD, k, EPOLLIN, 7);
      EXPECT_TRUE(rc == 0 || errno == EBADF) << "errno " << errno;
      epoll_event ev[8];
      const int n = uepoll_epoll_wait(x, ev, 8, 0);
      EXPECT_TRUE(n >= 0 || errno == EBADF);
      for (int i = 0; i < n; ++i) {
        EXPECT_FALSE(internal(ev[i].data.u64));
      }
    }
    closer.join();
  }
  for (int k : ks) {
    ::close(k);
  }
}

// An exported instance: a writer makes events, a harvester takes them, a kernel epoll watches
// the exported descriptor edge-triggered. Once both stop, the descriptor is readable exactly
// when the instance still has events.
TEST_F(KernelSideTorture, ExportedDescriptorSettlesOnTheTruth) {
  Rounds rounds(300);
  const int x = uepoll_epoll_create1(0);
  const int u = uepoll_eventfd(0, EFD_NONBLOCK);
  ASSERT_EQ(ctl(false, x, EPOLL_CTL_ADD, u, EPOLLIN | EPOLLET, 3), 0);
  const int xk = uepoll_epoll_kernel_fd(x);
  ASSERT_GE(xk, 0);
  const int e = ::epoll_create1(0);
  epoll_event watch{};
  watch.events = EPOLLIN | EPOLLET;
  ASSERT_EQ(::epoll_ctl(e, EPOLL_CTL_ADD, xk, &watch), 0);
  std::mt19937 rng(9);
  int mismatches = 0;
  while (rounds.next()) {
    const int writes = static_cast<int>(rng() % 4);
    std::barrier sync(2);
    std::thread writer([&] {
      sync.arrive_and_wait();
      for (int i = 0; i < writes; ++i) {
        const std::uint64_t one = 1;
        EXPECT_EQ(uepoll_write(u, &one, sizeof one), 8);
      }
    });
    sync.arrive_and_wait();
    epoll_event ev[4];
    if (rng() % 2 == 0) {
      EXPECT_GE(uepoll_epoll_wait(x, ev, 4, 0), 0);
    }
    writer.join();
    epoll_event out[2];
    const bool edge_seen = ::epoll_wait(e, out, 2, 0) == 1;
    // The truth, taken without consuming: poll() on the instance itself.
    pollfd p{x, POLLIN, 0};
    const bool has_events = uepoll_poll(&p, 1, 0) == 1;
    pollfd kp{xk, POLLIN, 0};
    const bool readable = ::poll(&kp, 1, 0) == 1;
    mismatches += readable != has_events ? 1 : 0;
    // An event harvested before E looks may take its edge with it, as on Linux; a new one that
    // is still there must have made one.
    EXPECT_TRUE(writes == 0 || edge_seen || !has_events);
    // Then quietly: after a harvest, a new event is a new edge.
    while (uepoll_epoll_wait(x, ev, 4, 0) > 0) {
    }
    while (::epoll_wait(e, out, 2, 0) > 0) {
    }
    const std::uint64_t one = 1;
    EXPECT_EQ(uepoll_write(u, &one, sizeof one), 8);
    EXPECT_EQ(::epoll_wait(e, out, 2, 0), 1);
  }
  EXPECT_EQ(mismatches, 0);
  ::close(e);
  EXPECT_EQ(uepoll_close(u), 0);
  EXPECT_EQ(uepoll_close(x), 0);
}

}  // namespace
