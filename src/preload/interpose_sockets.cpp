// The interposed socket calls other than those that move data: listen, connect and accept
// (which UEPOLL_PRELOAD_INET=loopback turns to in-process sockets: loopback.cpp), shutdown,
// options and names.
#undef _FORTIFY_SOURCE
#include <sys/socket.h>

#include "preload/libc.hpp"
#include "preload/preload.hpp"
#include "preload/reentry.hpp"
#include "uepoll/objects.hpp"

using namespace uepoll::preload;  // NOLINT: the C functions below are this file's whole point

extern "C" {

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

}  // extern "C"
