// max_user_watches (ENOSPC) and its C API, and maxevents at and past its limit.
#include <gtest/gtest.h>
#include <sys/eventfd.h>

#include <climits>
#include <vector>

#include "uepoll/process.hpp"
#include "uepoll/stats.hpp"
#include "uepoll/uepoll.h"

namespace {

// Restores the limit whatever the test does.
class WatchLimit : public ::testing::Test {
 protected:
  void SetUp() override { saved_ = uepoll_max_user_watches(); }
  void TearDown() override { ASSERT_EQ(uepoll_set_max_user_watches(saved_), 0); }
  long saved_ = 0;
};

TEST_F(WatchLimit, AddFailsWithEnospcAtTheLimitAndRecoversAfterARemoval) {
  uepoll::Process p;
  const long in_use = uepoll::stats::quiesce_and_read().user_watches;
  ASSERT_EQ(uepoll_set_max_user_watches(in_use + 3), 0);
  EXPECT_EQ(uepoll_max_user_watches(), in_use + 3);
  int ep = p.epoll_create1(0).value();
  std::vector<int> fds;
  for (int i = 0; i < 4; ++i) {
    fds.push_back(p.eventfd(1, 0).value());
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(p.epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev)) << i;
  }
  EXPECT_EQ(p.epoll_ctl(ep, EPOLL_CTL_ADD, fds[3], &ev).error(), ENOSPC);
  // Nothing of the failed ADD remains: three ready items, the count at the limit.
  epoll_event out[8];
  EXPECT_EQ(p.epoll_wait(ep, out, 8, 0).value(), 3);
  EXPECT_EQ(uepoll::stats::quiesce_and_read().user_watches, in_use + 3);
  // MOD and DEL still work at the limit; a removal makes room again.
  EXPECT_TRUE(p.epoll_ctl(ep, EPOLL_CTL_MOD, fds[0], &ev));
  EXPECT_TRUE(p.epoll_ctl(ep, EPOLL_CTL_DEL, fds[0], nullptr));
  EXPECT_TRUE(p.epoll_ctl(ep, EPOLL_CTL_ADD, fds[3], &ev));
  // Closing the instance gives every watch back.
  EXPECT_TRUE(p.close(ep));
  for (int fd : fds) {
    EXPECT_TRUE(p.close(fd));
  }
  EXPECT_EQ(uepoll::stats::quiesce_and_read().user_watches, in_use);
}

TEST_F(WatchLimit, TheLimitMustBePositive) {
  EXPECT_EQ(uepoll_set_max_user_watches(0), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(uepoll_set_max_user_watches(-5), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(uepoll_max_user_watches(), saved_);
  EXPECT_GT(saved_, 0);  // the host's fs.epoll.max_user_watches by default
}

TEST(MaxEvents, AtAndPastTheLimit) {
  uepoll::Process p;
  int ep = p.epoll_create1(0).value();
  const int max = INT_MAX / static_cast<int>(sizeof(epoll_event));
  epoll_event ev[1];
  // Past the limit: EINVAL before the buffer is looked at; at it, the size is accepted.
  EXPECT_EQ(p.epoll_wait(ep, ev, max + 1, 0).error(), EINVAL);
  EXPECT_EQ(p.epoll_wait(ep, ev, INT_MAX, 0).error(), EINVAL);
  EXPECT_EQ(p.epoll_wait(ep, nullptr, max, 0).value(), 0);  // nothing ready, NULL is fine
  EXPECT_EQ(p.epoll_wait(ep, ev, 0, 0).error(), EINVAL);
  EXPECT_EQ(p.epoll_wait(ep, ev, -1, 0).error(), EINVAL);
}

}  // namespace
