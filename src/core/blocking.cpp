#include "uepoll/blocking.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <new>

#include "uepoll/sync.hpp"

namespace uepoll {
namespace {

constexpr long kNanosPerSecond = 1'000'000'000;

timespec now_monotonic() noexcept {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now;
}

// Time left until `deadline`, clamped at zero.
timespec remaining(const timespec& deadline) noexcept {
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

}  // namespace

struct ParkerPool {
  static Parker* take() noexcept {
    {
      MutexLock guard(mutex);
      if (Parker* p = free_list) {
        free_list = p->next_free_;
        p->next_free_ = nullptr;
        p->drain();  // a stale wake-up from its previous owner's time
        return p;
      }
    }
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) {
      return nullptr;
    }
    auto* p = new (std::nothrow) Parker(fd);
    if (p == nullptr) {
      close(fd);
    }
    return p;
  }
  static void give_back(Parker* p) noexcept {
    MutexLock guard(mutex);
    p->next_free_ = free_list;
    free_list = p;
  }
  static inline Mutex mutex;
  static inline Parker* free_list UEPOLL_GUARDED_BY(mutex) = nullptr;
};

namespace {

struct ThreadParker {
  Parker* parker = nullptr;
  ~ThreadParker() {
    if (parker != nullptr) {
      ParkerPool::give_back(parker);
    }
  }
};

thread_local ThreadParker t_parker;

}  // namespace

timespec deadline_after_ms(long ms) noexcept {
  timespec t = now_monotonic();
  t.tv_sec += ms / 1000;
  t.tv_nsec += (ms % 1000) * 1'000'000;
  if (t.tv_nsec >= kNanosPerSecond) {
    t.tv_nsec -= kNanosPerSecond;
    ++t.tv_sec;
  }
  return t;
}

Parker* Parker::current() noexcept {
  if (t_parker.parker == nullptr) {
    t_parker.parker = ParkerPool::take();
  }
  return t_parker.parker;
}

void Parker::unpark() noexcept {
  const std::uint64_t one = 1;
  // Cannot fail short of a counter overflow, which 2^64-2 wake-ups without a sleep won't reach.
  [[maybe_unused]] ssize_t n = ::write(fd_, &one, sizeof one);
}

void Parker::drain() noexcept {
  std::uint64_t count;
  [[maybe_unused]] ssize_t n = ::read(fd_, &count, sizeof count);
}

Result<void> Parker::park(const timespec* deadline, const sigset_t* sigmask) noexcept {
  pollfd pfd{fd_, POLLIN, 0};
  timespec left{};
  if (deadline != nullptr) {
    left = remaining(*deadline);
  }
  int n = ::ppoll(&pfd, 1, deadline != nullptr ? &left : nullptr, sigmask);
  if (n < 0) {
    return Error{errno == EINTR ? EINTR : errno};
  }
  if (n == 0) {
    return Error{ETIMEDOUT};
  }
  drain();
  return {};
}

Waiter::Waiter(bool exclusive) noexcept {
  hook_.on_wake = &Waiter::on_wake;
  hook_.exclusive = exclusive;
  hook_.parker = Parker::current();
}

// Runs under the queue's lock (WaitQueue::wake), which the analysis cannot see through the
// function pointer.
bool Waiter::on_wake(WaitEntry& entry, PollMask /*key*/) noexcept UEPOLL_NO_THREAD_SAFETY_ANALYSIS {
  Hook& hook = static_cast<Hook&>(entry);
  if (entry.exclusive) {
    // Like Linux's exclusive waiters: leave the queue, so that the next wake-up goes to the
    // next waiter; the woken thread hooks itself again if it has to sleep once more.
    entry.queue.load(std::memory_order_relaxed)->remove_locked(entry);
  }
  hook.parker->unpark();
  return true;
}

void Waiter::arm(WaitQueue& queue) noexcept {
  if (hook_.queue.load(std::memory_order_acquire) == nullptr) {
    queue.add(hook_);
  }
}

Result<void> Waiter::sleep(const timespec* deadline) noexcept {
  if (hook_.parker == nullptr) {
    return Error{ENOMEM};
  }
  return hook_.parker->park(deadline, nullptr);
}

}  // namespace uepoll
