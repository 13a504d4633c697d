// WaitQueue: the list of parties interested in an object's state changes.
//
// An object owns one WaitQueue per independent readiness source (a pipe has one for its readers
// and one for its writers) and calls wake(key) whenever its state changes, with `key` the
// EPOLL* bits that changed (0 means "anything may have changed"). Each hooked WaitEntry's
// callback runs under the queue's lock: epoll items filter by their interest mask and queue
// themselves, blocked callers wake their thread.
//
// No lost wake-ups, whatever the object's own synchronisation: wake() issues a full barrier
// between the caller's state change and its look at the queue, and add() one between hooking
// and the caller's look at the state (Linux's wq_has_sleeper and the barrier of poll_wait), so
// either the waker sees the new entry or the hooker sees the new state. An object only has to
// change its state before calling wake(), with any memory order.
//
// Thread safety: thread-safe.
// Locking: wake() holds the queue's SpinLock while it runs callbacks; callbacks may take an epoll
//   instance's ready lock and wake the instance's own queue (nested epoll), never a sleeping lock.
// Lifetime: a queue must outlive every entry hooked on it; an object keeps its queues alive
//   until its File's release(), which runs after every epoll item watching it has been removed.
//   Debug builds check that a queue is empty when it is destroyed.
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
  ~WaitQueue() {
    UEPOLL_DEBUG_CHECK(head_.load(std::memory_order_relaxed) == nullptr,
                       "a wait queue destroyed with entries still hooked on it");
  }
  WaitQueue(const WaitQueue&) = delete;
  WaitQueue& operator=(const WaitQueue&) = delete;

  /// Hooks `entry` (non-exclusive at the head, exclusive at the tail, as Linux does), then
  /// issues a full barrier: the caller's next look at the object's state comes after the hook.
  void add(WaitEntry& entry) noexcept UEPOLL_EXCLUDES(lock_);
  /// Unhooks `entry` from whatever queue it is on; a no-op when it is not hooked. Once this
  /// returns, no callback of `entry` is running or will run. The caller must keep the queue's
  /// owner alive (hold a reference on its File) for the duration.
  static void remove(WaitEntry& entry) noexcept;
  /// Runs the callbacks: every non-exclusive entry, and exclusive ones until one consumes.
  /// For readiness changes (data arrived, space freed). Call it after the state change. The
  /// threads it wakes are woken when it returns (see WakeBatch).
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
  void link(WaitEntry& entry) noexcept UEPOLL_EXCLUDES(lock_);  // add() without the barrier

  SpinLock lock_{LockLevel::kWaitQueue};
  std::atomic<WaitEntry*> head_{nullptr};  // written under lock_; read locklessly by has_entries
  WaitEntry* tail_ UEPOLL_GUARDED_BY(lock_) = nullptr;
};

}  // namespace uepoll
