/* doorbell: a plug-in object written in C, in one event loop with a kernel timerfd.
 *
 * A stack written in C (a user-space TCP stack, a device driver, a message bus) makes its own
 * objects pollable with uepoll_file_create(): it supplies the poll, read, write and release
 * functions and calls uepoll_file_notify() after every change of an object's state (change the
 * state first, then notify). The object here is a toy message queue, the mailbox:
 *   - a producer thread (standing for the stack) posts numbered messages, waiting while the
 *     mailbox is full, until it is told to stop; then it hangs up;
 *   - read() on the ufd takes the oldest message (-EAGAIN while empty, 0 once hung up and
 *     drained); poll reports EPOLLIN while a message waits, EPOLLIN|EPOLLHUP after the hang-up;
 *     release runs at the last close;
 *   - the main thread's event loop watches the mailbox edge-triggered (so it reads until EAGAIN
 *     on every event) and a kernel timerfd, added to the same uepoll instance with
 *     uepoll_epoll_ctl_kernel(); the timer's expiry tells the producer to stop.
 * Checks: every message arrives once and in order, the hang-up is seen, release runs once.
 * Prints what happens; exits 0 only if every check passed. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <uepoll/uepoll.h>

#define CAPACITY 8          /* messages the mailbox holds */
#define MESSAGE_SIZE 32
#define RUN_MS 200          /* the timer: how long the producer runs... */
#define MAX_MESSAGES 200000 /* ...unless it has posted this many first */

static int failures = 0;
#define CHECK(cond)                                                                        \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      fprintf(stderr, "%s:%d: check failed: %s (errno %d)\n", __FILE__, __LINE__, #cond,  \
              errno);                                                                      \
      ++failures;                                                                          \
    }                                                                                      \
  } while (0)

struct mailbox {
  pthread_mutex_t lock;
  pthread_cond_t room; /* signalled when a message is taken */
  char messages[CAPACITY][MESSAGE_SIZE];
  int head, count, stop, hung_up, posted; /* under lock */
  int releases;
  struct uepoll_file *file;
};

static uint32_t mailbox_poll(void *priv) {
  struct mailbox *mb = priv;
  uint32_t events = 0;
  pthread_mutex_lock(&mb->lock);
  if (mb->count > 0 || mb->hung_up) events |= EPOLLIN | EPOLLRDNORM;
  if (mb->hung_up) events |= EPOLLHUP;
  pthread_mutex_unlock(&mb->lock);
  return events;
}

static ssize_t mailbox_read(void *priv, void *buf, size_t n) {
  struct mailbox *mb = priv;
  ssize_t len;
  pthread_mutex_lock(&mb->lock);
  if (mb->count == 0) {
    len = mb->hung_up ? 0 : -EAGAIN; /* blocking ufds sleep on -EAGAIN until a notify */
  } else {
    size_t size = strlen(mb->messages[mb->head]);
    if (size > n) size = n;
    memcpy(buf, mb->messages[mb->head], size);
    mb->head = (mb->head + 1) % CAPACITY;
    mb->count--;
    pthread_cond_signal(&mb->room);
    len = (ssize_t)size;
  }
  pthread_mutex_unlock(&mb->lock);
  return len;
}

static void mailbox_release(void *priv) { ((struct mailbox *)priv)->releases++; }

static const struct uepoll_file_ops mailbox_ops = {mailbox_poll, mailbox_read, NULL,
                                                   mailbox_release};

static void *producer(void *arg) {
  struct mailbox *mb = arg;
  pthread_mutex_lock(&mb->lock);
  while (!mb->stop && mb->posted < MAX_MESSAGES) {
    if (mb->count == CAPACITY) {
      pthread_cond_wait(&mb->room, &mb->lock);
      continue;
    }
    snprintf(mb->messages[(mb->head + mb->count) % CAPACITY], MESSAGE_SIZE, "message %d",
             mb->posted++);
    mb->count++;
    pthread_mutex_unlock(&mb->lock);
    uepoll_file_notify(mb->file, EPOLLIN); /* the state changed: notify */
    pthread_mutex_lock(&mb->lock);
  }
  mb->hung_up = 1;
  pthread_mutex_unlock(&mb->lock);
  uepoll_file_notify(mb->file, EPOLLIN | EPOLLHUP);
  return NULL;
}

static void stop_producer(struct mailbox *mb) {
  pthread_mutex_lock(&mb->lock);
  mb->stop = 1;
  pthread_cond_broadcast(&mb->room);
  pthread_mutex_unlock(&mb->lock);
}

int main(void) {
  static struct mailbox mb;
  struct itimerspec run = {{0, 0}, {RUN_MS / 1000, (RUN_MS % 1000) * 1000000L}};
  struct epoll_event ev, events[4];
  int received = 0, wakeups = 0, timer_fired = 0, hangup_seen = 0, end_seen = 0;
  pthread_t thread;
  char buf[MESSAGE_SIZE + 1], expected[MESSAGE_SIZE];
  int fd, ep, tfd, i, n;

  pthread_mutex_init(&mb.lock, NULL);
  pthread_cond_init(&mb.room, NULL);
  fd = uepoll_file_create(&mailbox_ops, &mb, O_NONBLOCK | O_CLOEXEC, &mb.file);
  ep = uepoll_epoll_create1(EPOLL_CLOEXEC);
  tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  CHECK(fd >= 0 && ep >= 0 && tfd >= 0);
  if (fd < 0 || ep < 0 || tfd < 0) return 1;
  CHECK(timerfd_settime(tfd, 0, &run, NULL) == 0);
  ev.events = EPOLLIN | EPOLLET;
  ev.data.fd = fd;
  CHECK(uepoll_epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0);
  ev.events = EPOLLIN;
  ev.data.fd = -1; /* the timer: a kernel descriptor in the same uepoll instance */
  CHECK(uepoll_epoll_ctl_kernel(ep, EPOLL_CTL_ADD, tfd, &ev) == 0);
  printf("mailbox is ufd %d, timerfd is kernel fd %d; producing for %d ms\n", fd, tfd, RUN_MS);
  CHECK(pthread_create(&thread, NULL, producer, &mb) == 0);

  /* Both ends of the stream: a read of 0, and an event with EPOLLHUP. The hang-up may land
     after the harvest that reported the last messages: the drain then reads 0 first, and the
     hang-up's notify has queued the item again, so the next wait reports EPOLLHUP. */
  while (!(end_seen && hangup_seen)) {
    n = uepoll_epoll_wait(ep, events, 4, 5000);
    CHECK(n > 0); /* 5 s without an event: the loop is stuck */
    if (n <= 0) break;
    for (i = 0; i < n; i++) {
      if (events[i].data.fd < 0) { /* the timer */
        uint64_t expirations = 0;
        CHECK(read(tfd, &expirations, sizeof expirations) == sizeof expirations);
        printf("timer fired after %d messages: stopping the producer\n", received);
        timer_fired = 1;
        stop_producer(&mb);
        continue;
      }
      wakeups++; /* edge-triggered: drain until EAGAIN (or the end of the stream) */
      if (events[i].events & EPOLLHUP) hangup_seen = 1;
      for (;;) {
        ssize_t len = uepoll_read(fd, buf, MESSAGE_SIZE);
        if (len < 0) {
          CHECK(errno == EAGAIN);
          break;
        }
        if (len == 0) {
          if (!end_seen) printf("end of stream after %d messages\n", received);
          end_seen = 1;
          break;
        }
        buf[len] = '\0';
        snprintf(expected, sizeof expected, "message %d", received++);
        CHECK(strcmp(buf, expected) == 0);
        if (received <= 3) printf("got \"%s\"\n", buf);
      }
    }
  }
  stop_producer(&mb); /* in case the loop gave up early */
  pthread_join(thread, NULL);
  CHECK(received == mb.posted && received > 0);
  CHECK(hangup_seen && (timer_fired || mb.posted == MAX_MESSAGES));
  CHECK(mb.releases == 0);
  CHECK(uepoll_close(fd) == 0);
  CHECK(mb.releases == 1); /* the last close ran release */
  CHECK(uepoll_close(ep) == 0 && close(tfd) == 0);
  printf("%d messages posted, %d received in %d wake-ups; %s\n", mb.posted, received, wakeups,
         failures == 0 ? "all checks passed" : "CHECKS FAILED");
  return failures == 0 ? 0 : 1;
}
