// RCU glue over liburcu's "bulletproof" flavour (urcu-bp): any thread may enter a read-side
// critical section without registering first, which a library called from arbitrary threads
// needs.
//
// What uepoll reads under RCU: descriptor table slots (lookup + File::try_get), a file's watcher
// list and each watch's instance during the nesting checks' upward walks, and a port's listening
// set (connect()). Everything those readers can reach (File, Watch, Instance, ListeningSet) is
// freed through retire(), never directly.
//
// Reclamation is per thread, with back-pressure, and needs no helper thread: retire() appends to
// the calling thread's own list, and the retire() that brings the list to kMaxPendingPerThread
// waits for one grace period and frees the whole list. Threads that wait at once share grace
// periods (liburcu's flavour runs them one at a time and shares none). Memory held by retired
// objects is therefore bounded by threads x kMaxPendingPerThread objects however fast they are
// retired (a single liburcu callback thread, fed by every worker, fell behind without bound), and
// the cost of freeing stays with the thread that retires, inside whatever it measures.
//
// Rules: never call retire() inside a read-side section or while holding a SpinLock (it may
// wait for a grace period).
#pragma once

#include <atomic>
#include <cstdint>

#include "uepoll/sync.hpp"

namespace uepoll::rcu {

using FreeFn = void (*)(void* object);

/// The most objects one thread keeps retired but not yet freed.
inline constexpr long kMaxPendingPerThread = 1024;

/// Read-side critical section (nests; never blocks; cheap).
class ReadGuard {
 public:
  ReadGuard() noexcept;
  ~ReadGuard();
  ReadGuard(const ReadGuard&) = delete;
  ReadGuard& operator=(const ReadGuard&) = delete;
};

/// Calls `free_fn(object)` once every read-side critical section that might see the object has
/// ended: later, from this thread or from barrier(); at once after a grace period when the
/// thread's list is full, has no memory to grow, or the thread has already exited.
void retire(FreeFn free_fn, void* object) noexcept;

/// Frees everything every thread has retired so far (tests, leak checks).
void barrier() noexcept;

/// Waits for a grace period that begins after the call. Concurrent callers share grace periods:
/// however many wait at once, at most two run (the one in progress cannot serve them).
void synchronize() noexcept;

struct GraceStats {
  long completed;  // grace periods run so far
  long waiting;    // callers inside synchronize() (or a reclaim) that took their snapshot
};
/// For tests and benchmarks.
GraceStats grace_stats() noexcept;

/// The calling thread's retired but not yet freed objects (tests: never above the bound).
long thread_pending() noexcept;

/// Grace periods shared among concurrent waiters (synchronize() runs liburcu's through one; the
/// tests, a stand-in). liburcu-bp runs them one at a time and lets none serve two callers, so N
/// threads reclaiming at once would wait N in a row. A sequence count, odd while one runs: a
/// waiter needs the first grace period that begins after its call, and if another thread ran
/// that one while it queued for the mutex, it is done.
class GraceSequence {
 public:
  /// Returns once a grace period that began after the call has ended; `run` runs one.
  template <class Run>
  void wait(Run&& run) noexcept {
    // The caller's unlinks before the snapshot: the grace period that serves it starts later.
    full_barrier();
    const std::uint64_t seen = seq_.load(std::memory_order_seq_cst);
    // Idle (even): the next one to end will do. Running (odd): it began too early; the next.
    const std::uint64_t needed = (seen + 3) & ~std::uint64_t{1};
    waiting_.fetch_add(1, std::memory_order_relaxed);
    // Served already (a grace period ended since the snapshot): the mutex may be held for the
    // next one, which this waiter does not need.
    if (seq_.load(std::memory_order_acquire) < needed) {
      MutexLock lock(mutex_);
      const std::uint64_t now = seq_.load(std::memory_order_relaxed);
      if (now < needed) {
        seq_.store(now + 1, std::memory_order_seq_cst);
        run();
        seq_.store(now + 2, std::memory_order_release);
      }
    }
    waiting_.fetch_sub(1, std::memory_order_relaxed);
  }
  long completed() const noexcept {
    return static_cast<long>(seq_.load(std::memory_order_acquire) / 2);
  }
  /// Waiters that took their snapshot and have not returned.
  long waiting() const noexcept { return waiting_.load(std::memory_order_acquire); }
  /// Around fork(): held across it, so that no child inherits a grace period whose runner it
  /// does not have.
  void before_fork() noexcept UEPOLL_ACQUIRE(mutex_) { mutex_.lock(); }
  void after_fork() noexcept UEPOLL_RELEASE(mutex_) { mutex_.unlock(); }

 private:
  Mutex mutex_{LockLevel::kLeaf};  // held across the grace period; readers take no lock
  std::atomic<std::uint64_t> seq_{0};
  std::atomic<long> waiting_{0};
};

}  // namespace uepoll::rcu
