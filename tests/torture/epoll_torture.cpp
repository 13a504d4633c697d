// Randomized multi-threaded torture tests for the races that tests/stress does not cover: DEL vs
// the last close of a watched instance, topology walks vs parent teardown, depth/cycle limits under
// concurrent chain building, events arriving during a harvest, multi-waiter wake-ups produced by
// ADD/MOD, EPOLLEXCLUSIVE across instances, closing an instance under its waiters, the last two
// references dropped at once, removals racing appends to the ready list, and the unlocked
// release of a file's watcher list (path C) racing an ADD and the teardown of the instances
// that watch it. Everything goes through the C API.
//
// Each test is short by default (a round count and a wall-clock cap). UEPOLL_TORTURE_SECONDS=N
// runs each test for N seconds; UEPOLL_STRESS_ITERATIONS=N runs N rounds with no time cap. Each
// test ends by checking that every file, instance and item was freed exactly once (live counts
// back to where they started). Threads meet at barriers; nothing relies on sleeping.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <thread>
#include <vector>

#include "torture/rounds.hpp"
#include "uepoll/stats.hpp"
#include "uepoll/uepoll.h"

namespace {

using uepoll_torture::Clock;
using uepoll_torture::Rounds;

class TortureTest : public ::testing::Test {
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

// Non-fatal helpers: a fatal assertion in a thread that others meet at a barrier would hang.
int ctl(int ep, int op, int fd, std::uint32_t events, std::uint64_t data) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = data;
  return uepoll_epoll_ctl(ep, op, fd, op == EPOLL_CTL_DEL ? nullptr : &ev);
}

void add(int ep, int fd, std::uint32_t events, std::uint64_t data = 0) {
  EXPECT_EQ(ctl(ep, EPOLL_CTL_ADD, fd, events, data), 0) << "errno " << errno;
}

void spin_a_little(std::mt19937& rng) {
  for (unsigned n = rng() % 64; n > 0; --n) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
  }
  if (rng() % 4 == 0) {
    std::this_thread::yield();
  }
}

// Runs `rounds` lock-step: the main thread calls setup() then meets `helpers` at a barrier, all
// run their part of the race, meet again, and the main thread calls check().
void lockstep(Rounds& rounds, int helpers, const std::function<void()>& setup,
              const std::function<void(std::mt19937&)>& main_part,
              const std::vector<std::function<void(std::mt19937&)>>& helper_parts,
              const std::function<void()>& check) {
  std::barrier sync(helpers + 1);
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int h = 0; h < helpers; ++h) {
    threads.emplace_back([&, h] {
      std::mt19937 rng(100 + h);
      for (;;) {
        sync.arrive_and_wait();
        if (!go.load()) {
          return;
        }
        helper_parts[h](rng);
        sync.arrive_and_wait();
      }
    });
  }
  std::mt19937 rng(7);
  for (;;) {
    bool more = rounds.next();
    if (more) {
      setup();
    }
    go = more;
    sync.arrive_and_wait();
    if (!more) {
      break;
    }
    main_part(rng);
    sync.arrive_and_wait();
    check();
  }
  for (auto& t : threads) {
    t.join();
  }
}

// (1) EPOLL_CTL_DEL of an instance's item races with the last close of the watched file, which is
// itself an epoll instance (the CVE-2026-46242 shape). Variants: the child also registered under
// a dup'ed (already closed) number, wake-ups flowing through the child meanwhile, and the parent
// closed at the same time.
TEST_F(TortureTest, DelRacesLastCloseOfWatchedInstance) {
  Rounds rounds(1500);
  int parent = -1;
  int child = -1;
  int efd = -1;
  unsigned variant = 0;
  std::atomic<bool> parent_closed{false};
  std::atomic<int> del_ok{0};
  std::mt19937 vr(3);
  lockstep(
      rounds, 2,
      [&] {
        variant = vr();
        parent = uepoll_epoll_create1(0);
        child = uepoll_epoll_create1(0);
        efd = uepoll_eventfd(0, EFD_NONBLOCK);
        add(child, efd, (variant & 8) != 0 ? EPOLLIN | EPOLLET : EPOLLIN);
        add(parent, child, EPOLLIN, 1);
        if ((variant & 1) != 0) {
          int d = uepoll_dup(child);
          add(parent, d, EPOLLIN | EPOLLET, 2);
          EXPECT_EQ(uepoll_close(d), 0);
        }
        parent_closed = false;
      },
      [&](std::mt19937& rng) {
        spin_a_little(rng);
        int r = ctl(parent, EPOLL_CTL_DEL, child, 0, 0);
        if (r == 0) {
          ++del_ok;
        } else {
          EXPECT_EQ(errno, EBADF);
        }
      },
      {[&](std::mt19937& rng) {
         spin_a_little(rng);
         EXPECT_EQ(uepoll_close(child), 0);
       },
       [&](std::mt19937& rng) {
         if ((variant & 2) != 0) {
           std::uint64_t one = 1;
           EXPECT_EQ(uepoll_write(efd, &one, sizeof one), 8);
           epoll_event out[4];
           int n = uepoll_epoll_wait(parent, out, 4, 0);
           EXPECT_TRUE(n >= 0 || (errno == EBADF && parent_closed.load()));
         }
         if ((variant & 4) != 0) {
           spin_a_little(rng);
           parent_closed = true;
           EXPECT_EQ(uepoll_close(parent), 0);
         }
       }},
      [&] {
        if ((variant & 4) == 0) {
          // Every registration of the closed child is gone, whoever removed it.
          std::uint64_t one = 1;
          EXPECT_EQ(uepoll_write(efd, &one, sizeof one), 8);
          epoll_event out[4];
          EXPECT_EQ(uepoll_epoll_wait(parent, out, 4, 0), 0);
          EXPECT_EQ(uepoll_close(parent), 0);
        }
        EXPECT_EQ(uepoll_close(efd), 0);
      });
  std::printf("%d rounds, %d DELs won\n", rounds.done(), del_ok.load());
}

// (2) Topology walks vs teardown (the CVE-2026-43074 shape): one thread repeatedly ADDs an
// instance that watches a pipe (or, every other round, an empty one) into an instance with ~1000
// parents (a long upward walk and path count) and DELs it, while two threads close parents and
// create new ones in their place.
TEST_F(TortureTest, TopologyWalkRacesParentTeardown) {
  Rounds rounds(400);
  constexpr int kParents = 1000;
  constexpr int kChurners = 2;
  int middle = uepoll_epoll_create1(0);
  int leaf = uepoll_epoll_create1(0);
  int empty_leaf = uepoll_epoll_create1(0);  // no files below: its ADD passes the path check
  int pipe_fds[2];
  ASSERT_EQ(uepoll_pipe2(pipe_fds, O_NONBLOCK), 0);
  add(leaf, pipe_fds[0], EPOLLIN);
  ASSERT_EQ(uepoll_write(pipe_fds[1], "x", 1), 1);  // ready: wake-ups flow upwards on ADD
  std::vector<int> parents(kParents);
  for (int& p : parents) {
    p = uepoll_epoll_create1(0);
    ASSERT_GE(p, 0);
    add(p, middle, EPOLLIN);
  }
  std::atomic<bool> stop{false};
  std::atomic<long> recreated{0};
  std::atomic<long> parent_einval{0};
  std::vector<std::thread> churners;
  for (int c = 0; c < kChurners; ++c) {
    churners.emplace_back([&, c] {
      std::mt19937 rng(40 + c);
      const int lo = c * kParents / kChurners;
      const int hi = (c + 1) * kParents / kChurners;
      while (!stop.load(std::memory_order_relaxed)) {
        int i = lo + static_cast<int>(rng() % (hi - lo));
        EXPECT_EQ(uepoll_close(parents[i]), 0);
        parents[i] = uepoll_epoll_create1(0);
        EXPECT_GE(parents[i], 0);
        // With the leaf inside `middle`, the pipe would gain too many wake-up paths: EINVAL.
        int r = ctl(parents[i], EPOLL_CTL_ADD, middle, EPOLLIN, 0);
        if (r != 0) {
          EXPECT_EQ(errno, EINVAL);
          ++parent_einval;
        }
        ++recreated;
      }
    });
  }
  long added = 0;
  long add_einval = 0;
  for (int round = 0; rounds.next(); ++round) {
    const int child = round % 2 == 0 ? leaf : empty_leaf;
    int r = ctl(middle, EPOLL_CTL_ADD, child, EPOLLIN, 0);
    if (r == 0) {
      ++added;
      EXPECT_EQ(ctl(middle, EPOLL_CTL_DEL, child, 0, 0), 0) << errno;
    } else {
      EXPECT_EQ(errno, EINVAL);  // more than 100 paths of length 3 from the pipe
      ++add_einval;
    }
  }
  stop = true;
  for (auto& t : churners) {
    t.join();
  }
  std::printf("%d ADDs (%ld ok, %ld EINVAL), %ld parents recreated (%ld EINVAL)\n", rounds.done(),
              added, add_einval, recreated.load(), parent_einval.load());
  for (int p : parents) {
    EXPECT_EQ(uepoll_close(p), 0);
  }
  EXPECT_EQ(uepoll_close(middle), 0);
  EXPECT_EQ(uepoll_close(leaf), 0);
  EXPECT_EQ(uepoll_close(empty_leaf), 0);
  EXPECT_EQ(uepoll_close(pipe_fds[0]), 0);
  EXPECT_EQ(uepoll_close(pipe_fds[1]), 0);
}

// (3) Depth and cycle limits under concurrency: threads ADD and DEL random instance-into-instance
// links among a small pool at once (each ordered pair owned by one thread, so the model of links
// is exact); between phases some instances are closed and recreated. After every phase the
// model must match uepoll (MOD finds exactly the modelled links) and contain no cycle and no chain
// of more than 5 instances (4 links).
TEST_F(TortureTest, ConcurrentChainsKeepDepthAndCycleLimits) {
  Rounds rounds(60);
  constexpr int kN = 10;
  constexpr int kThreads = 3;
  constexpr int kOpsPerPhase = 150;
  constexpr int kMaxLinks = 4;
  int eps[kN];
  int leaves[kN];
  for (int i = 0; i < kN; ++i) {
    eps[i] = uepoll_epoll_create1(0);
    leaves[i] = uepoll_eventfd(0, EFD_NONBLOCK);
    if (i % 3 == 0) {
      add(eps[i], leaves[i], EPOLLIN);  // non-epoll files make the path limits matter
    }
  }
  std::vector<std::atomic<char>> link(kN * kN);  // link[a*kN+b]: b is inside a
  for (auto& l : link) {
    l = 0;
  }
  std::atomic<long> ok{0};
  std::atomic<long> eloop{0};
  std::atomic<long> einval{0};
  std::mt19937 main_rng(5);
  int phases = 0;
  while (rounds.next()) {
    ++phases;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        std::mt19937 rng(phases * 31 + t);
        for (int op = 0; op < kOpsPerPhase; ++op) {
          int a = 0;
          int b = 0;
          do {
            a = static_cast<int>(rng() % kN);
            b = static_cast<int>(rng() % kN);
          } while (a == b || (a * kN + b) % kThreads != t);
          std::atomic<char>& l = link[a * kN + b];
          if (l.load() != 0) {
            if (rng() % 3 == 0) {
              EXPECT_EQ(ctl(eps[a], EPOLL_CTL_DEL, eps[b], 0, 0), 0) << errno;
              l = 0;
            }
            continue;
          }
          if (ctl(eps[a], EPOLL_CTL_ADD, eps[b], EPOLLIN, static_cast<std::uint64_t>(b)) == 0) {
            l = 1;
            ++ok;
          } else if (errno == ELOOP) {
            ++eloop;
          } else {
            EXPECT_EQ(errno, EINVAL);
            ++einval;
          }
        }
      });
    }
    for (auto& th : threads) {
      th.join();
    }
    // The model matches uepoll's interest sets.
    for (int a = 0; a < kN; ++a) {
      for (int b = 0; b < kN; ++b) {
        if (a == b) {
          continue;
        }
        int r = ctl(eps[a], EPOLL_CTL_MOD, eps[b], EPOLLIN, static_cast<std::uint64_t>(b));
        if (link[a * kN + b].load() != 0) {
          EXPECT_EQ(r, 0) << a << " contains " << b << ", errno " << errno;
        } else {
          EXPECT_EQ(r, -1) << a << " does not contain " << b;
          EXPECT_EQ(errno, ENOENT);
        }
      }
    }
    // No cycle, no chain longer than kMaxLinks links: longest path by DFS with colouring.
    std::vector<int> colour(kN, 0);
    std::vector<int> longest(kN, 0);
    bool cycle = false;
    std::function<void(int)> dfs = [&](int a) {
      colour[a] = 1;
      for (int b = 0; b < kN; ++b) {
        if (link[a * kN + b].load() == 0) {
          continue;
        }
        if (colour[b] == 1) {
          cycle = true;
        } else {
          if (colour[b] == 0) {
            dfs(b);
          }
          longest[a] = std::max(longest[a], longest[b] + 1);
        }
      }
      colour[a] = 2;
    };
    for (int a = 0; a < kN; ++a) {
      if (colour[a] == 0) {
        dfs(a);
      }
    }
    ASSERT_FALSE(cycle) << "phase " << phases;
    ASSERT_LE(*std::max_element(longest.begin(), longest.end()), kMaxLinks) << "phase " << phases;
    // Close and recreate a couple of instances: their links in both directions go away.
    for (int k = 0; k < 2; ++k) {
      int v = static_cast<int>(main_rng() % kN);
      EXPECT_EQ(uepoll_close(eps[v]), 0);
      eps[v] = uepoll_epoll_create1(0);
      if (v % 3 == 0) {
        add(eps[v], leaves[v], EPOLLIN);
      }
      for (int o = 0; o < kN; ++o) {
        link[v * kN + o] = 0;
        link[o * kN + v] = 0;
      }
    }
  }
  std::printf("%d phases: %ld links made, %ld ELOOP, %ld EINVAL\n", phases, ok.load(), eloop.load(),
              einval.load());
  EXPECT_GT(eloop.load(), 0);  // the limits were actually reached
  for (int i = 0; i < kN; ++i) {
    EXPECT_EQ(uepoll_close(eps[i]), 0);
    EXPECT_EQ(uepoll_close(leaves[i]), 0);
  }
}

// (4) Events arriving during a harvest: writers signal edge-triggered eventfds while one waiter
// harvests with a small maxevents. A writer signals an eventfd again only once the waiter has
// consumed its previous write, so every write must be reported (and consumed) after it happened,
// within a bound; no descriptor may appear twice in one result, nor be reported with nothing new.
TEST_F(TortureTest, EventsArrivingDuringHarvestAreReportedOnce) {
  Rounds rounds(6000);
  constexpr int kFds = 16;
  constexpr int kWriters = 2;
  int ep = uepoll_epoll_create1(0);
  int efds[kFds];
  std::atomic<long> written[kFds];
  std::atomic<long> consumed[kFds];
  for (int i = 0; i < kFds; ++i) {
    efds[i] = uepoll_eventfd(0, EFD_NONBLOCK);
    written[i] = 0;
    consumed[i] = 0;
    add(ep, efds[i], EPOLLIN | EPOLLET, static_cast<std::uint64_t>(i));
  }
  std::atomic<bool> stop{false};
  std::atomic<long> duplicates{0};
  std::atomic<long> stale{0};
  std::atomic<long> lost{0};
  std::atomic<long> harvests{0};
  std::thread waiter([&] {
    epoll_event out[3];
    while (!stop.load()) {
      int n = uepoll_epoll_wait(ep, out, 3, 20);
      EXPECT_GE(n, 0);
      bool seen[kFds] = {};
      for (int k = 0; k < n; ++k) {
        auto i = static_cast<int>(out[k].data.u64);
        if (seen[i]) {
          ++duplicates;
        }
        seen[i] = true;
        std::uint64_t v = 0;
        if (uepoll_read(efds[i], &v, sizeof v) == 8) {
          EXPECT_EQ(v, 1u);
          consumed[i] += static_cast<long>(v);
        } else {
          ++stale;
        }
      }
      if (n > 0) {
        ++harvests;
      }
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      Clock::time_point sent[kFds];
      bool more = true;
      while (more && lost.load() == 0) {
        for (int i = w; i < kFds; i += kWriters) {
          if (consumed[i].load() == written[i].load()) {
            if (!rounds.next()) {
              more = false;
              break;
            }
            std::uint64_t one = 1;
            EXPECT_EQ(uepoll_write(efds[i], &one, sizeof one), 8);
            sent[i] = Clock::now();
            ++written[i];
          } else if (Clock::now() - sent[i] > std::chrono::seconds(10)) {
            ADD_FAILURE() << "write " << written[i].load() << " to eventfd " << i
                          << " never reported";
            ++lost;
          }
        }
        std::this_thread::yield();
      }
    });
  }
  for (auto& t : writers) {
    t.join();
  }
  const Clock::time_point deadline = Clock::now() + std::chrono::seconds(10);
  for (int i = 0; i < kFds; ++i) {
    while (consumed[i].load() != written[i].load() && Clock::now() < deadline) {
      std::this_thread::yield();
    }
    EXPECT_EQ(consumed[i].load(), written[i].load()) << "eventfd " << i;
  }
  stop = true;
  waiter.join();
  std::printf("%d writes, %ld harvests, %ld stale reports\n", rounds.done(), harvests.load(),
              stale.load());
  EXPECT_EQ(duplicates.load(), 0);
  EXPECT_EQ(stale.load(), 0);
  for (int f : efds) {
    EXPECT_EQ(uepoll_close(f), 0);
  }
  EXPECT_EQ(uepoll_close(ep), 0);
}

// (5) Multi-waiter wake-ups (the epoll59/60 selftest shapes, bounded): four threads block in
// epoll_wait(maxevents 1) while four items become ready at once, two through wake-up callbacks
// and two through the ctl path (ADD of a ready eventfd, MOD re-arming a ready one-shot item).
// Each waiter must return exactly one event; a 0 after the long timeout is a lost wake-up.
TEST_F(TortureTest, MultiWaiterNoLostWakeupFromCallbacksAddAndMod) {
  Rounds rounds(300);
  constexpr int kWaiters = 4;
  constexpr int kTimeoutMs = 10000;
  int ep = uepoll_epoll_create1(0);
  int written0 = uepoll_eventfd(0, EFD_NONBLOCK);
  int added1 = uepoll_eventfd(1, EFD_NONBLOCK);  // ADDed (already ready) each round
  int rearmed2 = uepoll_eventfd(1, EFD_NONBLOCK);
  int written3 = uepoll_eventfd(0, EFD_NONBLOCK);
  add(ep, written0, EPOLLIN | EPOLLET, 0);
  add(ep, rearmed2, EPOLLONESHOT, 2);  // disarmed until MOD
  add(ep, written3, EPOLLIN | EPOLLET, 3);
  int got_n[kWaiters];
  std::uint64_t got[kWaiters];
  std::vector<std::function<void(std::mt19937&)>> waiters;
  for (int w = 0; w < kWaiters; ++w) {
    waiters.emplace_back([&, w](std::mt19937&) {
      epoll_event out[1];
      got_n[w] = uepoll_epoll_wait(ep, out, 1, kTimeoutMs);
      got[w] = got_n[w] == 1 ? out[0].data.u64 : 99;
    });
  }
  lockstep(
      rounds, kWaiters, [] {},
      [&](std::mt19937& rng) {
        int order[4] = {0, 1, 2, 3};
        std::shuffle(std::begin(order), std::end(order), rng);
        for (int what : order) {
          spin_a_little(rng);
          std::uint64_t one = 1;
          switch (what) {
            case 0: EXPECT_EQ(uepoll_write(written0, &one, sizeof one), 8); break;
            case 1: add(ep, added1, EPOLLIN | EPOLLET, 1); break;
            case 2:
              EXPECT_EQ(ctl(ep, EPOLL_CTL_MOD, rearmed2, EPOLLIN | EPOLLONESHOT, 2), 0);
              break;
            default: EXPECT_EQ(uepoll_write(written3, &one, sizeof one), 8); break;
          }
        }
      },
      waiters,
      [&] {
        bool seen[4] = {};
        for (int w = 0; w < kWaiters; ++w) {
          EXPECT_EQ(got_n[w], 1) << "waiter " << w << (got_n[w] == 0 ? ": lost wake-up" : "");
          if (got_n[w] == 1 && got[w] < 4) {
            EXPECT_FALSE(seen[got[w]]) << "item " << got[w] << " reported twice";
            seen[got[w]] = true;
          }
        }
        EXPECT_EQ(ctl(ep, EPOLL_CTL_DEL, added1, 0, 0), 0);
        epoll_event out[4];
        EXPECT_EQ(uepoll_epoll_wait(ep, out, 4, 0), 0);  // nothing left over
      });
  std::printf("%d rounds\n", rounds.done());
  for (int f : {written0, added1, rearmed2, written3, ep}) {
    EXPECT_EQ(uepoll_close(f), 0);
  }
}

// (6) EPOLLEXCLUSIVE across instances: one eventfd watched exclusively by four instances, each
// with its own waiter, plus one instance nobody waits on (it must not swallow the wake-up). Each
// write must wake at least one waiter, which consumes it; the counts must agree.
TEST_F(TortureTest, ExclusiveWakeupsAcrossInstances) {
  Rounds rounds(3000);
  constexpr int kInstances = 4;
  int efd = uepoll_eventfd(0, EFD_NONBLOCK);
  int eps[kInstances];
  for (int& ep : eps) {
    ep = uepoll_epoll_create1(0);
    add(ep, efd, EPOLLIN | EPOLLEXCLUSIVE);
  }
  int idle = uepoll_epoll_create1(0);
  add(idle, efd, EPOLLIN | EPOLLEXCLUSIVE);
  std::atomic<bool> stop{false};
  std::atomic<long> consumed{0};
  std::atomic<long> reports{0};
  std::atomic<long> empty_reads{0};
  std::vector<std::thread> waiters;
  for (int k = 0; k < kInstances; ++k) {
    waiters.emplace_back([&, k] {
      epoll_event out[1];
      while (!stop.load()) {
        int n = uepoll_epoll_wait(eps[k], out, 1, 20);
        EXPECT_GE(n, 0);
        if (n == 1) {
          ++reports;
          std::uint64_t v = 0;
          if (uepoll_read(efd, &v, sizeof v) == 8) {
            consumed += static_cast<long>(v);
          } else {
            ++empty_reads;
          }
        }
      }
    });
  }
  long written = 0;
  while (rounds.next()) {
    std::uint64_t one = 1;
    if (uepoll_write(efd, &one, sizeof one) != 8) {
      ADD_FAILURE() << "write failed, errno " << errno;
      break;
    }
    ++written;
    const Clock::time_point deadline = Clock::now() + std::chrono::seconds(10);
    while (consumed.load() != written && Clock::now() < deadline) {
      std::this_thread::yield();
    }
    if (consumed.load() != written) {
      ADD_FAILURE() << "write " << written << " woke no waiter";
      break;
    }
  }
  stop = true;
  for (auto& t : waiters) {
    t.join();
  }
  std::printf("%ld writes, %ld reports, %ld empty reads\n", written, reports.load(),
              empty_reads.load());
  EXPECT_EQ(consumed.load(), written);
  EXPECT_GE(reports.load(), written);
  EXPECT_EQ(reports.load(), written + empty_reads.load());
  for (int ep : eps) {
    EXPECT_EQ(uepoll_close(ep), 0);
  }
  EXPECT_EQ(uepoll_close(idle), 0);
  EXPECT_EQ(uepoll_close(efd), 0);
}

// (7) An instance's descriptor closed while other threads wait on it. A waiter that got in keeps
// the instance alive: an event after the close still wakes it (a 0 on the long timeout is a lost
// wake-up); a waiter that came too late gets EBADF. Variants: no event (short timeouts), and the
// watched file closed too (its item removed under the waiters).
TEST_F(TortureTest, CloseInstanceWhileThreadsWait) {
  Rounds rounds(300);
  constexpr int kWaiters = 3;
  int ep = -1;
  int efd = -1;
  unsigned variant = 0;
  bool efd_open = false;
  std::mt19937 vr(11);
  std::atomic<long> woken{0};
  std::atomic<long> ebadf{0};
  std::vector<std::function<void(std::mt19937&)>> waiters;
  for (int w = 0; w < kWaiters; ++w) {
    waiters.emplace_back([&](std::mt19937&) {
      epoll_event out[2];
      const bool event_comes = variant % 3 == 0;
      int n = uepoll_epoll_wait(ep, out, 2, event_comes ? 10000 : 2);
      if (n < 0) {
        EXPECT_EQ(errno, EBADF);
        ++ebadf;
      } else if (event_comes) {
        EXPECT_GE(n, 1) << "lost wake-up on a closed instance";
        ++woken;
      } else {
        EXPECT_EQ(n, 0);
      }
    });
  }
  lockstep(
      rounds, kWaiters,
      [&] {
        variant = vr();
        ep = uepoll_epoll_create1(0);
        efd = uepoll_eventfd(0, EFD_NONBLOCK);
        efd_open = true;
        add(ep, efd, EPOLLIN);
      },
      [&](std::mt19937& rng) {
        spin_a_little(rng);
        EXPECT_EQ(uepoll_close(ep), 0);
        if (variant % 3 == 0) {
          std::uint64_t one = 1;
          EXPECT_EQ(uepoll_write(efd, &one, sizeof one), 8);
        } else if (variant % 3 == 2) {
          EXPECT_EQ(uepoll_close(efd), 0);
          efd_open = false;
        }
      },
      waiters,
      [&] {
        if (efd_open) {
          EXPECT_EQ(uepoll_close(efd), 0);
        }
      });
  std::printf("%d rounds, %ld woken after close, %ld EBADF\n", rounds.done(), woken.load(),
              ebadf.load());
}

// (8a) The last two references dropped at once: a descriptor and its dup closed on two threads
// simultaneously, for a watched eventfd (two items, two instances) or for an instance that
// watches it; a third thread harvests meanwhile.
TEST_F(TortureTest, DescriptorAndDupClosedAtOnce) {
  Rounds rounds(1500);
  int ep = -1;
  int ep2 = -1;
  int efd = -1;
  int dup_fd = -1;
  unsigned variant = 0;
  std::mt19937 vr(13);
  lockstep(
      rounds, 2,
      [&] {
        variant = vr();
        ep = uepoll_epoll_create1(0);
        ep2 = uepoll_epoll_create1(0);
        efd = uepoll_eventfd(1, EFD_NONBLOCK);
        add(ep, efd, EPOLLIN, 1);
        add(ep2, efd, EPOLLIN | EPOLLET, 2);
        if ((variant & 1) != 0) {
          dup_fd = uepoll_dup(efd);
          add(ep, dup_fd, EPOLLIN | EPOLLET, 3);
        } else {
          dup_fd = uepoll_dup(ep2);
        }
      },
      [&](std::mt19937& rng) {
        spin_a_little(rng);
        EXPECT_EQ(uepoll_close((variant & 1) != 0 ? efd : ep2), 0);
      },
      {[&](std::mt19937& rng) {
         spin_a_little(rng);
         EXPECT_EQ(uepoll_close(dup_fd), 0);
       },
       [&](std::mt19937&) {
         epoll_event out[4];
         EXPECT_GE(uepoll_epoll_wait(ep, out, 4, 0), 0);
       }},
      [&] {
        epoll_event out[4];
        if ((variant & 1) != 0) {
          EXPECT_EQ(uepoll_epoll_wait(ep, out, 4, 0), 0);  // both items removed
          EXPECT_EQ(uepoll_epoll_wait(ep2, out, 4, 0), 0);
          EXPECT_EQ(uepoll_close(ep2), 0);
        } else {
          EXPECT_EQ(uepoll_epoll_wait(ep, out, 4, 0), 1);
          EXPECT_EQ(uepoll_close(efd), 0);
        }
        EXPECT_EQ(uepoll_close(ep), 0);
      });
  std::printf("%d rounds\n", rounds.done());
}

// (8b) An instance's last descriptor closed while its last item is removed by DEL (the DEL holds
// the instance mutex while the instance's other reference goes). Variants: the watched file
// closed at the same time, and the instance itself watched by a parent (so its close is also a
// watched file's last close).
TEST_F(TortureTest, LastInstanceCloseRacesDelOfLastItem) {
  Rounds rounds(1500);
  int ep = -1;
  int efd = -1;
  int parent = -1;
  unsigned variant = 0;
  std::mt19937 vr(17);
  std::atomic<int> del_ok{0};
  lockstep(
      rounds, 2,
      [&] {
        variant = vr();
        ep = uepoll_epoll_create1(0);
        efd = uepoll_eventfd(1, EFD_NONBLOCK);
        add(ep, efd, EPOLLIN);
        parent = -1;
        if ((variant & 2) != 0) {
          parent = uepoll_epoll_create1(0);
          add(parent, ep, EPOLLIN);
        }
      },
      [&](std::mt19937& rng) {
        spin_a_little(rng);
        if (ctl(ep, EPOLL_CTL_DEL, efd, 0, 0) == 0) {
          ++del_ok;
        } else {
          EXPECT_EQ(errno, EBADF);
        }
      },
      {[&](std::mt19937& rng) {
         spin_a_little(rng);
         EXPECT_EQ(uepoll_close(ep), 0);
       },
       [&](std::mt19937& rng) {
         if ((variant & 1) != 0) {
           spin_a_little(rng);
           EXPECT_EQ(uepoll_close(efd), 0);
         } else if (parent >= 0) {
           epoll_event out[2];
           EXPECT_GE(uepoll_epoll_wait(parent, out, 2, 0), 0);
         }
       }},
      [&] {
        if ((variant & 1) == 0) {
          EXPECT_EQ(uepoll_close(efd), 0);
        }
        if (parent >= 0) {
          epoll_event out[2];
          EXPECT_EQ(uepoll_epoll_wait(parent, out, 2, 0), 0);  // the closed child's item is gone
          EXPECT_EQ(uepoll_close(parent), 0);
        }
      });
  std::printf("%d rounds, %d DELs won\n", rounds.done(), del_ok.load());
}

// (9) An item leaves (DEL, or the last close of its file) while a wake-up of another item is
// appended behind it on the ready list: the removal tests whether its item is queued without
// the ready lock (Instance::forget), while the append rewrites that item's link. The ready
// list must come out whole: the other item is reported once, the removed one never.
TEST_F(TortureTest, RemovalRacesAnAppendBehindIt) {
  Rounds rounds(3000);
  int ep = -1;
  int x = -1;
  int y = -1;
  unsigned variant = 0;
  std::mt19937 vr(11);
  const std::uint64_t one = 1;
  lockstep(
      rounds, 1,
      [&] {
        variant = vr();
        ep = uepoll_epoll_create1(0);
        x = uepoll_eventfd(0, EFD_NONBLOCK);
        y = uepoll_eventfd(0, EFD_NONBLOCK);
        add(ep, x, EPOLLIN, 1);
        add(ep, y, EPOLLIN, 2);
        if ((variant & 1) != 0) {
          EXPECT_EQ(uepoll_write(y, &one, sizeof one), 8);  // y's item is queued, at the tail
        }
      },
      [&](std::mt19937& rng) {
        spin_a_little(rng);
        if ((variant & 2) != 0) {
          EXPECT_EQ(ctl(ep, EPOLL_CTL_DEL, y, 0, 0), 0) << "errno " << errno;
        } else {
          EXPECT_EQ(uepoll_close(y), 0);
        }
      },
      {[&](std::mt19937& rng) {
        spin_a_little(rng);
        EXPECT_EQ(uepoll_write(x, &one, sizeof one), 8);
      }},
      [&] {
        epoll_event out[4]{};
        EXPECT_EQ(uepoll_epoll_wait(ep, out, 4, 0), 1);
        EXPECT_EQ(out[0].data.u64, 1U);
        std::uint64_t got = 0;
        EXPECT_EQ(uepoll_read(x, &got, sizeof got), 8);
        EXPECT_EQ(uepoll_epoll_wait(ep, out, 4, 0), 0);  // x's item left the list cleanly
        EXPECT_EQ(uepoll_write(x, &one, sizeof one), 8);
        EXPECT_EQ(uepoll_epoll_wait(ep, out, 4, 0), 1);  // and can be queued again
        if ((variant & 2) != 0) {
          EXPECT_EQ(uepoll_close(y), 0);
        }
        EXPECT_EQ(uepoll_close(x), 0);
        EXPECT_EQ(uepoll_close(ep), 0);
      });
}

// (10) ADD races the last close of its target: the ADD holds a reference while it inserts, so
// when the close comes in between, the ADD's own put is the last and path C runs in its thread
// right after the insert, on a watcher list that path C writes without the lock. Either the
// ADD fails with EBADF or its item is gone with the file; a leaked item would report x's
// readiness.
TEST_F(TortureTest, AddRacesTheLastCloseOfItsTarget) {
  Rounds rounds(3000);
  int ep = -1;
  int x = -1;
  std::atomic<int> add_ok{0};
  lockstep(
      rounds, 1,
      [&] {
        ep = uepoll_epoll_create1(0);
        x = uepoll_eventfd(1, EFD_NONBLOCK);
      },
      [&](std::mt19937& rng) {
        spin_a_little(rng);
        if (ctl(ep, EPOLL_CTL_ADD, x, EPOLLIN, 0) == 0) {
          ++add_ok;
        } else {
          EXPECT_EQ(errno, EBADF);
        }
      },
      {[&](std::mt19937& rng) {
        spin_a_little(rng);
        EXPECT_EQ(uepoll_close(x), 0);
      }},
      [&] {
        epoll_event out[2];
        EXPECT_EQ(uepoll_epoll_wait(ep, out, 2, 0), 0);
        EXPECT_EQ(uepoll_close(ep), 0);
      });
  std::printf("%d rounds, %d ADDs won\n", rounds.done(), add_ok.load());
}

// (11) The last close of a file watched by three instances (path C, unlocked) races the last
// closes of two of them (path B, each removing its item under the watchers lock with a pin on
// the file). The third instance must be left without the item, and everything freed once.
TEST_F(TortureTest, LastCloseOfAFileRacesTheTeardownOfItsWatchers) {
  Rounds rounds(3000);
  int ep[3] = {-1, -1, -1};
  int x = -1;
  lockstep(
      rounds, 1,
      [&] {
        x = uepoll_eventfd(1, EFD_NONBLOCK);
        for (int& e : ep) {
          e = uepoll_epoll_create1(0);
          add(e, x, EPOLLIN);
        }
      },
      [&](std::mt19937& rng) {
        spin_a_little(rng);
        EXPECT_EQ(uepoll_close(x), 0);
        EXPECT_EQ(uepoll_close(ep[1]), 0);
      },
      {[&](std::mt19937& rng) {
        spin_a_little(rng);
        EXPECT_EQ(uepoll_close(ep[0]), 0);
      }},
      [&] {
        epoll_event out[2];
        EXPECT_EQ(uepoll_epoll_wait(ep[2], out, 2, 0), 0);
        EXPECT_EQ(uepoll_close(ep[2]), 0);
      });
}

}  // namespace
