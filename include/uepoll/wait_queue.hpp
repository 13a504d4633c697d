// WaitQueue: the list of parties interested in an object's state changes.
//
// An object owns one WaitQueue per independent readiness source (a pipe has one for its readers
// and one for its writers) and calls wake(key) whenever its state changes, with `key` the
// EPOLL* bits that changed (0 means "anything may have changed"). Each hooked WaitEntry's
// callback runs under the queue's lock: epoll items filter by their interest mask and queue
// themselves, blocked callers wake their thread.
//
// Thread safety: thread-safe.
// Locking: wake() holds the queue's SpinLock while it runs callbacks; callbacks may take an epoll
//   instance's ready lock and wake the instance's own queue (nested epoll), never a sleeping lock.
// Lifetime: a queue must outlive every entry hooked on it; an object keeps its queues alive
//   until its File's release(), which runs after every epoll item watching it has been removed.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>

#include "uepoll/sync.hpp"

namespace uepoll {

/// EPOLL* / POLL* bits (they share values on Linux).
using PollMask = std::uint32_t;

class WaitQueue;

/// One hook on a WaitQueue. Exclusive entries sit at the tail and a wake-up stops after the first
/// exclusive entry whose callback reports that it consumed the wake-up (Linux's
/// EPOLLEXCLUSIVE and exclusive waiters).
struct WaitEntry {
  /// Runs under the queue's lock. Returns true when an exclusive wake-up was consumed.
  using WakeFn = bool (*)(WaitEntry& self, PollMask key) noexcept;

  WakeFn on_wake = nullptr;
  bool exclusive = false;

  // --- guarded by the lock of the queue this entry is on ---
  WaitEntry* prev = nullptr;
  WaitEntry* next = nullptr;
  /// The queue this entry is on, null while not hooked. Written under that queue's lock; read
  /// without it by remove(), which re-checks it under the lock.
  std::atomic<WaitQueue*> queue{nullptr};
};

class WaitQueue {
 public:
  WaitQueue() = default;
  WaitQueue(const WaitQueue&) = delete;
  WaitQueue& operator=(const WaitQueue&) = delete;

  /// Hooks `entry` (non-exclusive at the head, exclusive at the tail, as Linux does).
  void add(WaitEntry& entry) noexcept UEPOLL_EXCLUDES(lock_);
  /// Unhooks `entry` from whatever queue it is on; a no-op when it is not hooked. Once this
  /// returns, no callback of `entry` is running or will run. The caller must keep the queue's
  /// owner alive (hold a reference on its File) for the duration.
  static void remove(WaitEntry& entry) noexcept;
  /// Runs the callbacks: every non-exclusive entry, and exclusive ones until one consumes.
  /// For readiness changes (data arrived, space freed).
  void wake(PollMask key) noexcept UEPOLL_EXCLUDES(lock_);
  /// Runs every callback, exclusive entries included (Linux's wake_up_all). For state changes
  /// that every waiter must see: a peer's close, a shutdown, the last reader or writer leaving.
  void wake_all(PollMask key) noexcept UEPOLL_EXCLUDES(lock_);
  /// A hint without the lock (callers that need certainty hold their own lock around the check).
  bool has_entries() const noexcept { return head_.load(std::memory_order_acquire) != nullptr; }

  /// For a callback that removes its own entry while the queue's lock is held.
  void remove_locked(WaitEntry& entry) noexcept UEPOLL_REQUIRES(lock_);

 private:
  void wake_common(PollMask key, bool all) noexcept UEPOLL_EXCLUDES(lock_);

  SpinLock lock_;
  std::atomic<WaitEntry*> head_{nullptr};  // written under lock_; read locklessly by has_entries
  WaitEntry* tail_ UEPOLL_GUARDED_BY(lock_) = nullptr;
};

}  // namespace uepoll
