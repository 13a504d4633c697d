// Timeouts and signals of the wait calls: timeout 0 never blocks, a positive timeout waits at
// least that long, epoll_pwait2 takes a timespec (NULL: forever), a handled signal ends a
// blocked wait with EINTR even under SA_RESTART, and the pwait calls swap the signal mask for
// exactly the duration of the wait.
//
// Notation: ep -LT-> efd; "ready" means efd's counter is non-zero.
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "conformance.hpp"

namespace uepoll_conformance {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

long elapsed_ms(Clock::time_point since) {
  return static_cast<long>(std::chrono::duration_cast<milliseconds>(Clock::now() - since).count());
}

class WaitTimeouts : public Conformance {};

TEST_P(WaitTimeouts, TimeoutZeroNeverBlocks) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  add(ep, efd, EPOLLIN, 1);
  epoll_event ev[2];
  const timespec zero{0, 0};
  const auto start = Clock::now();
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(api().epoll_wait(ep, ev, 2, 0), 0);
    ASSERT_EQ(api().epoll_pwait(ep, ev, 2, 0, nullptr), 0);
    ASSERT_EQ(api().epoll_pwait2(ep, ev, 2, &zero, nullptr), 0);
  }
  // 300 non-blocking calls; a single real sleep anywhere would be obvious. The bound is only
  // there to catch calls that block.
  EXPECT_LT(elapsed_ms(start), 2000);
}

TEST_P(WaitTimeouts, PositiveTimeoutWaitsAtLeastThatLong) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  add(ep, efd, EPOLLIN, 1);
  epoll_event ev[2];
  auto start = Clock::now();
  EXPECT_EQ(api().epoll_wait(ep, ev, 2, 20), 0);
  EXPECT_GE(elapsed_ms(start), 18);
  start = Clock::now();
  EXPECT_EQ(api().epoll_pwait(ep, ev, 2, 20, nullptr), 0);
  EXPECT_GE(elapsed_ms(start), 18);
}

TEST_P(WaitTimeouts, Pwait2TimespecWaitsAtLeastThatLong) {
  Fd ep = make_epoll();
  epoll_event ev[2];
  const timespec twenty_ms{0, 20 * 1000 * 1000};
  const auto start = Clock::now();
  EXPECT_EQ(api().epoll_pwait2(ep, ev, 2, &twenty_ms, nullptr), 0);
  EXPECT_GE(elapsed_ms(start), 18);
}

// t0: epoll_pwait2(ep, NULL timeout) x2 | ep -LT-> efd, ready
TEST_P(WaitTimeouts, Pwait2WithNullTimeoutReturnsReadyEvents) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd(1);
  add(ep, efd, EPOLLIN, 1);
  epoll_event ev[2];
  EXPECT_EQ(api().epoll_pwait2(ep, ev, 2, nullptr, nullptr), 1);
  EXPECT_EQ(api().epoll_pwait2(ep, ev, 2, nullptr, nullptr), 1);
  EXPECT_EQ(ev[0].data.u64, 1U);
}

// t0: epoll_pwait2(ep, NULL timeout) asleep | write efd
TEST_P(WaitTimeouts, Pwait2WithNullTimeoutSleepsUntilAnEvent) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  add(ep, efd, EPOLLIN, 1);
  auto r = run_waiters(api(), {{ep, WaitKind::kPwait2, 1}}, 1, [&] { write_u64(efd, 1); });
  EXPECT_EQ(harvest_count(r), 1);
}

// t0: epoll_wait(ep, 10 s) asleep | write efd: returns the event long before the timeout
TEST_P(WaitTimeouts, EventEndsATimedWaitEarly) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  add(ep, efd, EPOLLIN, 1);
  epoll_event ev[2];
  const auto start = Clock::now();
  const long n =
      returns_after([&] { return static_cast<long>(api().epoll_wait(ep, ev, 2, 10000)); },
                    [&] { write_u64(efd, 1); });
  EXPECT_EQ(n, 1);
  EXPECT_LT(elapsed_ms(start), 9000);
}

// A negative timeout other than -1 also means "forever".
TEST_P(WaitTimeouts, AnyNegativeTimeoutIsInfinite) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  add(ep, efd, EPOLLIN, 1);
  epoll_event ev[2];
  const long n = returns_after([&] { return static_cast<long>(api().epoll_wait(ep, ev, 2, -7)); },
                               [&] { write_u64(efd, 1); });
  EXPECT_EQ(n, 1);
}

// ---- Signals -----------------------------------------------------------------------------------

class WaitSignals : public Conformance {};

// t0: <call>(ep) asleep, nothing ever ready | SIGUSR1 (handler with SA_RESTART)
TEST_P(WaitSignals, BlockedWaitsFailWithEintrDespiteSaRestart) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  add(ep, efd, EPOLLIN, 1);
  for (WaitKind kind :
       {WaitKind::kEpollWait, WaitKind::kPwait, WaitKind::kPwait2, WaitKind::kPollThenWait}) {
    SCOPED_TRACE("wait kind " + std::to_string(static_cast<int>(kind)));
    auto r = run_waiters(api(), {{ep, kind, 1}}, 0, [] {});
    ASSERT_EQ(r.size(), 1U);
    EXPECT_TRUE(r[0].interrupted);
    EXPECT_EQ(r[0].rc, -1);
    EXPECT_EQ(r[0].err, EINTR) << errno_name(r[0].err);
    EXPECT_GE(Sigusr1Handler::runs(), 1);
  }
}

// After an EINTR the instance is intact: a later event is delivered normally.
TEST_P(WaitSignals, InterruptedWaitLosesNothing) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  add(ep, efd, EPOLLIN | EPOLLET, 1);
  auto r = run_waiters(api(), {{ep, WaitKind::kEpollWait, 1}}, 0, [] {});
  ASSERT_EQ(r[0].err, EINTR);
  write_u64(efd, 1);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 1}}));
}

// Fixture for the sigmask tests: SIGUSR1 has a counting handler and is blocked in this thread,
// with one instance pending for this thread.
class PwaitMask : public Conformance {
 protected:
  void SetUp() override {
    handler_ = std::make_unique<Sigusr1Handler>();
    blocked_ = std::make_unique<BlockedSignal>(SIGUSR1);
    pthread_kill(pthread_self(), SIGUSR1);
    ASSERT_TRUE(blocked_->pending_for_thread());
    sigemptyset(&unblock_all_);
  }
  void TearDown() override {
    blocked_.reset();  // consumes what is still pending, restores the mask
    handler_.reset();
  }
  bool still_blocked() {
    sigset_t now;
    pthread_sigmask(SIG_BLOCK, nullptr, &now);
    return sigismember(&now, SIGUSR1) == 1;
  }

  std::unique_ptr<Sigusr1Handler> handler_;
  std::unique_ptr<BlockedSignal> blocked_;
  sigset_t unblock_all_;
};

// The mask would let the pending signal in, but events are ready: they are returned and the
// handler does not run.
TEST_P(PwaitMask, ReadyEventsWinOverAPendingSignal) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd(1);
  add(ep, efd, EPOLLIN, 1);
  epoll_event ev[2];
  EXPECT_EQ(api().epoll_pwait(ep, ev, 2, 1000, &unblock_all_), 1);
  EXPECT_EQ(Sigusr1Handler::runs(), 0);
  const timespec second{1, 0};
  EXPECT_EQ(api().epoll_pwait2(ep, ev, 2, &second, &unblock_all_), 1);
  EXPECT_EQ(Sigusr1Handler::runs(), 0);
  EXPECT_TRUE(still_blocked());
  EXPECT_TRUE(blocked_->pending_for_thread());
}

// Nothing ready and timeout 0: returns 0 at once; the signal stays pending, undelivered.
TEST_P(PwaitMask, TimeoutZeroLeavesTheSignalPending) {
  Fd ep = make_epoll();
  epoll_event ev[2];
  EXPECT_EQ(api().epoll_pwait(ep, ev, 2, 0, &unblock_all_), 0);
  const timespec zero{0, 0};
  EXPECT_EQ(api().epoll_pwait2(ep, ev, 2, &zero, &unblock_all_), 0);
  EXPECT_EQ(Sigusr1Handler::runs(), 0);
  EXPECT_TRUE(still_blocked());
  EXPECT_TRUE(blocked_->pending_for_thread());
}

// Nothing ready: the mask lets the pending signal in, the handler runs once, the call fails
// with EINTR (long before its timeout), and the old mask is back afterwards.
TEST_P(PwaitMask, UnblockedPendingSignalInterruptsTheWait) {
  Fd ep = make_epoll();
  epoll_event ev[2];
  const auto start = Clock::now();
  EXPECT_ERRNO(EINTR, api().epoll_pwait(ep, ev, 2, 2000, &unblock_all_));
  EXPECT_EQ(Sigusr1Handler::runs(), 1);
  EXPECT_TRUE(still_blocked());
  EXPECT_FALSE(blocked_->pending_for_thread());

  pthread_kill(pthread_self(), SIGUSR1);
  const timespec two_s{2, 0};
  EXPECT_ERRNO(EINTR, api().epoll_pwait2(ep, ev, 2, &two_s, &unblock_all_));
  EXPECT_EQ(Sigusr1Handler::runs(), 2);
  EXPECT_TRUE(still_blocked());
  EXPECT_LT(elapsed_ms(start), 1900);
}

// A NULL mask leaves the thread's mask alone: the pending signal stays blocked and the wait
// times out normally.
TEST_P(PwaitMask, NullMaskKeepsTheSignalBlocked) {
  Fd ep = make_epoll();
  epoll_event ev[2];
  EXPECT_EQ(api().epoll_pwait(ep, ev, 2, 10, nullptr), 0);
  const timespec ten_ms{0, 10 * 1000 * 1000};
  EXPECT_EQ(api().epoll_pwait2(ep, ev, 2, &ten_ms, nullptr), 0);
  EXPECT_EQ(Sigusr1Handler::runs(), 0);
  EXPECT_TRUE(blocked_->pending_for_thread());
}

// t0 (SIGUSR1 not blocked): epoll_pwait(ep, 200 ms, mask blocking SIGUSR1) asleep | SIGUSR1 to t0
// The mask keeps the signal out during the wait, which times out; the handler runs afterwards,
// once the old mask is back.
TEST_P(WaitSignals, PwaitMaskHoldsASignalOffDuringTheWait) {
  Sigusr1Handler handler;
  Fd ep = make_epoll();
  sigset_t block_usr1;
  sigemptyset(&block_usr1);
  sigaddset(&block_usr1, SIGUSR1);
  const pthread_t self = pthread_self();
  const pid_t self_tid = gettid();
  std::thread sender([&] {
    wait_until_asleep(self_tid);
    pthread_kill(self, SIGUSR1);
  });
  epoll_event ev[2];
  const int rc = api().epoll_pwait(ep, ev, 2, 200, &block_usr1);
  sender.join();
  EXPECT_EQ(rc, 0);
  // Delivered at the latest when the original mask returned; give it a moment regardless.
  for (int i = 0; i < 100 && Sigusr1Handler::runs() == 0; ++i) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  EXPECT_EQ(Sigusr1Handler::runs(), 1);
}

}  // namespace

UEPOLL_CONFORMANCE_SUITE(WaitTimeouts);
UEPOLL_CONFORMANCE_SUITE(WaitSignals);
UEPOLL_CONFORMANCE_SUITE(PwaitMask);

}  // namespace uepoll_conformance
