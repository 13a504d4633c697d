// The functions libuepoll-preload.so defines in front of libc's. Each one sends a uepoll
// descriptor to uepoll (the preload's table, numbered as the kernel numbers) and any other
// descriptor to the next definition, libc's, untouched. docs/interposer.md lists what is
// interposed, how each call is answered, and what escapes.
#undef _FORTIFY_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <spawn.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include "epoll/epoll.hpp"
#include "preload/libc.hpp"
#include "preload/preload.hpp"
#include "preload/reentry.hpp"
#include "sync/sys.hpp"
#include "uepoll/objects.hpp"

namespace uepoll::preload {
namespace {

int fail(int error) noexcept {
  errno = error;
  return -1;
}

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

// --- I/O helpers -------------------------------------------------------------------------------

// readv/writev and the msghdr calls on uepoll descriptors go through one buffer.
struct Gathered {
  std::unique_ptr<char[]> buf;
  size_t len = 0;
};

Result<size_t> total_length(const iovec* iov, int iovcnt) noexcept {
  if (iovcnt < 0 || iovcnt > IOV_MAX) {
    return Error{EINVAL};
  }
  size_t total = 0;
  for (int i = 0; i < iovcnt; ++i) {
    if (iov[i].iov_len > static_cast<size_t>(SSIZE_MAX) - total) {
      return Error{EINVAL};
    }
    total += iov[i].iov_len;
  }
  return total;
}

template <class Read>
ssize_t scatter_read(const iovec* iov, int iovcnt, Read&& read) noexcept {
  Result<size_t> total = total_length(iov, iovcnt);
  if (!total) {
    return fail(total.error());
  }
  std::unique_ptr<char[]> buf(new (std::nothrow) char[*total > 0 ? *total : 1]);
  if (!buf) {
    return fail(ENOMEM);
  }
  Result<size_t> got = read(buf.get(), *total);
  if (!got) {
    return fail(got.error());
  }
  size_t off = 0;
  for (int i = 0; i < iovcnt && off < *got; ++i) {
    const size_t n = std::min(iov[i].iov_len, *got - off);
    std::memcpy(iov[i].iov_base, buf.get() + off, n);
    off += n;
  }
  return static_cast<ssize_t>(*got);
}

template <class Write>
ssize_t gather_write(const iovec* iov, int iovcnt, Write&& write) noexcept {
  Result<size_t> total = total_length(iov, iovcnt);
  if (!total) {
    return fail(total.error());
  }
  std::unique_ptr<char[]> buf(new (std::nothrow) char[*total > 0 ? *total : 1]);
  if (!buf) {
    return fail(ENOMEM);
  }
  size_t off = 0;
  for (int i = 0; i < iovcnt; ++i) {
    std::memcpy(buf.get() + off, iov[i].iov_base, iov[i].iov_len);
    off += iov[i].iov_len;
  }
  return errno_of_size(write(buf.get(), *total));
}

// A write from a signal handler that interrupted uepoll code on this thread: queued, done when
// the thread holds nothing (reentry.hpp). Reports the whole write done, as Linux would.
ssize_t queue_for_handler(int fd, const void* buf, size_t count, int send_flags) noexcept {
  if (count > 0 && buf == nullptr) {
    return fail(EFAULT);
  }
  return queue_write(fd, buf, count, send_flags) ? static_cast<ssize_t>(count) : fail(EAGAIN);
}

// The same for writev/sendmsg: small vectors only, gathered on the stack.
ssize_t queue_vector_for_handler(int fd, const iovec* iov, int iovcnt, int send_flags) noexcept {
  char buf[64];
  size_t len = 0;
  for (int i = 0; i < iovcnt; ++i) {
    if (iov[i].iov_len > sizeof buf - len) {
      return fail(EAGAIN);
    }
    std::memcpy(buf + len, iov[i].iov_base, iov[i].iov_len);
    len += iov[i].iov_len;
  }
  return queue_for_handler(fd, buf, len, send_flags);
}

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
using uepoll::File;
using uepoll::Ref;
using uepoll::Result;
using uepoll::Timeout;

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

int eventfd_read(int fd, eventfd_t* value) {
  return read(fd, value, sizeof *value) == static_cast<ssize_t>(sizeof *value) ? 0 : -1;
}

int eventfd_write(int fd, eventfd_t value) {
  return write(fd, &value, sizeof value) == static_cast<ssize_t>(sizeof value) ? 0 : -1;
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

// --- I/O ---------------------------------------------------------------------------------------

ssize_t read(int fd, void* buf, size_t count) {
  if (ours(fd)) {
    Inside inside;
    return errno_of_size(table().read(fd, buf, count));
  }
  return libc().read(fd, buf, count);
}

ssize_t write(int fd, const void* buf, size_t count) {
  if (ours(fd)) {
    if (interrupted_inside()) {
      return queue_for_handler(fd, buf, count, -1);
    }
    Inside inside;
    return errno_of_size(table().write(fd, buf, count));
  }
  return libc().write(fd, buf, count);
}

ssize_t readv(int fd, const struct iovec* iov, int iovcnt) {
  if (!ours(fd)) {
    return libc().readv(fd, iov, iovcnt);
  }
  Inside inside;
  return scatter_read(iov, iovcnt, [&](void* buf, size_t n) { return table().read(fd, buf, n); });
}

ssize_t writev(int fd, const struct iovec* iov, int iovcnt) {
  if (!ours(fd)) {
    return libc().writev(fd, iov, iovcnt);
  }
  if (interrupted_inside()) {
    return iovcnt < 0 ? fail(EINVAL) : queue_vector_for_handler(fd, iov, iovcnt, -1);
  }
  Inside inside;
  return gather_write(iov, iovcnt,
                      [&](const void* buf, size_t n) { return table().write(fd, buf, n); });
}

ssize_t recv(int fd, void* buf, size_t len, int flags) {
  if (ours(fd)) {
    Inside inside;
    return errno_of_size(table().recv(fd, buf, len, flags));
  }
  return libc().recv(fd, buf, len, flags);
}

ssize_t send(int fd, const void* buf, size_t len, int flags) {
  if (ours(fd)) {
    if (interrupted_inside()) {
      return queue_for_handler(fd, buf, len, flags);
    }
    Inside inside;
    return errno_of_size(table().send(fd, buf, len, flags));
  }
  return libc().send(fd, buf, len, flags);
}

ssize_t recvfrom(int fd, void* buf, size_t len, int flags, struct sockaddr* addr,
                 socklen_t* addrlen) {
  if (!ours(fd)) {
    return libc().recvfrom(fd, buf, len, flags, addr, addrlen);
  }
  Inside inside;
  if (addr != nullptr && addrlen != nullptr) {
    *addrlen = 0;  // a connected stream reports no source address
  }
  return errno_of_size(table().recv(fd, buf, len, flags));
}

ssize_t sendto(int fd, const void* buf, size_t len, int flags, const struct sockaddr* addr,
               socklen_t addrlen) {
  if (!ours(fd)) {
    return libc().sendto(fd, buf, len, flags, addr, addrlen);
  }
  if (addr != nullptr) {
    return fail(EISCONN);  // a connected stream socket takes no destination
  }
  if (interrupted_inside()) {
    return queue_for_handler(fd, buf, len, flags);
  }
  Inside inside;
  return errno_of_size(table().send(fd, buf, len, flags));
}

ssize_t recvmsg(int fd, struct msghdr* msg, int flags) {
  if (!ours(fd)) {
    return libc().recvmsg(fd, msg, flags);
  }
  Inside inside;
  msg->msg_namelen = 0;
  msg->msg_controllen = 0;
  msg->msg_flags = 0;
  return scatter_read(msg->msg_iov, static_cast<int>(msg->msg_iovlen),
                      [&](void* buf, size_t n) { return table().recv(fd, buf, n, flags); });
}

ssize_t sendmsg(int fd, const struct msghdr* msg, int flags) {
  if (!ours(fd)) {
    return libc().sendmsg(fd, msg, flags);
  }
  if (msg->msg_controllen != 0) {
    return fail(EOPNOTSUPP);  // descriptors and credentials: docs/deviations.md
  }
  if (interrupted_inside()) {
    return queue_vector_for_handler(fd, msg->msg_iov, static_cast<int>(msg->msg_iovlen), flags);
  }
  Inside inside;
  return gather_write(msg->msg_iov, static_cast<int>(msg->msg_iovlen),
                      [&](const void* buf, size_t n) { return table().send(fd, buf, n, flags); });
}

ssize_t __read_chk(int fd, void* buf, size_t count, size_t buflen) {
  if (count > buflen) {
    std::abort();  // what glibc's __chk_fail does, without its message
  }
  return read(fd, buf, count);
}

ssize_t __recv_chk(int fd, void* buf, size_t len, size_t buflen, int flags) {
  if (len > buflen) {
    std::abort();
  }
  return recv(fd, buf, len, flags);
}

ssize_t __recvfrom_chk(int fd, void* buf, size_t len, size_t buflen, int flags,
                       struct sockaddr* addr, socklen_t* addrlen) {
  if (len > buflen) {
    std::abort();
  }
  return recvfrom(fd, buf, len, flags, addr, addrlen);
}

int listen(int fd, int backlog) noexcept {
  if (kind_of(fd) == Kind::kListener) {
    // Both listen again (a new backlog).
    if (libc().listen(fd, backlog) != 0) {
      return -1;
    }
    Inside inside;
    return errno_of(table().listen(fd, backlog));
  }
  if (ours(fd)) {
    Inside inside;
    return errno_of(table().listen(fd, backlog));
  }
  const int rc = libc().listen(fd, backlog);
  if (rc == 0 && config().loopback) {
    add_in_process_twin(fd, backlog);
  }
  return rc;
}

int connect(int fd, const struct sockaddr* addr, socklen_t len) {
  if (ours(fd)) {
    Inside inside;
    return errno_of(table().connect(fd, addr, len));
  }
  if (int rc; config().loopback && uepoll::inet_listener_at(addr, len) &&
              connect_in_process(fd, addr, len, &rc)) {
    return rc;
  }
  return libc().connect(fd, addr, len);
}

int accept4(int fd, struct sockaddr* addr, socklen_t* len, int flags) {
  return ours(fd) ? accept_either(fd, addr, len, flags) : libc().accept4(fd, addr, len, flags);
}

int accept(int fd, struct sockaddr* addr, socklen_t* len) {
  return ours(fd) ? accept_either(fd, addr, len, 0) : libc().accept(fd, addr, len);
}

int shutdown(int fd, int how) noexcept {
  if (!ours(fd)) {
    return libc().shutdown(fd, how);
  }
  if (kind_of(fd) == Kind::kListener && libc().shutdown(fd, how) != 0) {
    return -1;
  }
  Inside inside;
  return errno_of(table().shutdown(fd, how));
}

int getsockopt(int fd, int level, int name, void* val, socklen_t* len) noexcept {
  if (!ours(fd)) {
    return libc().getsockopt(fd, level, name, val, len);
  }
  Inside inside;
  return errno_of(table().getsockopt(fd, level, name, val, len));
}

int setsockopt(int fd, int level, int name, const void* val, socklen_t len) noexcept {
  if (!ours(fd)) {
    return libc().setsockopt(fd, level, name, val, len);
  }
  if (kind_of(fd) == Kind::kListener && libc().setsockopt(fd, level, name, val, len) != 0) {
    return -1;  // the kernel listener's answer first: its accepted sockets inherit it
  }
  Inside inside;
  return errno_of(table().setsockopt(fd, level, name, val, len));
}

int getsockname(int fd, struct sockaddr* addr, socklen_t* len) noexcept {
  if (!ours(fd)) {
    return libc().getsockname(fd, addr, len);
  }
  Inside inside;
  return errno_of(table().getsockname(fd, addr, len));
}

int getpeername(int fd, struct sockaddr* addr, socklen_t* len) noexcept {
  if (!ours(fd)) {
    return libc().getpeername(fd, addr, len);
  }
  Inside inside;
  return errno_of(table().getpeername(fd, addr, len));
}

// sendfile() into a uepoll socket or pipe: through a buffer, as much as the destination takes
// (the input must be a kernel file that can be read, as Linux requires it to be mmap-able).
static ssize_t sendfile_into_uepoll(int out, int in, off_t* offset, size_t count) noexcept {
  constexpr size_t kChunk = 65536;
  std::unique_ptr<char[]> buf(new (std::nothrow) char[kChunk]);
  if (!buf) {
    return fail(ENOMEM);
  }
  size_t done = 0;
  while (done < count) {
    const size_t want = std::min(kChunk, count - done);
    const ssize_t got =
        offset != nullptr ? pread(in, buf.get(), want, *offset) : libc().read(in, buf.get(), want);
    if (got <= 0) {
      return done > 0 ? static_cast<ssize_t>(done) : got;
    }
    Result<size_t> put = table().write(out, buf.get(), static_cast<size_t>(got));
    const size_t taken = put ? *put : 0;
    if (offset != nullptr) {
      *offset += static_cast<off_t>(taken);
    } else if (taken < static_cast<size_t>(got)) {
      lseek(in, -static_cast<off_t>(static_cast<size_t>(got) - taken), SEEK_CUR);  // unread
    }
    done += taken;
    if (!put) {
      return done > 0 ? static_cast<ssize_t>(done) : fail(put.error());
    }
    if (taken < static_cast<size_t>(got)) {
      break;  // the destination is full (non-blocking) or a signal came
    }
  }
  return static_cast<ssize_t>(done);
}

ssize_t sendfile(int out, int in, off_t* offset, size_t count) {
  if (!ours(out) && !ours(in)) {
    return libc().sendfile(out, in, offset, count);
  }
  if (ours(in)) {
    return fail(EINVAL);  // a pipe, socket or eventfd is no file to send from
  }
  Inside inside;
  return sendfile_into_uepoll(out, in, offset, count);
}

ssize_t sendfile64(int out, int in, off64_t* offset, size_t count) {
  static_assert(sizeof(off64_t) == sizeof(off_t));
  return sendfile(out, in, reinterpret_cast<off_t*>(offset), count);
}

// --- waiting -----------------------------------------------------------------------------------

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

// --- new processes and new images ------------------------------------------------------------
// Before a child can share them, or a new image inherit them, uepoll's objects become the kernel
// objects behind them (handover.cpp).

static void before_new_process() {
  if (config().objects) {
    Inside inside;
    hand_over_all();
  }
}

pid_t fork() noexcept {
  before_new_process();
  return fork_keeping_listeners([] { return libc().fork(); });
}

pid_t vfork() noexcept {
  // As fork: a vfork child would run the interposer on the parent's memory, its table included.
  return fork();
}

int posix_spawn(pid_t* pid, const char* path, const posix_spawn_file_actions_t* actions,
                const posix_spawnattr_t* attr, char* const argv[], char* const envp[]) {
  before_new_process();
  return libc().posix_spawn(pid, path, actions, attr, argv, envp);
}

int posix_spawnp(pid_t* pid, const char* file, const posix_spawn_file_actions_t* actions,
                 const posix_spawnattr_t* attr, char* const argv[], char* const envp[]) {
  before_new_process();
  return libc().posix_spawnp(pid, file, actions, attr, argv, envp);
}

int execve(const char* path, char* const argv[], char* const envp[]) noexcept {
  before_new_process();
  return libc().execve(path, argv, envp);
}

int execv(const char* path, char* const argv[]) noexcept {
  before_new_process();
  return libc().execv(path, argv);
}

int execvp(const char* file, char* const argv[]) noexcept {
  before_new_process();
  return libc().execvp(file, argv);
}

int execvpe(const char* file, char* const argv[], char* const envp[]) noexcept {
  before_new_process();
  return libc().execvpe(file, argv, envp);
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
