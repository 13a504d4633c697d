// Signal handlers that write to uepoll descriptors (a wake-up byte into a pipe or socketpair,
// a count into an eventfd: Python's set_wakeup_fd, the self-pipe trick).
//
// A handler runs on top of whatever its thread was doing. On Linux that is never kernel code
// holding a lock: handlers run on the way back to user space. Here the interrupted code may be
// uepoll's, holding an object's or a wait queue's spinlock, and a handler's write that needs
// the same lock would spin forever. So while a thread is inside uepoll (Inside), a write from a
// handler on that thread is queued, and done as soon as the thread holds nothing: when it
// leaves uepoll, and around every sleep (the write may be what the sleep waits for; a handler
// that interrupts a sleep ends it, so the sleeper then sees the write). Everything here is
// per thread and lock-free: async-signal-safe.
#pragma once

#include <sys/types.h>

#include <cstddef>

namespace uepoll::preload {

/// Marks the calling thread as inside uepoll for its lifetime; the outermost one does what
/// handlers queued meanwhile.
class Inside {
 public:
  Inside() noexcept;
  ~Inside();
  Inside(const Inside&) = delete;
  Inside& operator=(const Inside&) = delete;
};

/// True when the calling thread is inside uepoll: a handler running now interrupted it there.
bool interrupted_inside() noexcept;

/// Queues a handler's write of `n` bytes to `fd` (send flags, or -1 for write()). False when
/// it cannot be queued (too large, or the thread's queue is full): the caller fails with
/// EAGAIN, as a full pipe would.
bool queue_write(int fd, const void* buf, size_t n, int send_flags) noexcept;

/// Does the queued writes. Call only where the thread holds no uepoll lock.
void run_queued_writes() noexcept;

/// Wraps uepoll's sleeping system calls (sys::calls) so that queued writes are done before and
/// after each sleep.
void wrap_sleeps() noexcept;

}  // namespace uepoll::preload
