// How threads sleep and wake: blocking state is made only when a thread is about to sleep, a
// sleep without a signal mask needs no kernel descriptor (a futex), a thread that cannot get
// memory for its parker still sleeps and wakes (napping), and no call fails with an errno Linux
// does not use for it. Each test runs in a fresh process (ctest), so the parker pool starts
// empty and the first sleep of a thread allocates.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <thread>

#include "sync/fault_injection.hpp"
#include "uepoll/blocking.hpp"
#include "uepoll/process.hpp"

namespace {

using uepoll::Process;

int open_kernel_descriptors() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d) != nullptr) {
      ++n;
    }
    closedir(d);
  }
  return n;
}

struct Watched {
  Process p;
  int ep = p.epoll_create1(0).value();
  int efd = p.eventfd(0, EFD_NONBLOCK).value();
  Watched() {
    epoll_event ev{};
    ev.events = EPOLLIN;
    EXPECT_TRUE(p.epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev));
  }
  void write_one() {
    const std::uint64_t one = 1;
    EXPECT_TRUE(p.write(efd, &one, sizeof one));
  }
};

bool allocation_injection() { return uepoll::testing::fail_nth_allocation(0); }

// No memory for a parker: the thread naps and re-checks instead of failing with ENOMEM (which
// Linux's epoll_wait, poll and read never return). First in the file: it needs the parker pool
// empty, as it is in a fresh process (ctest runs each test in its own).
TEST(Blocking, WithoutMemoryForAParkerWaitsStillWake) {
  if (!allocation_injection()) {
    GTEST_SKIP() << "needs UEPOLL_FAULT_INJECTION (debug and sanitizer presets)";
  }
  Watched w;
  std::atomic<bool> asleep{false};
  std::thread t([&] {
    uepoll::testing::fail_nth_allocation(1);
    epoll_event ev{};
    asleep = true;
    auto n = w.p.epoll_wait(w.ep, &ev, 1, -1);
    EXPECT_FALSE(uepoll::testing::allocation_failure_pending());  // the parker's allocation
    uepoll::testing::fail_nth_allocation(0);
    ASSERT_TRUE(n) << "errno " << n.error();
    EXPECT_EQ(*n, 1);
  });
  while (!asleep) {
    std::this_thread::yield();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(5));  // let it nap a few times
  w.write_one();
  t.join();
}

TEST(Blocking, NonBlockingCallsAllocateNothingAndOpenNothing) {
  if (!allocation_injection()) {
    GTEST_SKIP() << "needs UEPOLL_FAULT_INJECTION (debug and sanitizer presets)";
  }
  Watched w;
  std::thread([&] {
    const int fds = open_kernel_descriptors();
    uepoll::testing::fail_nth_allocation(1);  // any allocation now would fail...
    epoll_event ev{};
    for (int i = 0; i < 100; ++i) {
      EXPECT_EQ(w.p.epoll_wait(w.ep, &ev, 1, 0).value(), 0);
      std::uint64_t v;
      EXPECT_EQ(w.p.read(w.efd, &v, sizeof v).error(), EAGAIN);
    }
    EXPECT_TRUE(uepoll::testing::allocation_failure_pending());  // ...and none happened
    uepoll::testing::fail_nth_allocation(0);
    EXPECT_EQ(open_kernel_descriptors(), fds);
  }).join();
}

TEST(Blocking, SleepingWithoutAMaskOpensNoKernelDescriptor) {
  Watched w;
  std::atomic<bool> asleep{false};
  std::thread t([&] {
    const int fds = open_kernel_descriptors();
    epoll_event ev{};
    asleep = true;
    EXPECT_EQ(w.p.epoll_wait(w.ep, &ev, 1, -1).value(), 1);
    EXPECT_EQ(w.p.epoll_wait(w.ep, &ev, 1, 5).value(), 1);  // level-triggered: still ready
    std::uint64_t v;
    EXPECT_TRUE(w.p.read(w.efd, &v, sizeof v));
    EXPECT_EQ(w.p.epoll_wait(w.ep, &ev, 1, 5).value(), 0);  // sleeps until the timeout
    EXPECT_EQ(open_kernel_descriptors(), fds);
  });
  while (!asleep) {
    std::this_thread::yield();
  }
  w.write_one();
  t.join();
}

TEST(Blocking, ASignalMaskNeedsOneDoorbellPerThreadAndNoMore) {
  Watched w;
  std::thread([&] {
    const int fds = open_kernel_descriptors();
    sigset_t mask;
    sigemptyset(&mask);
    epoll_event ev{};
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(w.p.epoll_pwait(w.ep, &ev, 1, 1, &mask).value(), 0);
    }
    EXPECT_EQ(open_kernel_descriptors(), fds + 1);  // the thread's eventfd, made once
  }).join();
}

// A zero timeout never sleeps, whatever `dont_wait` says: the call stops with EAGAIN at once
// (a user's object may pass Timeout::zero() for "no waiting" and must not block forever).
TEST(Blocking, BlockOnWithAZeroTimeoutNeverSleeps) {
  uepoll::WaitQueue queue;
  int attempts = 0;
  uepoll::Result<int> r = uepoll::block_on<int>(
      queue, /*dont_wait=*/false, uepoll::Timeout::zero(),
      [&]() noexcept -> std::optional<uepoll::Result<int>> {
        ++attempts;
        return std::nullopt;
      },
      [](int error) noexcept -> uepoll::Result<int> { return uepoll::Error{error}; });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), EAGAIN);
  EXPECT_EQ(attempts, 1);
}

}  // namespace

namespace {

using uepoll::detail::SpinWindow;

// The sleeper's spin window (blocking.hpp), rule by rule: it grows while wake-ups come soon
// after the spin began, shrinks when they do not come or come late, and its cap is twice what
// a sleep was measured to cost, within bounds.
TEST(SpinWindow, GrowsToItsCapWhileWakeUpsComeSoon) {
  SpinWindow w;
  EXPECT_EQ(w.nanos(), SpinWindow::kMinNanos);
  EXPECT_EQ(w.cap(), SpinWindow::kMinCapNanos);  // nothing measured yet
  long expected = SpinWindow::kMinNanos;
  for (int i = 0; i < 10; ++i) {
    w.woken(/*noticed_nanos=*/SpinWindow::kMinCapNanos, /*sleep_nanos=*/5'000);
    expected = std::min(expected * 2, SpinWindow::kMinCapNanos);
    EXPECT_EQ(w.nanos(), expected);
  }
  EXPECT_EQ(w.nanos(), SpinWindow::kMinCapNanos);
  w.woken(-1, -1);  // noticed before the sleep began: soon
  EXPECT_EQ(w.nanos(), SpinWindow::kMinCapNanos);
}

TEST(SpinWindow, ShrinksToItsFloorAfterLateWakeUpsTimeoutsAndSignals) {
  for (const bool woken : {true, false}) {
    SpinWindow w;
    for (int i = 0; i < 10; ++i) {
      w.woken(0, 5'000);
    }
    ASSERT_EQ(w.nanos(), SpinWindow::kMinCapNanos);
    // Woken later than any window would have waited, or not woken at all.
    auto miss = [&] { woken ? w.woken(w.cap() + 1, 5'000) : w.not_woken(); };
    miss();
    EXPECT_EQ(w.nanos(), SpinWindow::kMinCapNanos / 2);
    for (int i = 0; i < 10; ++i) {
      miss();
    }
    EXPECT_EQ(w.nanos(), SpinWindow::kMinNanos);
  }
}

TEST(SpinWindow, ItsCapIsTwiceWhatASleepCostsWithinBounds) {
  SpinWindow w;
  for (int i = 0; i < 20; ++i) {
    w.woken(0, 30'000);
  }
  EXPECT_EQ(w.cap(), 60'000);
  EXPECT_EQ(w.nanos(), 60'000);
  // One sleep the host stretched moves the measured cost by a quarter of the bound at most:
  // (3 x 30 + 100) / 4 = 47.5 us.
  w.woken(0, 10'000'000);
  EXPECT_EQ(w.cap(), 95'000);
  // Slower sleeps: never past the upper bound.
  for (int i = 0; i < 20; ++i) {
    w.woken(0, 400'000);
  }
  EXPECT_EQ(w.cap(), SpinWindow::kMaxCapNanos);
  EXPECT_EQ(w.nanos(), SpinWindow::kMaxCapNanos);
  // Sleeps grow cheap again: the cap follows, and the window with it.
  for (int i = 0; i < 40; ++i) {
    w.woken(0, 1'000);
  }
  EXPECT_EQ(w.cap(), SpinWindow::kMinCapNanos);
  EXPECT_EQ(w.nanos(), SpinWindow::kMinCapNanos);
}

// Two threads that wake each other in turn (a request and its reply), each sleeping when its
// spin misses: the reply to a message that found its reader asleep comes a sleep's cost plus
// the reader's work later, so each sees the other's sleep inside its own wait. Where a sleep
// costs `sleep_ns`: how many of `turns` messages found their reader asleep, and the widest
// window either thread spun.
struct PingPong {
  int sleeps = 0;
  long widest_window = 0;
};

PingPong ping_pong(long sleep_ns, int turns) {
  constexpr long kWorkNanos = 1'000;
  SpinWindow window[2];
  bool reader_spinning = false;  // the first message finds its reader asleep
  PingPong result;
  for (int turn = 0; turn < turns; ++turn) {
    // The writer of this message spins for the reply, which comes `reply` after its write.
    SpinWindow& writer = window[turn % 2];
    const long reply = reader_spinning ? kWorkNanos : sleep_ns + kWorkNanos;
    result.sleeps += reader_spinning ? 0 : 1;
    result.widest_window = std::max(result.widest_window, writer.nanos());
    reader_spinning = reply <= writer.nanos();
    if (!reader_spinning) {
      writer.woken(reply, sleep_ns);
    }
  }
  return result;
}

TEST(SpinWindow, ThreadsThatWakeEachOtherEndUpSpinningWhereSleepsCostUpToHalfTheBound) {
  // 15 us per sleep (a busy virtual machine's futex wake-up): a fixed 16 us cap kept both
  // threads asleep for good.
  for (const long sleep_ns : {5'000L, 15'000L, 30'000L, SpinWindow::kMaxCapNanos / 2 - 1'000}) {
    SCOPED_TRACE(sleep_ns);
    const int warm_up = ping_pong(sleep_ns, 20).sleeps;
    EXPECT_LT(warm_up, 20);
    EXPECT_EQ(ping_pong(sleep_ns, 1'000).sleeps, warm_up);  // none after the warm-up
  }
  // Sleeps dearer than the bound: spinning would cost more than it saves, so every message
  // sleeps and no spin in vain is lengthened.
  const PingPong dear = ping_pong(SpinWindow::kMaxCapNanos, 1'000);
  EXPECT_EQ(dear.sleeps, 1'000);
  EXPECT_EQ(dear.widest_window, SpinWindow::kMinNanos);
}

}  // namespace
