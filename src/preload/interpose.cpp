// The functions libuepoll-preload.so defines in front of libc's. Each one sends a uepoll
// descriptor to uepoll (the preload's table, numbered as the kernel numbers) and any other
// descriptor to the next definition, libc's, untouched. docs/interposer.md lists what is
// interposed, how each call is answered, and what escapes.
//
// Here: the calls that make, copy and close descriptors, the epoll calls, and syscall(), which
// dispatches to them and so lives with them: GCC binds a call within one file when it compiles
// it (-fno-semantic-interposition), a call between files goes through the PLT. The others:
// interpose_io.cpp (read, write, send, recv, sendfile), interpose_sockets.cpp,
// interpose_wait.cpp (poll, select), interpose_process.cpp (fork, spawn, exec).
#undef _FORTIFY_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <climits>

#include "epoll/epoll.hpp"
#include "preload/libc.hpp"
#include "preload/preload.hpp"
#include "preload/reentry.hpp"
#include "sync/sys.hpp"
#include "uepoll/objects.hpp"

namespace uepoll::preload {
namespace {

// --- creating uepoll objects behind kernel reservations ---------------------------------------

// Installs `file` at the number the kernel gave its reservation; on failure closes the
// reservation (the object dies with the last Ref).
int place(int fd, Ref<File> file, bool cloexec, Kind kind = Kind::kUepoll) noexcept {
  if (Result<void> placed = install(fd, std::move(file), cloexec, kind); !placed) {
    libc().close(fd);
    return fail(placed.error());
  }
  return fd;
}

int create_epoll(int flags) noexcept {
  const int fd = libc().epoll_create1(flags);  // the kernel checks the flags and picks the number
  if (fd < 0) {
    return fd;
  }
  Inside inside;
  // The instance's kernel side, if it ever needs one, will be this kernel epoll
  // (kernel_twin_of in preload.cpp): kernel event loops watching `fd` then see its events.
  Result<Ref<File>> made = detail::create_instance(0, table().lock_mode());
  if (!made) {
    libc().close(fd);
    return fail(made.error());
  }
  return place(fd, std::move(made.value()), (flags & EPOLL_CLOEXEC) != 0);
}

// A pair (pipe, socketpair) behind the kernel pair the kernel just made.
int place_pair(int fds[2], Result<FilePair> pair, bool cloexec) noexcept {
  if (!pair) {
    libc().close(fds[0]);
    libc().close(fds[1]);
    return fail(pair.error());
  }
  if (place(fds[0], std::move(pair->first), cloexec) < 0) {
    const int error = errno;
    libc().close(fds[1]);
    return fail(error);
  }
  if (place(fds[1], std::move(pair->second), cloexec) < 0) {
    const int error = errno;
    uninstall(fds[0]);
    libc().close(fds[0]);
    return fail(error);
  }
  return 0;
}

// --- descriptors -------------------------------------------------------------------------------

// After the kernel made `to` a copy of `from` (dup family): the table follows.
int copy_slot(int from, int to, bool cloexec) noexcept {
  if (!ours(from) && !ours(to)) {
    return to;  // kernel descriptors both
  }
  Inside inside;
  if (Ref<File> f = object(from)) {
    if (to != from && place(to, std::move(f), cloexec, kind_of(from)) < 0) {
      return -1;
    }
  } else {
    uninstall(to);  // a kernel descriptor now: whatever uepoll had there is gone
  }
  return to;
}

// Closes the uepoll descriptors in [first, last] from the table, and leaves uepoll's own
// descriptors out of the kernel's close: close_range() around them.
int close_range_around_own(unsigned first, unsigned last, int flags) noexcept {
  Inside inside;
  unsigned from = first;
  for (unsigned fd = first;; ++fd) {
    const bool end = fd == last || fd >= static_cast<unsigned>(table().fds().limit());
    if (internal(static_cast<int>(fd)) || end) {
      const unsigned to = internal(static_cast<int>(fd)) ? fd - 1 : (end ? last : fd);
      if (from <= to && to >= from) {
        if ((flags & CLOSE_RANGE_CLOEXEC) == 0) {
          for (unsigned u = from; u <= to && u < static_cast<unsigned>(table().fds().limit());
               ++u) {
            if (ours(static_cast<int>(u))) {
              uninstall(static_cast<int>(u));
            }
          }
        }
        if (libc().close_range(from, to, flags) != 0) {
          return -1;
        }
      }
      if (end) {
        return 0;
      }
      from = fd + 1;
    }
  }
}

}  // namespace
}  // namespace uepoll::preload

using namespace uepoll::preload;  // NOLINT: the C functions below are this file's whole point
using uepoll::File;
using uepoll::Ref;
using uepoll::Result;

extern "C" {

// --- epoll -------------------------------------------------------------------------------------

int epoll_create1(int flags) noexcept { return create_epoll(flags); }

int epoll_create(int size) noexcept {
  if (size <= 0) {
    return fail(EINVAL);
  }
  return create_epoll(0);
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event* event) noexcept {
  if (internal(epfd) || internal(fd)) {
    return fail(EBADF);
  }
  if (!ours(epfd) && !ours(fd)) {
    return libc().epoll_ctl(epfd, op, fd, event);
  }
  if (ours(epfd) && kind_of(fd) == Kind::kListener) {
    return listener_epoll_ctl(epfd, op, fd, event);
  }
  Inside inside;
  if (ours(epfd)) {
    return ours(fd) ? errno_of(table().epoll_ctl(epfd, op, fd, event))
                    : errno_of(table().epoll_ctl_kernel(epfd, op, fd, event));
  }
  if (Ref<File> f = object(fd); f && f->is_epoll()) {
    // A kernel epoll (made outside the interposer) watching a uepoll instance: the program's
    // descriptor is the instance's kernel epoll, readable while the instance has events.
    if (auto exported = uepoll::detail::instance_kernel_fd(*f); !exported) {
      return fail(exported.error());
    }
  }
  return libc().epoll_ctl(epfd, op, fd, event);
}

int epoll_wait(int epfd, struct epoll_event* events, int maxevents, int timeout) {
  if (ours(epfd)) {
    Inside inside;
    return errno_of(table().epoll_wait(epfd, events, maxevents, timeout));
  }
  return libc().epoll_wait(epfd, events, maxevents, timeout);
}

int epoll_pwait(int epfd, struct epoll_event* events, int maxevents, int timeout,
                const sigset_t* sigmask) {
  if (ours(epfd)) {
    Inside inside;
    return errno_of(table().epoll_pwait(epfd, events, maxevents, timeout, sigmask));
  }
  return libc().epoll_pwait(epfd, events, maxevents, timeout, sigmask);
}

int epoll_pwait2(int epfd, struct epoll_event* events, int maxevents,
                 const struct timespec* timeout, const sigset_t* sigmask) {
  if (ours(epfd)) {
    Inside inside;
    return errno_of(table().epoll_pwait2(epfd, events, maxevents, timeout, sigmask));
  }
  return libc().epoll_pwait2(epfd, events, maxevents, timeout, sigmask);
}

// --- objects -----------------------------------------------------------------------------------

int eventfd(unsigned int initval, int flags) noexcept {
  if (!config().objects) {
    return libc().eventfd(initval, flags);
  }
  const int fd = libc().eventfd(0, flags);  // the kernel checks the flags
  if (fd < 0) {
    return fd;
  }
  Inside inside;
  auto made = uepoll::make_eventfd(initval, flags & (EFD_SEMAPHORE | EFD_NONBLOCK));
  if (!made) {
    libc().close(fd);
    return fail(made.error());
  }
  return place(fd, std::move(made.value()), (flags & EFD_CLOEXEC) != 0);
}

int pipe2(int fds[2], int flags) noexcept {
  if (!config().objects) {
    return libc().pipe2(fds, flags);
  }
  if (libc().pipe2(fds, flags) != 0) {
    return -1;
  }
  Inside inside;
  return place_pair(fds, uepoll::make_pipe(flags & O_NONBLOCK), (flags & O_CLOEXEC) != 0);
}

int pipe(int fds[2]) noexcept { return pipe2(fds, 0); }

int socketpair(int domain, int type, int protocol, int sv[2]) noexcept {
  if (libc().socketpair(domain, type, protocol, sv) != 0) {
    return -1;  // the kernel's errno, in its order
  }
  if (!config().objects || domain != AF_UNIX ||
      (type & uepoll::sys::kSocketTypeMask) != SOCK_STREAM) {
    return 0;
  }
  Inside inside;
  return place_pair(sv, uepoll::make_unix_stream_pair((type & SOCK_NONBLOCK) != 0 ? O_NONBLOCK : 0),
                    (type & SOCK_CLOEXEC) != 0);
}

// --- descriptors -------------------------------------------------------------------------------

int close(int fd) {
  if (internal(fd)) {
    return fail(EBADF);  // uepoll's own: not the program's to close
  }
  if (!ours(fd)) {
    return libc().close(fd);
  }
  // Out of the table first: once the kernel frees the number, it may hand it out again.
  Inside inside;
  Ref<File> f = uninstall(fd);
  const int rc = libc().close(fd);
  f.reset();  // the last reference runs the release path here
  return rc;
}

int close_range(unsigned int first, unsigned int last, int flags) noexcept {
  if (first > last) {
    return fail(EINVAL);
  }
  return close_range_around_own(first, last, flags);
}

void closefrom(int lowfd) noexcept {
  close_range_around_own(static_cast<unsigned>(lowfd < 0 ? 0 : lowfd), ~0U, 0);
}

int dup(int fd) noexcept {
  if (internal(fd)) {
    return fail(EBADF);
  }
  const int to = libc().dup(fd);
  return to < 0 ? to : copy_slot(fd, to, false);
}

int dup2(int from, int to) noexcept {
  if (internal(from)) {
    return fail(EBADF);
  }
  if (internal(to)) {
    return fail(EBUSY);  // uepoll's own descriptor lives there (docs/deviations.md)
  }
  if (libc().dup2(from, to) < 0) {
    return -1;
  }
  return copy_slot(from, to, false);
}

int dup3(int from, int to, int flags) noexcept {
  if (internal(from)) {
    return fail(EBADF);
  }
  if (internal(to)) {
    return fail(EBUSY);
  }
  if (libc().dup3(from, to, flags) < 0) {
    return -1;
  }
  return copy_slot(from, to, (flags & O_CLOEXEC) != 0);
}

static int fcntl_common(int fd, int cmd, long arg) {
  if (internal(fd)) {
    return fail(EBADF);
  }
  if (!ours(fd)) {
    return libc().fcntl(fd, cmd, arg);
  }
  Inside inside;
  Ref<File> f = object(fd);
  if (!f) {
    return libc().fcntl(fd, cmd, arg);
  }
  switch (cmd) {
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
      const int to = libc().fcntl(fd, cmd, arg);
      return to < 0 ? to : copy_slot(fd, to, cmd == F_DUPFD_CLOEXEC);
    }
    case F_SETFL:
      // The kernel reservation keeps the same flags: F_GETFL answers from it.
      f->set_status_flags(static_cast<int>(arg));
      return libc().fcntl(fd, cmd, arg);
    default:
      return libc().fcntl(fd, cmd, arg);  // per-descriptor flags, locks, owners: the kernel's
  }
}

int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  const long arg = va_arg(ap, long);
  va_end(ap);
  return fcntl_common(fd, cmd, arg);
}

int fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  const long arg = va_arg(ap, long);
  va_end(ap);
  return fcntl_common(fd, cmd, arg);
}

int ioctl(int fd, unsigned long request, ...) noexcept {
  va_list ap;
  va_start(ap, request);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  if (!ours(fd)) {
    return libc().ioctl(fd, request, arg);
  }
  Inside inside;
  Ref<File> f = object(fd);
  if (f && request == FIONBIO) {  // the status flag is the description's: both keep it
    if (arg == nullptr) {
      return fail(EFAULT);
    }
    const int on = *static_cast<const int*>(arg);
    const int flags = f->status_flags();
    f->set_status_flags(on != 0 ? flags | O_NONBLOCK : flags & ~O_NONBLOCK);
  }
  if (f && request == FIONREAD) {
    Result<size_t> n = f->readable_bytes();
    if (!n) {
      return fail(n.error());
    }
    if (arg == nullptr) {
      return fail(EFAULT);
    }
    *static_cast<int*>(arg) = static_cast<int>(std::min<size_t>(*n, INT_MAX));
    return 0;
  }
  return libc().ioctl(fd, request, arg);  // the rest: the reservation's (FIOCLEX, ...)
}

// --- the raw system call path ------------------------------------------------------------------

long syscall(long number, ...) noexcept {
  va_list ap;
  va_start(ap, number);
  long a[6];
  for (long& v : a) {
    v = va_arg(ap, long);
  }
  va_end(ap);
  // The kernel's ABI: pointers and ints as longs; epoll_pwait's signal mask comes with its size.
  auto ptr = [&](int i) { return reinterpret_cast<void*>(a[i]); };
  auto sigmask_ok = [&](int mask, int size) {
    return ptr(mask) == nullptr || a[size] == static_cast<long>(sizeof(sigset_t));
  };
  switch (number) {
    case SYS_epoll_create: return epoll_create(static_cast<int>(a[0]));
    case SYS_epoll_create1: return epoll_create1(static_cast<int>(a[0]));
    case SYS_epoll_ctl:
      return epoll_ctl(static_cast<int>(a[0]), static_cast<int>(a[1]), static_cast<int>(a[2]),
                       static_cast<epoll_event*>(ptr(3)));
    case SYS_epoll_wait:
      return epoll_wait(static_cast<int>(a[0]), static_cast<epoll_event*>(ptr(1)),
                        static_cast<int>(a[2]), static_cast<int>(a[3]));
    case SYS_epoll_pwait:
      if (!sigmask_ok(4, 5)) {
        return fail(EINVAL);
      }
      return epoll_pwait(static_cast<int>(a[0]), static_cast<epoll_event*>(ptr(1)),
                         static_cast<int>(a[2]), static_cast<int>(a[3]),
                         static_cast<const sigset_t*>(ptr(4)));
    case SYS_epoll_pwait2:
      if (!sigmask_ok(4, 5)) {
        return fail(EINVAL);
      }
      return epoll_pwait2(static_cast<int>(a[0]), static_cast<epoll_event*>(ptr(1)),
                          static_cast<int>(a[2]), static_cast<const timespec*>(ptr(3)),
                          static_cast<const sigset_t*>(ptr(4)));
    case SYS_eventfd: return eventfd(static_cast<unsigned>(a[0]), 0);
    case SYS_eventfd2: return eventfd(static_cast<unsigned>(a[0]), static_cast<int>(a[1]));
    case SYS_close: return close(static_cast<int>(a[0]));
    case SYS_close_range:
      return close_range(static_cast<unsigned>(a[0]), static_cast<unsigned>(a[1]),
                         static_cast<int>(a[2]));
    case SYS_dup: return dup(static_cast<int>(a[0]));
    case SYS_dup2: return dup2(static_cast<int>(a[0]), static_cast<int>(a[1]));
    case SYS_dup3:
      return dup3(static_cast<int>(a[0]), static_cast<int>(a[1]), static_cast<int>(a[2]));
    case SYS_io_uring_setup:
      return fail(ENOSYS);  // io_uring would reach descriptors past the interposer
    default: return libc().syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
  }
}

}  // extern "C"
