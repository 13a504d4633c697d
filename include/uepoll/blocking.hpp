// Blocking for objects: how a File implementation makes the calling thread wait for its
// WaitQueue, with Linux's signal behaviour.
//
//   Result<size_t> MyObject::read(void* buf, size_t n, IoFlags f) noexcept {
//     for (uepoll::Waiter waiter;;) {
//       if (auto r = try_read(buf, n); r || r.error() != EAGAIN || f.dont_wait()) return r;
//       waiter.arm(read_queue_);                       // hook first, then re-check, then sleep
//       if (auto r = try_read(buf, n); r || r.error() != EAGAIN) return r;
//       if (auto s = waiter.sleep(); !s) {             // EINTR: a handler without SA_RESTART
//         if (auto r = try_read(buf, n); r || r.error() != EAGAIN) return r;  // data wins
//         return s.error();
//       }
//     }
//   }
// block_on() below is that loop, written once.
//
// How a thread sleeps. Each thread has a Parker: a state word that wakers flip, so that a waker
// enters the kernel only when the thread really sleeps. A sleep spins briefly, then blocks on a
// futex on that word; a sleep that must also install a signal mask (epoll_pwait) or watch a
// kernel descriptor blocks in ppoll() on a per-thread eventfd (the doorbell, created the first
// time one is needed). Signals: a sleep without a deadline of a blocking read/write is restarted
// after an SA_RESTART handler and fails with EINTR after other handlers, as Linux's are;
// epoll_wait, poll and sleeps with a deadline always fail with EINTR after a handler.
//
// Thread safety: a Waiter belongs to the thread that created it; unpark() may be called from
// any thread.
#pragma once

#include <poll.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <atomic>

#include "uepoll/result.hpp"
#include "uepoll/wait_queue.hpp"

namespace uepoll {

/// What ends a sleep besides a wake-up.
struct SleepSpec {
  const timespec* deadline = nullptr;  // absolute CLOCK_MONOTONIC; null: none
  const sigset_t* sigmask = nullptr;   // installed for the sleep only (epoll_pwait); null: none
  /// Blocking I/O without a deadline: an SA_RESTART handler resumes the sleep instead of
  /// ending it with EINTR.
  bool restart_after_handler = false;
  /// Kernel descriptors whose events (pollfd::events) also end the sleep: instances' kernel
  /// sides, and the kernel descriptors of an interposed poll(). Beyond kMaxKernelFds the sleep
  /// naps a millisecond at a time.
  const pollfd* kernel_fds = nullptr;
  int kernel_fd_count = 0;
  static constexpr int kMaxKernelFds = 64;
};

/// Something whose wake-up is a system call (a futex wake, an eventfd write), issued once the
/// caller has dropped its spinlocks: at the end of the calling thread's outermost WakeBatch, or
/// at once when none is open. A Parker, or an epoll instance's kernel bell.
class Kickable {
 public:
  Kickable(const Kickable&) = delete;
  Kickable& operator=(const Kickable&) = delete;

 protected:
  Kickable() noexcept = default;
  virtual ~Kickable() = default;
  /// Has kick() called soon (see above). False when it already waits on some thread's batch,
  /// whose kick is still to come and will do (kick() must read its target when it runs).
  bool kick_soon() noexcept;
  /// The system call. Runs with no spinlock held.
  virtual void kick() noexcept = 0;

 private:
  friend class WakeBatch;
  std::atomic<Kickable*> kick_next_{nullptr};  // on a batch: the next one, or the tail mark
};

namespace detail {
/// How long a sleeper spins on its parker's state before it blocks in the kernel: a waker on
/// another core that arrives within the spin costs neither side a system call. The window
/// follows how soon wake-ups come, as Linux's guest halt-polling does: a wake-up the spin missed
/// but noticed soon after the spin began doubles it, a late one, a timeout or a signal halves
/// it.
///
/// "Soon" and the window's cap are twice what a sleep costs, measured: the time from a
/// wake-up's notice to the sleeper running again (a futex wake-up and a reschedule: on the
/// development VM, half the kernel's epoll ping-pong, 9 - 16 us as its host's load comes and
/// goes; a fixed cap of 16 us stopped every spin whenever it rose). A spin in vain then at most
/// triples what the sleep alone costs; the factor two is for threads that wake each other in
/// turn (a request and its reply): each sees the other's sleep inside its own wait, so with a cap
/// of one sleep both would keep sleeping forever. Unlike an idle CPU's halt-polling, a spinning
/// thread may hold a CPU that other threads (its waker, perhaps) are waiting for: past the
/// shortest window the spin yields the CPU every few microseconds (Parker::spin). Owner-only
/// state of a Parker.
class SpinWindow {
 public:
  static constexpr long kMinNanos = 1'000;
  static constexpr long kMinCapNanos = 16'000;   // also the cap before a sleep is measured
  static constexpr long kMaxCapNanos = 100'000;  // Linux's guest halt-polling stops at 200 us

  long nanos() const noexcept { return nanos_; }
  long cap() const noexcept { return std::clamp(2 * sleep_nanos_, kMinCapNanos, kMaxCapNanos); }
  /// The spin missed a wake-up noticed `noticed_nanos` after the spin began, and the sleeper
  /// ran again `sleep_nanos` after that notice (each < 0 where unknown: a wake-up noticed
  /// before the sleep began is soon and says nothing of a sleep's cost).
  void woken(long noticed_nanos, long sleep_nanos) noexcept {
    if (sleep_nanos >= 0) {
      // Smoothed over about four sleeps; one outlier (the host took the CPU away) moves the
      // measured cost by a quarter of kMaxCapNanos at most.
      const long sample = std::min(sleep_nanos, kMaxCapNanos);
      sleep_nanos_ = sleep_nanos_ == 0 ? sample : (3 * sleep_nanos_ + sample) / 4;
    }
    nanos_ = noticed_nanos <= cap() ? std::min(nanos_ * 2, cap()) : shrunk();
  }
  /// The spin missed, and a timeout or a signal ended the sleep.
  void not_woken() noexcept { nanos_ = shrunk(); }

 private:
  long shrunk() const noexcept { return std::max(std::min(nanos_ / 2, cap()), kMinNanos); }

  long nanos_ = kMinNanos;
  long sleep_nanos_ = 0;  // what a sleep costs, smoothed; 0 until one is measured
};
}  // namespace detail

/// A thread's wake-up channel.
///
/// Lifetime: never freed. When its thread exits, a parker goes back to a pool and a later
/// thread takes it, so a waker may safely unpark a parker whose sleeper has already left; the
/// next owner sees a spurious wake-up, which every sleeper tolerates (they re-check and loop).
class Parker final : public Kickable {
 public:
  /// Wakes the owner's current or next sleep. Any thread. The system call that wakes a thread
  /// asleep in the kernel is deferred to the end of the calling thread's outermost WakeBatch,
  /// if one is open.
  void unpark() noexcept;
  /// Sleeps until unpark() (possibly an earlier, stale one), the deadline (ETIMEDOUT), a signal
  /// handler (EINTR) or an unreadable `sigmask` (EFAULT). Owner only.
  Result<void> park(const SleepSpec& spec) noexcept;

  Parker(const Parker&) = delete;
  Parker& operator=(const Parker&) = delete;

 private:
  friend class ParkerLease;
  friend struct ParkerPool;
  Parker() noexcept = default;
  enum State : int { kRunning, kNotified, kParked };
  enum Mode : int { kFutex, kDoorbell, kNap };
  void kick() noexcept override;  // wakes a parked owner the way it sleeps
  /// Spins until notified (true), `window` ns after `start` or the deadline.
  bool spin(long start, long window, const timespec* deadline) noexcept;
  /// Tells the spin window how the sleep after a spin begun at `spin_start` went.
  void learn(bool woken, long spin_start) noexcept;
  /// Sleeps in the kernel (the state left for park() to reset).
  Result<void> block(const SleepSpec& spec) noexcept;
  Result<void> sleep_futex(const SleepSpec& spec) noexcept;
  Result<void> sleep_doorbell(const SleepSpec& spec) noexcept;

  std::atomic<int> state_{kRunning};
  std::atomic<int> mode_{kFutex};  // how the owner sleeps while kParked (read by kick())
  int doorbell_ = -1;              // eventfd, created on the first sleep that needs it
  detail::SpinWindow spin_window_;
  // When a waker last kicked the parked owner (CLOCK_MONOTONIC ns; 0: not since the owner
  // parked): the owner's spin window learns from it how late the wake-up came and what the
  // sleep cost.
  std::atomic<long> noticed_at_{0};
  Parker* next_free_ = nullptr;  // in the pool, while no thread owns it
};

/// The calling thread's parker for one blocking call: the thread's own (taken from the pool on
/// first need), or, on a thread whose exit cleanup has run, one borrowed for the call. Empty
/// when no memory could be had; sleep() then naps a millisecond at a time, re-checking.
class ParkerLease {
 public:
  ParkerLease() noexcept = default;
  ~ParkerLease();
  ParkerLease(const ParkerLease&) = delete;
  ParkerLease& operator=(const ParkerLease&) = delete;

  /// Takes the parker on first call; null when none could be had.
  Parker* acquire() noexcept;
  Parker* get() const noexcept { return parker_; }
  /// park() on the parker, or a nap of at most a millisecond without one.
  Result<void> sleep(const SleepSpec& spec) noexcept;

 private:
  Parker* parker_ = nullptr;
  bool acquired_ = false;
  bool borrowed_ = false;
};

/// Defers the system calls of Kickables (unpark()) until the calling thread's outermost
/// WakeBatch ends, so that no thread enters the kernel while it holds a spinlock (Linux's
/// wake_q). Open one before taking the locks under which threads are woken; WaitQueue::wake()
/// opens one itself.
class WakeBatch {
 public:
  WakeBatch() noexcept;
  ~WakeBatch();  // the outermost batch issues the deferred kicks
  WakeBatch(const WakeBatch&) = delete;
  WakeBatch& operator=(const WakeBatch&) = delete;

 private:
  friend class Kickable;
  bool defer(Kickable* k) noexcept;
  bool outermost_;
  Kickable* head_ = nullptr;
  std::atomic<Kickable*>* tail_link_ = nullptr;
};

/// A wait's timeout: none, zero (never sleep), or a length. The length becomes an absolute
/// CLOCK_MONOTONIC deadline when the call first has to sleep, so that a call that finds its
/// events at once never reads the clock.
class Timeout {
 public:
  static Timeout none() noexcept { return Timeout(Kind::kNone, {}); }
  static Timeout zero() noexcept { return Timeout(Kind::kZero, {}); }
  /// `length` is a valid timespec; zero length is zero().
  static Timeout after(const timespec& length) noexcept {
    return length.tv_sec == 0 && length.tv_nsec == 0 ? zero() : Timeout(Kind::kLength, length);
  }
  static Timeout after_ms(long ms) noexcept;  // ms < 0: none
  /// An absolute CLOCK_MONOTONIC deadline computed by the caller.
  static Timeout at(const timespec& deadline) noexcept {
    return Timeout(Kind::kDeadline, deadline);
  }

  bool is_zero() const noexcept { return kind_ == Kind::kZero; }
  /// The deadline, fixed on first use; null when there is none (or the timeout is zero).
  const timespec* deadline() noexcept;

 private:
  enum class Kind : unsigned char { kNone, kZero, kLength, kDeadline };
  Timeout(Kind kind, const timespec& t) noexcept : kind_(kind), time_(t) {}
  Kind kind_;
  timespec time_;  // the length, then the deadline
};

/// How a blocked thread is woken: by every wake-up of its queue, or as an exclusive waiter, of
/// which one wake-up wakes only one (accept(), EPOLLEXCLUSIVE).
enum class Waiting : bool { kShared, kExclusive };

/// A thread's hook on one WaitQueue while it blocks; unhooks itself on destruction.
class Waiter {
 public:
  explicit Waiter(Waiting waiting = Waiting::kShared) noexcept;
  ~Waiter() { disarm(); }
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  /// Hooks the waiter on `queue` (again, if a wake-up unhooked it). Re-check the condition after
  /// this and before sleep(), so that no wake-up is lost.
  void arm(WaitQueue& queue) noexcept;
  /// Unhooks the waiter (if a wake-up has not already): no later wake-up can pick it.
  void disarm() noexcept { WaitQueue::remove(hook_); }
  /// Sleeps until a wake-up of the queue, the deadline (ETIMEDOUT), or a signal handler (EINTR;
  /// without a deadline, SA_RESTART handlers do not end the sleep).
  Result<void> sleep(const timespec* deadline = nullptr) noexcept;

 private:
  struct Hook : WaitEntry {
    Parker* parker = nullptr;
  };
  static bool on_wake(WaitEntry& entry, PollMask key) noexcept;
  Hook hook_;
  ParkerLease lease_;
};

/// The loop of a blocking call. `attempt()` returns the call's result, or an empty optional when
/// it would block; it may make partial progress first (a write that queued some bytes), which
/// `stopped` then reports. A would-block ends a non-waiting call (`dont_wait`, or a zero
/// timeout) as `stopped(EAGAIN)`; otherwise the thread hooks itself on `queue`, tries once more
/// (so a wake-up between the two tries is not lost) and sleeps; a sleep ended by a signal handler
/// or by the timeout tries once more (what arrived with them wins, as Linux's wait_event) and
/// then ends the call as `stopped(EINTR)` or `stopped(ETIMEDOUT)`, unhooked: a wake-up that comes
/// after that goes to another waiter, and `stopped` may pass on one this waiter took.
/// The timeout's deadline is fixed at its first sleep (here or in an earlier wait of the same
/// call), so a call that never sleeps never reads the clock.
template <class T, class Attempt, class Stopped>
Result<T> block_on(WaitQueue& queue, bool dont_wait, Timeout& timeout, Attempt&& attempt,
                   Stopped&& stopped, Waiting waiting = Waiting::kShared) noexcept {
  dont_wait = dont_wait || timeout.is_zero();
  for (Waiter waiter(waiting);;) {
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
    if (Result<void> slept = waiter.sleep(timeout.deadline()); !slept) {
      if (auto r = attempt()) {
        return *r;
      }
      waiter.disarm();
      return stopped(slept.error());
    }
  }
}

/// As above, for a timeout used by this wait alone (Timeout::none(), Timeout::at(deadline)).
template <class T, class Attempt, class Stopped>
Result<T> block_on(WaitQueue& queue, bool dont_wait, Timeout&& timeout, Attempt&& attempt,
                   Stopped&& stopped, Waiting waiting = Waiting::kShared) noexcept {
  return block_on<T>(queue, dont_wait, timeout, static_cast<Attempt&&>(attempt),
                     static_cast<Stopped&&>(stopped), waiting);
}

/// The absolute CLOCK_MONOTONIC time `relative` (a valid timespec) from now.
timespec deadline_after(const timespec& relative) noexcept;
/// Time left until the absolute CLOCK_MONOTONIC `deadline`, zero once it has passed.
timespec time_left(const timespec& deadline) noexcept;

}  // namespace uepoll
