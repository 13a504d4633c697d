// The two backends every conformance and differential test runs against: the host kernel's
// syscalls and uepoll's C API. A test is written once against `Api` and instantiated for both;
// Linux is the oracle, so both must give the expected Linux result.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include <ostream>
#include <string>

namespace uepoll_test {

struct Api {
  const char* name;  // "kernel" or "uepoll"
  bool is_kernel;

  int (*epoll_create)(int size);
  int (*epoll_create1)(int flags);
  int (*epoll_ctl)(int epfd, int op, int fd, struct epoll_event* event);
  int (*epoll_wait)(int epfd, struct epoll_event* events, int maxevents, int timeout_ms);
  int (*epoll_pwait)(int epfd, struct epoll_event* events, int maxevents, int timeout_ms,
                     const sigset_t* sigmask);
  int (*epoll_pwait2)(int epfd, struct epoll_event* events, int maxevents,
                      const struct timespec* timeout, const sigset_t* sigmask);

  int (*eventfd)(unsigned int initval, int flags);
  int (*pipe)(int fds[2]);
  int (*pipe2)(int fds[2], int flags);
  int (*socketpair)(int domain, int type, int protocol, int sv[2]);

  int (*socket)(int domain, int type, int protocol);
  int (*bind)(int fd, const struct sockaddr* addr, socklen_t len);
  int (*listen)(int fd, int backlog);
  int (*accept)(int fd, struct sockaddr* addr, socklen_t* len);
  int (*accept4)(int fd, struct sockaddr* addr, socklen_t* len, int flags);
  int (*connect)(int fd, const struct sockaddr* addr, socklen_t len);
  int (*getsockopt)(int fd, int level, int name, void* val, socklen_t* len);
  int (*setsockopt)(int fd, int level, int name, const void* val, socklen_t len);
  int (*getsockname)(int fd, struct sockaddr* addr, socklen_t* len);
  int (*getpeername)(int fd, struct sockaddr* addr, socklen_t* len);
  int (*fionread)(int fd, int* bytes);  // ioctl(fd, FIONREAD, bytes)
  int (*shutdown)(int fd, int how);

  ssize_t (*read)(int fd, void* buf, size_t count);
  ssize_t (*write)(int fd, const void* buf, size_t count);
  ssize_t (*recv)(int fd, void* buf, size_t len, int flags);
  ssize_t (*send)(int fd, const void* buf, size_t len, int flags);
  int (*close)(int fd);
  int (*dup)(int oldfd);
  int (*dup2)(int oldfd, int newfd);
  int (*dup3)(int oldfd, int newfd, int flags);
  int (*fcntl)(int fd, int cmd, long arg);
  int (*poll)(struct pollfd* fds, nfds_t nfds, int timeout_ms);

  // Kernel descriptors in the backend's epoll instances: the kernel's epoll_ctl, and
  // uepoll_epoll_ctl_kernel. A kernel epoll is its own kernel descriptor for event loops; a
  // uepoll instance has uepoll_epoll_kernel_fd.
  int (*epoll_ctl_kernel)(int epfd, int op, int kfd, struct epoll_event* event);
  int (*epoll_kernel_fd)(int epfd);
};

// The host kernel, through real syscalls.
const Api& kernel_api();
// uepoll, through its C API.
const Api& uepoll_api();

// Names the backend in test output (instead of a pointer value).
inline void PrintTo(const Api* api, std::ostream* os) { *os << api->name; }

// For parameterized tests: INSTANTIATE_TEST_SUITE_P(Both, Suite, ::testing::ValuesIn(both_apis()),
//                                                   api_name);
const Api* const* both_apis_begin();
const Api* const* both_apis_end();

}  // namespace uepoll_test
