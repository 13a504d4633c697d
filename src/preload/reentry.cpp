#include "preload/reentry.hpp"

#include <linux/futex.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstring>

#include "preload/preload.hpp"
#include "sync/sys.hpp"

namespace uepoll::preload {
namespace {

constexpr int kMaxQueued = 16;
constexpr size_t kMaxQueuedBytes = 64;  // wake-up bytes, eventfd counts

struct QueuedWrite {
  int fd;
  int send_flags;  // -1: write()
  size_t len;
  unsigned char data[kMaxQueuedBytes];
};

// Per thread, in the static TLS block (initial-exec: no allocation, safe in a handler). The
// thread itself and its handlers are the only users; a handler runs to completion before the
// code it interrupted goes on, so plain loads and stores with signal fences suffice.
struct Reentry {
  int depth;                // Inside scopes open on this thread
  std::atomic<int> queued;  // entries in `q`
  QueuedWrite q[kMaxQueued];
};
[[gnu::tls_model("initial-exec")]] constinit thread_local Reentry t_reentry{};

void perform(const QueuedWrite& w) noexcept {
  Ref<File> f = table().get(w.fd);
  if (!f) {
    return;  // closed meanwhile: the write is lost, as it would be after a close
  }
  const IoFlags dont_wait{MSG_DONTWAIT, true};  // never sleep here: the caller may be about to
  if (w.send_flags < 0) {
    (void)f->write(w.data, w.len, dont_wait);
  } else {
    (void)f->send(w.data, w.len, IoFlags{w.send_flags | MSG_DONTWAIT | MSG_NOSIGNAL, true});
  }
}

// uepoll's sleeping system calls, with queued writes done around each sleep.
struct Sleeps {
  int (*ppoll)(pollfd*, nfds_t, const timespec*, const sigset_t*);
  int (*epoll_pwait2)(int, epoll_event*, int, const timespec*, const sigset_t*);
  long (*syscall)(long, ...);
};
Sleeps g_sleeps;

bool sleeps(const timespec* timeout) noexcept {
  return timeout == nullptr || timeout->tv_sec != 0 || timeout->tv_nsec != 0;
}

int ppoll_around(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* mask) {
  if (!sleeps(timeout)) {
    return g_sleeps.ppoll(fds, n, timeout, mask);  // a probe, possibly under a lock
  }
  run_queued_writes();
  const int r = g_sleeps.ppoll(fds, n, timeout, mask);
  const int error = errno;
  run_queued_writes();
  errno = error;
  return r;
}

int epoll_pwait2_around(int ep, epoll_event* events, int max, const timespec* timeout,
                        const sigset_t* mask) {
  if (!sleeps(timeout)) {
    return g_sleeps.epoll_pwait2(ep, events, max, timeout, mask);
  }
  run_queued_writes();
  const int r = g_sleeps.epoll_pwait2(ep, events, max, timeout, mask);
  const int error = errno;
  run_queued_writes();
  errno = error;
  return r;
}

long syscall_around(long number, ...) {
  va_list ap;
  va_start(ap, number);
  long a[6];
  for (long& v : a) {
    v = va_arg(ap, long);
  }
  va_end(ap);
  const int op = static_cast<int>(a[1]) & FUTEX_CMD_MASK;
  const bool sleeping = number == SYS_futex && (op == FUTEX_WAIT || op == FUTEX_WAIT_BITSET);
  if (sleeping) {
    run_queued_writes();
  }
  const long r = g_sleeps.syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
  if (sleeping) {
    const int error = errno;
    run_queued_writes();
    errno = error;
  }
  return r;
}

}  // namespace

Inside::Inside() noexcept {
  ++t_reentry.depth;
  std::atomic_signal_fence(std::memory_order_seq_cst);
}

Inside::~Inside() {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  if (t_reentry.depth == 1) {
    run_queued_writes();  // still counted inside: handlers keep queueing meanwhile
  }
  std::atomic_signal_fence(std::memory_order_seq_cst);
  --t_reentry.depth;
}

bool interrupted_inside() noexcept { return t_reentry.depth > 0; }

bool queue_write(int fd, const void* buf, size_t n, int send_flags) noexcept {
  Reentry& r = t_reentry;
  const int at = r.queued.load(std::memory_order_relaxed);
  if (n > kMaxQueuedBytes || at == kMaxQueued) {
    return false;
  }
  QueuedWrite& w = r.q[at];
  w.fd = fd;
  w.send_flags = send_flags;
  w.len = n;
  std::memcpy(w.data, buf, n);
  r.queued.store(at + 1, std::memory_order_relaxed);
  return true;
}

void run_queued_writes() noexcept {
  Reentry& r = t_reentry;
  // A handler may queue more while these run (it interrupts this loop): take entries in order
  // until the count is still what was seen, then reset it in one step.
  for (int done = 0;;) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
    int seen = r.queued.load(std::memory_order_relaxed);
    if (done == seen) {
      if (seen == 0 || r.queued.compare_exchange_strong(seen, 0, std::memory_order_relaxed)) {
        return;
      }
      continue;
    }
    ++r.depth;  // the writes below are uepoll code: a handler interrupting them queues
    perform(r.q[done++]);
    --r.depth;
  }
}

void wrap_sleeps() noexcept {
  g_sleeps = Sleeps{sys::calls.ppoll, sys::calls.epoll_pwait2, sys::calls.syscall};
  sys::calls.ppoll = &ppoll_around;
  sys::calls.epoll_pwait2 = &epoll_pwait2_around;
  sys::calls.syscall = &syscall_around;
}

}  // namespace uepoll::preload
