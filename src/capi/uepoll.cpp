// The C API: Process::global() with errno. The only place in uepoll that touches errno; it is
// left untouched on success.
#include "uepoll/uepoll.h"

#include <cerrno>
#include <cstdarg>

#include "uepoll/objects.hpp"
#include "uepoll/process.hpp"

namespace {

uepoll::Process& process() noexcept { return uepoll::Process::global(); }

template <class T>
T value_or_errno(uepoll::Result<T> r) noexcept {
  if (!r.has_value()) {
    errno = r.error();
    return -1;
  }
  return r.value();
}

int zero_or_errno(uepoll::Result<void> r) noexcept {
  if (!r.has_value()) {
    errno = r.error();
    return -1;
  }
  return 0;
}

ssize_t size_or_errno(uepoll::Result<size_t> r) noexcept {
  if (!r.has_value()) {
    errno = r.error();
    return -1;
  }
  return static_cast<ssize_t>(r.value());
}

}  // namespace

extern "C" {

int uepoll_epoll_create(int size) { return value_or_errno(process().epoll_create(size)); }

int uepoll_epoll_create1(int flags) { return value_or_errno(process().epoll_create1(flags)); }

int uepoll_epoll_ctl(int epfd, int op, int fd, struct epoll_event* event) {
  return zero_or_errno(process().epoll_ctl(epfd, op, fd, event));
}

int uepoll_epoll_wait(int epfd, struct epoll_event* events, int maxevents, int timeout_ms) {
  return value_or_errno(process().epoll_wait(epfd, events, maxevents, timeout_ms));
}

int uepoll_epoll_pwait(int epfd, struct epoll_event* events, int maxevents, int timeout_ms,
                       const sigset_t* sigmask) {
  return value_or_errno(process().epoll_pwait(epfd, events, maxevents, timeout_ms, sigmask));
}

int uepoll_epoll_pwait2(int epfd, struct epoll_event* events, int maxevents,
                        const struct timespec* timeout, const sigset_t* sigmask) {
  return value_or_errno(process().epoll_pwait2(epfd, events, maxevents, timeout, sigmask));
}

int uepoll_eventfd(unsigned int initval, int flags) {
  return value_or_errno(process().eventfd(initval, flags));
}

int uepoll_pipe(int fds[2]) { return zero_or_errno(process().pipe2(fds, 0)); }

int uepoll_pipe2(int fds[2], int flags) { return zero_or_errno(process().pipe2(fds, flags)); }

int uepoll_socketpair(int domain, int type, int protocol, int sv[2]) {
  return zero_or_errno(process().socketpair(domain, type, protocol, sv));
}

int uepoll_socket(int domain, int type, int protocol) {
  return value_or_errno(process().socket(domain, type, protocol));
}

int uepoll_bind(int fd, const struct sockaddr* addr, socklen_t len) {
  return zero_or_errno(process().bind(fd, addr, len));
}

int uepoll_listen(int fd, int backlog) { return zero_or_errno(process().listen(fd, backlog)); }

int uepoll_accept(int fd, struct sockaddr* addr, socklen_t* len) {
  return value_or_errno(process().accept4(fd, addr, len, 0));
}

int uepoll_accept4(int fd, struct sockaddr* addr, socklen_t* len, int flags) {
  return value_or_errno(process().accept4(fd, addr, len, flags));
}

int uepoll_connect(int fd, const struct sockaddr* addr, socklen_t len) {
  return zero_or_errno(process().connect(fd, addr, len));
}

int uepoll_getsockopt(int fd, int level, int name, void* val, socklen_t* len) {
  return zero_or_errno(process().getsockopt(fd, level, name, val, len));
}

int uepoll_setsockopt(int fd, int level, int name, const void* val, socklen_t len) {
  return zero_or_errno(process().setsockopt(fd, level, name, val, len));
}

int uepoll_getsockname(int fd, struct sockaddr* addr, socklen_t* len) {
  return zero_or_errno(process().getsockname(fd, addr, len));
}

int uepoll_shutdown(int fd, int how) { return zero_or_errno(process().shutdown(fd, how)); }

ssize_t uepoll_read(int fd, void* buf, size_t count) {
  return size_or_errno(process().read(fd, buf, count));
}

ssize_t uepoll_write(int fd, const void* buf, size_t count) {
  return size_or_errno(process().write(fd, buf, count));
}

ssize_t uepoll_recv(int fd, void* buf, size_t len, int flags) {
  return size_or_errno(process().recv(fd, buf, len, flags));
}

ssize_t uepoll_send(int fd, const void* buf, size_t len, int flags) {
  return size_or_errno(process().send(fd, buf, len, flags));
}

int uepoll_close(int fd) { return zero_or_errno(process().close(fd)); }

int uepoll_dup(int oldfd) { return value_or_errno(process().dup(oldfd)); }

int uepoll_dup2(int oldfd, int newfd) { return value_or_errno(process().dup2(oldfd, newfd)); }

int uepoll_dup3(int oldfd, int newfd, int flags) {
  return value_or_errno(process().dup3(oldfd, newfd, flags));
}

int uepoll_fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  long arg = va_arg(ap, long);  // every supported command takes an int or long (or nothing)
  va_end(ap);
  return value_or_errno(process().fcntl(fd, cmd, arg));
}

int uepoll_poll(struct pollfd* fds, nfds_t nfds, int timeout_ms) {
  return value_or_errno(process().poll(fds, nfds, timeout_ms));
}

int uepoll_epoll_ctl_kernel(int epfd, int op, int kfd, struct epoll_event* event) {
  return zero_or_errno(process().epoll_ctl_kernel(epfd, op, kfd, event));
}

int uepoll_epoll_kernel_fd(int epfd) { return value_or_errno(process().epoll_kernel_fd(epfd)); }

int uepoll_file_create(const struct uepoll_file_ops* ops, void* priv, int flags,
                       struct uepoll_file** handle) {
  if ((flags & ~(O_NONBLOCK | O_CLOEXEC)) != 0 || ops == nullptr || ops->poll == nullptr) {
    errno = EINVAL;
    return -1;
  }
  if (handle == nullptr) {
    errno = EFAULT;
    return -1;
  }
  uepoll::Result<uepoll::Ref<uepoll::File>> made = uepoll::make_plugin_file(
      {ops->poll, ops->read, ops->write, ops->release}, priv, flags & O_NONBLOCK);
  if (!made) {
    errno = made.error();
    return -1;
  }
  // Our own reference across the install: if the install fails, the object dies here without
  // calling release (the caller keeps priv); if it succeeds, it is the caller's from then on.
  uepoll::Ref<uepoll::File> file = std::move(made.value());
  uepoll::Ref<uepoll::File> ours = file;
  uepoll::Result<int> fd = process().install(std::move(file), (flags & O_CLOEXEC) != 0);
  if (!fd) {
    errno = fd.error();
    return -1;
  }
  *handle = static_cast<struct uepoll_file*>(uepoll::plugin_file_adopted(*ours));
  return *fd;
}

void uepoll_file_notify(struct uepoll_file* handle, uint32_t events) {
  uepoll::plugin_file_notify(handle, events);
}

long uepoll_max_user_watches(void) { return uepoll::max_user_watches(); }

int uepoll_set_max_user_watches(long limit) {
  return zero_or_errno(uepoll::set_max_user_watches(limit));
}

}  // extern "C"
