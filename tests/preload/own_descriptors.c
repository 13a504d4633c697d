/* own_descriptors: a program that closes every descriptor number it does not know (as daemons
 * and sandboxes do, one by one and with close_range) while an epoll instance watches a kernel
 * descriptor and an eventfd. Under the interposer the instance's own kernel descriptors live
 * among those numbers and must survive. probe.sh compares the transcript with the kernel's. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static int wait_one(int ep, uint32_t* data) {
  struct epoll_event ev;
  const int n = epoll_wait(ep, &ev, 1, 2000);
  *data = n > 0 ? ev.data.u32 : 0;
  return n;
}

int main(void) {
  const int ep = epoll_create1(0);
  const int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
  const int efd = eventfd(0, 0);
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 1};
  epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
  ev.data.u32 = 2;
  epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);

  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  int closed = 0, ebadf = 0;
  for (int fd = 3; fd < (int)rl.rlim_cur; ++fd) {
    if (fd == ep || fd == tfd || fd == efd) {
      continue;
    }
    if (close(fd) == 0) {
      ++closed;
    } else if (errno == EBADF) {
      ++ebadf;
    }
  }
  printf("close of every other number: %d closed, all others EBADF %d\n", closed,
         closed + ebadf == (int)rl.rlim_cur - 6);
  printf("close_range above: %d\n", close_range(efd + 1, ~0U, 0));
  printf("close_range cloexec: %d\n", close_range(3, ~0U, CLOSE_RANGE_CLOEXEC));

  uint32_t data;
  struct itimerspec its = {.it_value = {0, 1000}};
  timerfd_settime(tfd, 0, &its, NULL);
  int n = wait_one(ep, &data);
  printf("kernel member still watched: %d event, data %u\n", n, data);
  uint64_t v;
  read(tfd, &v, sizeof v);
  v = 1;
  write(efd, &v, sizeof v);
  n = wait_one(ep, &data);
  printf("eventfd still watched: %d event, data %u\n", n, data);
  const int again = epoll_create1(0);
  printf("new instance: %s\n", again >= 0 ? "ok" : "failed");
  return 0;
}
