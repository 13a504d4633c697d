/* Built against the installed package with `pkg-config --cflags --libs uepoll` as strict C99
 * (-std=c99 -Wall -Wextra -pedantic -Werror): the C API's header on its own is enough for an
 * epoll loop over an eventfd and a pipe. Exit status 0 on success. */
#include <uepoll/uepoll.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int failures = 0;

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "%s:%d: check failed: %s (errno %d: %s)\n", __FILE__, \
              __LINE__, #cond, errno, strerror(errno));                      \
      ++failures;                                                            \
    }                                                                        \
  } while (0)

enum { TAG_EVENTFD = 1, TAG_PIPE_READ = 2, TAG_PIPE_WRITE = 3 };

/* Waits on `ep` and returns the events reported for each tag (0 when a tag is not reported). */
static int wait_events(int ep, int timeout_ms, uint32_t seen[4]) {
  struct epoll_event events[8];
  int n, i;
  memset(seen, 0, 4 * sizeof seen[0]);
  n = uepoll_epoll_wait(ep, events, 8, timeout_ms);
  for (i = 0; i < n; ++i) {
    uint32_t tag = events[i].data.u32;
    if (tag >= 1 && tag <= 3) {
      seen[tag] |= events[i].events;
    }
  }
  return n;
}

int main(void) {
  int ep, efd, fds[2];
  uint32_t seen[4];
  uint64_t value;
  char buf[64];
  struct epoll_event ev;
  struct pollfd pfd;

  /* The table starts empty: the first descriptor is 0. */
  ep = uepoll_epoll_create1(EPOLL_CLOEXEC);
  CHECK(ep == 0);
  efd = uepoll_eventfd(0, 0);
  CHECK(efd == 1);
  CHECK(uepoll_pipe(fds) == 0);
  CHECK(fds[0] == 2 && fds[1] == 3);

  memset(&ev, 0, sizeof ev);
  ev.events = EPOLLIN;
  ev.data.u32 = TAG_EVENTFD;
  CHECK(uepoll_epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) == 0);
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u32 = TAG_PIPE_READ;
  CHECK(uepoll_epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], &ev) == 0);
  ev.events = EPOLLOUT;
  ev.data.u32 = TAG_PIPE_WRITE;
  CHECK(uepoll_epoll_ctl(ep, EPOLL_CTL_ADD, fds[1], &ev) == 0);
  /* A second ADD of the same descriptor is EEXIST, as on Linux. */
  CHECK(uepoll_epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) == -1 && errno == EEXIST);

  /* Only the pipe's write end is ready. */
  CHECK(wait_events(ep, 0, seen) == 1);
  CHECK(seen[TAG_PIPE_WRITE] == EPOLLOUT);

  value = 5;
  CHECK(uepoll_write(efd, &value, sizeof value) == (ssize_t)sizeof value);
  CHECK(uepoll_write(fds[1], "hello", 5) == 5);

  CHECK(wait_events(ep, 1000, seen) == 3);
  CHECK(seen[TAG_EVENTFD] == EPOLLIN);
  CHECK(seen[TAG_PIPE_READ] == EPOLLIN);
  CHECK(seen[TAG_PIPE_WRITE] == EPOLLOUT);

  /* Edge-triggered: the pipe is still readable but is not reported again without a new write.
   * Level-triggered: the eventfd is reported until it is read. */
  CHECK(wait_events(ep, 0, seen) == 2);
  CHECK(seen[TAG_EVENTFD] == EPOLLIN && seen[TAG_PIPE_READ] == 0);

  value = 0;
  CHECK(uepoll_read(efd, &value, sizeof value) == (ssize_t)sizeof value);
  CHECK(value == 5);
  memset(buf, 0, sizeof buf);
  CHECK(uepoll_read(fds[0], buf, sizeof buf) == 5);
  CHECK(memcmp(buf, "hello", 5) == 0);

  CHECK(wait_events(ep, 0, seen) == 1);
  CHECK(seen[TAG_PIPE_WRITE] == EPOLLOUT);

  /* poll() sees the same states. */
  pfd.fd = efd;
  pfd.events = POLLIN | POLLOUT;
  pfd.revents = 0;
  CHECK(uepoll_poll(&pfd, 1, 0) == 1);
  CHECK(pfd.revents == POLLOUT);

  /* The write end goes: the read end hangs up (EPOLLHUP is always reported). */
  CHECK(uepoll_close(fds[1]) == 0);
  CHECK(wait_events(ep, 1000, seen) == 1);
  CHECK(seen[TAG_PIPE_READ] == EPOLLHUP);
  CHECK(uepoll_read(fds[0], buf, sizeof buf) == 0);

  /* Errors are -1 and errno, like the system calls. */
  errno = 0;
  CHECK(uepoll_close(fds[1]) == -1 && errno == EBADF);
  errno = 0;
  CHECK(uepoll_epoll_wait(ep, NULL, 0, 0) == -1 && errno == EINVAL);
  CHECK(uepoll_max_user_watches() > 0);

  CHECK(uepoll_close(fds[0]) == 0);
  CHECK(uepoll_close(efd) == 0);
  CHECK(uepoll_close(ep) == 0);

  if (failures != 0) {
    fprintf(stderr, "c99 program: %d check(s) failed\n", failures);
    return 1;
  }
  printf("c99 program: epoll over an eventfd and a pipe works\n");
  return 0;
}
