// Blocking for objects: how a File implementation makes the calling thread wait for its
// WaitQueue, with Linux's signal behaviour.
//
// A blocked uepoll call sleeps in the kernel's ppoll() on a per-thread eventfd, never in a futex
// or condition variable: ppoll is never restarted after a signal handler, so a blocked call
// returns EINTR whenever a handler runs (epoll_wait does this on Linux even under SA_RESTART), and
// ppoll installs a signal mask atomically (epoll_pwait).
//
//   Result<size_t> MyObject::read(void* buf, size_t n, IoFlags f) noexcept {
//     for (uepoll::Waiter waiter;;) {
//       if (auto r = try_read(buf, n); r || r.error() != EAGAIN || f.dont_wait()) return r;
//       waiter.arm(read_queue_);                       // hook first, then re-check, then sleep
//       if (auto r = try_read(buf, n); r || r.error() != EAGAIN) return r;
//       if (auto s = waiter.sleep(); !s) return s.error();   // EINTR
//     }
//   }
//
// Thread safety: a Waiter belongs to the thread that created it.
#pragma once

#include <signal.h>
#include <time.h>

#include "uepoll/result.hpp"
#include "uepoll/wait_queue.hpp"

namespace uepoll {

/// The calling thread's wake-up channel (a kernel eventfd created on first use).
///
/// Lifetime: never freed. When its thread exits, a parker goes back to a pool and the next new
/// thread takes it, so a waker may safely unpark a parker whose sleeper has already left; the
/// next owner sees a spurious wake-up, which every sleeper tolerates (they re-check and loop).
class Parker {
 public:
  /// The calling thread's parker, or null if its eventfd could not be created.
  static Parker* current() noexcept;
  /// Wakes the owning thread's next (or current) sleep. Any thread; async-signal-safe.
  void unpark() noexcept;
  /// Sleeps until unpark(), the absolute CLOCK_MONOTONIC `deadline` (null: none) or a signal
  /// handler. `sigmask` (null: unchanged) is installed for the duration of the sleep only.
  /// Returns ETIMEDOUT, EINTR, or success after an unpark (possibly an earlier, stale one).
  Result<void> park(const timespec* deadline, const sigset_t* sigmask) noexcept;
  /// Consumes a pending unpark without sleeping.
  void drain() noexcept;

  explicit Parker(int fd) noexcept : fd_(fd) {}
  Parker(const Parker&) = delete;
  Parker& operator=(const Parker&) = delete;

 private:
  friend struct ParkerPool;
  int fd_;
  Parker* next_free_ = nullptr;  // in the pool, while no thread owns it
};

/// A thread's hook on one WaitQueue while it blocks; unhooks itself on destruction.
class Waiter {
 public:
  /// `exclusive`: one wake-up of the queue wakes only one exclusive waiter (accept()).
  explicit Waiter(bool exclusive = false) noexcept;
  ~Waiter() { WaitQueue::remove(hook_); }
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  /// Hooks the waiter on `queue` (again, if a wake-up unhooked it). Re-check the condition after
  /// this and before sleep(), so that no wake-up is lost.
  void arm(WaitQueue& queue) noexcept;
  /// Sleeps until a wake-up of the queue, the deadline, or a signal handler (EINTR).
  Result<void> sleep(const timespec* deadline = nullptr) noexcept;

 private:
  struct Hook : WaitEntry {
    Parker* parker;
  };
  static bool on_wake(WaitEntry& entry, PollMask key) noexcept;
  Hook hook_;
};

/// The loop of a blocking call. `attempt()` returns the call's result, or an empty optional when
/// it would block. A would-block ends a non-waiting call (`dont_wait`) as `stopped(EAGAIN)`;
/// otherwise the thread hooks itself on `queue`, tries once more (so a wake-up between the two
/// tries is not lost) and sleeps; a sleep ended by a signal handler or by `deadline` ends the
/// call as `stopped(EINTR)` or `stopped(ETIMEDOUT)`.
template <class T, class Attempt, class Stopped>
Result<T> block_on(WaitQueue& queue, bool dont_wait, const timespec* deadline, Attempt&& attempt,
                   Stopped&& stopped) noexcept {
  for (Waiter waiter;;) {
    if (auto r = attempt()) {
      return *r;
    }
    if (dont_wait) {
      return stopped(EAGAIN);
    }
    waiter.arm(queue);
    if (auto r = attempt()) {
      return *r;
    }
    if (Result<void> slept = waiter.sleep(deadline); !slept) {
      return stopped(slept.error());
    }
  }
}

/// Absolute CLOCK_MONOTONIC time `ms` milliseconds from now.
timespec deadline_after_ms(long ms) noexcept;

}  // namespace uepoll
