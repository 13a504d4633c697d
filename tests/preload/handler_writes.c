/* handler_writes: signal handlers that write to an eventfd and a pipe while the thread they
 * interrupt is busy with the same objects, and wake-ups that only a handler's write delivers
 * (Python's set_wakeup_fd, the self-pipe trick). Run by probe.sh on the kernel and under the
 * interposer; the transcripts must match. Under the interposer a handler that interrupts uepoll
 * code holding the eventfd's lock must neither hang (the test's timeout) nor lose a write. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/time.h>
#include <unistd.h>

static int efd, pipe_r, pipe_w;
static volatile sig_atomic_t fired;

static void on_alarm(int sig) {
  (void)sig;
  const int saved = errno;
  const uint64_t one = 1;
  if (write(efd, &one, sizeof one) == sizeof one && write(pipe_w, "s", 1) == 1) {
    ++fired;
  }
  errno = saved;
}

static void every(long usec) {
  struct itimerval it = {{0, usec}, {0, usec}};
  setitimer(ITIMER_REAL, &it, NULL);
}

static uint64_t drain_eventfd(void) {
  uint64_t v = 0;
  return read(efd, &v, sizeof v) == sizeof v ? v : 0;
}

static long drain_pipe(void) {
  char buf[4096];
  long total = 0;
  for (ssize_t n; (n = read(pipe_r, buf, sizeof buf)) > 0;) {
    total += n;
  }
  return total;
}

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, NULL);
  efd = eventfd(0, EFD_NONBLOCK);
  int p[2];
  pipe2(p, O_NONBLOCK);
  pipe_r = p[0];
  pipe_w = p[1];
  const int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 1};
  epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
  ev.data.u32 = 2;
  epoll_ctl(ep, EPOLL_CTL_ADD, pipe_r, &ev);

  /* 1. A busy loop on the objects the handler writes to, signalled every 50 us. */
  every(50);
  uint64_t counted = 0, mine = 0;
  long bytes = 0;
  struct epoll_event out[4];
  for (int i = 0; i < 300000; ++i) {
    const uint64_t one = 1;
    if (write(efd, &one, sizeof one) == sizeof one) {
      ++mine;
    }
    counted += drain_eventfd();
    if (i % 64 == 0) {
      epoll_wait(ep, out, 4, 0);
      bytes += drain_pipe();
    }
  }
  every(0);
  counted += drain_eventfd();
  bytes += drain_pipe();
  printf("busy loop: eventfd counts every write %d, pipe holds every handler byte %d, "
         "handlers ran %d\n",
         counted == mine + (uint64_t)fired, bytes == fired, fired > 0);

  /* 2. Sleeping until a handler's write: each round must end with the pipe readable. */
  int rounds = 0, interrupted = 0;
  for (int round = 0; round < 200; ++round) {
    struct itimerval once = {{0, 0}, {0, 500}};
    setitimer(ITIMER_REAL, &once, NULL);
    int n;
    while ((n = epoll_wait(ep, out, 4, 5000)) < 0 && errno == EINTR) {
      ++interrupted;
    }
    int saw_pipe = 0;
    for (int i = 0; i < n; ++i) {
      saw_pipe |= out[i].data.u32 == 2;
    }
    if (!saw_pipe) {
      n = epoll_wait(ep, out, 4, 5000);  /* the eventfd may have come first */
      for (int i = 0; i < n; ++i) {
        saw_pipe |= out[i].data.u32 == 2;
      }
    }
    rounds += saw_pipe;
    drain_pipe();
    drain_eventfd();
  }
  printf("sleeping waits: %d of 200 woken by a handler's write\n", rounds);
  return 0;
}
