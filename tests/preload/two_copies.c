/* two_copies: a program that links libuepoll.so, run under the interposer, holds two copies of
 * uepoll sharing one liburcu-bp. Each registers fork handlers; liburcu-bp's own must still run
 * exactly once per fork (twice, fork blocks for good), and both copies must still reclaim in
 * the child, which runs grace periods through each. */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "uepoll/uepoll.h"

/* Instances come and go through the linked copy (uepoll_*) and the interposer (epoll_*): every
 * close retires memory, and every 1024th waits for a grace period. */
static void churn(int rounds) {
  for (int n = 0; n < rounds; ++n) {
    int a = uepoll_epoll_create1(0);
    int b = epoll_create1(0);
    if (a < 0 || b < 0 || uepoll_close(a) != 0 || close(b) != 0) {
      perror("churn");
      _exit(2);
    }
  }
}

int main(void) {
  int failed = 0;
  for (int i = 0; i < 20; ++i) {
    churn(500);
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork");
      return 1;
    }
    if (pid == 0) {
      churn(3000); /* past a reclaim in each copy */
      _exit(0);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      ++failed;
    }
  }
  printf("20 forks, %d children failed\n", failed);
  return failed == 0 ? 0 : 1;
}
