// RCU glue over liburcu's "bulletproof" flavour (urcu-bp): any thread may enter a read-side
// critical section without registering first, which a library called from arbitrary threads
// needs.
//
// What uepoll reads under RCU: descriptor table slots (lookup + File::try_get), a file's watcher
// list and each watch's instance during the nesting checks' upward walks. Everything those
// readers can reach (File, Watch, Instance) is freed through retire(), never directly.
#pragma once

#include "uepoll/detail/thread_annotations.hpp"

namespace uepoll::rcu {

using FreeFn = void (*)(void* object);

/// A reclaimable object embeds a Head (or storage for one) for its deferred free.
struct Head {
  void* opaque[2];  // liburcu's struct rcu_head (next, func), without exposing its header
  FreeFn free_fn;
  void* object;
};

/// Read-side critical section (nests; never blocks; cheap).
class ReadGuard {
 public:
  ReadGuard() noexcept;
  ~ReadGuard();
  ReadGuard(const ReadGuard&) = delete;
  ReadGuard& operator=(const ReadGuard&) = delete;
};

/// Calls `free_fn(object)` after every read-side critical section that might see the object has
/// ended. `head` lives inside the object. Never blocks.
void retire(Head* head, FreeFn free_fn, void* object) noexcept;

/// Waits until every callback queued by retire() so far has run (tests and leak checks).
void barrier() noexcept;

}  // namespace uepoll::rcu
