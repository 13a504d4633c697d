#include "backend.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string>

#include <uepoll/uepoll.h>
#include <uepoll/process.hpp>

namespace uepoll_test {
namespace {

int kernel_fcntl(int fd, int cmd, long arg) { return ::fcntl(fd, cmd, arg); }
int uepoll_fcntl3(int fd, int cmd, long arg) { return ::uepoll_fcntl(fd, cmd, arg); }
int kernel_pipe(int fds[2]) { return ::pipe(fds); }
int kernel_pipe2(int fds[2], int flags) { return ::pipe2(fds, flags); }
int kernel_eventfd(unsigned int initval, int flags) { return ::eventfd(initval, flags); }
int kernel_fionread(int fd, int* bytes) { return ::ioctl(fd, FIONREAD, bytes); }
// Not in the C API (the contract is fixed): the C API's own Process answers.
int process_getpeername(int fd, sockaddr* addr, socklen_t* len) {
  uepoll::Result<void> r = uepoll::Process::global().getpeername(fd, addr, len);
  if (!r) {
    errno = r.error();
    return -1;
  }
  return 0;
}
int process_fionread(int fd, int* bytes) {
  uepoll::Result<size_t> r = uepoll::Process::global().readable_bytes(fd);
  if (!r) {
    errno = r.error();
    return -1;
  }
  *bytes = static_cast<int>(std::min<size_t>(*r, INT_MAX));
  return 0;
}
// A kernel epoll is its own kernel descriptor; other descriptors get epoll_ctl's errno.
int kernel_epoll_is_its_own_kernel_fd(int epfd) {
  if (::fcntl(epfd, F_GETFD) < 0) {
    return -1;  // EBADF
  }
  char target[64] = {};
  const std::string link = "/proc/self/fd/" + std::to_string(epfd);
  if (::readlink(link.c_str(), target, sizeof target - 1) < 0 ||
      std::strcmp(target, "anon_inode:[eventpoll]") != 0) {
    errno = EINVAL;
    return -1;
  }
  return epfd;
}

const Api kKernel = {
    "kernel",       true,          ::epoll_create,  ::epoll_create1,
    ::epoll_ctl,    ::epoll_wait,  ::epoll_pwait,   ::epoll_pwait2,
    kernel_eventfd, kernel_pipe,   kernel_pipe2,    ::socketpair,
    ::socket,       ::bind,        ::listen,        ::accept,
    ::accept4,      ::connect,     ::getsockopt,    ::setsockopt,
    ::getsockname,  ::getpeername, kernel_fionread, ::shutdown,
    ::read,         ::write,       ::recv,          ::send,
    ::close,        ::dup,         ::dup2,          ::dup3,
    kernel_fcntl,   ::poll,        ::epoll_ctl,     kernel_epoll_is_its_own_kernel_fd,
};

const Api kUepoll = {
    "uepoll",
    false,
    uepoll_epoll_create,
    uepoll_epoll_create1,
    uepoll_epoll_ctl,
    uepoll_epoll_wait,
    uepoll_epoll_pwait,
    uepoll_epoll_pwait2,
    uepoll_eventfd,
    uepoll_pipe,
    uepoll_pipe2,
    uepoll_socketpair,
    uepoll_socket,
    uepoll_bind,
    uepoll_listen,
    uepoll_accept,
    uepoll_accept4,
    uepoll_connect,
    uepoll_getsockopt,
    uepoll_setsockopt,
    uepoll_getsockname,
    process_getpeername,
    process_fionread,
    uepoll_shutdown,
    uepoll_read,
    uepoll_write,
    uepoll_recv,
    uepoll_send,
    uepoll_close,
    uepoll_dup,
    uepoll_dup2,
    uepoll_dup3,
    uepoll_fcntl3,
    uepoll_poll,
    uepoll_epoll_ctl_kernel,
    uepoll_epoll_kernel_fd,
};

const Api* const kBoth[] = {&kKernel, &kUepoll};

}  // namespace

const Api& kernel_api() { return kKernel; }
const Api& uepoll_api() { return kUepoll; }
const Api* const* both_apis_begin() { return kBoth; }
const Api* const* both_apis_end() { return kBoth + 2; }

}  // namespace uepoll_test
