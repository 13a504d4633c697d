// uepoll's per-thread state (the watch-count delta, the RCU retire list, the parker) against
// every thread-exit destructor order: a user's thread_local destructor, and a pthread key
// destructor that runs after uepoll's own cleanup, close watched files, wait and allocate. The
// counts must come back exactly, and no two threads may share a parker.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "sync/rcu.hpp"
#include "uepoll/process.hpp"
#include "uepoll/stats.hpp"

namespace {

using uepoll::Process;

constexpr int kThreads = 48;

Process& process() {
  static Process p;
  return p;
}

// What a dying thread does with uepoll: close a watched eventfd (the last reference, so the
// item goes and the watch count drops), block in epoll_wait until another thread writes, and
// create, watch and close a fresh eventfd (allocations, an RCU retirement).
struct DyingWork {
  int ep = -1;       // watches `fd`
  int fd = -1;       // closed by the destructor
  int wake_ep = -1;  // the destructor waits here...
  int wake_fd = -1;  // ...until the test writes this
  std::atomic<bool>* waiting = nullptr;

  void run() const {
    Process& p = process();
    EXPECT_TRUE(p.close(fd));
    waiting->store(true);
    epoll_event ev{};
    auto n = p.epoll_wait(wake_ep, &ev, 1, -1);
    EXPECT_TRUE(n && *n == 1);
    int extra = p.eventfd(1, 0).value();
    ev.events = EPOLLIN;
    EXPECT_TRUE(p.epoll_ctl(ep, EPOLL_CTL_ADD, extra, &ev));
    EXPECT_TRUE(p.close(extra));
  }
};

// One thread per slot: sets up `work` (a watched eventfd, a wake-up pair) and hands it to
// `arm`, which arranges for DyingWork::run to happen during the thread's exit.
template <class Arm>
void run_dying_threads(Arm&& arm) {
  Process& p = process();
  const auto before = uepoll::stats::quiesce_and_read();
  std::vector<DyingWork> work(kThreads);
  std::vector<std::atomic<bool>> waiting(kThreads);
  int ep = p.epoll_create1(0).value();
  for (int i = 0; i < kThreads; ++i) {
    work[i].ep = ep;
    work[i].wake_ep = p.epoll_create1(0).value();
    work[i].wake_fd = p.eventfd(0, 0).value();
    epoll_event ev{};
    ev.events = EPOLLIN;
    EXPECT_TRUE(p.epoll_ctl(work[i].wake_ep, EPOLL_CTL_ADD, work[i].wake_fd, &ev));
    work[i].waiting = &waiting[i];
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      arm(work[i]);  // first: its destructor must run after uepoll's per-thread state is set up
      work[i].fd = p.eventfd(0, 0).value();
      epoll_event ev{};
      ev.events = EPOLLIN;
      EXPECT_TRUE(p.epoll_ctl(ep, EPOLL_CTL_ADD, work[i].fd, &ev));
    });
  }
  // Wake each dying thread once it waits (or is about to: the event stays ready).
  for (int i = 0; i < kThreads; ++i) {
    while (!waiting[i].load()) {
      std::this_thread::yield();
    }
    const std::uint64_t one = 1;
    EXPECT_TRUE(p.write(work[i].wake_fd, &one, sizeof one));
  }
  for (auto& t : threads) {
    t.join();
  }
  for (auto& w : work) {
    EXPECT_TRUE(p.close(w.wake_ep));
    EXPECT_TRUE(p.close(w.wake_fd));
  }
  EXPECT_TRUE(p.close(ep));
  const auto after = uepoll::stats::quiesce_and_read();
  EXPECT_EQ(after.user_watches, before.user_watches) << "watch count leaked by exiting threads";
  if (uepoll::stats::enabled()) {
    EXPECT_EQ(after.files, before.files);
    EXPECT_EQ(after.watches, before.watches);
  }
}

// A thread_local constructed before uepoll's state: destroyed after it on most designs.
struct ThreadLocalCloser {
  const DyingWork* work = nullptr;
  ~ThreadLocalCloser() {
    if (work != nullptr) {
      work->run();
    }
  }
};
thread_local ThreadLocalCloser t_closer;

TEST(ThreadExit, ThreadLocalDestructorClosesWaitsAndAllocates) {
  run_dying_threads([](const DyingWork& w) { t_closer.work = &w; });
}

// A pthread key created after uepoll's own keys: its destructor runs after uepoll has cleaned
// up the thread, so uepoll serves the thread without per-thread state from then on.
TEST(ThreadExit, LateKeyDestructorClosesWaitsAndAllocates) {
  // Let uepoll create its keys first (they are made on first use).
  std::thread([] {
    Process& p = process();
    int ep = p.epoll_create1(0).value();
    int fd = p.eventfd(0, 0).value();
    epoll_event ev{};
    ev.events = EPOLLIN;
    EXPECT_TRUE(p.epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
    EXPECT_TRUE(p.epoll_wait(ep, &ev, 1, 1));  // nothing ready: it sleeps, with a parker
    EXPECT_TRUE(p.close(fd));                  // an item and a file retired
    EXPECT_TRUE(p.close(ep));
  }).join();
  static pthread_key_t key;
  ASSERT_EQ(pthread_key_create(&key, [](void* w) { static_cast<const DyingWork*>(w)->run(); }), 0);
  run_dying_threads([](const DyingWork& w) { pthread_setspecific(key, &w); });
  pthread_key_delete(key);
}

// Retired objects never pile up past the per-thread bound, however many are retired at once.
TEST(Reclaim, RetiredObjectsStayWithinTheBoundPerThread) {
  Process& p = process();
  long most = 0;
  for (int i = 0; i < 5 * static_cast<int>(uepoll::rcu::kMaxPendingPerThread); ++i) {
    EXPECT_TRUE(p.close(p.eventfd(0, 0).value()));
    most = std::max(most, uepoll::rcu::thread_pending());
  }
  EXPECT_GE(most, uepoll::rcu::kMaxPendingPerThread / 2);  // they do accumulate...
  EXPECT_LT(most, uepoll::rcu::kMaxPendingPerThread);      // ...up to the bound, not past it
}

}  // namespace
