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

#ifdef __cplusplus
}
#endif

#endif /* UEPOLL_UEPOLL_H */
