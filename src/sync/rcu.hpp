// RCU glue over liburcu's "bulletproof" flavour (urcu-bp): any thread may enter a read-side
// critical section without registering first, which a library called from arbitrary threads
// needs.
//
// What uepoll reads under RCU: descriptor table slots (lookup + File::try_get), a file's watcher
// list and each watch's instance during the nesting checks' upward walks. Everything those
// readers can reach (File, Watch, Instance) is freed through retire(), never directly.
//
// Deferred frees are batched per thread: retire() appends to the calling thread's batch and
// hands a full batch (kBatchSize objects) to liburcu as one callback. One call_rcu per object
// made liburcu's callback thread the busiest thread of the connection-churn benchmark.
#pragma once

namespace uepoll::rcu {

using FreeFn = void (*)(void* object);

/// Read-side critical section (nests; never blocks; cheap).
class ReadGuard {
 public:
  ReadGuard() noexcept;
  ~ReadGuard();
  ReadGuard(const ReadGuard&) = delete;
  ReadGuard& operator=(const ReadGuard&) = delete;
};

/// Calls `free_fn(object)` after every read-side critical section that might see the object has
/// ended. Never blocks (unless memory for a batch cannot be had: then it waits for a grace
/// period and frees at once).
void retire(FreeFn free_fn, void* object) noexcept;

/// Hands every thread's partial batch to liburcu and waits until all of them have been freed
/// (tests, leak checks).
void barrier() noexcept;

}  // namespace uepoll::rcu
