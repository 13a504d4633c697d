// Interest masks and trigger modes: EPOLLET, EPOLLONESHOT, EPOLLEXCLUSIVE, and the bits that
// are reported whether asked for or not (EPOLLERR, EPOLLHUP).
//
// Notation: "ep -ET,IN-> r" registers r in ep with EPOLLIN|EPOLLET; r/w are the read and write
// ends of a pipe; efd is an eventfd.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conformance.hpp"

namespace uepoll_conformance {
namespace {

// ---- EPOLLET -----------------------------------------------------------------------------------
// An edge is a wake-up of the object that matches the mask, not a not-ready -> ready change:
// every write re-triggers, even with earlier data unread.

class EdgeTriggered : public Conformance {};

// ep -ET,IN-> r ; write, write (nothing read in between)
TEST_P(EdgeTriggered, EveryPipeWriteRetriggers) {
  Fd ep = make_epoll();
  auto [r, w] = make_pipe();
  add(ep, r, EPOLLIN | EPOLLET, 1);
  EXPECT_EQ(wait(ep), Evs{});
  write_byte(w);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 1}}));
  EXPECT_EQ(wait(ep), Evs{});
  write_byte(w);  // still readable from the first write: a new edge all the same
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 1}}));
  EXPECT_EQ(wait(ep), Evs{});
}

// ep -ET,IN-> r ; three writes before one harvest
TEST_P(EdgeTriggered, WakesBeforeAHarvestCollapseIntoOneEvent) {
  Fd ep = make_epoll();
  auto [r, w] = make_pipe();
  add(ep, r, EPOLLIN | EPOLLET, 1);
  write_byte(w);
  write_byte(w);
  write_byte(w);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 1}}));
  EXPECT_EQ(wait(ep), Evs{});
}

// ep -ET,IN-> r ; write 10 bytes, harvest, read 5
TEST_P(EdgeTriggered, PartialReadDoesNotRetrigger) {
  Fd ep = make_epoll();
  auto [r, w] = make_pipe();
  add(ep, r, EPOLLIN | EPOLLET, 1);
  char buf[10] = {};
  ASSERT_EQ(api().write(w, buf, sizeof buf), 10);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 1}}));
  ASSERT_EQ(api().read(r, buf, 5), 5);
  EXPECT_EQ(wait(ep), Evs{});
}

// ep -ET,IN|OUT-> efd ; write 0, then write 1
TEST_P(EdgeTriggered, EventfdWriteOfZeroRetriggersOut) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  add(ep, efd, EPOLLIN | EPOLLOUT | EPOLLET, 1);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLOUT, 1}}));
  EXPECT_EQ(wait(ep), Evs{});
  write_u64(efd, 0);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLOUT, 1}}));
  EXPECT_EQ(wait(ep), Evs{});
  write_u64(efd, 1);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN | EPOLLOUT, 1}}));
  // A read is a wake-up too (the counter may have room again).
  EXPECT_EQ(read_u64(efd), 1U);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLOUT, 1}}));
}

// ep -ET,IN-> a (socketpair a/b) ; b writes twice
TEST_P(EdgeTriggered, EverySocketWriteRetriggers) {
  Fd ep = make_epoll();
  auto [a, b] = make_socketpair();
  add(ep, a, EPOLLIN | EPOLLET, 1);
  write_byte(b);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 1}}));
  EXPECT_EQ(wait(ep), Evs{});
  write_byte(b);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 1}}));
}

// ep -ET,OUT-> a (socketpair a/b) ; a writes, b reads the byte
TEST_P(EdgeTriggered, PeerReadRetriggersOut) {
  Fd ep = make_epoll();
  auto [a, b] = make_socketpair();
  add(ep, a, EPOLLOUT | EPOLLET, 1);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLOUT, 1}}));
  write_byte(a);
  EXPECT_EQ(wait(ep), Evs{});
  char c;
  ASSERT_EQ(api().read(b, &c, 1), 1);  // frees a's send space: a write-space wake-up
  EXPECT_EQ(wait(ep), (Evs{{EPOLLOUT, 1}}));
}

// ep -ET,IN-> r ; harvest ; MOD with the same mask while still readable
TEST_P(EdgeTriggered, ModRearmsAReadyItem) {
  Fd ep = make_epoll();
  auto [r, w] = make_pipe();
  add(ep, r, EPOLLIN | EPOLLET, 1);
  write_byte(w);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 1}}));
  EXPECT_EQ(wait(ep), Evs{});
  mod(ep, r, EPOLLIN | EPOLLET, 2);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 2}}));
  EXPECT_EQ(wait(ep), Evs{});
}

// ep -ET,IN-> r ; ready at ADD time
TEST_P(EdgeTriggered, AddOfAReadySourceReportsOnce) {
  Fd ep = make_epoll();
  auto [r, w] = make_pipe();
  write_byte(w);
  add(ep, r, EPOLLIN | EPOLLET, 1);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 1}}));
  EXPECT_EQ(wait(ep), Evs{});
}

// ep -ET,IN-> r ; a wake-up that does not match the mask (the reader reads) is not an edge
TEST_P(EdgeTriggered, NonMatchingWakeupIsNotAnEdge) {
  Fd ep = make_epoll();
  auto [r, w] = make_pipe();
  char buf[4] = {};
  ASSERT_EQ(api().write(w, buf, sizeof buf), 4);
  add(ep, r, EPOLLIN | EPOLLET, 1);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 1}}));
  ASSERT_EQ(api().read(r, buf, 1), 1);  // wakes writers with OUT, which r does not watch
  EXPECT_EQ(wait(ep), Evs{});
}

// ---- EPOLLONESHOT ----------------------------------------------------------------------------

class OneShot : public Conformance {};

// ep -ONESHOT,IN-> efd (readable) ; wait, wait, write, wait, MOD, wait
TEST_P(OneShot, OneDeliveryUntilMod) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd(1);
  add(ep, efd, EPOLLIN | EPOLLONESHOT, 1);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 1}}));
  EXPECT_EQ(wait(ep), Evs{});
  write_u64(efd, 1);
  EXPECT_EQ(wait(ep), Evs{});
  mod(ep, efd, EPOLLIN | EPOLLONESHOT, 2);  // re-arms and re-polls: still readable
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 2}}));
  EXPECT_EQ(wait(ep), Evs{});
  // A disabled item still exists.
  epoll_event ev{};
  ev.events = EPOLLIN;
  EXPECT_ERRNO(EEXIST, api().epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev));
  EXPECT_EQ(api().epoll_ctl(ep, EPOLL_CTL_DEL, efd, nullptr), 0);
}

// ep -ONESHOT,IN-> r ; write, harvest, then the writer goes away
TEST_P(OneShot, HupIsSuppressedWhileDisabled) {
  Fd ep = make_epoll();
  auto [r, w] = make_pipe();
  add(ep, r, EPOLLIN | EPOLLONESHOT, 1);
  write_byte(w);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 1}}));
  w.reset();
  EXPECT_EQ(wait(ep), Evs{});
  mod(ep, r, EPOLLIN | EPOLLONESHOT, 2);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN | EPOLLHUP, 2}}));
}

// ep -ONESHOT,OUT-> w ; harvest, then the reader goes away
TEST_P(OneShot, ErrIsSuppressedWhileDisabled) {
  Fd ep = make_epoll();
  auto [r, w] = make_pipe();
  add(ep, w, EPOLLOUT | EPOLLONESHOT, 1);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLOUT, 1}}));
  r.reset();
  EXPECT_EQ(wait(ep), Evs{});
  mod(ep, w, EPOLLOUT | EPOLLONESHOT, 2);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLOUT | EPOLLERR, 2}}));
}

// ep -ONESHOT,ET,IN-> r ; write, harvest, write
TEST_P(OneShot, WithEdgeTriggerNewEdgesAreIgnoredUntilMod) {
  Fd ep = make_epoll();
  auto [r, w] = make_pipe();
  add(ep, r, EPOLLIN | EPOLLET | EPOLLONESHOT, 1);
  write_byte(w);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 1}}));
  write_byte(w);
  EXPECT_EQ(wait(ep), Evs{});
  mod(ep, r, EPOLLIN | EPOLLET | EPOLLONESHOT, 1);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 1}}));
}

// ep -ONESHOT,IN-> efd ; MOD to a plain LT mask
TEST_P(OneShot, ModToLevelTriggeredKeepsReporting) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd(1);
  add(ep, efd, EPOLLIN | EPOLLONESHOT, 1);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 1}}));
  mod(ep, efd, EPOLLIN, 1);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 1}}));
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 1}}));
}

// t0: ew(ep)  t1: ew(ep) | ep -ONESHOT,IN-> efd (LT) | write efd
// The item is disabled by the first harvest, so it is not re-queued for the second waiter.
TEST_P(OneShot, LevelTriggeredOneShotWakesOneWaiter) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  add(ep, efd, EPOLLIN | EPOLLONESHOT, 1);
  auto r = run_waiters(api(), {{ep, WaitKind::kEpollWait, 1}, {ep, WaitKind::kEpollWait, 1}}, 1,
                       [&] { write_u64(efd, 1); });
  EXPECT_EQ(harvest_count(r), 1);
}

// ---- EPOLLEXCLUSIVE ----------------------------------------------------------------------------
// (The EINVAL cases are in EpollCtlErrors.)

class Exclusive : public Conformance {};

// t0..t3: ew(ep0..ep3), one waiter per instance | epN -EXCLUSIVE,IN-> efd | write efd
TEST_P(Exclusive, OneWriteWakesOneOfFourInstances) {
  Fd efd = make_eventfd();
  std::vector<Fd> eps;
  std::vector<WaiterSpec> waiters;
  for (int i = 0; i < 4; ++i) {
    eps.push_back(make_epoll());
    add(eps.back(), efd, EPOLLIN | EPOLLEXCLUSIVE, static_cast<uint64_t>(i));
    waiters.push_back({eps.back(), WaitKind::kEpollWait, 1});
  }
  auto r = run_waiters(api(), waiters, 1, [&] { write_u64(efd, 1); });
  EXPECT_EQ(harvest_count(r), 1);
}

// The same without EPOLLEXCLUSIVE: every instance's waiter wakes.
TEST_P(Exclusive, WithoutTheFlagEveryInstanceWakes) {
  Fd efd = make_eventfd();
  std::vector<Fd> eps;
  std::vector<WaiterSpec> waiters;
  for (int i = 0; i < 4; ++i) {
    eps.push_back(make_epoll());
    add(eps.back(), efd, EPOLLIN, static_cast<uint64_t>(i));
    waiters.push_back({eps.back(), WaitKind::kEpollWait, 1});
  }
  auto r = run_waiters(api(), waiters, 4, [&] { write_u64(efd, 1); });
  EXPECT_EQ(harvest_count(r), 4);
}

// t0: ew(ep1) | ep0 -EXCLUSIVE,IN-> efd (nobody waits on ep0), ep1 -EXCLUSIVE,IN-> efd
// An instance without waiters does not use up the exclusive wake-up.
TEST_P(Exclusive, InstanceWithoutWaitersDoesNotConsumeTheWakeup) {
  Fd efd = make_eventfd();
  Fd ep0 = make_epoll();
  Fd ep1 = make_epoll();
  add(ep0, efd, EPOLLIN | EPOLLEXCLUSIVE, 0);
  add(ep1, efd, EPOLLIN | EPOLLEXCLUSIVE, 1);
  auto r = run_waiters(api(), {{ep1, WaitKind::kEpollWait, 1}}, 1, [&] { write_u64(efd, 1); });
  EXPECT_EQ(harvest_count(r), 1);
  // ep0's item was queued all the same.
  EXPECT_EQ(wait(ep0), (Evs{{EPOLLIN, 0}}));
}

// ep -EXCLUSIVE,IN-> efd, no waiters: an exclusive item reports like any other
TEST_P(Exclusive, ReportsLikeAnOrdinaryItem) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  add(ep, efd, EPOLLIN | EPOLLOUT | EPOLLEXCLUSIVE, 3);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLOUT, 3}}));
  write_u64(efd, 1);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN | EPOLLOUT, 3}}));
}

// ---- Always-reported bits and masks ----------------------------------------------------------

class InterestMask : public Conformance {};

// ep -(mask 0)-> r ; write ; writer closes
TEST_P(InterestMask, MaskZeroIsLegalAndReportsOnlyHup) {
  Fd ep = make_epoll();
  auto [r, w] = make_pipe();
  add(ep, r, 0, 1);
  write_byte(w);
  EXPECT_EQ(wait(ep), Evs{});
  w.reset();
  EXPECT_EQ(wait(ep), (Evs{{EPOLLHUP, 1}}));
}

// ep -(mask 0)-> w ; reader closes
TEST_P(InterestMask, MaskZeroReportsErr) {
  Fd ep = make_epoll();
  auto [r, w] = make_pipe();
  add(ep, w, 0, 1);
  EXPECT_EQ(wait(ep), Evs{});
  r.reset();
  EXPECT_EQ(wait(ep), (Evs{{EPOLLERR, 1}}));
}

// ep -(mask 0)-> a (socketpair a/b) ; b closes
TEST_P(InterestMask, MaskZeroReportsSocketHangup) {
  Fd ep = make_epoll();
  auto [a, b] = make_socketpair();
  add(ep, a, 0, 1);
  EXPECT_EQ(wait(ep), Evs{});
  b.reset();
  EXPECT_EQ(wait(ep), (Evs{{EPOLLHUP, 1}}));
}

// MOD cannot take ERR/HUP away either.
TEST_P(InterestMask, ModKeepsErrAndHup) {
  Fd ep = make_epoll();
  auto [r, w] = make_pipe();
  add(ep, r, EPOLLIN, 1);
  mod(ep, r, EPOLLOUT, 2);
  w.reset();
  EXPECT_EQ(wait(ep), (Evs{{EPOLLHUP, 2}}));
}

// Only the asked-for bits of IN/OUT/RDHUP are reported.
TEST_P(InterestMask, OnlyRequestedBitsAreReported) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd(1);  // readable and writable
  Fd d = adopt(static_cast<int>(must(api().dup(efd), "dup")));
  add(ep, efd, EPOLLIN, 1);
  add(ep, d, EPOLLOUT, 2);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 1}, {EPOLLOUT, 2}}));

  Fd ep2 = make_epoll();
  auto [a, b] = make_socketpair();
  add(ep2, a, EPOLLIN, 3);
  ASSERT_EQ(api().shutdown(b, SHUT_WR), 0);
  EXPECT_EQ(wait(ep2), (Evs{{EPOLLIN, 3}}));  // no RDHUP: not asked for
  mod(ep2, a, EPOLLIN | EPOLLRDHUP, 4);
  EXPECT_EQ(wait(ep2), (Evs{{EPOLLIN | EPOLLRDHUP, 4}}));
}

// MOD replaces both mask and data; the whole 64-bit data word comes back unchanged.
TEST_P(InterestMask, ModReplacesMaskAndData) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd(1);
  add(ep, efd, EPOLLIN, 0xfedcba9876543210ULL);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 0xfedcba9876543210ULL}}));
  mod(ep, efd, EPOLLOUT, ~0ULL);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLOUT, ~0ULL}}));
  mod(ep, efd, 0, 0);
  EXPECT_EQ(wait(ep), Evs{});
}

}  // namespace

UEPOLL_CONFORMANCE_SUITE(EdgeTriggered);
UEPOLL_CONFORMANCE_SUITE(OneShot);
UEPOLL_CONFORMANCE_SUITE(Exclusive);
UEPOLL_CONFORMANCE_SUITE(InterestMask);

}  // namespace uepoll_conformance
