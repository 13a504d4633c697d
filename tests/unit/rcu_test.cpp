// Grace periods: a synchronize() never returns while a reader that was inside when it began is
// still inside; concurrent waiters share grace periods instead of running one each; and a grace
// period already running when a waiter arrives never counts for it (GraceSequence, driven by a
// stand-in grace period that the test ends when it chooses).
#include "sync/rcu.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <thread>
#include <vector>

namespace {

namespace rcu = uepoll::rcu;

// Spins until `n` callers are inside synchronize() with their snapshot taken.
void await_waiters(long n) {
  while (rcu::grace_stats().waiting < n) {
    std::this_thread::yield();
  }
}

// A reader that enters a read-side section, says so, and leaves when told; `left` is set just
// before it leaves, so a grace period that returns must find it set.
struct Reader {
  std::atomic<bool> inside{false};
  std::atomic<bool> leave{false};
  std::atomic<bool> left{false};
  std::thread thread{[this] {
    {
      rcu::ReadGuard guard;
      inside = true;
      while (!leave.load()) {
        std::this_thread::yield();
      }
      left = true;
    }
  }};
  Reader() {
    while (!inside.load()) {
      std::this_thread::yield();
    }
  }
  ~Reader() {
    leave = true;
    thread.join();
  }
};

TEST(Rcu, SynchronizeWaitsForAReaderThatWasInside) {
  Reader reader;
  std::atomic<bool> returned_after_leave{false};
  std::thread waiter([&] {
    rcu::synchronize();
    returned_after_leave = reader.left.load();
  });
  await_waiters(1);
  reader.leave = true;
  waiter.join();
  EXPECT_TRUE(returned_after_leave.load());
}

// fork() while another thread runs grace periods (holding the locks that run one) and a third
// has retired objects pending: the child inherits that state and, like the interposer's
// children that keep using uepoll, must still be able to read, retire and reclaim; the third
// thread's list is not its own. A child that deadlocks dies of its alarm; one that frees less
// than it retired exits with 3. (The retirer pauses over each fork: its allocations take the
// allocator's locks, which a child under ASan would inherit held.)
TEST(Rcu, AChildForkedDuringAGracePeriodCanStillReclaim) {
  std::atomic<bool> stop{false};
  std::atomic<long> grace_periods{0};
  std::thread runner([&] {
    while (!stop.load()) {
      rcu::synchronize();
      grace_periods.fetch_add(1);
    }
  });
  std::atomic<bool> pause{false};
  std::atomic<bool> paused{false};
  std::thread retirer([&] {
    while (!stop.load()) {
      if (pause.load()) {
        paused = true;
        while (pause.load() && !stop.load()) {
          std::this_thread::yield();
        }
        paused = false;
        continue;
      }
      rcu::retire([](void* p) { delete static_cast<int*>(p); }, new int(0));
    }
  });
  static std::atomic<long> freed_in_child{0};
  int hung = 0;
  int failed = 0;
  for (int i = 0; i < 200 && hung == 0 && failed == 0; ++i) {
    // Fork while the runner is at work (its grace periods follow each other back to back).
    const long before = grace_periods.load();
    while (grace_periods.load() == before) {
      std::this_thread::yield();
    }
    pause = true;
    while (!paused.load()) {
      std::this_thread::yield();
    }
    const pid_t pid = fork();
    pause = false;
    if (pid < 0) {
      ADD_FAILURE() << "fork: errno " << errno;
      break;
    }
    if (pid == 0) {
      alarm(30);  // a hang detector, not a time limit: a reclaim takes microseconds
      { rcu::ReadGuard guard; }
      const long n = rcu::kMaxPendingPerThread + 1;  // one reclaim on the way
      for (long k = 0; k < n; ++k) {
        rcu::retire(
            [](void* p) {
              delete static_cast<int*>(p);
              freed_in_child.fetch_add(1);
            },
            new int(0));
      }
      rcu::synchronize();
      rcu::barrier();
      _exit(freed_in_child.load() == n ? 0 : 3);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) {
      ADD_FAILURE() << "waitpid: errno " << errno;
      break;
    }
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
      ++hung;
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      ++failed;
    }
  }
  stop = true;
  runner.join();
  retirer.join();
  EXPECT_EQ(hung, 0);
  EXPECT_EQ(failed, 0);
}

TEST(Rcu, ConcurrentWaitersShareGracePeriods) {
  constexpr int kWaiters = 6;
  const long before = rcu::grace_stats().completed;
  std::atomic<int> early{0};
  {
    Reader reader;
    std::vector<std::thread> waiters;
    for (int i = 0; i < kWaiters; ++i) {
      waiters.emplace_back([&] {
        rcu::synchronize();
        if (!reader.left.load()) {
          ++early;
        }
      });
    }
    // Every waiter has its snapshot; the first grace period cannot end while the reader stays.
    await_waiters(kWaiters);
    reader.leave = true;
    for (auto& t : waiters) {
      t.join();
    }
  }
  EXPECT_EQ(early.load(), 0);
  // The one that waited for the reader, and at most one more for the waiters that came after
  // it began: not one each.
  const long ran = rcu::grace_stats().completed - before;
  EXPECT_GE(ran, 1);
  EXPECT_LE(ran, 2);
  EXPECT_EQ(rcu::grace_stats().waiting, 0);
}

// Four waiters arrive while a grace period runs: it began before them, so it serves none of
// them, and one more serves all four (not one each).
TEST(GraceSequence, OneInProgressServesNoLaterWaiterAndTheNextServesThemAll) {
  rcu::GraceSequence sequence;
  std::atomic<int> runs{0};
  std::atomic<bool> first_running{false};
  std::atomic<bool> end_first{false};
  std::thread first([&] {
    sequence.wait([&] {
      runs.fetch_add(1);
      first_running = true;
      while (!end_first.load()) {
        std::this_thread::yield();
      }
    });
  });
  while (!first_running.load()) {
    std::this_thread::yield();
  }
  std::vector<std::thread> later;
  for (int i = 0; i < 4; ++i) {
    later.emplace_back([&] { sequence.wait([&] { runs.fetch_add(1); }); });
  }
  while (sequence.waiting() < 5) {  // all four have their snapshot, taken while the first ran
    std::this_thread::yield();
  }
  end_first = true;
  first.join();
  for (auto& t : later) {
    t.join();
  }
  EXPECT_EQ(runs.load(), 2);
  EXPECT_EQ(sequence.completed(), 2);
  EXPECT_EQ(sequence.waiting(), 0);
}

}  // namespace
