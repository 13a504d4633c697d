// The wake-up topology matrix: which waits see an event, and how many blocked waiters one event
// wakes, for LT/ET items, one or two sources, poll() on an instance, and nested instances.
//
// Notation of the topology comments:
//   e0, e1, e2   epoll instances (e0 is the outermost)
//   s0, s2       the watched ends of two AF_UNIX stream socketpairs; "write s0" writes one byte
//                through the other end of the pair, which makes s0 readable
//   eX -LT-> Y   Y is registered in eX with EPOLLIN, level-triggered (-ET-> with EPOLLET)
//   ew(eX)       epoll_wait on eX (maxevents 1 unless written "ew2(eX)" for 2)
//   p(eX)        poll(POLLIN) on the instance eX, then, if it reported readiness,
//                epoll_wait(eX, timeout 0)
// Single-thread cases write first and then make every call with timeout 0; the expected values
// are the return values of the calls, in order. Two-thread cases start waiters t0 and t1, wait
// until both sleep in their call, then write; a waiter "harvests" when its epoll_wait returns
// events. Waiters that must not wake are ended with SIGUSR1 and return EINTR.
#include <poll.h>
#include <sys/epoll.h>

#include <functional>
#include <tuple>
#include <vector>

#include "conformance.hpp"

namespace uepoll_conformance {
namespace {

constexpr uint32_t LT = 0;
constexpr uint32_t ET = EPOLLET;

class WakeupMatrix : public Conformance {
 protected:
  void SetUp() override {
    std::tie(s0, s0_peer) = make_socketpair();
    std::tie(s2, s2_peer) = make_socketpair();
    e0 = make_epoll();
    e1 = make_epoll();
    e2 = make_epoll();
  }

  // e0 -mode-> s0
  void one_source(uint32_t mode) { add(e0, s0, EPOLLIN | mode, 0); }
  // e0 -mode-> s0, e0 -mode-> s2
  void two_sources(uint32_t mode) {
    add(e0, s0, EPOLLIN | mode, 0);
    add(e0, s2, EPOLLIN | mode, 2);
  }
  // e0 -outer-> e1 -inner-> s0
  void nested(uint32_t outer, uint32_t inner) {
    add(e1, s0, EPOLLIN | inner, 0);
    add(e0, e1, EPOLLIN | outer, 1);
  }
  // e0 -outer-> e1 -LT-> s0, e0 -outer-> e2 -LT-> s2
  void two_nested(uint32_t outer) {
    add(e1, s0, EPOLLIN, 0);
    add(e2, s2, EPOLLIN, 2);
    add(e0, e1, EPOLLIN | outer, 1);
    add(e0, e2, EPOLLIN | outer, 3);
  }

  void write_s0() { write_byte(s0_peer); }
  void write_both() {
    write_byte(s0_peer);
    write_byte(s2_peer);
  }

  // The sequence "p(ep), ew(ep)" with timeout 0, `rounds` times: the poll() and epoll_wait
  // return values in order.
  std::vector<int> poll_then_wait(int ep, int maxevents, int rounds) {
    std::vector<int> out;
    for (int i = 0; i < rounds; ++i) {
      out.push_back(poll_in(ep));
      out.push_back(wait_count(ep, maxevents));
    }
    return out;
  }

  std::vector<WaiterResult> two_waiters(WaiterSpec t0, WaiterSpec t1, size_t must_return,
                                        const std::function<void()>& emit) {
    return run_waiters(api(), {t0, t1}, must_return, emit);
  }
  WaiterSpec ew(int ep, int maxevents = 1) { return {ep, WaitKind::kEpollWait, maxevents}; }
  WaiterSpec p(int ep, int maxevents = 1) { return {ep, WaitKind::kPollThenWait, maxevents}; }

  Fd s0, s0_peer, s2, s2_peer;
  Fd e0, e1, e2;
};

using V = std::vector<int>;

// ---- One instance, one thread ------------------------------------------------------------------

// t0: ew(e0) x2 | e0 -LT-> s0 | write s0
TEST_P(WakeupMatrix, LtItemIsReportedByEveryWait) {
  one_source(LT);
  write_s0();
  EXPECT_EQ(wait_count(e0, 1), 1);
  EXPECT_EQ(wait_count(e0, 1), 1);
}

// t0: ew(e0) x2 | e0 -ET-> s0 | write s0
TEST_P(WakeupMatrix, EtItemIsReportedOnce) {
  one_source(ET);
  write_s0();
  EXPECT_EQ(wait_count(e0, 1), 1);
  EXPECT_EQ(wait_count(e0, 1), 0);
}

// t0: ew2(e0) x2 | e0 -LT-> s0, s2 | write both
TEST_P(WakeupMatrix, LtTwoSourcesReportedByEveryWait) {
  two_sources(LT);
  write_both();
  EXPECT_EQ(wait_count(e0, 2), 2);
  EXPECT_EQ(wait_count(e0, 2), 2);
}

// t0: ew2(e0) x2 | e0 -ET-> s0, s2 | write both
TEST_P(WakeupMatrix, EtTwoSourcesReportedOnce) {
  two_sources(ET);
  write_both();
  EXPECT_EQ(wait_count(e0, 2), 2);
  EXPECT_EQ(wait_count(e0, 2), 0);
}

// t0: p(e0) x2 | e0 -LT-> s0 | write s0
TEST_P(WakeupMatrix, PollOnLtInstanceStaysReadable) {
  one_source(LT);
  write_s0();
  EXPECT_EQ(poll_then_wait(e0, 1, 2), (V{1, 1, 1, 1}));
}

// t0: p(e0) x2 | e0 -ET-> s0 | write s0
// poll() on the instance does not consume the ET event; the wait does, and then the instance
// is no longer readable.
TEST_P(WakeupMatrix, PollOnEtInstanceDoesNotConsume) {
  one_source(ET);
  write_s0();
  EXPECT_EQ(poll_then_wait(e0, 1, 2), (V{1, 1, 0, 0}));
}

// t0: p(e0), ew2(e0) x2 | e0 -LT-> s0, s2 | write both
TEST_P(WakeupMatrix, PollOnLtInstanceTwoSources) {
  two_sources(LT);
  write_both();
  EXPECT_EQ(poll_then_wait(e0, 2, 2), (V{1, 2, 1, 2}));
}

// t0: p(e0), ew2(e0) x2 | e0 -ET-> s0, s2 | write both
TEST_P(WakeupMatrix, PollOnEtInstanceTwoSources) {
  two_sources(ET);
  write_both();
  EXPECT_EQ(poll_then_wait(e0, 2, 2), (V{1, 2, 0, 0}));
}

// ---- One instance, two threads -----------------------------------------------------------------

// t0: ew(e0)  t1: ew(e0) | e0 -LT-> s0 | write s0
// The LT item stays ready after the first harvest, so the second waiter is woken as well.
TEST_P(WakeupMatrix, LtOneEventWakesBothWaiters) {
  one_source(LT);
  auto r = two_waiters(ew(e0), ew(e0), 2, [&] { write_s0(); });
  EXPECT_EQ(harvest_count(r), 2);
}

// t0: ew(e0)  t1: ew(e0) | e0 -ET-> s0 | write s0
TEST_P(WakeupMatrix, EtOneEventWakesOneWaiter) {
  one_source(ET);
  auto r = two_waiters(ew(e0), ew(e0), 1, [&] { write_s0(); });
  EXPECT_EQ(harvest_count(r), 1);
}

// t0: ew(e0), then t1: ew(e0), then t2: ew(e0) | e0 -ET-> s0 | write s0
// Threads in epoll_wait are woken newest first (Linux queues them at the head of ep->wq): the
// one that went to sleep last gets the single event.
TEST_P(WakeupMatrix, EtOneEventWakesTheMostRecentSleeper) {
  one_source(ET);
  auto r = run_waiters(api(), {ew(e0), ew(e0), ew(e0)}, 1, /*in_order=*/true, [&] { write_s0(); });
  EXPECT_EQ(harvest_mask(r), 0b100u);
}

// t0: ew2(e0)  t1: ew2(e0) | e0 -LT-> s0, s2 | write both
TEST_P(WakeupMatrix, LtTwoSourcesWakeBothWaiters) {
  two_sources(LT);
  auto r = two_waiters(ew(e0, 2), ew(e0, 2), 2, [&] { write_both(); });
  EXPECT_EQ(harvest_count(r), 2);
}

// t0: ew(e0)  t1: ew(e0) | e0 -ET-> s0, s2 | write both
// Each ET event goes to a different waiter.
TEST_P(WakeupMatrix, EtTwoSourcesOneEventPerWaiter) {
  two_sources(ET);
  auto r = two_waiters(ew(e0), ew(e0), 2, [&] { write_both(); });
  EXPECT_EQ(harvest_count(r), 2);
}

// t0: ew(e0)  t1: p(e0) | e0 -LT-> s0 | write s0
TEST_P(WakeupMatrix, LtWaiterAndPollerBothHarvest) {
  one_source(LT);
  auto r = two_waiters(ew(e0), p(e0), 2, [&] { write_s0(); });
  EXPECT_EQ(harvest_count(r), 2);
}

// t0: ew(e0)  t1: p(e0) | e0 -ET-> s0 | write s0
// Both may wake, but only one harvests the single ET event.
TEST_P(WakeupMatrix, EtWaiterAndPollerHarvestOnce) {
  one_source(ET);
  auto r = two_waiters(ew(e0), p(e0), 1, [&] { write_s0(); });
  EXPECT_EQ(harvest_count(r), 1);
}

// t0: ew2(e0)  t1: p(e0) then ew2 | e0 -LT-> s0, s2 | write both
TEST_P(WakeupMatrix, LtTwoSourcesWaiterAndPoller) {
  two_sources(LT);
  auto r = two_waiters(ew(e0, 2), p(e0, 2), 2, [&] { write_both(); });
  EXPECT_EQ(harvest_count(r), 2);
}

// t0: ew(e0)  t1: p(e0) | e0 -ET-> s0, e0 -ET-> s0' | write s0 (one write readies both)
// s0' is a dup of s0 registered as a second item, so that a single write queues both items in
// one wake-up: with two separate writes the poller could look between them and find nothing.
TEST_P(WakeupMatrix, EtTwoSourcesWaiterAndPollerOneEach) {
  Fd s0_dup = adopt(static_cast<int>(must(api().dup(s0), "dup")));
  add(e0, s0, EPOLLIN | ET, 0);
  add(e0, s0_dup, EPOLLIN | ET, 2);
  auto r = two_waiters(ew(e0), p(e0), 2, [&] { write_s0(); });
  EXPECT_EQ(harvest_count(r), 2);
}

// ---- Nested instances, one thread --------------------------------------------------------------

// t0: ew(e0) x2 | e0 -LT-> e1 -LT-> s0 | write s0
TEST_P(WakeupMatrix, NestedLtLtReportedByEveryWait) {
  nested(LT, LT);
  write_s0();
  EXPECT_EQ(wait_count(e0, 1), 1);
  EXPECT_EQ(wait_count(e0, 1), 1);
}

// t0: ew(e0) x2 | e0 -LT-> e1 -ET-> s0 | write s0
// Waiting on e0 does not consume e1's ET item, so e1 stays readable.
TEST_P(WakeupMatrix, NestedOuterLtInnerEtReportedByEveryWait) {
  nested(LT, ET);
  write_s0();
  EXPECT_EQ(wait_count(e0, 1), 1);
  EXPECT_EQ(wait_count(e0, 1), 1);
}

// t0: ew(e0) x2 | e0 -ET-> e1 -LT-> s0 | write s0
TEST_P(WakeupMatrix, NestedOuterEtInnerLtReportedOnce) {
  nested(ET, LT);
  write_s0();
  EXPECT_EQ(wait_count(e0, 1), 1);
  EXPECT_EQ(wait_count(e0, 1), 0);
}

// t0: ew(e0) x2 | e0 -ET-> e1 -ET-> s0 | write s0
TEST_P(WakeupMatrix, NestedEtEtReportedOnce) {
  nested(ET, ET);
  write_s0();
  EXPECT_EQ(wait_count(e0, 1), 1);
  EXPECT_EQ(wait_count(e0, 1), 0);
}

// t0: p(e0) x2 | e0 -LT-> e1 -LT-> s0 | write s0
TEST_P(WakeupMatrix, NestedLtLtPollStaysReadable) {
  nested(LT, LT);
  write_s0();
  EXPECT_EQ(poll_then_wait(e0, 1, 2), (V{1, 1, 1, 1}));
}

// t0: p(e0) x2 | e0 -LT-> e1 -ET-> s0 | write s0
TEST_P(WakeupMatrix, NestedOuterLtInnerEtPollStaysReadable) {
  nested(LT, ET);
  write_s0();
  EXPECT_EQ(poll_then_wait(e0, 1, 2), (V{1, 1, 1, 1}));
}

// t0: p(e0) x2 | e0 -ET-> e1 -LT-> s0 | write s0
TEST_P(WakeupMatrix, NestedOuterEtInnerLtPollConsumedByWait) {
  nested(ET, LT);
  write_s0();
  EXPECT_EQ(poll_then_wait(e0, 1, 2), (V{1, 1, 0, 0}));
}

// t0: p(e0) x2 | e0 -ET-> e1 -ET-> s0 | write s0
TEST_P(WakeupMatrix, NestedEtEtPollConsumedByWait) {
  nested(ET, ET);
  write_s0();
  EXPECT_EQ(poll_then_wait(e0, 1, 2), (V{1, 1, 0, 0}));
}

// ---- Nested instances, two threads on the outer instance --------------------------------------

// t0: ew(e0)  t1: ew(e0) | e0 -LT-> e1 -LT-> s0 | write s0
TEST_P(WakeupMatrix, NestedLtLtWakesBothOuterWaiters) {
  nested(LT, LT);
  auto r = two_waiters(ew(e0), ew(e0), 2, [&] { write_s0(); });
  EXPECT_EQ(harvest_count(r), 2);
}

// t0: ew(e0)  t1: ew(e0) | e0 -LT-> e1 -ET-> s0 | write s0
TEST_P(WakeupMatrix, NestedOuterLtInnerEtWakesBothOuterWaiters) {
  nested(LT, ET);
  auto r = two_waiters(ew(e0), ew(e0), 2, [&] { write_s0(); });
  EXPECT_EQ(harvest_count(r), 2);
}

// t0: ew(e0)  t1: ew(e0) | e0 -ET-> e1 -LT-> s0 | write s0
TEST_P(WakeupMatrix, NestedOuterEtInnerLtWakesOneOuterWaiter) {
  nested(ET, LT);
  auto r = two_waiters(ew(e0), ew(e0), 1, [&] { write_s0(); });
  EXPECT_EQ(harvest_count(r), 1);
}

// t0: ew(e0)  t1: ew(e0) | e0 -ET-> e1 -ET-> s0 | write s0
TEST_P(WakeupMatrix, NestedEtEtWakesOneOuterWaiter) {
  nested(ET, ET);
  auto r = two_waiters(ew(e0), ew(e0), 1, [&] { write_s0(); });
  EXPECT_EQ(harvest_count(r), 1);
}

// t0: ew(e0)  t1: p(e0) | e0 -LT-> e1 -LT-> s0 | write s0
TEST_P(WakeupMatrix, NestedLtLtOuterWaiterAndPollerBothHarvest) {
  nested(LT, LT);
  auto r = two_waiters(ew(e0), p(e0), 2, [&] { write_s0(); });
  EXPECT_EQ(harvest_count(r), 2);
}

// t0: ew(e0)  t1: p(e0) | e0 -LT-> e1 -ET-> s0 | write s0
TEST_P(WakeupMatrix, NestedOuterLtInnerEtOuterWaiterAndPollerBothHarvest) {
  nested(LT, ET);
  auto r = two_waiters(ew(e0), p(e0), 2, [&] { write_s0(); });
  EXPECT_EQ(harvest_count(r), 2);
}

// t0: ew(e0)  t1: p(e0) | e0 -ET-> e1 -LT-> s0 | write s0
TEST_P(WakeupMatrix, NestedOuterEtInnerLtOuterWaiterAndPollerHarvestOnce) {
  nested(ET, LT);
  auto r = two_waiters(ew(e0), p(e0), 1, [&] { write_s0(); });
  EXPECT_EQ(harvest_count(r), 1);
}

// t0: ew(e0)  t1: p(e0) | e0 -ET-> e1 -ET-> s0 | write s0
TEST_P(WakeupMatrix, NestedEtEtOuterWaiterAndPollerHarvestOnce) {
  nested(ET, ET);
  auto r = two_waiters(ew(e0), p(e0), 1, [&] { write_s0(); });
  EXPECT_EQ(harvest_count(r), 1);
}

// ---- Nested instances, one waiter on the inner and one on the outer instance -----------------
// With an LT inner item both waiters harvest. With an ET inner item the inner waiter must
// harvest; the outer one may or may not, depending on whether it re-checks e1 before or after
// the inner waiter consumed the ET event.

constexpr unsigned kT0 = 1U;  // t0 (on e1) harvested
constexpr unsigned kT1 = 2U;  // t1 (on e0) harvested

// t0: ew(e1)  t1: ew(e0) | e0 -LT-> e1 -LT-> s0 | write s0
TEST_P(WakeupMatrix, InnerWaiterAndOuterWaiterLtLt) {
  nested(LT, LT);
  auto r = two_waiters(ew(e1), ew(e0), 2, [&] { write_s0(); });
  EXPECT_EQ(harvest_mask(r), kT0 | kT1);
}

// t0: ew(e1)  t1: ew(e0) | e0 -LT-> e1 -ET-> s0 | write s0
TEST_P(WakeupMatrix, InnerWaiterAndOuterWaiterOuterLtInnerEt) {
  nested(LT, ET);
  auto r = two_waiters(ew(e1), ew(e0), 1, [&] { write_s0(); });
  EXPECT_TRUE(harvest_mask(r) & kT0) << "the waiter on e1 must harvest";
}

// t0: ew(e1)  t1: ew(e0) | e0 -ET-> e1 -LT-> s0 | write s0
TEST_P(WakeupMatrix, InnerWaiterAndOuterWaiterOuterEtInnerLt) {
  nested(ET, LT);
  auto r = two_waiters(ew(e1), ew(e0), 2, [&] { write_s0(); });
  EXPECT_EQ(harvest_mask(r), kT0 | kT1);
}

// t0: ew(e1)  t1: ew(e0) | e0 -ET-> e1 -ET-> s0 | write s0
TEST_P(WakeupMatrix, InnerWaiterAndOuterWaiterEtEt) {
  nested(ET, ET);
  auto r = two_waiters(ew(e1), ew(e0), 1, [&] { write_s0(); });
  EXPECT_TRUE(harvest_mask(r) & kT0) << "the waiter on e1 must harvest";
}

// t0: p(e1)  t1: ew(e0) | e0 -LT-> e1 -LT-> s0 | write s0
TEST_P(WakeupMatrix, InnerPollerAndOuterWaiterLtLt) {
  nested(LT, LT);
  auto r = two_waiters(p(e1), ew(e0), 2, [&] { write_s0(); });
  EXPECT_EQ(harvest_mask(r), kT0 | kT1);
}

// t0: p(e1)  t1: ew(e0) | e0 -LT-> e1 -ET-> s0 | write s0
TEST_P(WakeupMatrix, InnerPollerAndOuterWaiterOuterLtInnerEt) {
  nested(LT, ET);
  auto r = two_waiters(p(e1), ew(e0), 1, [&] { write_s0(); });
  EXPECT_TRUE(harvest_mask(r) & kT0) << "the poller on e1 must harvest";
}

// t0: p(e1)  t1: ew(e0) | e0 -ET-> e1 -LT-> s0 | write s0
TEST_P(WakeupMatrix, InnerPollerAndOuterWaiterOuterEtInnerLt) {
  nested(ET, LT);
  auto r = two_waiters(p(e1), ew(e0), 2, [&] { write_s0(); });
  EXPECT_EQ(harvest_mask(r), kT0 | kT1);
}

// t0: p(e1)  t1: ew(e0) | e0 -ET-> e1 -ET-> s0 | write s0
TEST_P(WakeupMatrix, InnerPollerAndOuterWaiterEtEt) {
  nested(ET, ET);
  auto r = two_waiters(p(e1), ew(e0), 1, [&] { write_s0(); });
  EXPECT_TRUE(harvest_mask(r) & kT0) << "the poller on e1 must harvest";
}

// t0: ew(e1)  t1: p(e0) | e0 -LT-> e1 -LT-> s0 | write s0
TEST_P(WakeupMatrix, InnerWaiterAndOuterPollerLtLt) {
  nested(LT, LT);
  auto r = two_waiters(ew(e1), p(e0), 2, [&] { write_s0(); });
  EXPECT_EQ(harvest_mask(r), kT0 | kT1);
}

// t0: ew(e1)  t1: p(e0) | e0 -LT-> e1 -ET-> s0 | write s0
TEST_P(WakeupMatrix, InnerWaiterAndOuterPollerOuterLtInnerEt) {
  nested(LT, ET);
  auto r = two_waiters(ew(e1), p(e0), 1, [&] { write_s0(); });
  EXPECT_TRUE(harvest_mask(r) & kT0) << "the waiter on e1 must harvest";
}

// t0: ew(e1)  t1: p(e0) | e0 -ET-> e1 -LT-> s0 | write s0
TEST_P(WakeupMatrix, InnerWaiterAndOuterPollerOuterEtInnerLt) {
  nested(ET, LT);
  auto r = two_waiters(ew(e1), p(e0), 2, [&] { write_s0(); });
  EXPECT_EQ(harvest_mask(r), kT0 | kT1);
}

// t0: ew(e1)  t1: p(e0) | e0 -ET-> e1 -ET-> s0 | write s0
TEST_P(WakeupMatrix, InnerWaiterAndOuterPollerEtEt) {
  nested(ET, ET);
  auto r = two_waiters(ew(e1), p(e0), 1, [&] { write_s0(); });
  EXPECT_TRUE(harvest_mask(r) & kT0) << "the waiter on e1 must harvest";
}

// t0: p(e1)  t1: p(e0) | e0 -LT-> e1 -LT-> s0 | write s0
TEST_P(WakeupMatrix, InnerPollerAndOuterPollerLtLt) {
  nested(LT, LT);
  auto r = two_waiters(p(e1), p(e0), 2, [&] { write_s0(); });
  EXPECT_EQ(harvest_mask(r), kT0 | kT1);
}

// t0: p(e1)  t1: p(e0) | e0 -LT-> e1 -ET-> s0 | write s0
TEST_P(WakeupMatrix, InnerPollerAndOuterPollerOuterLtInnerEt) {
  nested(LT, ET);
  auto r = two_waiters(p(e1), p(e0), 1, [&] { write_s0(); });
  EXPECT_TRUE(harvest_mask(r) & kT0) << "the poller on e1 must harvest";
}

// t0: p(e1)  t1: p(e0) | e0 -ET-> e1 -LT-> s0 | write s0
TEST_P(WakeupMatrix, InnerPollerAndOuterPollerOuterEtInnerLt) {
  nested(ET, LT);
  auto r = two_waiters(p(e1), p(e0), 2, [&] { write_s0(); });
  EXPECT_EQ(harvest_mask(r), kT0 | kT1);
}

// t0: p(e1)  t1: p(e0) | e0 -ET-> e1 -ET-> s0 | write s0
TEST_P(WakeupMatrix, InnerPollerAndOuterPollerEtEt) {
  nested(ET, ET);
  auto r = two_waiters(p(e1), p(e0), 1, [&] { write_s0(); });
  EXPECT_TRUE(harvest_mask(r) & kT0) << "the poller on e1 must harvest";
}

// ---- Two inner instances under one outer instance ----------------------------------------------

// t0: ew2(e0) x2 | e0 -LT-> e1 -LT-> s0, e0 -LT-> e2 -LT-> s2 | write both
TEST_P(WakeupMatrix, TwoInnerLtReportedByEveryWait) {
  two_nested(LT);
  write_both();
  EXPECT_EQ(wait_count(e0, 2), 2);
  EXPECT_EQ(wait_count(e0, 2), 2);
}

// t0: ew2(e0) x2 | e0 -ET-> e1 -LT-> s0, e0 -ET-> e2 -LT-> s2 | write both
TEST_P(WakeupMatrix, TwoInnerEtReportedOnce) {
  two_nested(ET);
  write_both();
  EXPECT_EQ(wait_count(e0, 2), 2);
  EXPECT_EQ(wait_count(e0, 2), 0);
}

// t0: p(e0), ew2(e0) x2 | e0 -LT-> e1 -LT-> s0, e0 -LT-> e2 -LT-> s2 | write both
TEST_P(WakeupMatrix, TwoInnerLtPollStaysReadable) {
  two_nested(LT);
  write_both();
  EXPECT_EQ(poll_then_wait(e0, 2, 2), (V{1, 2, 1, 2}));
}

// t0: p(e0), ew2(e0) x2 | e0 -ET-> e1 -LT-> s0, e0 -ET-> e2 -LT-> s2 | write both
TEST_P(WakeupMatrix, TwoInnerEtPollConsumedByWait) {
  two_nested(ET);
  write_both();
  EXPECT_EQ(poll_then_wait(e0, 2, 2), (V{1, 2, 0, 0}));
}

// t0: ew(e0)  t1: ew(e0) | e0 -LT-> e1 -LT-> s0, e0 -LT-> e2 -LT-> s2 | write both
TEST_P(WakeupMatrix, TwoInnerLtWakeBothWaiters) {
  two_nested(LT);
  auto r = two_waiters(ew(e0), ew(e0), 2, [&] { write_both(); });
  EXPECT_EQ(harvest_count(r), 2);
}

// t0: ew(e0)  t1: ew(e0) | e0 -ET-> e1 -LT-> s0, e0 -ET-> e2 -LT-> s2 | write both
TEST_P(WakeupMatrix, TwoInnerEtOneEventPerWaiter) {
  two_nested(ET);
  auto r = two_waiters(ew(e0), ew(e0), 2, [&] { write_both(); });
  EXPECT_EQ(harvest_count(r), 2);
}

// t0: ew(e0)  t1: p(e0) | e0 -LT-> e1 -LT-> s0, e0 -LT-> e2 -LT-> s2 | write both
TEST_P(WakeupMatrix, TwoInnerLtWaiterAndPoller) {
  two_nested(LT);
  auto r = two_waiters(ew(e0), p(e0), 2, [&] { write_both(); });
  EXPECT_EQ(harvest_count(r), 2);
}

// The two-inner ET cases with a poller: s0 is watched by both e1 and e2 (and s2 not at all), so
// that one write readies both inner instances in a single wake-up (see
// EtTwoSourcesWaiterAndPollerOneEach for why).
//   e0 -ET-> e1 -LT-> s0, e0 -ET-> e2 -LT-> s0

// t0: ew(e0)  t1: p(e0) | e0 -ET-> e1 -LT-> s0, e0 -ET-> e2 -LT-> s0 | write s0
TEST_P(WakeupMatrix, TwoInnerEtWaiterAndPollerOneEach) {
  add(e1, s0, EPOLLIN, 0);
  add(e2, s0, EPOLLIN, 2);
  add(e0, e1, EPOLLIN | ET, 1);
  add(e0, e2, EPOLLIN | ET, 3);
  auto r = two_waiters(ew(e0), p(e0), 2, [&] { write_s0(); });
  EXPECT_EQ(harvest_count(r), 2);
}

// t0: p(e0)  t1: p(e0) | e0 -LT-> e1 -LT-> s0, e0 -LT-> e2 -LT-> s2 | write both
TEST_P(WakeupMatrix, TwoInnerLtTwoPollers) {
  two_nested(LT);
  auto r = two_waiters(p(e0), p(e0), 2, [&] { write_both(); });
  EXPECT_EQ(harvest_count(r), 2);
}

// t0: p(e0)  t1: p(e0) | e0 -ET-> e1 -LT-> s0, e0 -ET-> e2 -LT-> s0 | write s0
TEST_P(WakeupMatrix, TwoInnerEtTwoPollersOneEach) {
  add(e1, s0, EPOLLIN, 0);
  add(e2, s0, EPOLLIN, 2);
  add(e0, e1, EPOLLIN | ET, 1);
  add(e0, e2, EPOLLIN | ET, 3);
  auto r = two_waiters(p(e0), p(e0), 2, [&] { write_s0(); });
  EXPECT_EQ(harvest_count(r), 2);
}

// t0, t1, t2: ew(e0) | e0 -LT-> s0 | write s0
// Each harvest leaves the LT item queued and passes the wake-up on: all three wake.
TEST_P(WakeupMatrix, LtOneEventWakesAllThreeWaiters) {
  one_source(LT);
  auto r = run_waiters(api(), {ew(e0), ew(e0), ew(e0)}, 3, [&] { write_s0(); });
  EXPECT_EQ(harvest_count(r), 3);
}

// t0, t1, t2: ew(e0) | e0 -ET-> s0 | write s0
TEST_P(WakeupMatrix, EtOneEventWakesOneOfThreeWaiters) {
  one_source(ET);
  auto r = run_waiters(api(), {ew(e0), ew(e0), ew(e0)}, 1, [&] { write_s0(); });
  EXPECT_EQ(harvest_count(r), 1);
}

// ---- The other wait calls --------------------------------------------------------------------

// t0: epoll_pwait2(e0, NULL timeout)  t1: same | e0 -LT-> s0 | write s0
TEST_P(WakeupMatrix, LtOneEventWakesBothPwait2Waiters) {
  one_source(LT);
  auto r = run_waiters(api(), {{e0, WaitKind::kPwait2, 1}, {e0, WaitKind::kPwait2, 1}}, 2,
                       [&] { write_s0(); });
  EXPECT_EQ(harvest_count(r), 2);
}

// t0: epoll_pwait(e0, -1, NULL mask)  t1: same | e0 -ET-> s0 | write s0
TEST_P(WakeupMatrix, EtOneEventWakesOnePwaitWaiter) {
  one_source(ET);
  auto r = run_waiters(api(), {{e0, WaitKind::kPwait, 1}, {e0, WaitKind::kPwait, 1}}, 1,
                       [&] { write_s0(); });
  EXPECT_EQ(harvest_count(r), 1);
}

// t0: ew(e0) | e0 -LT-> s0, added while t0 sleeps (s0 already readable)
// A registration of an already ready source wakes a blocked waiter.
TEST_P(WakeupMatrix, AddOfReadySourceWakesWaiter) {
  write_s0();
  auto r = run_waiters(api(), {ew(e0)}, 1, [&] { one_source(LT); });
  EXPECT_EQ(harvest_count(r), 1);
}

// t0: ew(e0) | e0 -ET-> s0, readable and already harvested; MOD while t0 sleeps
// MOD re-polls the source and queues the item again, which wakes the waiter.
TEST_P(WakeupMatrix, ModOfReadyEtItemWakesWaiter) {
  one_source(ET);
  write_s0();
  ASSERT_EQ(wait_count(e0, 1), 1);
  auto r = run_waiters(api(), {ew(e0)}, 1, [&] { mod(e0, s0, EPOLLIN | ET, 0); });
  EXPECT_EQ(harvest_count(r), 1);
}

}  // namespace

UEPOLL_CONFORMANCE_SUITE(WakeupMatrix);

}  // namespace uepoll_conformance
