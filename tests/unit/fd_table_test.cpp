// The descriptor table: lowest-free allocation, the limit, dup semantics, close-on-exec, and
// the lowest-free rule while closes (which take no lock) race opens.
#include <gtest/gtest.h>
#include <sys/eventfd.h>

#include <barrier>
#include <thread>

#include "core/fd_table.hpp"
#include "uepoll/objects.hpp"
#include "uepoll/process.hpp"

namespace {

using uepoll::LockMode;
using uepoll::Process;

TEST(FdTable, AllocatesLowestFreeNumberFromZero) {
  Process p(LockMode::kFine, 16);
  EXPECT_EQ(p.eventfd(0, 0).value(), 0);
  EXPECT_EQ(p.eventfd(0, 0).value(), 1);
  EXPECT_EQ(p.eventfd(0, 0).value(), 2);
  ASSERT_TRUE(p.close(1));
  EXPECT_EQ(p.epoll_create1(0).value(), 1);
  EXPECT_EQ(p.dup(0).value(), 3);
}

TEST(FdTable, LimitGivesEmfileAndPipeTakesBothOrNeither) {
  Process p(LockMode::kFine, 3);
  ASSERT_TRUE(p.eventfd(0, 0));
  ASSERT_TRUE(p.eventfd(0, 0));
  int fds[2] = {-1, -1};
  EXPECT_EQ(p.pipe2(fds, 0).error(), EMFILE);
  EXPECT_EQ(fds[0], -1);
  EXPECT_EQ(p.eventfd(0, 0).value(), 2);
  EXPECT_EQ(p.eventfd(0, 0).error(), EMFILE);
  EXPECT_EQ(p.dup(0).error(), EMFILE);
  EXPECT_EQ(p.fcntl(0, F_DUPFD, 3).error(), EINVAL);  // at the limit
  EXPECT_EQ(p.dup2(0, 3).error(), EBADF);
}

TEST(FdTable, Dup2ReplacesAndKeepsTheDescription) {
  Process p(LockMode::kFine, 16);
  int a = p.eventfd(5, 0).value();
  int b = p.eventfd(0, EFD_NONBLOCK).value();
  EXPECT_EQ(p.dup2(a, b).value(), b);
  std::uint64_t v = 0;
  EXPECT_EQ(p.read(b, &v, sizeof v).value(), 8u);  // b is now a's counter
  EXPECT_EQ(v, 5u);
  EXPECT_EQ(p.dup2(a, a).value(), a);
  EXPECT_EQ(p.dup2(9, 9).error(), EBADF);
  EXPECT_EQ(p.dup3(a, a, 0).error(), EINVAL);
  EXPECT_EQ(p.dup3(a, 7, O_NONBLOCK).error(), EINVAL);
}

TEST(FdTable, CloexecIsPerDescriptorAndStatusFlagsPerDescription) {
  Process p(LockMode::kFine, 16);
  int a = p.eventfd(0, EFD_CLOEXEC).value();
  EXPECT_EQ(p.fcntl(a, F_GETFD, 0).value(), FD_CLOEXEC);
  int b = p.fcntl(a, F_DUPFD, 0).value();
  EXPECT_EQ(p.fcntl(b, F_GETFD, 0).value(), 0);
  ASSERT_TRUE(p.fcntl(b, F_SETFL, O_NONBLOCK));
  EXPECT_EQ(p.fcntl(a, F_GETFL, 0).value(), O_RDWR | O_NONBLOCK);  // shared description
  EXPECT_EQ(p.fcntl(a, 12345, 0).error(), EINVAL);
  EXPECT_EQ(p.fcntl(99, F_GETFD, 0).error(), EBADF);
}

TEST(FdTable, SeparateProcessesHaveSeparateTables) {
  Process one(LockMode::kFine, 16);
  Process two(LockMode::kLegacy, 16);
  EXPECT_EQ(one.eventfd(0, 0).value(), 0);
  EXPECT_EQ(two.epoll_create1(0).value(), 0);
  epoll_event ev[1];
  EXPECT_EQ(one.epoll_wait(0, ev, 1, 0).error(), EINVAL);  // an eventfd, not an epoll
  EXPECT_EQ(two.epoll_wait(0, ev, 1, 0).value(), 0);
  EXPECT_EQ(two.lock_mode(), LockMode::kLegacy);
}

// A close takes no lock, so it can empty a slot that an open's search has just passed, while the
// open moves the lowest-free hint past it. Set up so that the open searches from 3 (filled by
// dup2) to 8 while slot 5 is closed; whatever the interleaving, the two opens after the close
// get 5 and 8.
TEST(FdTable, CloseRacingAnOpenKeepsTheLowestFreeNumber) {
  Process p(LockMode::kFine, 64);
  constexpr int kRounds = 20000;
  std::barrier sync(2);
  std::thread closer([&] {
    for (int round = 0; round < kRounds; ++round) {
      sync.arrive_and_wait();
      EXPECT_TRUE(p.close(5));
      sync.arrive_and_wait();
    }
  });
  int wrong = 0;
  for (int round = 0; round < kRounds; ++round) {
    for (int fd = 0; fd < 8; ++fd) {
      ASSERT_EQ(p.eventfd(0, 0).value(), fd);
    }
    ASSERT_TRUE(p.close(3));
    ASSERT_EQ(p.dup2(0, 3).value(), 3);  // the hint stays at 3, an occupied slot
    sync.arrive_and_wait();
    const int first = p.eventfd(0, 0).value();  // 5 if the close came first, else 8
    EXPECT_TRUE(first == 5 || first == 8) << first;
    sync.arrive_and_wait();
    wrong += p.eventfd(0, 0).value() != (first == 8 ? 5 : 8) ? 1 : 0;
    for (int fd = 0; fd < 64; ++fd) {
      (void)p.close(fd);
    }
  }
  closer.join();
  EXPECT_EQ(wrong, 0);
}

}  // namespace
