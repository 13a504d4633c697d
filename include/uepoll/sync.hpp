// Annotated lock types. std::mutex carries no capability attributes under libstdc++, so uepoll
// wraps it; every lock-protected field in uepoll names one of these in UEPOLL_GUARDED_BY.
//
// Thread safety: all types here are thread-safe by definition.
#pragma once

#include <atomic>
#include <mutex>

#include "uepoll/detail/thread_annotations.hpp"

namespace uepoll {

/// A sleeping mutex (std::mutex underneath). Used where the holder may block or run long:
/// an epoll instance's ctl/harvest mutex, descriptor tables, the nesting mutex.
class UEPOLL_CAPABILITY("mutex") Mutex {
 public:
  void lock() UEPOLL_ACQUIRE() { mu_.lock(); }
  void unlock() UEPOLL_RELEASE() { mu_.unlock(); }
  bool try_lock() UEPOLL_TRY_ACQUIRE(true) { return mu_.try_lock(); }
  /// Tells the analysis that the caller holds the lock (no run-time check).
  void assert_held() const UEPOLL_ASSERT_CAPABILITY(this) {}

 private:
  std::mutex mu_;
};

/// A test-and-test-and-set spinlock that yields the CPU after a short spin. Used for the short
/// critical sections that wake-up callbacks take: wait queues, ready lists, watcher lists.
/// Never block, allocate or call out while holding one.
class UEPOLL_CAPABILITY("spinlock") SpinLock {
 public:
  void lock() UEPOLL_ACQUIRE() {
    while (locked_.exchange(true, std::memory_order_acquire)) {
      wait_until_free();
    }
  }
  bool try_lock() UEPOLL_TRY_ACQUIRE(true) {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() UEPOLL_RELEASE() { locked_.store(false, std::memory_order_release); }
  void assert_held() const UEPOLL_ASSERT_CAPABILITY(this) {}

 private:
  void wait_until_free() noexcept;  // spins, then sched_yield()s, until the lock looks free
  std::atomic<bool> locked_{false};
};

/// Scoped holder for Mutex or SpinLock.
template <class Lock>
class UEPOLL_SCOPED_CAPABILITY Guard {
 public:
  explicit Guard(Lock& lock) UEPOLL_ACQUIRE(lock) : lock_(lock) { lock_.lock(); }
  ~Guard() UEPOLL_RELEASE() { lock_.unlock(); }
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;

 private:
  Lock& lock_;
};

using MutexLock = Guard<Mutex>;
using SpinGuard = Guard<SpinLock>;

}  // namespace uepoll
