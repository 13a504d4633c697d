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

}  // namespace uepoll::rcu
