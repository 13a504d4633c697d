/* fork_in_wait: a thread sleeps in epoll_wait on an eventfd while another thread forks; the child
 * uses the same objects, then the parent wakes the sleeper. probe.sh compares it with the kernel. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>
static int ep, efd;
static void* waiter(void* arg) {
  (void)arg;
  struct epoll_event ev;
  int n = epoll_wait(ep, &ev, 1, 5000);
  printf("waiter: %d event(s)\n", n);
  return NULL;
}
int main(void) {
  ep = epoll_create1(0);
  efd = eventfd(0, EFD_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 7};
  epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
  pthread_t t;
  pthread_create(&t, NULL, waiter, NULL);
  usleep(100000);  /* the waiter sleeps */
  pid_t pid = fork();
  if (pid == 0) {
    struct epoll_event e;
    uint64_t one = 1;
    write(efd, &one, 8);
    int n = epoll_wait(ep, &e, 1, 1000);
    printf("child: %d event(s)\n", n);
    fflush(stdout);
    _exit(0);
  }
  waitpid(pid, NULL, 0);
  uint64_t v; read(efd, &v, 8);  /* the child's write, shared */
  usleep(100000);
  uint64_t one = 1;
  write(efd, &one, 8);
  pthread_join(t, NULL);
  return 0;
}
