// First checks of the epoll core through the C API: eventfd and pipe readiness, LT/ET/ONESHOT.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/eventfd.h>

#include <cstdint>

#include "uepoll/uepoll.h"

namespace {

TEST(EpollSmoke, EventfdLevelTriggered) {
  int ep = uepoll_epoll_create1(0);
  ASSERT_GE(ep, 0);
  int efd = uepoll_eventfd(0, EFD_NONBLOCK);
  ASSERT_GE(efd, 0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 42;
  ASSERT_EQ(uepoll_epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev), 0);
  epoll_event out[4];
  EXPECT_EQ(uepoll_epoll_wait(ep, out, 4, 0), 0);
  std::uint64_t one = 1;
  ASSERT_EQ(uepoll_write(efd, &one, sizeof one), 8);
  ASSERT_EQ(uepoll_epoll_wait(ep, out, 4, 0), 1);
  EXPECT_EQ(out[0].events, static_cast<std::uint32_t>(EPOLLIN));
  EXPECT_EQ(out[0].data.u64, 42u);
  ASSERT_EQ(uepoll_epoll_wait(ep, out, 4, 0), 1);  // level-triggered: still there
  std::uint64_t value = 0;
  ASSERT_EQ(uepoll_read(efd, &value, sizeof value), 8);
  EXPECT_EQ(value, 1u);
  EXPECT_EQ(uepoll_epoll_wait(ep, out, 4, 0), 0);
  EXPECT_EQ(uepoll_close(efd), 0);
  EXPECT_EQ(uepoll_close(ep), 0);
}

TEST(EpollSmoke, PipeEdgeTriggeredEveryWrite) {
  int ep = uepoll_epoll_create1(0);
  int fds[2];
  ASSERT_EQ(uepoll_pipe2(fds, O_NONBLOCK), 0);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = 7;
  ASSERT_EQ(uepoll_epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], &ev), 0);
  epoll_event out[4];
  ASSERT_EQ(uepoll_write(fds[1], "a", 1), 1);
  EXPECT_EQ(uepoll_epoll_wait(ep, out, 4, 0), 1);
  EXPECT_EQ(uepoll_epoll_wait(ep, out, 4, 0), 0);
  ASSERT_EQ(uepoll_write(fds[1], "b", 1), 1);  // unread data, yet a new edge
  EXPECT_EQ(uepoll_epoll_wait(ep, out, 4, 0), 1);
  ASSERT_EQ(uepoll_close(fds[1]), 0);
  ASSERT_EQ(uepoll_epoll_wait(ep, out, 4, 0), 1);
  EXPECT_EQ(out[0].events, static_cast<std::uint32_t>(EPOLLIN | EPOLLHUP));
  EXPECT_EQ(uepoll_close(fds[0]), 0);
  EXPECT_EQ(uepoll_close(ep), 0);
}

TEST(EpollSmoke, NestedInstanceReportsChild) {
  int outer = uepoll_epoll_create1(0);
  int inner = uepoll_epoll_create1(0);
  int efd = uepoll_eventfd(0, EFD_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ASSERT_EQ(uepoll_epoll_ctl(inner, EPOLL_CTL_ADD, efd, &ev), 0);
  ASSERT_EQ(uepoll_epoll_ctl(outer, EPOLL_CTL_ADD, inner, &ev), 0);
  EXPECT_EQ(uepoll_epoll_ctl(inner, EPOLL_CTL_ADD, outer, &ev), -1);
  EXPECT_EQ(errno, ELOOP);
  epoll_event out[2];
  EXPECT_EQ(uepoll_epoll_wait(outer, out, 2, 0), 0);
  std::uint64_t one = 1;
  ASSERT_EQ(uepoll_write(efd, &one, sizeof one), 8);
  EXPECT_EQ(uepoll_epoll_wait(outer, out, 2, 0), 1);
  // Close the watched eventfd while both instances live, then the instances.
  EXPECT_EQ(uepoll_close(efd), 0);
  EXPECT_EQ(uepoll_epoll_wait(outer, out, 2, 0), 0);
  EXPECT_EQ(uepoll_close(inner), 0);
  EXPECT_EQ(uepoll_close(outer), 0);
}

}  // namespace
