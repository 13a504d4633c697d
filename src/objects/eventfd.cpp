// eventfd: a 64-bit counter. Readable while non-zero, writable while a write of 1 would fit
// (the counter is below 2^64-2). Every write and read wakes the queue, whether or not the
// readiness changed: EPOLLET users see an edge per write, as on Linux.
#include <sys/eventfd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <utility>

#include "sync/block_cache.hpp"
#include "sync/sys.hpp"
#include "uepoll/blocking.hpp"
#include "uepoll/objects.hpp"

namespace uepoll {
namespace {

constexpr std::uint64_t kMaxCount = ~std::uint64_t{0} - 1;  // 2^64-2

class EventFd final : public File, public detail::BlockCached {
 public:
  EventFd(std::uint64_t count, int flags) noexcept
      : File(O_RDWR, flags & EFD_NONBLOCK),
        count_(count),
        semaphore_((flags & EFD_SEMAPHORE) != 0) {}

  PollMask poll(PollTable* table) noexcept override {
    poll_wait(table, queue_);
    // No lock, as Linux's eventfd_poll: the queue's barriers order this read after our hook and
    // a writer's change before its wake-up, so a change is either seen here or wakes us.
    const std::uint64_t count = count_.load(std::memory_order_acquire);
    // Linux's eventfd reports neither RDNORM nor WRNORM.
    PollMask mask = 0;
    if (count > 0) {
      mask |= EPOLLIN;
    }
    if (count < kMaxCount) {
      mask |= EPOLLOUT;
    }
    return mask;
  }

  Result<size_t> read(void* buf, size_t count, IoFlags flags) noexcept override {
    if (count < sizeof(std::uint64_t)) {
      return Error{EINVAL};
    }
    auto attempt = [&]() noexcept -> std::optional<Result<size_t>> {
      std::uint64_t value = 0;
      if (!try_read(value)) {
        return std::nullopt;
      }
      std::memcpy(buf, &value, sizeof value);
      return sizeof value;
    };
    return block_on<size_t>(queue_, flags.dont_wait(), Timeout::none(), attempt, fail);
  }

  Result<size_t> write(const void* buf, size_t count, IoFlags flags) noexcept override {
    if (count != sizeof(std::uint64_t)) {
      return Error{EINVAL};
    }
    std::uint64_t value;
    std::memcpy(&value, buf, sizeof value);
    if (value == ~std::uint64_t{0}) {
      return Error{EINVAL};
    }
    auto attempt = [&]() noexcept -> std::optional<Result<size_t>> {
      if (!try_write(value)) {
        return std::nullopt;
      }
      return sizeof value;
    };
    return block_on<size_t>(queue_, flags.dont_wait(), Timeout::none(), attempt, fail);
  }

  Result<void> hand_over(const KernelTwin& twin) noexcept override {
    std::uint64_t count;
    {
      SpinGuard guard(lock_);
      count = count_.exchange(0, std::memory_order_relaxed);
    }
    if (count > 0 && sys::calls.write(twin.fd, &count, sizeof count) != sizeof count) {
      return Error{errno};
    }
    return {};
  }

 private:
  // A wait that ended without success: EAGAIN (non-blocking) or EINTR.
  static Result<size_t> fail(int error) noexcept { return Error{error}; }

  bool try_read(std::uint64_t& value) noexcept {
    {
      SpinGuard guard(lock_);
      const std::uint64_t count = count_.load(std::memory_order_relaxed);
      if (count == 0) {
        return false;
      }
      value = semaphore_ ? 1 : count;
      count_.store(count - value, std::memory_order_release);
    }
    queue_.wake(EPOLLOUT);
    return true;
  }

  bool try_write(std::uint64_t value) noexcept {
    {
      SpinGuard guard(lock_);
      const std::uint64_t count = count_.load(std::memory_order_relaxed);
      if (kMaxCount - count < value) {
        return false;
      }
      count_.store(count + value, std::memory_order_release);
    }
    queue_.wake(EPOLLIN);
    return true;
  }

  WaitQueue queue_;
  SpinLock lock_;
  std::atomic<std::uint64_t> count_;  // changed under lock_; poll() reads it without
  const bool semaphore_;
};

}  // namespace

Result<Ref<File>> make_eventfd(unsigned int initval, int flags) noexcept {
  Ref<File> f = make_ref<EventFd>(initval, flags);
  if (!f) {
    return Error{ENOMEM};
  }
  return f;
}

}  // namespace uepoll
