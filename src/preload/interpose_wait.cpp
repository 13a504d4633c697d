// The interposed waits but epoll's: poll, ppoll, select, pselect and glibc's FORTIFY checks
// of poll and ppoll. A set with a uepoll descriptor in it is waited for by the table
// (Process::poll_with), kernel descriptors included; any other goes to libc.
#undef _FORTIFY_SOURCE
#include <errno.h>
#include <poll.h>
#include <sys/select.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include "preload/libc.hpp"
#include "preload/preload.hpp"
#include "preload/reentry.hpp"

namespace uepoll::preload {
namespace {

// poll_with for the program's array, where a listener with an in-process twin is polled twice:
// the twin (its number) and the kernel listener (uepoll's own descriptor for it).
Result<int> poll_both(pollfd* fds, nfds_t n, Timeout timeout, const sigset_t* sigmask) noexcept {
  constexpr auto kPass = uepoll::Process::KernelFds::kPassThrough;
  nfds_t listeners = 0;
  for (nfds_t i = 0; i < n; ++i) {
    listeners += kind_of(fds[i].fd) == Kind::kListener ? 1 : 0;
  }
  if (listeners == 0) {
    return table().poll_with(fds, n, timeout, sigmask, kPass);
  }
  std::unique_ptr<pollfd[]> all(new (std::nothrow) pollfd[n + listeners]);
  if (!all) {
    return uepoll::Error{ENOMEM};
  }
  std::memcpy(all.get(), fds, n * sizeof *fds);
  nfds_t extra = n;
  for (nfds_t i = 0; i < n; ++i) {
    if (kind_of(fds[i].fd) == Kind::kListener) {
      Ref<File> twin = object(fds[i].fd);
      all[extra++] = pollfd{twin ? listener_kernel_fd(twin.get()) : -1, fds[i].events, 0};
    }
  }
  Result<int> got = table().poll_with(all.get(), extra, timeout, sigmask, kPass);
  if (!got) {
    return got;
  }
  int ready = 0;
  extra = n;
  for (nfds_t i = 0; i < n; ++i) {
    fds[i].revents = all[i].revents;
    if (kind_of(fds[i].fd) == Kind::kListener) {
      fds[i].revents |= static_cast<short>(all[extra++].revents & ~POLLNVAL);
    }
    ready += fds[i].revents != 0 ? 1 : 0;
  }
  return ready;
}

bool any_ours(const pollfd* fds, nfds_t n) noexcept {
  for (nfds_t i = 0; i < n; ++i) {
    if (ours(fds[i].fd)) {
      return true;
    }
  }
  return false;
}

// select() and pselect() over uepoll descriptors: as poll(), then back into the sets.
int select_through_poll(int nfds, fd_set* rd, fd_set* wr, fd_set* ex, Timeout timeout,
                        const sigset_t* sigmask) noexcept {
  if (nfds < 0 || nfds > FD_SETSIZE) {
    return fail(EINVAL);
  }
  pollfd pfds[FD_SETSIZE];
  int n = 0;
  for (int fd = 0; fd < nfds; ++fd) {
    short events = 0;
    events |= rd != nullptr && FD_ISSET(fd, rd) ? POLLIN : 0;
    events |= wr != nullptr && FD_ISSET(fd, wr) ? POLLOUT : 0;
    events |= ex != nullptr && FD_ISSET(fd, ex) ? POLLPRI : 0;
    if (events != 0) {
      pfds[n++] = pollfd{fd, events, 0};
    }
  }
  Result<int> got = poll_both(pfds, static_cast<nfds_t>(n), timeout, sigmask);
  if (!got) {
    return fail(got.error());
  }
  for (int i = 0; i < n; ++i) {
    if ((pfds[i].revents & POLLNVAL) != 0) {
      return fail(EBADF);
    }
  }
  int count = 0;
  auto keep = [&](fd_set* set, int fd, bool ready) {
    if (set != nullptr && FD_ISSET(fd, set)) {
      if (ready) {
        ++count;
      } else {
        FD_CLR(fd, set);
      }
    }
  };
  for (int i = 0; i < n; ++i) {
    const short r = pfds[i].revents;
    keep(rd, pfds[i].fd, (r & (POLLIN | POLLHUP | POLLERR)) != 0);
    keep(wr, pfds[i].fd, (r & (POLLOUT | POLLERR)) != 0);
    keep(ex, pfds[i].fd, (r & POLLPRI) != 0);
  }
  return count;
}

bool valid_timespec(const timespec& ts) noexcept {
  return ts.tv_sec >= 0 && ts.tv_nsec >= 0 && ts.tv_nsec < 1'000'000'000;
}

}  // namespace
}  // namespace uepoll::preload

using namespace uepoll::preload;  // NOLINT: the C functions below are this file's whole point
using uepoll::Timeout;

extern "C" {

// glibc declares poll()'s array write-only (for FORTIFY), so GCC takes our reads of it for reads
// of uninitialised memory.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

int poll(struct pollfd* fds, nfds_t nfds, int timeout) {
  if (!any_ours(fds, nfds)) {
    return libc().poll(fds, nfds, timeout);
  }
  Inside inside;
  return errno_of(poll_both(fds, nfds, Timeout::after_ms(timeout), nullptr));
}

int __poll_chk(struct pollfd* fds, nfds_t nfds, int timeout, size_t fdslen) {
  if (fdslen / sizeof *fds < nfds) {
    std::abort();
  }
  return poll(fds, nfds, timeout);
}

int ppoll(struct pollfd* fds, nfds_t nfds, const struct timespec* timeout,
          const sigset_t* sigmask) {
  if (!any_ours(fds, nfds)) {
    return libc().ppoll(fds, nfds, timeout, sigmask);
  }
  Inside inside;
  if (timeout != nullptr && !valid_timespec(*timeout)) {
    return fail(EINVAL);
  }
  return errno_of(poll_both(
      fds, nfds, timeout != nullptr ? Timeout::after(*timeout) : Timeout::none(), sigmask));
}

int __ppoll_chk(struct pollfd* fds, nfds_t nfds, const struct timespec* timeout,
                const sigset_t* sigmask, size_t fdslen) {
  if (fdslen / sizeof *fds < nfds) {
    std::abort();
  }
  return ppoll(fds, nfds, timeout, sigmask);
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

static bool any_ours_in(int nfds, const fd_set* rd, const fd_set* wr, const fd_set* ex) {
  for (int fd = 0; fd < nfds && fd < FD_SETSIZE; ++fd) {
    const bool asked = (rd != nullptr && FD_ISSET(fd, rd)) || (wr != nullptr && FD_ISSET(fd, wr)) ||
                       (ex != nullptr && FD_ISSET(fd, ex));
    if (asked && ours(fd)) {
      return true;
    }
  }
  return false;
}

int select(int nfds, fd_set* rd, fd_set* wr, fd_set* ex, struct timeval* timeout) {
  if (!any_ours_in(nfds, rd, wr, ex)) {
    return libc().select(nfds, rd, wr, ex, timeout);
  }
  Inside inside;
  Timeout t = Timeout::none();
  if (timeout != nullptr) {
    if (timeout->tv_sec < 0 || timeout->tv_usec < 0 || timeout->tv_usec >= 1'000'000) {
      return fail(EINVAL);
    }
    t = Timeout::after(timespec{timeout->tv_sec, timeout->tv_usec * 1000});
  }
  const int rc = select_through_poll(nfds, rd, wr, ex, t, nullptr);
  if (timeout != nullptr && rc >= 0) {
    // Linux writes the time left back.
    const timespec* deadline = t.deadline();
    const timespec left = deadline != nullptr ? uepoll::time_left(*deadline) : timespec{0, 0};
    timeout->tv_sec = left.tv_sec;
    timeout->tv_usec = left.tv_nsec / 1000;
  }
  return rc;
}

int pselect(int nfds, fd_set* rd, fd_set* wr, fd_set* ex, const struct timespec* timeout,
            const sigset_t* sigmask) {
  if (!any_ours_in(nfds, rd, wr, ex)) {
    return libc().pselect(nfds, rd, wr, ex, timeout, sigmask);
  }
  Inside inside;
  if (timeout != nullptr && !valid_timespec(*timeout)) {
    return fail(EINVAL);
  }
  return select_through_poll(
      nfds, rd, wr, ex, timeout != nullptr ? Timeout::after(*timeout) : Timeout::none(), sigmask);
}

}  // extern "C"
