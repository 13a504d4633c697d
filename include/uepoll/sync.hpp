// Annotated lock types. The standard and pthread locks carry no capability attributes, so uepoll
// wraps them; every lock-protected field in uepoll names one of these in UEPOLL_GUARDED_BY.
//
// Every lock has a level from docs/locking.md §1. Builds with UEPOLL_LOCKDEP (the debug
// presets) keep a per-thread record of the locks held and abort, naming both locks, when a
// thread takes a lock whose level is not above every lock it holds (same-level nesting is
// allowed only where the order documents it: instances along a chain, wait queues along a
// chain of wake-ups, a listener and its connections, and an object's own locks).
//
// Thread safety: all types here are thread-safe by definition.
#pragma once

#include <pthread.h>
#include <atomic>

#include <cstdint>

#include "uepoll/detail/thread_annotations.hpp"

namespace uepoll {

/// The lock order of docs/locking.md §1, outermost first. A thread may only take a lock of a
/// level above all those it holds.
enum class LockLevel : std::uint8_t {
  kOperation = 5,   // L0   an object's operation mutex (a socket's): taken first, never in
                    //      poll(); a listener's before those of its queued connections
  kNesting = 10,    // L1   the process-wide epoll mutex (loop and path checks, legacy close)
  kInstance = 20,   // L2   an epoll instance's ctl/harvest mutex; nests along a chain
  kObject = 25,     //      an object's own locks (a user's object too); nest as the object says
  kWatchers = 30,   // L3   a file's list of watching epoll items
  kWaitQueue = 40,  // L4   a wait queue; nests along a chain of nested wake-ups
  kReady = 50,      // L5   an instance's ready list and sleepers
  kTable = 70,      //      a descriptor table's slots, registries of per-thread state
  kLeaf = 90,       //      bookkeeping locks under which nothing else is taken
};

namespace detail {
#if defined(UEPOLL_LOCKDEP)
/// Records that the calling thread took `lock`; aborts on an order violation.
void lockdep_acquire(const void* lock, LockLevel level, bool spins) noexcept;
/// Forgets `lock` (the most recent acquisition of it).
void lockdep_release(const void* lock) noexcept;
/// Aborts, saying `what`, if the calling thread holds a lock of level `level`.
void lockdep_assert_not_held(LockLevel level, const char* what) noexcept;
/// Aborts, saying `what`, if the calling thread holds a SpinLock: it is about to sleep,
/// allocate or enter the kernel.
void lockdep_assert_may_block(const char* what) noexcept;
/// The number of SpinLocks the calling thread holds (tests hook malloc with it).
int lockdep_spinlocks_held() noexcept;
/// Reports a broken rule of docs/locking.md and aborts.
[[noreturn]] void rule_violated(const char* what) noexcept;
#define UEPOLL_DEBUG_CHECK(cond, what) ((cond) ? (void)0 : ::uepoll::detail::rule_violated(what))
#else
inline void lockdep_acquire(const void*, LockLevel, bool) noexcept {}
inline void lockdep_release(const void*) noexcept {}
inline void lockdep_assert_not_held(LockLevel, const char*) noexcept {}
inline void lockdep_assert_may_block(const char*) noexcept {}
inline int lockdep_spinlocks_held() noexcept { return 0; }
#define UEPOLL_DEBUG_CHECK(cond, what) ((void)0)
#endif
}  // namespace detail

/// A full memory barrier: no load after it is performed before a store ahead of it (the
/// store-load ordering that lock-free wake-up protocols need, docs/locking.md §1).
inline void full_barrier() noexcept {
#if defined(UEPOLL_TSAN)
  // ThreadSanitizer does not model fences; a sequentially consistent read-modify-write on one
  // shared word orders the same way and is visible to it.
  static std::atomic<int> word{0};
  word.fetch_add(0, std::memory_order_seq_cst);
#elif defined(__x86_64__)
  // A locked no-op on the stack: a full barrier, and cheaper than mfence.
  asm volatile("lock; orl $0, (%%rsp)" ::: "memory", "cc");
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

/// A sleeping mutex (a pthread mutex). Used where the holder may block or run long: an epoll
/// instance's ctl/harvest mutex, descriptor tables, the nesting mutex.
class UEPOLL_CAPABILITY("mutex") Mutex {
 public:
  /// What lock() does when the mutex is held: park at once, or first spin a while (glibc's
  /// adaptive mutex, user space's counterpart of Linux's optimistic spinning on an owner that
  /// is running). The 2017 kernel's epmutex spun; LockMode::kLegacy's global mutex does too.
  enum class Contended { kPark, kSpinThenPark };

  constexpr explicit Mutex(LockLevel level = LockLevel::kObject,
                           Contended contended = Contended::kPark) noexcept
      : mu_(initializer(contended)), level_(level) {}
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() UEPOLL_ACQUIRE() {
    detail::lockdep_acquire(this, level_, /*spins=*/false);
    pthread_mutex_lock(&mu_);
  }
  void unlock() UEPOLL_RELEASE() {
    pthread_mutex_unlock(&mu_);
    detail::lockdep_release(this);
  }
  bool try_lock() UEPOLL_TRY_ACQUIRE(true) {
    if (pthread_mutex_trylock(&mu_) != 0) {
      return false;
    }
    detail::lockdep_acquire(this, level_, /*spins=*/false);
    return true;
  }
  /// Tells the analysis that the caller holds the lock (no run-time check).
  void assert_held() const UEPOLL_ASSERT_CAPABILITY(this) {}

 private:
  static constexpr pthread_mutex_t initializer(Contended contended) noexcept {
    if (contended == Contended::kSpinThenPark) {
      pthread_mutex_t m = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP;
      return m;
    }
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    return m;
  }

  pthread_mutex_t mu_;
  const LockLevel level_;
};

/// A test-and-test-and-set spinlock that yields the CPU after a short spin. Used for the short
/// critical sections that wake-up callbacks take: wait queues, ready lists, watcher lists.
/// Never block, allocate or call the kernel while holding one.
class UEPOLL_CAPABILITY("spinlock") SpinLock {
 public:
  constexpr explicit SpinLock(LockLevel level = LockLevel::kObject) noexcept : level_(level) {}
  void lock() UEPOLL_ACQUIRE() {
    detail::lockdep_acquire(this, level_, /*spins=*/true);
    while (locked_.exchange(true, std::memory_order_acquire)) {
      wait_until_free();
    }
  }
  bool try_lock() UEPOLL_TRY_ACQUIRE(true) {
    if (locked_.load(std::memory_order_relaxed) ||
        locked_.exchange(true, std::memory_order_acquire)) {
      return false;
    }
    detail::lockdep_acquire(this, level_, /*spins=*/true);
    return true;
  }
  void unlock() UEPOLL_RELEASE() {
    locked_.store(false, std::memory_order_release);
    detail::lockdep_release(this);
  }
  void assert_held() const UEPOLL_ASSERT_CAPABILITY(this) {}

 private:
  void wait_until_free() noexcept;  // spins, then sched_yield()s, until the lock looks free
  std::atomic<bool> locked_{false};
  const LockLevel level_;
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
