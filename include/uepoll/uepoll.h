/*
 * uepoll: the Linux epoll subsystem in user space.
 *
 * This is the C API: every function behaves like its Linux namesake (same arguments, same return
 * value, -1 and the same errno on failure, checked in the same order). The descriptors it hands
 * out ("ufds") live in uepoll's own table, allocated lowest-free-first starting at 0; they are not
 * kernel descriptors. Every function may be called from any thread at any time.
 *
 * Differences from Linux that user space cannot avoid are listed in docs/deviations.md.
 * Valid C99 and C++20.
 */
#ifndef UEPOLL_UEPOLL_H
#define UEPOLL_UEPOLL_H

#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* epoll */
int uepoll_epoll_create(int size);
int uepoll_epoll_create1(int flags);
int uepoll_epoll_ctl(int epfd, int op, int fd, struct epoll_event *event);
int uepoll_epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout_ms);
int uepoll_epoll_pwait(int epfd, struct epoll_event *events, int maxevents, int timeout_ms,
                       const sigset_t *sigmask);
int uepoll_epoll_pwait2(int epfd, struct epoll_event *events, int maxevents,
                        const struct timespec *timeout, const sigset_t *sigmask);

/* pollable objects */
int uepoll_eventfd(unsigned int initval, int flags);
int uepoll_pipe(int fds[2]);
int uepoll_pipe2(int fds[2], int flags);
int uepoll_socketpair(int domain, int type, int protocol, int sv[2]);

/* in-process stream sockets: an AF_INET/AF_INET6 address space private to the process */
int uepoll_socket(int domain, int type, int protocol);
int uepoll_bind(int fd, const struct sockaddr *addr, socklen_t len);
int uepoll_listen(int fd, int backlog);
int uepoll_accept(int fd, struct sockaddr *addr, socklen_t *len);
int uepoll_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int uepoll_connect(int fd, const struct sockaddr *addr, socklen_t len);
int uepoll_getsockopt(int fd, int level, int name, void *val, socklen_t *len);
int uepoll_setsockopt(int fd, int level, int name, const void *val, socklen_t len);
int uepoll_getsockname(int fd, struct sockaddr *addr, socklen_t *len);
int uepoll_shutdown(int fd, int how);

/* descriptors and I/O */
ssize_t uepoll_read(int fd, void *buf, size_t count);
ssize_t uepoll_write(int fd, const void *buf, size_t count);
ssize_t uepoll_recv(int fd, void *buf, size_t len, int flags);
ssize_t uepoll_send(int fd, const void *buf, size_t len, int flags);
int uepoll_close(int fd);
int uepoll_dup(int oldfd);
int uepoll_dup2(int oldfd, int newfd);
int uepoll_dup3(int oldfd, int newfd, int flags);
int uepoll_fcntl(int fd, int cmd, ... /* long arg */);
int uepoll_poll(struct pollfd *fds, nfds_t nfds, int timeout_ms);

/* limits and configuration */
long uepoll_max_user_watches(void);
int uepoll_set_max_user_watches(long limit);

/* Kernel descriptors in uepoll instances, and uepoll instances in kernel event loops.
 *
 * uepoll_epoll_ctl_kernel: epoll_ctl on a kernel descriptor (socket, timerfd, signalfd, pipe,
 * tty, kernel eventfd, kernel epoll, ...) as a member of the uepoll instance epfd, exactly as
 * Linux's epoll_ctl (EPERM for files that cannot be polled, EEXIST/ENOENT,
 * ET/LT/ONESHOT/EXCLUSIVE/RDHUP, removal when the kernel description's last reference
 * closes). Its events come back from uepoll_epoll_wait/pwait/pwait2 with those of uepoll
 * objects, in one call, neither kind starving the other; the waiting thread sleeps in the
 * kernel for both (no spinning, no helper thread).
 *
 * uepoll_epoll_kernel_fd: a kernel descriptor that polls readable exactly while epfd has
 * events to report, for libuv, GLib, asyncio or a kernel epoll to watch (a new event after a
 * harvest is a new edge for an edge-triggered watcher). The instance owns it: do not close it;
 * it is valid until the instance's last close. */
int uepoll_epoll_ctl_kernel(int epfd, int op, int kfd, struct epoll_event *event);
int uepoll_epoll_kernel_fd(int epfd);

/* Plug-in objects for stacks written in C: a pollable ufd whose behaviour the caller supplies.
 *
 * poll returns the object's current EPOLL* readiness (bits that are not poll bits are ignored);
 * read and write return bytes or -errno (NULL: the call fails with EINVAL). On a blocking ufd,
 * a read or write that returns -EAGAIN blocks until uepoll_file_notify reports a change, then
 * retries, as a kernel file would. release runs once the description's last reference is gone
 * (every epoll registration of it has been removed by then), possibly before
 * uepoll_file_create returns if another thread closes the new ufd at once. uepoll_file_create
 * returns the ufd (flags: O_NONBLOCK | O_CLOEXEC); when it fails, release is not called.
 *
 * uepoll_file_notify(handle, events): the object's readiness changed (change the state first,
 * then notify): wakes its waiters and the epoll items whose mask matches events (0: anything
 * may have changed, as a kernel wake_up without a key), like the kernel's wake_up_poll. Any
 * thread; never blocks. No wake-up is lost however the object keeps its state. A notify that
 * races the last close is safe; one after release has run does nothing, or, once a later
 * uepoll_file_create reuses the handle, is a spurious wake-up of that object. */
struct uepoll_file;
struct uepoll_file_ops {
  uint32_t (*poll)(void *priv);
  ssize_t (*read)(void *priv, void *buf, size_t n);
  ssize_t (*write)(void *priv, const void *buf, size_t n);
  void (*release)(void *priv);
};
int uepoll_file_create(const struct uepoll_file_ops *ops, void *priv, int flags,
                       struct uepoll_file **handle);
void uepoll_file_notify(struct uepoll_file *handle, uint32_t events);

#ifdef __cplusplus
}
#endif

#endif /* UEPOLL_UEPOLL_H */
