#include "uepoll/blocking.hpp"

#include <linux/futex.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <new>

#include "sync/fault_injection.hpp"
#include "sync/sys.hpp"
#include "sync/thread_exit.hpp"
#include "uepoll/sync.hpp"

namespace uepoll {
namespace {

constexpr long kNanosPerSecond = 1'000'000'000;
// The state is read this many times (a pause each) between two reads of the clock.
constexpr int kChecksPerClockRead = 16;
// A spin longer than the shortest window offers its CPU to other runnable threads this often.
constexpr long kYieldEveryNanos = 4'000;
// Without a parker (no memory for one), a sleep naps at most this long between checks.
constexpr long kNapNanos = 1'000'000;

// An absolute deadline a futex wait never reaches. Waits that must end with EINTR after any
// signal handler pass one: the kernel restarts a futex wait without a timeout after an
// SA_RESTART handler, but never one with a timeout.
constexpr timespec kNever{time_t{1} << 40, 0};

timespec now_monotonic() noexcept {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now;
}

}  // namespace

timespec time_left(const timespec& deadline) noexcept {
  timespec now = now_monotonic();
  timespec left{deadline.tv_sec - now.tv_sec, deadline.tv_nsec - now.tv_nsec};
  if (left.tv_nsec < 0) {
    left.tv_nsec += kNanosPerSecond;
    --left.tv_sec;
  }
  if (left.tv_sec < 0) {
    return timespec{0, 0};
  }
  return left;
}

namespace {

long nanos_of(const timespec& t) noexcept { return t.tv_sec * kNanosPerSecond + t.tv_nsec; }

bool passed(const timespec& deadline) noexcept {
  timespec left = time_left(deadline);
  return left.tv_sec == 0 && left.tv_nsec == 0;
}

long futex(std::atomic<int>* word, int op, int value, const timespec* timeout,
           unsigned bitset) noexcept {
  return sys::calls.syscall(SYS_futex, reinterpret_cast<int*>(word), op | FUTEX_PRIVATE_FLAG, value,
                            timeout, nullptr, bitset);
}

// A sleep without a parker: at most kNapNanos (less near the deadline), then the caller
// re-checks. The mask still goes in atomically; handlers end it with EINTR.
Result<void> nap(const SleepSpec& spec) noexcept {
  timespec length{0, kNapNanos};
  if (spec.deadline != nullptr) {
    timespec left = time_left(*spec.deadline);
    if (left.tv_sec == 0 && left.tv_nsec < length.tv_nsec) {
      length = left;
    }
  }
  if (sys::calls.ppoll(nullptr, 0, &length, spec.sigmask) < 0 && errno != ENOMEM) {
    return Error{errno == EFAULT ? EFAULT : EINTR};
  }
  if (spec.deadline != nullptr && passed(*spec.deadline)) {
    return Error{ETIMEDOUT};
  }
  return {};
}

}  // namespace

Timeout Timeout::after_ms(long ms) noexcept {
  if (ms < 0) {
    return none();
  }
  return after(timespec{ms / 1000, (ms % 1000) * 1'000'000});
}

const timespec* Timeout::deadline() noexcept {
  switch (kind_) {
    case Kind::kLength:
      time_ = deadline_after(time_);
      kind_ = Kind::kDeadline;
      return &time_;
    case Kind::kDeadline: return &time_;
    default: return nullptr;
  }
}

timespec deadline_after(const timespec& relative) noexcept {
  timespec t = now_monotonic();
  t.tv_sec += relative.tv_sec;
  t.tv_nsec += relative.tv_nsec;
  if (t.tv_nsec >= kNanosPerSecond) {
    t.tv_nsec -= kNanosPerSecond;
    ++t.tv_sec;
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// Parkers: a pool, and each thread's own

struct ParkerPool {
  static Parker* take() noexcept {
    Parker* p = nullptr;
    {
      MutexLock guard(mutex);
      p = free_list;
      if (p != nullptr) {
        free_list = p->next_free_;
        p->next_free_ = nullptr;
      }
    }
    if (p == nullptr) {
      return detail::allocation_should_fail() ? nullptr : new (std::nothrow) Parker;
    }
    // A stale wake-up from the previous owner's time is harmless, but need not cost a loop.
    p->state_.store(Parker::kRunning, std::memory_order_relaxed);
    if (p->doorbell_ >= 0) {
      std::uint64_t count;
      [[maybe_unused]] ssize_t n = sys::calls.read(p->doorbell_, &count, sizeof count);
    }
    return p;
  }
  static void give_back(Parker* p) noexcept {
    MutexLock guard(mutex);
    p->next_free_ = free_list;
    free_list = p;
  }
  static inline Mutex mutex{LockLevel::kLeaf};
  static inline Parker* free_list UEPOLL_GUARDED_BY(mutex) = nullptr;
};

namespace {

// The thread's own parker. Plain thread-local data, so that it stays usable in thread_local
// destructors; ThreadExit returns the parker to the pool after all of them.
enum class Own : unsigned char { kNone, kOwned, kBorrowEachTime };
UEPOLL_HOT_TLS constinit thread_local Parker* t_parker = nullptr;
UEPOLL_HOT_TLS constinit thread_local Own t_own = Own::kNone;

void return_parker(void*) noexcept {
  if (t_parker != nullptr) {
    ParkerPool::give_back(t_parker);
    t_parker = nullptr;
  }
  t_own = Own::kBorrowEachTime;  // later blocking calls of this thread borrow
}

detail::ThreadExit& parker_exit() noexcept {
  static detail::ThreadExit hook(&return_parker);
  return hook;
}

UEPOLL_HOT_TLS constinit thread_local WakeBatch* t_batch = nullptr;

// The tail of a WakeBatch's list; a Kickable whose kick_next_ is not null is on some batch.
Kickable* tail_mark() noexcept { return reinterpret_cast<Kickable*>(std::uintptr_t{1}); }

}  // namespace

ParkerLease::~ParkerLease() {
  if (borrowed_ && parker_ != nullptr) {
    ParkerPool::give_back(parker_);
  }
}

Parker* ParkerLease::acquire() noexcept {
  if (acquired_) {
    return parker_;
  }
  acquired_ = true;
  if (t_own == Own::kNone) {
    // Only a parker that ThreadExit will give back may stay with the thread.
    t_own = parker_exit().arm() ? Own::kOwned : Own::kBorrowEachTime;
  }
  if (t_own == Own::kOwned) {
    if (t_parker == nullptr) {
      t_parker = ParkerPool::take();
    }
    parker_ = t_parker;
  } else {
    parker_ = ParkerPool::take();
    borrowed_ = true;
  }
  return parker_;
}

Result<void> ParkerLease::sleep(const SleepSpec& spec) noexcept {
  Parker* p = acquire();
  return p != nullptr ? p->park(spec) : nap(spec);
}

// ---------------------------------------------------------------------------------------------
// Waking

bool Kickable::kick_soon() noexcept {
  if (WakeBatch* batch = t_batch) {
    return batch->defer(this);
  }
  kick();
  return true;
}

void Parker::unpark() noexcept {
  // Whoever swaps kParked away owes the sleeper its system call; a running owner just finds the
  // token on its next park().
  if (state_.exchange(kNotified, std::memory_order_seq_cst) == kParked) {
    kick_soon();
  }
}

void Parker::kick() noexcept {
  detail::lockdep_assert_may_block("wake-up system call under a spinlock");
  // For the owner's spin window; read here, with no spinlock held, where a clock without a
  // vDSO costs no more than the system call that follows.
  noticed_at_.store(nanos_of(now_monotonic()), std::memory_order_relaxed);
  switch (mode_.load(std::memory_order_seq_cst)) {
    case kFutex: futex(&state_, FUTEX_WAKE, 1, nullptr, 0); break;
    case kDoorbell: {
      const std::uint64_t one = 1;
      // Cannot fail short of a counter overflow, which 2^64-2 wake-ups without a sleep won't
      // reach.
      [[maybe_unused]] ssize_t n = sys::calls.write(doorbell_, &one, sizeof one);
      break;
    }
    default: break;  // a nap re-checks the state by itself
  }
}

WakeBatch::WakeBatch() noexcept : outermost_(t_batch == nullptr) {
  if (outermost_) {
    t_batch = this;
  }
}

bool WakeBatch::defer(Kickable* k) noexcept {
  // Claim the link. If another batch holds it, that batch's kick is still to come and reads its
  // target when it runs (a parker's sleep mode), so it wakes whatever this one would have.
  Kickable* expected = nullptr;
  if (!k->kick_next_.compare_exchange_strong(expected, tail_mark(), std::memory_order_seq_cst)) {
    return false;
  }
  if (head_ == nullptr) {
    head_ = k;
  } else {
    tail_link_->store(k, std::memory_order_relaxed);
  }
  tail_link_ = &k->kick_next_;
  return true;
}

WakeBatch::~WakeBatch() {
  if (!outermost_) {
    return;
  }
  t_batch = nullptr;
  for (Kickable* k = head_; k != nullptr;) {
    Kickable* next = k->kick_next_.load(std::memory_order_relaxed);
    // Unclaim before the kick: a wake-up that fails to claim after this point queues its own.
    k->kick_next_.store(nullptr, std::memory_order_seq_cst);
    k->kick();
    k = next == tail_mark() ? nullptr : next;
  }
}

// ---------------------------------------------------------------------------------------------
// Sleeping

bool Parker::spin(long start, long window, const timespec* deadline) noexcept {
  long end = start + window;
  // A deadline over a second away cannot cut the window short (nor need it fit in a long).
  if (deadline != nullptr && deadline->tv_sec <= start / kNanosPerSecond + 1) {
    end = std::min(end, nanos_of(*deadline));
  }
  long next_yield = start + detail::SpinWindow::kMinNanos;
  for (;;) {
    for (int i = 0; i < kChecksPerClockRead; ++i) {
      if (state_.load(std::memory_order_acquire) == kNotified) {
        state_.store(kRunning, std::memory_order_relaxed);
        return true;
      }
      __builtin_ia32_pause();
    }
    timespec clock{};
    if (clock_gettime(CLOCK_MONOTONIC, &clock) != 0) {
      return false;  // no clock to bound the spin with: block at once
    }
    const long now = nanos_of(clock);
    if (now >= end) {
      return false;
    }
    if (now >= next_yield) {
      // A thread that wants this CPU (perhaps the waker itself) gets it; nobody else, the
      // call returns at once.
      sched_yield();
      next_yield = now + kYieldEveryNanos;
    }
  }
}

Result<void> Parker::park(const SleepSpec& spec) noexcept {
  detail::lockdep_assert_may_block("sleep under a spinlock");
  // The spin sees neither kernel descriptors nor what a signal mask would let in: a sleep that
  // waits for those spins the shortest window and leaves the window alone.
  const bool adaptive = spec.sigmask == nullptr && spec.kernel_fd_count == 0;
  const long start = nanos_of(now_monotonic());
  const long window = adaptive ? spin_window_.nanos() : detail::SpinWindow::kMinNanos;
  if (spin(start, window, spec.deadline)) {
    return {};
  }
  // Before block() parks: a waker that finds the owner parked stamps its notice after this.
  noticed_at_.store(0, std::memory_order_relaxed);
  Result<void> slept = block(spec);
  const bool notified = state_.exchange(kRunning, std::memory_order_acquire) == kNotified;
  if (adaptive) {
    learn(notified && slept, start);
  }
  if (notified && !slept && slept.error() == ETIMEDOUT) {
    return {};  // woken just before the deadline: the caller harvests, then times out
  }
  return slept;
}

void Parker::learn(bool woken, long spin_start) noexcept {
  if (!woken) {
    spin_window_.not_woken();
    return;
  }
  // No stamp since this spin began: the notice came before the owner parked.
  const long noticed = noticed_at_.load(std::memory_order_relaxed);
  if (noticed < spin_start) {
    spin_window_.woken(-1, -1);
    return;
  }
  spin_window_.woken(noticed - spin_start, nanos_of(now_monotonic()) - noticed);
}

Result<void> Parker::block(const SleepSpec& spec) noexcept {
  Mode mode = kFutex;
  if (spec.sigmask != nullptr || spec.kernel_fd_count > 0) {
    if (doorbell_ < 0) {
      doorbell_ = sys::own_kernel_fd(sys::calls.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    }
    // No descriptor left, or more kernel descriptors than one ppoll takes: nap, still correct.
    mode = doorbell_ >= 0 && spec.kernel_fd_count <= SleepSpec::kMaxKernelFds ? kDoorbell : kNap;
  }
  mode_.store(mode, std::memory_order_seq_cst);
  int expected = kRunning;
  if (!state_.compare_exchange_strong(expected, kParked, std::memory_order_seq_cst)) {
    return {};  // notified meanwhile (park() sets the state back to running)
  }
  return mode == kFutex ? sleep_futex(spec) : mode == kDoorbell ? sleep_doorbell(spec) : nap(spec);
}

Result<void> Parker::sleep_futex(const SleepSpec& spec) noexcept {
  long rc;
  if (spec.deadline == nullptr && spec.restart_after_handler) {
    rc = futex(&state_, FUTEX_WAIT, kParked, nullptr, 0);
  } else {
    rc = futex(&state_, FUTEX_WAIT_BITSET, kParked,
               spec.deadline != nullptr ? spec.deadline : &kNever, FUTEX_BITSET_MATCH_ANY);
  }
  if (rc == 0 || errno == EAGAIN) {
    return {};  // woken, or the state changed before the wait began
  }
  if (errno == EINTR || errno == ETIMEDOUT) {
    return Error{errno};
  }
  return nap(spec);  // no futex (a seccomp filter?): never spin, never fail
}

Result<void> Parker::sleep_doorbell(const SleepSpec& spec) noexcept {
  pollfd pfd[1 + SleepSpec::kMaxKernelFds];
  pfd[0] = pollfd{doorbell_, POLLIN, 0};
  const int extra = std::min(spec.kernel_fd_count, SleepSpec::kMaxKernelFds);
  for (int i = 0; i < extra; ++i) {
    pfd[1 + i] = pollfd{spec.kernel_fds[i].fd, spec.kernel_fds[i].events, 0};
  }
  timespec left{};
  if (spec.deadline != nullptr) {
    left = time_left(*spec.deadline);
  }
  int n = sys::calls.ppoll(pfd, 1 + static_cast<nfds_t>(extra),
                           spec.deadline != nullptr ? &left : nullptr, spec.sigmask);
  if (n < 0) {
    switch (errno) {
      case EINTR:
      case EFAULT:  // an unreadable signal mask: Linux's epoll_pwait fails the same way
        return Error{errno};
      default: return nap(spec);  // ENOMEM: try again shortly rather than fail or spin
    }
  }
  if (n == 0) {
    return Error{ETIMEDOUT};
  }
  if ((pfd[0].revents & POLLIN) != 0) {
    std::uint64_t count;
    [[maybe_unused]] ssize_t drained = sys::calls.read(doorbell_, &count, sizeof count);
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Waiter

Waiter::Waiter(Waiting waiting) noexcept {
  hook_.on_wake = &Waiter::on_wake;
  hook_.exclusive = waiting == Waiting::kExclusive;
}

// Runs under the queue's lock (WaitQueue::wake), which the analysis cannot see through the
// function pointer. The kick itself waits for the end of wake()'s WakeBatch.
bool Waiter::on_wake(WaitEntry& entry, PollMask /*key*/) noexcept UEPOLL_NO_THREAD_SAFETY_ANALYSIS {
  Hook& hook = static_cast<Hook&>(entry);
  if (entry.exclusive) {
    // Like Linux's exclusive waiters: leave the queue, so that the next wake-up goes to the
    // next waiter; the woken thread hooks itself again if it has to sleep once more.
    entry.queue.load(std::memory_order_relaxed)->remove_locked(entry);
  }
  if (hook.parker != nullptr) {
    hook.parker->unpark();
  }
  return true;
}

void Waiter::arm(WaitQueue& queue) noexcept {
  if (hook_.queue.load(std::memory_order_acquire) == nullptr) {
    hook_.parker = lease_.acquire();  // published to the callbacks by the queue's lock
    queue.add(hook_);
  }
}

Result<void> Waiter::sleep(const timespec* deadline) noexcept {
  return lease_.sleep(SleepSpec{deadline, nullptr, /*restart_after_handler=*/true});
}

}  // namespace uepoll
