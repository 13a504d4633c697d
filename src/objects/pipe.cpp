// Pipes, modelled on Linux's page ring: up to 16 page buffers of 4096 bytes (65536 bytes in
// all). A small write merges into the last page when it fits; otherwise it takes a new page.
// Writable means "a page is free", which is why EPOLLOUT comes back only once 4096 bytes have
// been read from a full pipe. Each end hooks its own queue only (readers: read_wait, writers:
// write_wait), as Linux's pipe_poll does.
#include <fcntl.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <utility>

#include "objects/stream.hpp"
#include "sync/block_cache.hpp"
#include "sync/fault_injection.hpp"
#include "sync/sys.hpp"
#include "uepoll/blocking.hpp"
#include "uepoll/objects.hpp"

namespace uepoll {
namespace {

constexpr std::size_t kPageSize = 4096;
constexpr unsigned kSlots = 16;

struct PipeState {
  struct Slot {
    std::unique_ptr<std::uint8_t[]> page;  // kept for reuse once allocated
    std::uint32_t offset = 0;
    std::uint32_t len = 0;
  };

  // A sleeping mutex, as Linux's pipe->mutex: a write allocates its pages under it.
  Mutex lock;
  Slot slots[kSlots] UEPOLL_GUARDED_BY(lock);
  unsigned head UEPOLL_GUARDED_BY(lock) = 0;  // next slot to fill (counts up, wraps mod kSlots)
  unsigned tail UEPOLL_GUARDED_BY(lock) = 0;  // oldest filled slot
  bool readers UEPOLL_GUARDED_BY(lock) = true;
  bool writers UEPOLL_GUARDED_BY(lock) = true;
  WaitQueue read_wait;   // woken when data arrives or the writer goes
  WaitQueue write_wait;  // woken when space frees up or the reader goes
  std::atomic<int> ends{2};

  bool empty() const UEPOLL_REQUIRES(lock) { return head == tail; }
  bool full() const UEPOLL_REQUIRES(lock) { return head - tail >= kSlots; }
};

class PipeEnd final : public File, public detail::BlockCached {
 public:
  PipeEnd(PipeState* state, int access_mode, int flags) noexcept
      : File(access_mode, flags), state_(state) {}

  PollMask poll(PollTable* table) noexcept override {
    PipeState& p = *state_;
    if (readable()) {
      poll_wait(table, p.read_wait);
    }
    if (writable()) {
      poll_wait(table, p.write_wait);
    }
    MutexLock guard(p.lock);
    PollMask mask = 0;
    if (readable()) {
      if (!p.empty()) {
        mask |= EPOLLIN | EPOLLRDNORM;
      }
      if (!p.writers) {
        mask |= EPOLLHUP;
      }
    }
    if (writable()) {
      if (!p.full()) {
        mask |= EPOLLOUT | EPOLLWRNORM;
      }
      if (!p.readers) {
        mask |= EPOLLERR;
      }
    }
    return mask;
  }

  Result<size_t> read(void* buf, size_t count, IoFlags flags) noexcept override {
    if (count == 0) {
      return size_t{0};
    }
    auto* out = static_cast<std::uint8_t*>(buf);
    auto attempt = [&]() noexcept -> std::optional<Result<size_t>> {
      if (Result<size_t> r = try_read(out, count); r || r.error() != EAGAIN) {
        return r;
      }
      return std::nullopt;
    };
    return block_on<size_t>(state_->read_wait, flags.dont_wait(), Timeout::none(), attempt,
                            [](int error) noexcept -> Result<size_t> { return Error{error}; });
  }

  Result<size_t> write(const void* buf, size_t count, IoFlags flags) noexcept override {
    if (count == 0) {
      return size_t{0};  // Linux returns before looking for readers
    }
    const auto* data = static_cast<const std::uint8_t*>(buf);
    size_t done = 0;
    bool first_try = true;
    // Bytes written are reported whatever ends the call; EPIPE raises SIGPIPE even then.
    auto attempt = [&]() noexcept -> std::optional<Result<size_t>> {
      while (done < count) {
        Result<size_t> r =
            try_write(data + done, count - done, done == 0, std::exchange(first_try, false));
        if (r) {
          done += r.value();
          if (done < count) {
            return std::nullopt;  // full: wait for room
          }
          continue;
        }
        if (r.error() == EAGAIN) {
          return std::nullopt;
        }
        if (r.error() == EPIPE) {
          // SIGPIPE even after a partial write, as Linux's pipe_write.
          r = stream::broken_pipe((flags.msg_flags & MSG_NOSIGNAL) != 0);
        }
        return done > 0 ? Result<size_t>(done) : r;
      }
      return Result<size_t>(done);
    };
    return block_on<size_t>(state_->write_wait, flags.dont_wait(), Timeout::none(), attempt,
                            [&](int error) noexcept {
                              return done > 0 ? Result<size_t>(done) : Result<size_t>(Error{error});
                            });
  }

  Result<size_t> readable_bytes() noexcept override {
    PipeState& p = *state_;  // either end answers, as Linux's pipe_ioctl
    MutexLock guard(p.lock);
    size_t n = 0;
    for (unsigned i = p.tail; i != p.head; ++i) {
      n += p.slots[i % kSlots].len;
    }
    return n;
  }

 protected:
  void release() noexcept override {
    PipeState& p = *state_;
    {
      MutexLock guard(p.lock);
      if (readable()) {
        p.readers = false;
      }
      if (writable()) {
        p.writers = false;
      }
    }
    p.read_wait.wake_all(0);
    p.write_wait.wake_all(0);
    if (p.ends.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      delete state_;
    }
  }

 private:
  Result<size_t> try_read(std::uint8_t* out, size_t count) noexcept {
    PipeState& p = *state_;
    size_t got = 0;
    bool wake_writers = false;  // only when a page of a full pipe was freed (Linux 6.x)
    {
      MutexLock guard(p.lock);
      if (p.empty()) {
        return p.writers ? Result<size_t>(Error{EAGAIN}) : Result<size_t>(size_t{0});
      }
      while (got < count && !p.empty()) {
        auto& slot = p.slots[p.tail % kSlots];
        size_t n = std::min<size_t>(slot.len, count - got);
        std::memcpy(out + got, slot.page.get() + slot.offset, n);
        slot.offset += static_cast<std::uint32_t>(n);
        slot.len -= static_cast<std::uint32_t>(n);
        got += n;
        if (slot.len == 0) {
          wake_writers |= p.full();
          ++p.tail;
        }
      }
    }
    if (wake_writers) {
      p.write_wait.wake(EPOLLOUT | EPOLLWRNORM);
    }
    return got;
  }

  // Writes what fits now. `first` marks the start of a write(): only then may its leading
  // partial page merge into the last buffer (Linux merges once, then page-aligns the rest).
  // `first_try`: the call's first attempt, which wakes the readers even if the pipe is full.
  Result<size_t> try_write(const std::uint8_t* in, size_t count, bool first,
                           bool first_try) noexcept {
    PipeState& p = *state_;
    size_t put = 0;
    {
      MutexLock guard(p.lock);
      if (!p.readers) {
        return Error{EPIPE};  // no reader left: nobody to wake
      }
      size_t chars = count & (kPageSize - 1);
      if (first && chars != 0 && !p.empty()) {
        auto& last = p.slots[(p.head - 1) % kSlots];
        if (last.offset + last.len + chars <= kPageSize) {
          std::memcpy(last.page.get() + last.offset + last.len, in, chars);
          last.len += static_cast<std::uint32_t>(chars);
          put = chars;
        }
      }
      while (put < count && !p.full()) {
        auto& slot = p.slots[p.head % kSlots];
        if (!slot.page) {
          slot.page.reset(detail::allocation_should_fail() ? nullptr
                                                           : new (std::nothrow)
                                                                 std::uint8_t[kPageSize]);
          if (!slot.page) {
            if (put == 0) {
              return Error{ENOMEM};
            }
            break;
          }
        }
        size_t n = std::min(kPageSize, count - put);
        std::memcpy(slot.page.get(), in + put, n);
        slot.offset = 0;
        slot.len = static_cast<std::uint32_t>(n);
        ++p.head;
        put += n;
      }
    }
    // A write() wakes the readers even when it found the pipe full, so EPOLLET users see an
    // edge per write (Linux 5.14+ wakes whenever the pipe has been polled); its later attempts
    // (after a sleep) wake them only when they queue bytes, as Linux's loop does.
    if (put > 0 || first_try) {
      p.read_wait.wake(EPOLLIN | EPOLLRDNORM);
    }
    if (put == 0) {
      return Error{EAGAIN};  // full
    }
    return put;
  }

  // The unread pages go into the kernel pipe through a write end of its own, opened through
  // /proc (the program's write end may be gone); they fit, the capacities being equal.
  Result<void> hand_over(const KernelTwin& twin) noexcept override {
    if (!readable()) {
      return {};  // the data belongs to the read end
    }
    PipeState& p = *state_;
    MutexLock guard(p.lock);
    if (p.empty()) {
      return {};
    }
    char path[40];
    std::snprintf(path, sizeof path, "/proc/self/fd/%d", twin.fd);
    const int writer = ::open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (writer < 0) {
      return Error{errno};
    }
    int error = 0;
    for (; !p.empty() && error == 0; ++p.tail) {
      auto& slot = p.slots[p.tail % kSlots];
      if (sys::calls.write(writer, slot.page.get() + slot.offset, slot.len) !=
          static_cast<ssize_t>(slot.len)) {
        error = errno;
      }
      slot.len = 0;
    }
    sys::calls.close(writer);
    return error == 0 ? Result<void>{} : Result<void>(Error{error});
  }

  PipeState* state_;
};

}  // namespace

Result<FilePair> make_pipe(int flags) noexcept {
  auto* state = detail::try_new<PipeState>();
  if (state == nullptr) {
    return Error{ENOMEM};
  }
  Ref<File> reader = make_ref<PipeEnd>(state, O_RDONLY, flags);
  Ref<File> writer = make_ref<PipeEnd>(state, O_WRONLY, flags);
  if (!reader || !writer) {
    // Release the end that exists as if the other had gone already.
    state->ends.store(1, std::memory_order_relaxed);
    if (!reader && !writer) {
      delete state;
    }
    return Error{ENOMEM};
  }
  return FilePair{std::move(reader), std::move(writer)};
}

}  // namespace uepoll
