// Instances inside instances: depth limit (at most 5 instances on a chain), no cycles, and the
// wake-up path limits (an object may be reached from at most 500 instances through paths of
// length 2, ...).
//
// Notation: "a -> b" means b is registered in a (EPOLLIN, LT); r/w are the ends of a pipe.
#include <sys/epoll.h>

#include <string>
#include <utility>
#include <vector>

#include "conformance.hpp"

namespace uepoll_conformance {
namespace {

class Nesting : public Conformance {
 protected:
  std::vector<Fd> make_epolls(size_t n) {
    std::vector<Fd> out;
    for (size_t i = 0; i < n; ++i) out.push_back(make_epoll());
    return out;
  }
  int try_add(int epfd, int fd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    return api().epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
  }
};

// e0 -> e1 -> e2 -> e3 -> e4 (built top-down) ; then e4 -> e5 and e(-1) -> e0
TEST_P(Nesting, ChainOfFiveAcceptedSixthLinkIsEloop) {
  auto e = make_epolls(7);  // e[1..5] the chain, e[0] above it, e[6] below it
  for (size_t i = 1; i < 5; ++i) ASSERT_EQ(try_add(e[i], e[i + 1]), 0) << "link " << i;
  EXPECT_ERRNO(ELOOP, try_add(e[5], e[6]));  // at the bottom
  EXPECT_ERRNO(ELOOP, try_add(e[0], e[1]));  // at the top
  // The failed links left nothing behind.
  EXPECT_ERRNO(ENOENT, api().epoll_ctl(e[5], EPOLL_CTL_DEL, e[6], nullptr));
  EXPECT_ERRNO(ENOENT, api().epoll_ctl(e[0], EPOLL_CTL_DEL, e[1], nullptr));
}

// The same chain built bottom-up.
TEST_P(Nesting, ChainBuiltBottomUpHasTheSameLimit) {
  auto e = make_epolls(7);
  for (size_t i = 4; i >= 1; --i) ASSERT_EQ(try_add(e[i], e[i + 1]), 0) << "link " << i;
  EXPECT_ERRNO(ELOOP, try_add(e[5], e[6]));
  EXPECT_ERRNO(ELOOP, try_add(e[0], e[1]));
}

// e0 -> e1 -> e2 and e3 -> e4 -> e5: joining e2 -> e3 would make a chain of six
TEST_P(Nesting, JoiningTwoChainsCountsBoth) {
  auto e = make_epolls(6);
  ASSERT_EQ(try_add(e[0], e[1]), 0);
  ASSERT_EQ(try_add(e[1], e[2]), 0);
  ASSERT_EQ(try_add(e[3], e[4]), 0);
  ASSERT_EQ(try_add(e[4], e[5]), 0);
  EXPECT_ERRNO(ELOOP, try_add(e[2], e[3]));
  // Five in all is fine: drop e5 from the lower chain first.
  del(e[4], e[5]);
  EXPECT_EQ(try_add(e[2], e[3]), 0);
}

// e0 -> e1 -> e2 -> e3 -> e4 -> r: a full chain still accepts a non-epoll leaf, and a write to
// the pipe makes the top instance readable.
TEST_P(Nesting, ReadinessPropagatesThroughAFullChain) {
  auto e = make_epolls(5);
  auto [r, w] = make_pipe();
  for (size_t i = 0; i < 4; ++i) ASSERT_EQ(try_add(e[i], e[i + 1]), 0);
  ASSERT_EQ(try_add(e[4], r), 0);
  EXPECT_EQ(wait(e[0]), Evs{});
  write_byte(w);
  EXPECT_EQ(poll_in(e[0]), 1);
  EXPECT_EQ(wait(e[0]).size(), 1U);
  char c;
  ASSERT_EQ(api().read(r, &c, 1), 1);
  EXPECT_EQ(wait(e[0]), Evs{});
}

// e0 -> e1 ; e1 -> e0 would close a cycle
TEST_P(Nesting, TwoCycleIsEloop) {
  auto e = make_epolls(2);
  ASSERT_EQ(try_add(e[0], e[1]), 0);
  EXPECT_ERRNO(ELOOP, try_add(e[1], e[0]));
}

// e0 -> e1 -> e2 ; e2 -> e0 would close a cycle
TEST_P(Nesting, ThreeCycleIsEloop) {
  auto e = make_epolls(3);
  ASSERT_EQ(try_add(e[0], e[1]), 0);
  ASSERT_EQ(try_add(e[1], e[2]), 0);
  EXPECT_ERRNO(ELOOP, try_add(e[2], e[0]));
  EXPECT_ERRNO(ELOOP, try_add(e[2], e[1]));
  // After breaking the chain the same link is fine.
  del(e[0], e[1]);
  EXPECT_EQ(try_add(e[2], e[0]), 0);
}

// e0 -> e0
TEST_P(Nesting, InstanceInsideItselfIsEinval) {
  Fd e0 = make_epoll();
  EXPECT_ERRNO(EINVAL, try_add(e0, e0));
}

// e0 -> e1, e0 -> e2, e1 -> e3, e2 -> e3 (a diamond) ; e3 -> efd
TEST_P(Nesting, DiamondIsNotACycle) {
  auto e = make_epolls(4);
  Fd efd = make_eventfd();
  ASSERT_EQ(try_add(e[0], e[1]), 0);
  ASSERT_EQ(try_add(e[0], e[2]), 0);
  ASSERT_EQ(try_add(e[1], e[3]), 0);
  ASSERT_EQ(try_add(e[2], e[3]), 0);
  ASSERT_EQ(try_add(e[3], efd), 0);
  EXPECT_ERRNO(ELOOP, try_add(e[3], e[0]));
  write_u64(efd, 1);
  EXPECT_EQ(wait(e[0]).size(), 2U);  // e1 and e2
}

// inner -> r ; parent[0..499] -> inner ok ; parent[500] -> inner is EINVAL (500 paths of
// length 2 reach the pipe already). The failed ADD is rolled back: parent[500] works normally.
TEST_P(Nesting, PathLimitOf500ParentsWithRollback) {
  Fd inner = make_epoll();
  auto [r, w] = make_pipe();
  add(inner, r, EPOLLIN, 0);
  auto parents = make_epolls(501);
  for (size_t i = 0; i < 500; ++i) ASSERT_EQ(try_add(parents[i], inner), 0) << "parent " << i;
  EXPECT_ERRNO(EINVAL, try_add(parents[500], inner));

  // Rolled back: the 501st parent does not hold the inner instance, and is usable.
  EXPECT_ERRNO(ENOENT, api().epoll_ctl(parents[500], EPOLL_CTL_DEL, inner, nullptr));
  Fd efd = make_eventfd(1);
  add(parents[500], efd, EPOLLIN, 7);
  EXPECT_EQ(wait(parents[500]), (Evs{{EPOLLIN, 7}}));
  write_byte(w);
  EXPECT_EQ(wait(parents[500]), (Evs{{EPOLLIN, 7}}));
  // The 500 links still work.
  EXPECT_EQ(wait(parents[0]).size(), 1U);
  EXPECT_EQ(wait(parents[499]).size(), 1U);
  // Making room admits the 501st.
  del(parents[0], inner);
  EXPECT_EQ(try_add(parents[500], inner), 0);
  EXPECT_EQ(wait(parents[500]).size(), 2U);
}

// r <- c0 <- c1 [<- c2 [<- c3]] (a chain of 2, 3 or 4 instances above the pipe), then parents
// of the top of the chain: paths of length 3, 4 and 5 from the pipe are limited to 100, 50
// and 10. The failing ADD leaves nothing behind.
TEST_P(Nesting, PathLimitsForLongerPaths) {
  for (const auto& [chain_len, limit] : {std::pair{2, 100}, std::pair{3, 50}, std::pair{4, 10}}) {
    SCOPED_TRACE("paths of length " + std::to_string(chain_len + 1));
    auto [r, w] = make_pipe();
    auto chain = make_epolls(static_cast<size_t>(chain_len));
    ASSERT_EQ(try_add(chain[0], r), 0);
    for (size_t i = 1; i < chain.size(); ++i) ASSERT_EQ(try_add(chain[i], chain[i - 1]), 0);
    const int top = chain.back();
    auto parents = make_epolls(static_cast<size_t>(limit) + 1);
    for (int i = 0; i < limit; ++i) {
      ASSERT_EQ(try_add(parents[static_cast<size_t>(i)], top), 0) << "parent " << i;
    }
    EXPECT_ERRNO(EINVAL, try_add(parents.back(), top));
    EXPECT_ERRNO(ENOENT, api().epoll_ctl(parents.back(), EPOLL_CTL_DEL, top, nullptr));
    write_byte(w);
    EXPECT_EQ(wait(parents.front()).size(), 1U);
    EXPECT_EQ(wait(parents.back()), Evs{});
  }
}

// inner (empty) in 600 parents: no object below it, so no path limit applies; adding a pipe
// into inner then fails, because the pipe would be reached by 600 paths of length 2.
TEST_P(Nesting, PathLimitAppliesWhenTheLeafIsAdded) {
  Fd inner = make_epoll();
  auto parents = make_epolls(600);
  for (size_t i = 0; i < parents.size(); ++i) ASSERT_EQ(try_add(parents[i], inner), 0) << i;
  auto [r, w] = make_pipe();
  EXPECT_ERRNO(EINVAL, try_add(inner, r));
  EXPECT_ERRNO(ENOENT, api().epoll_ctl(inner, EPOLL_CTL_DEL, r, nullptr));
  // An instance below inner has no such problem (the limit counts paths to files).
  Fd below = make_epoll();
  EXPECT_EQ(try_add(inner, below), 0);
}

// r directly in 1000 instances: paths of length 1 are not limited.
TEST_P(Nesting, DirectWatchersAreUnlimited) {
  auto [r, w] = make_pipe();
  auto eps = make_epolls(1000);
  for (size_t i = 0; i < eps.size(); ++i) ASSERT_EQ(try_add(eps[i], r), 0) << i;
  write_byte(w);
  EXPECT_EQ(wait(eps[0]).size(), 1U);
  EXPECT_EQ(wait(eps[999]).size(), 1U);
}

// outer -> inner -> efd, efd not ready: an idle inner instance does not make outer readable
TEST_P(Nesting, IdleInnerInstanceIsNotReady) {
  Fd outer = make_epoll();
  Fd inner = make_epoll();
  Fd efd = make_eventfd();
  add(inner, efd, EPOLLIN, 1);
  add(outer, inner, EPOLLIN, 2);
  EXPECT_EQ(wait(outer), Evs{});
  EXPECT_EQ(poll_in(outer), 0);
  EXPECT_EQ(readiness(inner), 0U);
  write_u64(efd, 1);
  EXPECT_EQ(wait(outer), (Evs{{EPOLLIN, 2}}));
  EXPECT_EQ(readiness(inner), uint32_t{EPOLLIN});  // an instance is only ever readable
  // Once the item stops being ready, the inner instance stops being readable.
  EXPECT_EQ(read_u64(efd), 1U);
  EXPECT_EQ(wait(outer), Evs{});
  EXPECT_EQ(poll_in(inner), 0);
}

}  // namespace

UEPOLL_CONFORMANCE_SUITE(Nesting);

}  // namespace uepoll_conformance
