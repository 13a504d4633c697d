// uepoll::Mutex: mutual exclusion under contention in both of its modes (park, spin then
// park), every sleeper woken, try_lock's answers. ThreadSanitizer runs this too: a missing
// acquire or release shows there as a race on the plain counter.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "uepoll/sync.hpp"

namespace {

using uepoll::LockLevel;
using uepoll::Mutex;
using uepoll::MutexLock;

class MutexTest : public ::testing::TestWithParam<Mutex::Contended> {};

// Threads hammer one counter that only the mutex protects.
TEST_P(MutexTest, ExcludesUnderContention) {
  Mutex mu(LockLevel::kLeaf, GetParam());
  long counter = 0;
  constexpr int kThreads = 4;
  constexpr int kRounds = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kRounds; ++i) {
        MutexLock lock(mu);
        ++counter;
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(counter, long{kThreads} * kRounds);
}

// Waiters that give up spinning and sleep are all woken, one unlock at a time. (The holder
// sleeps only so that they do go to sleep; nothing depends on how long.)
TEST_P(MutexTest, WakesEverySleeper) {
  Mutex mu(LockLevel::kLeaf, GetParam());
  std::atomic<int> inside{0};
  std::vector<std::thread> waiters;
  mu.lock();
  for (int t = 0; t < 4; ++t) {
    waiters.emplace_back([&] {
      MutexLock lock(mu);
      inside.fetch_add(1);
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(inside.load(), 0);
  mu.unlock();
  for (auto& t : waiters) {
    t.join();
  }
  EXPECT_EQ(inside.load(), 4);
  if (mu.try_lock()) {  // free again
    mu.unlock();
  } else {
    ADD_FAILURE() << "the mutex stayed held";
  }
}

TEST_P(MutexTest, TryLockFailsWhileHeldAnywhere) {
  Mutex mu(LockLevel::kLeaf, GetParam());
  if (!mu.try_lock()) {
    FAIL() << "a free mutex";
  }
  bool other = true;
  auto try_elsewhere = [&] {
    std::thread([&] {
      other = false;
      if (mu.try_lock()) {
        other = true;
        mu.unlock();
      }
    }).join();
  };
  try_elsewhere();
  EXPECT_FALSE(other);
  mu.unlock();
  try_elsewhere();
  EXPECT_TRUE(other);
}

INSTANTIATE_TEST_SUITE_P(Modes, MutexTest,
                         ::testing::Values(Mutex::Contended::kPark,
                                           Mutex::Contended::kSpinThenPark),
                         [](const ::testing::TestParamInfo<Mutex::Contended>& p) {
                           return p.param == Mutex::Contended::kPark ? "Park" : "SpinThenPark";
                         });

}  // namespace
