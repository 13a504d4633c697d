// LockMode::kLegacy takes the process-wide mutex where the 2017 kernel took epmutex: once per
// released file that is still watched (however many instances watch it) and once per instance
// teardown; LockMode::kFine never takes it on those paths.
#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <cstdint>

#include "epoll/instance.hpp"
#include "uepoll/process.hpp"

namespace {

using uepoll::LockMode;
using uepoll::Process;
using uepoll::detail::global_mutex_acquisitions;

// Acquisitions of the global mutex while `run` closes things in `p`.
template <class Run>
std::uint64_t acquisitions_during(Run&& run) {
  const std::uint64_t before = global_mutex_acquisitions();
  run();
  return global_mutex_acquisitions() - before;
}

void watch(Process& p, int ep, int fd) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ASSERT_TRUE(p.epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
}

// A build without the legacy mode (UEPOLL_LEGACY_MODE=OFF, for measuring its cost) runs
// LockMode::kLegacy as kFine.
#if defined(UEPOLL_WITHOUT_LEGACY_MODE)
#define SKIP_WITHOUT_LEGACY_MODE() GTEST_SKIP() << "built without the legacy mode"
#else
#define SKIP_WITHOUT_LEGACY_MODE() (void)0
#endif

TEST(LegacyMode, ReleasingAFileWatchedByThreeInstancesTakesTheMutexOnce) {
  SKIP_WITHOUT_LEGACY_MODE();
  Process p(LockMode::kLegacy);
  const int efd = *p.eventfd(0, 0);
  int eps[3];
  for (int& ep : eps) {
    ep = *p.epoll_create1(0);
    watch(p, ep, efd);
  }
  EXPECT_EQ(acquisitions_during([&] { ASSERT_TRUE(p.close(efd)); }), 1u);
  for (int ep : eps) {
    EXPECT_EQ(acquisitions_during([&] { ASSERT_TRUE(p.close(ep)); }), 1u);  // teardown
  }
}

TEST(LegacyMode, AnUnwatchedFileTakesNothing) {
  Process p(LockMode::kLegacy);
  const int efd = *p.eventfd(0, 0);
  EXPECT_EQ(acquisitions_during([&] { ASSERT_TRUE(p.close(efd)); }), 0u);
}

TEST(FineMode, NeitherPathTakesTheMutex) {
  Process p(LockMode::kFine);
  const int efd = *p.eventfd(0, 0);
  const int ep = *p.epoll_create1(0);
  watch(p, ep, efd);
  EXPECT_EQ(acquisitions_during([&] {
              ASSERT_TRUE(p.close(efd));
              ASSERT_TRUE(p.close(ep));
            }),
            0u);
}

}  // namespace
