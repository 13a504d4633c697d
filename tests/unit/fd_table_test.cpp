// The descriptor table: lowest-free allocation, the limit, dup semantics, close-on-exec, and
// the lowest-free rule and dup2 while closes (which take no lock) race them.
#include <gtest/gtest.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <array>
#include <barrier>
#include <thread>

#include <cstdint>
#include <cstdio>

#include "core/fd_table.hpp"
#include "uepoll/objects.hpp"
#include "uepoll/process.hpp"
#include "uepoll/stats.hpp"

namespace {

using uepoll::LockMode;
using uepoll::Process;
using uepoll::Result;

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

// The descriptor a call returned, or -1.
int number(const Result<int>& r) { return r ? r.value() : -1; }

// Runs `rounds` of a two-thread race: setup() alone, then first() and second() at once, then
// check() alone. No fatal assertion inside, so neither thread is left waiting at the barrier.
template <class Setup, class First, class Second, class Check>
void race(int rounds, Setup setup, First first, Second second, Check check) {
  std::barrier sync(2);
  std::thread other([&] {
    for (int round = 0; round < rounds; ++round) {
      sync.arrive_and_wait();
      second();
      sync.arrive_and_wait();
    }
  });
  for (int round = 0; round < rounds; ++round) {
    setup();
    sync.arrive_and_wait();
    first();
    sync.arrive_and_wait();
    check();
  }
  other.join();
}

void close_all(Process& p) {
  for (int fd = 0; fd < 64; ++fd) {
    (void)p.close(fd);
  }
}

// Opens 0 - 7 and leaves the lowest-free hint at 3, an occupied slot (closed, then filled by
// dup2), so that the next search runs from 3 to 8.
void open_eight_searching_from_3(Process& p) {
  for (int fd = 0; fd < 8; ++fd) {
    EXPECT_EQ(number(p.eventfd(0, 0)), fd);
  }
  EXPECT_TRUE(p.close(3));
  EXPECT_EQ(number(p.dup2(0, 3)), 3);
}

// A close takes no lock, so it can empty a slot that an open's search has just passed, while the
// open moves the lowest-free hint past it. Set up so that the open searches from 3 (filled by
// dup2) to 8 while slot 5 is closed; whatever the interleaving, the two opens after the close
// get 5 and 8.
TEST(FdTable, CloseRacingAnOpenKeepsTheLowestFreeNumber) {
  Process p(LockMode::kFine, 64);
  int first = -1;
  int wrong = 0;
  race(
      20000, [&] { open_eight_searching_from_3(p); },
      [&] { first = number(p.eventfd(0, 0)); },  // 5 if the close came first, else 8
      [&] { EXPECT_TRUE(p.close(5)); },
      [&] {
        EXPECT_TRUE(first == 5 || first == 8) << first;
        wrong += number(p.eventfd(0, 0)) != (first == 8 ? 5 : 8) ? 1 : 0;
        close_all(p);
      });
  EXPECT_EQ(wrong, 0);
}

// The same race for pipe2, which fills two slots in one search: whatever the interleaving, the
// pipe and the open after it take 5, 8 and 9 between them.
TEST(FdTable, CloseRacingAPipeKeepsTheLowestFreeNumbers) {
  Process p(LockMode::kFine, 64);
  int fds[2] = {-1, -1};
  int wrong = 0;
  race(
      20000, [&] { open_eight_searching_from_3(p); }, [&] { EXPECT_TRUE(p.pipe2(fds, 0)); },
      [&] { EXPECT_TRUE(p.close(5)); },
      [&] {
        std::array<int, 3> got{fds[0], fds[1], number(p.eventfd(0, 0))};
        std::sort(got.begin(), got.end());
        wrong += got != std::array<int, 3>{5, 8, 9} ? 1 : 0;
        close_all(p);
      });
  EXPECT_EQ(wrong, 0);
}

// dup2 from a descriptor that is being closed: either the dup comes first and the new number
// holds a working file, or EBADF; never a file whose last reference already went (it would be
// released twice). The live-file count tells, and debug builds stop at the revival itself.
TEST(FdTable, DupRacingACloseOfItsSourceNeverRevivesTheFile) {
  const long files_before = uepoll::stats::quiesce_and_read().files;
  {
    Process p(LockMode::kFine, 16);
    Result<int> dup = -1;
    int dups = 0;
    race(
        50000, [&] { EXPECT_EQ(number(p.eventfd(0, 0)), 0); }, [&] { dup = p.dup2(0, 1); },
        [&] { EXPECT_TRUE(p.close(0)); },
        [&] {
          if (dup) {
            ++dups;
            const std::uint64_t one = 1;
            EXPECT_TRUE(p.write(1, &one, sizeof one));  // the file works
            EXPECT_TRUE(p.close(1));
          } else {
            EXPECT_EQ(dup.error(), EBADF);
          }
          close_all(p);
        });
    std::printf("%d of 50000 dups came first\n", dups);
  }
  EXPECT_EQ(uepoll::stats::quiesce_and_read().files, files_before);
}

// close() of a number that dup2 is replacing finds a file there, old or new: never EBADF.
TEST(FdTable, CloseRacingADupOntoItFindsADescriptor) {
  Process p(LockMode::kFine, 16);
  int ebadf = 0;
  race(
      20000,
      [&] {
        EXPECT_EQ(number(p.eventfd(0, 0)), 0);
        EXPECT_EQ(number(p.eventfd(0, 0)), 1);
      },
      [&] { EXPECT_EQ(number(p.dup2(0, 1)), 1); }, [&] { ebadf += p.close(1) ? 0 : 1; },
      [&] { close_all(p); });
  EXPECT_EQ(ebadf, 0);
}

}  // namespace
