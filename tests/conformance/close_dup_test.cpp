// The registration key is (open file description, descriptor number used at ADD), but the
// registration lives as long as the description: closing one number while a dup keeps the
// description open leaves the item in place, still reporting with its old data.
//
// Notation: "efd#n" is an eventfd reached through descriptor number n; "d" is a dup of it.
#include <sys/epoll.h>
#include <unistd.h>

#include "conformance.hpp"

namespace uepoll_conformance {
namespace {

class KeyRules : public Conformance {
 protected:
  Fd dup_of(int fd) { return adopt(static_cast<int>(must(api().dup(fd), "dup"))); }
  // Closes the number held by `fd` by hand and returns it.
  int close_number(Fd& fd) {
    const int n = fd.release();
    must(api().close(n), "close");
    return n;
  }
};

// ep -LT-> efd#n ; d = dup(n) ; close(n) ; write through d
TEST_P(KeyRules, RegistrationSurvivesCloseWhileADupLives) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  Fd d = dup_of(efd);
  add(ep, efd, EPOLLIN, 1);
  close_number(efd);
  EXPECT_EQ(wait(ep), Evs{});
  write_u64(d, 1);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 1}}));
  EXPECT_EQ(read_u64(d), 1U);
  EXPECT_EQ(wait(ep), Evs{});
}

// ep -LT-> efd#n ; d = dup(n) ; close(n) ; DEL(n) ; DEL(d) ; MOD(n) ; MOD(d)
TEST_P(KeyRules, ClosedNumberAndDupNumberDoNotFindTheItem) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  Fd d = dup_of(efd);
  add(ep, efd, EPOLLIN, 1);
  const int n = close_number(efd);
  epoll_event ev{};
  ev.events = EPOLLIN;
  EXPECT_ERRNO(EBADF, api().epoll_ctl(ep, EPOLL_CTL_DEL, n, nullptr));
  EXPECT_ERRNO(EBADF, api().epoll_ctl(ep, EPOLL_CTL_MOD, n, &ev));
  EXPECT_ERRNO(ENOENT, api().epoll_ctl(ep, EPOLL_CTL_DEL, d, nullptr));
  EXPECT_ERRNO(ENOENT, api().epoll_ctl(ep, EPOLL_CTL_MOD, d, &ev));
  // The item is still there and still reports.
  write_u64(d, 1);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 1}}));
}

// ep -LT-> efd#n ; d = dup(n) ; close(n) ; dup2(d, n) ; DEL(n)
TEST_P(KeyRules, Dup2BackToTheOriginalNumberMakesDelWork) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  Fd d = dup_of(efd);
  add(ep, efd, EPOLLIN, 1);
  const int n = close_number(efd);
  ASSERT_EQ(api().dup2(d, n), n);
  Fd again = adopt(n);
  EXPECT_EQ(api().epoll_ctl(ep, EPOLL_CTL_DEL, n, nullptr), 0);
  write_u64(d, 1);
  EXPECT_EQ(wait(ep), Evs{});
  EXPECT_ERRNO(ENOENT, api().epoll_ctl(ep, EPOLL_CTL_DEL, n, nullptr));
}

// ep -LT-> efd#n ; d = dup(n) ; close(n) ; close(d): the last close removes the item
TEST_P(KeyRules, LastCloseRemovesTheRegistration) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd(1);
  Fd d = dup_of(efd);
  add(ep, efd, EPOLLIN, 1);
  ASSERT_EQ(wait(ep), (Evs{{EPOLLIN, 1}}));
  const int n = close_number(efd);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 1}}));
  close_number(d);
  EXPECT_EQ(wait(ep), Evs{});
  // A new description under the old number is a new key.
  Fd fresh = make_eventfd(1);
  ASSERT_EQ(fresh.get(), n);
  add(ep, fresh, EPOLLIN, 2);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 2}}));
}

// ep -LT-> efd#n (no dup), readable ; close(n)
TEST_P(KeyRules, CloseOfTheOnlyNumberRemovesAReadyItem) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd(1);
  add(ep, efd, EPOLLIN, 1);
  close_number(efd);
  EXPECT_EQ(wait(ep), Evs{});
}

// ep -LT-> old#n ; d = dup(n) ; close(n) ; new#n (number reused) ; ADD(n)
// Two items now share the number n, for two descriptions.
TEST_P(KeyRules, ReusedNumberWithOldDescriptionAliveIsANewKey) {
  Fd ep = make_epoll();
  Fd old = make_eventfd();
  Fd d = dup_of(old);
  add(ep, old, EPOLLIN, 1);
  const int n = close_number(old);
  Fd fresh = make_eventfd();
  ASSERT_EQ(fresh.get(), n);
  add(ep, fresh, EPOLLIN, 2);
  write_u64(fresh, 1);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 2}}));
  write_u64(d, 1);
  EXPECT_EQ(wait(ep).size(), 2U);
  // DEL(n) finds the key of the description now at n: the new one.
  del(ep, n);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 1}}));
}

// ep -LT-> efd#n (data 1), ep -LT-> efd#d (data 2) ; one write makes both ready
// Both items hang on the same object; the newest registration is reported first.
TEST_P(KeyRules, SameDescriptionTwiceNewestRegistrationFirst) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  Fd d = dup_of(efd);
  add(ep, efd, EPOLLIN, 1);
  add(ep, d, EPOLLIN, 2);
  write_u64(efd, 1);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 2}, {EPOLLIN, 1}}));

  Fd ep2 = make_epoll();
  Fd efd2 = make_eventfd();
  Fd d2 = dup_of(efd2);
  add(ep2, d2, EPOLLIN | EPOLLET, 2);
  add(ep2, efd2, EPOLLIN | EPOLLET, 1);
  write_u64(d2, 1);
  EXPECT_EQ(wait(ep2), (Evs{{EPOLLIN, 1}, {EPOLLIN, 2}}));
}

// ep -LT-> efd#n (data 1), ep -OUT-> efd#d (data 2): independent masks and data
TEST_P(KeyRules, SameDescriptionTwiceHasIndependentItems) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  Fd d = dup_of(efd);
  add(ep, efd, EPOLLIN, 1);
  add(ep, d, EPOLLOUT, 2);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLOUT, 2}}));
  del(ep, d);
  EXPECT_EQ(wait(ep), Evs{});
  write_u64(efd, 1);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 1}}));
}

// ep -LT-> efd#n ; dup2(other, n) replaces the only reference: the item goes away
TEST_P(KeyRules, Dup2OverARegisteredNumberRemovesTheItem) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd(1);
  Fd other = make_eventfd();
  add(ep, efd, EPOLLIN, 1);
  ASSERT_EQ(api().dup2(other, efd), efd.get());
  EXPECT_EQ(wait(ep), Evs{});
  // The number now names `other`'s description, a new key.
  add(ep, efd, EPOLLIN, 3);
  write_u64(other, 1);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 3}}));
}

// ep2 = dup(ep): both numbers are the same instance
TEST_P(KeyRules, DupOfAnInstanceIsTheSameInstance) {
  Fd ep = make_epoll();
  Fd ep2 = dup_of(ep);
  Fd efd = make_eventfd(1);
  add(ep2, efd, EPOLLIN, 5);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 5}}));
  epoll_event ev{};
  ev.events = EPOLLIN;
  EXPECT_ERRNO(EEXIST, api().epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev));
  close_number(ep);
  EXPECT_EQ(wait(ep2), (Evs{{EPOLLIN, 5}}));
}

// parent -LT-> child -LT-> efd ; close(child) (no dup): the parent forgets the child
TEST_P(KeyRules, ClosingAWatchedInstanceRemovesItFromItsParent) {
  Fd parent = make_epoll();
  Fd child = make_epoll();
  Fd efd = make_eventfd();
  add(child, efd, EPOLLIN, 1);
  add(parent, child, EPOLLIN, 2);
  write_u64(efd, 1);
  EXPECT_EQ(wait(parent), (Evs{{EPOLLIN, 2}}));
  close_number(child);
  EXPECT_EQ(wait(parent), Evs{});
  write_u64(efd, 1);
  EXPECT_EQ(wait(parent), Evs{});
}

// parent -LT-> child#n -LT-> efd ; d = dup(child) ; close(n): the parent keeps reporting child
TEST_P(KeyRules, WatchedInstanceSurvivesCloseWhileADupLives) {
  Fd parent = make_epoll();
  Fd child = make_epoll();
  Fd efd = make_eventfd();
  add(child, efd, EPOLLIN, 1);
  add(parent, child, EPOLLIN, 2);
  Fd d = dup_of(child);
  close_number(child);
  write_u64(efd, 1);
  EXPECT_EQ(wait(parent), (Evs{{EPOLLIN, 2}}));
  EXPECT_EQ(wait(d), (Evs{{EPOLLIN, 1}}));
  EXPECT_ERRNO(ENOENT, api().epoll_ctl(parent, EPOLL_CTL_DEL, d, nullptr));
}

// ep -LT-> efd (ready, queued) ; DEL before the harvest
TEST_P(KeyRules, DelOfAQueuedItemDropsItsEvent) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd(1);
  Fd other = make_eventfd(1);
  add(ep, efd, EPOLLIN, 1);
  add(ep, other, EPOLLIN, 2);
  del(ep, efd);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 2}}));
  add(ep, efd, EPOLLIN, 3);  // re-added: queued behind `other`
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 2}, {EPOLLIN, 3}}));
}

// ep -LT-> efd ; close(ep) while efd lives ; efd can be registered elsewhere and still works
TEST_P(KeyRules, ClosingAnInstanceReleasesItsItems) {
  Fd efd = make_eventfd(1);
  {
    Fd ep = make_epoll();
    add(ep, efd, EPOLLIN, 1);
  }
  Fd ep = make_epoll();
  add(ep, efd, EPOLLIN, 2);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 2}}));
  EXPECT_EQ(read_u64(efd), 1U);
}

// t0: ew(ep) asleep | close(ep), then write efd
// The sleeping waiter holds the instance: closing its last descriptor neither ends the wait nor
// removes the items, and the next event still reaches the waiter.
TEST_P(KeyRules, ClosingAnInstanceDoesNotEndABlockedWait) {
#ifdef UEPOLL_TSAN
  // ThreadSanitizer models kernel descriptors and reports the close of one that another thread
  // is waiting on as a data race, though that is the point of the test.
  if (on_kernel()) GTEST_SKIP() << "ThreadSanitizer flags close() of a descriptor in use";
#endif
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  add(ep, efd, EPOLLIN, 1);
  const int ep_number = ep.get();
  auto r = run_waiters(api(), {{ep_number, WaitKind::kEpollWait, 1}}, 1, [&] {
    close_number(ep);
    write_u64(efd, 1);
  });
  EXPECT_EQ(harvest_count(r), 1);
}

// t0: ew(ep) asleep | close the only descriptor of the watched eventfd
// The item goes away; nothing wakes the waiter (it is ended with SIGUSR1).
TEST_P(KeyRules, ClosingAWatchedFileDoesNotWakeAWaiter) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  add(ep, efd, EPOLLIN, 1);
  auto r = run_waiters(api(), {{ep, WaitKind::kEpollWait, 1}}, 0, [&] { close_number(efd); });
  EXPECT_EQ(harvest_count(r), 0);
  EXPECT_TRUE(r[0].interrupted);
  EXPECT_EQ(wait(ep), Evs{});
}

}  // namespace

UEPOLL_CONFORMANCE_SUITE(KeyRules);

}  // namespace uepoll_conformance
