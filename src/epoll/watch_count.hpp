// The process-wide count of epoll items, checked against max_user_watches on every ADD.
//
// A single atomic counter would be written by every ADD and every removal on every thread: one
// cache line bouncing between all cores of a close-heavy server. Like Linux's percpu_counter,
// each thread keeps a small signed delta and folds it into the shared total only when it
// exceeds kBatch; the exact sum (total + every thread's delta) is taken only when the total is
// close enough to the limit for the deltas to matter.
#pragma once

namespace uepoll::detail {

/// Counts one new item unless that would exceed `limit` (the caller then fails with ENOSPC).
bool watch_count_try_add(long limit) noexcept;
/// Uncounts one item (any thread).
void watch_count_sub() noexcept;
/// The exact count (sums every thread's delta; for stats and tests).
long watch_count_exact() noexcept;

}  // namespace uepoll::detail
