/* probe: a program that uses descriptors the way real programs do and prints what every call
 * returned. tests/preload/probe.sh runs it on the kernel and under libuepoll-preload.so (in each
 * mode) and compares the transcripts line by line: the kernel is the oracle. Every line is
 * "<step>: <values>"; nothing in it depends on timing, addresses or process ids. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static void say(const char* step, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const char* step, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("%s: ", step);
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
  fflush(stdout);
}

/* "rc" or "-1 ENAME" */
static const char* rc(long r) {
  static char buf[8][64];
  static int next;
  char* out = buf[next++ % 8];
  if (r >= 0) {
    snprintf(out, 64, "%ld", r);
  } else {
    snprintf(out, 64, "-1 %s", strerrorname_np(errno) ? strerrorname_np(errno) : "?");
  }
  return out;
}

static int open_fds(void) {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  for (struct dirent* e; (e = readdir(d)) != NULL;) {
    n += e->d_name[0] != '.';
  }
  closedir(d);
  return n - 1; /* the directory's own descriptor */
}

static const char* kind(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    return "EBADF";
  }
  return S_ISFIFO(st.st_mode) ? "fifo" : S_ISSOCK(st.st_mode) ? "socket" : "other";
}

static int waitn(int ep, int timeout, uint64_t* data, int max) {
  struct epoll_event ev[8];
  int n = epoll_wait(ep, ev, max < 8 ? max : 8, timeout);
  for (int i = 0; i < n; ++i) {
    data[i] = ev[i].data.u64;
  }
  return n;
}

static int add(int ep, int fd, uint32_t events, uint64_t data) {
  struct epoll_event ev = {.events = events, .data.u64 = data};
  return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const int base = open_fds();

  /* numbering: lowest free first, kernel and uepoll descriptors interleaved */
  int ep = epoll_create1(EPOLL_CLOEXEC);
  int efd = eventfd(2, EFD_NONBLOCK);
  int p[2];
  int prc = pipe2(p, O_NONBLOCK);
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  int sv[2];
  int src = socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
  say("numbers", "ep=%d efd=%d pipe=%s %d,%d timer=%d socketpair=%s %d,%d open=%d", ep, efd,
      rc(prc), p[0], p[1], tfd, rc(src), sv[0], sv[1], open_fds() - base);
  say("kinds", "pipe %s %s socketpair %s", kind(p[0]), kind(p[1]), kind(sv[0]));
  say("cloexec", "ep %d efd %d", fcntl(ep, F_GETFD) & FD_CLOEXEC, fcntl(efd, F_GETFD));
  say("flags", "pipe read %#o write %#o", fcntl(p[0], F_GETFL) & (O_ACCMODE | O_NONBLOCK),
      fcntl(p[1], F_GETFL) & (O_ACCMODE | O_NONBLOCK));

  /* eventfd */
  uint64_t v = 0;
  const char* r1 = rc(read(efd, &v, 8));
  say("eventfd read", "%s %llu", r1, (unsigned long long)v);
  say("eventfd read empty", "%s", rc(read(efd, &v, 8)));
  say("eventfd short write", "%s", rc(write(efd, &v, 4)));
  const int w5 = eventfd_write(efd, 5);
  const int r5 = eventfd_read(efd, &v);
  say("eventfd_write/read", "%d %d %llu", w5, r5, (unsigned long long)v);

  /* epoll over all of them */
  say("add", "%s %s %s %s", rc(add(ep, efd, EPOLLIN, 1)), rc(add(ep, p[0], EPOLLIN | EPOLLET, 2)),
      rc(add(ep, tfd, EPOLLIN, 3)), rc(add(ep, sv[0], EPOLLIN | EPOLLRDHUP, 4)));
  say("add again", "%s", rc(add(ep, efd, EPOLLIN, 1)));
  say("add self", "%s", rc(add(ep, ep, EPOLLIN, 1)));
  say("del unknown", "%s", rc(epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL)));
  uint64_t got[8];
  say("wait empty", "%s", rc(waitn(ep, 0, got, 8)));
  v = 1;
  write(efd, &v, 8);
  write(p[1], "abc", 3);
  send(sv[1], "x", 1, 0);
  struct itimerspec its = {.it_value = {0, 1}};
  timerfd_settime(tfd, 0, &its, NULL);
  int n = waitn(ep, 1000, got, 8);
  uint64_t mask = 0;
  for (int i = 0; i < n; ++i) {
    mask |= 1u << got[i];
  }
  if (n < 4) { /* the timer may need a moment */
    n += waitn(ep, 1000, got, 8);
    for (int i = 0; i < n; ++i) {
      mask |= 1u << got[i];
    }
  }
  say("wait all four", "mask %#llx", (unsigned long long)mask);
  say("wait et again", "%s", rc(waitn(ep, 0, got, 8)) /* LT eventfd, timer, socket remain */);

  /* pipe I/O */
  char buf[64] = {0};
  struct iovec iov[2] = {{buf, 1}, {buf + 1, 10}};
  const char* rr = rc(readv(p[0], iov, 2));
  say("readv", "%s '%s'", rr, buf);
  struct iovec wv[2] = {{"he", 2}, {"llo", 3}};
  say("writev", "%s", rc(writev(p[1], wv, 2)));
  memset(buf, 0, sizeof buf);
  rr = rc(read(p[0], buf, sizeof buf));
  say("read", "%s '%s'", rr, buf);
  say("read empty", "%s", rc(read(p[0], buf, sizeof buf)));
  say("pread", "%s", rc(pread(p[0], buf, 1, 0)));

  /* socketpair I/O, msghdr */
  memset(buf, 0, sizeof buf);
  rr = rc(recv(sv[0], buf, sizeof buf, 0));
  say("recv", "%s '%s'", rr, buf);
  struct msghdr mh = {.msg_iov = wv, .msg_iovlen = 2};
  say("sendmsg", "%s", rc(sendmsg(sv[1], &mh, 0)));
  memset(buf, 0, sizeof buf);
  struct iovec rv = {buf, sizeof buf};
  struct msghdr rh = {.msg_iov = &rv, .msg_iovlen = 1};
  rr = rc(recvmsg(sv[0], &rh, 0));
  say("recvmsg", "%s '%s'", rr, buf);
  say("recv empty", "%s", rc(recv(sv[0], buf, sizeof buf, 0)));
  say("recv on pipe", "%s", rc(recv(p[0], buf, 1, 0)));
  int type = 0;
  socklen_t len = sizeof type;
  rr = rc(getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &type, &len));
  say("SO_TYPE", "%s %d", rr, type);

  /* FIONREAD and the peer's name */
  write(p[1], "four", 4);
  send(sv[1], "twelve bytes", 12, 0);
  int in_pipe = -1, in_write_end = -1, in_pair = -1, in_other = -1;
  const char* f1 = rc(ioctl(p[0], FIONREAD, &in_pipe));
  const char* f2 = rc(ioctl(p[1], FIONREAD, &in_write_end));
  const char* f3 = rc(ioctl(sv[0], FIONREAD, &in_pair));
  say("FIONREAD", "pipe %s %d write end %s %d socketpair %s %d", f1, in_pipe, f2, in_write_end,
      f3, in_pair);
  say("FIONREAD eventfd epoll", "%s %s", rc(ioctl(efd, FIONREAD, &in_other)),
      rc(ioctl(ep, FIONREAD, &in_other)));
  read(p[0], buf, 4);
  recv(sv[0], buf, 12, 0);
  struct sockaddr_storage peer;
  memset(&peer, 0xff, sizeof peer);
  socklen_t plen = sizeof peer;
  rr = rc(getpeername(sv[0], (struct sockaddr*)&peer, &plen));
  say("getpeername", "%s len %u family %d", rr, plen, peer.ss_family);
  plen = sizeof peer;
  say("getpeername pipe", "%s", rc(getpeername(p[0], (struct sockaddr*)&peer, &plen)));

  /* non-blocking flags: F_SETFL and FIONBIO */
  int off = 0;
  rr = rc(ioctl(efd, FIONBIO, &off));
  say("FIONBIO off", "%s flags %#o", rr, fcntl(efd, F_GETFL) & O_NONBLOCK);
  rr = rc(fcntl(efd, F_SETFL, O_NONBLOCK));
  say("F_SETFL on", "%s flags %#o", rr, fcntl(efd, F_GETFL) & O_NONBLOCK);

  /* dup rules: the item lives while a duplicate of the description does */
  int d = dup(efd);
  int d2 = dup2(efd, 40);
  int d3 = fcntl(efd, F_DUPFD_CLOEXEC, 50);
  say("dups", "%d %d %d cloexec %d", d, d2, d3, fcntl(d3, F_GETFD));
  say("dup3 same", "%s", rc(dup3(efd, efd, 0)));
  say("dup2 same", "%s", rc(dup2(efd, efd)));
  close(efd);
  v = 1;
  write(d, &v, 8);
  n = waitn(ep, 0, got, 8);
  int saw_efd = 0;
  for (int i = 0; i < n; ++i) {
    saw_efd |= got[i] == 1;
  }
  say("item survives close of one dup", "%d", saw_efd);
  say("del after close", "%s", rc(epoll_ctl(ep, EPOLL_CTL_DEL, efd, NULL)));
  say("del via dup", "%s", rc(epoll_ctl(ep, EPOLL_CTL_DEL, d, NULL)));
  close(d);
  close(d2);
  close(d3);
  say("double close", "%s", rc(close(efd)));

  /* poll and select over both kinds */
  int e2 = eventfd(1, 0);
  struct pollfd pf[3] = {{e2, POLLIN, 0}, {tfd, POLLIN, 0}, {p[1], POLLOUT, 0}};
  rr = rc(poll(pf, 3, 0));
  say("poll", "%s %#x %#x %#x", rr, pf[0].revents, pf[1].revents, pf[2].revents);
  struct pollfd bad[2] = {{12345, POLLIN, 0}, {e2, POLLIN, 0}};
  rr = rc(poll(bad, 2, 0));
  say("poll bad fd", "%s %#x %#x", rr, bad[0].revents, bad[1].revents);
  fd_set rd;
  FD_ZERO(&rd);
  FD_SET(e2, &rd);
  FD_SET(p[0], &rd);
  struct timeval tv = {0, 0};
  int sel = select((e2 > p[0] ? e2 : p[0]) + 1, &rd, NULL, NULL, &tv);
  say("select", "%s e2 %d pipe %d", rc(sel), FD_ISSET(e2, &rd), FD_ISSET(p[0], &rd));

  /* the raw system call path */
  int raw = (int)syscall(SYS_epoll_create1, 0);
  struct epoll_event rev = {.events = EPOLLIN, .data.u64 = 9};
  const char* first = rc(syscall(SYS_epoll_ctl, raw, EPOLL_CTL_ADD, e2, &rev));
  say("raw ctl", "%s %s", first, rc(syscall(SYS_epoll_ctl, raw, EPOLL_CTL_ADD, e2, &rev)));
  struct epoll_event rout[2];
  long rn = syscall(SYS_epoll_wait, raw, rout, 2, 0);
  say("raw wait", "%s %llu", rc(rn), rn > 0 ? (unsigned long long)rout[0].data.u64 : 0ULL);
  sigset_t none;
  sigemptyset(&none);
  say("raw pwait bad sigsetsize", "%s", rc(syscall(SYS_epoll_pwait, raw, rout, 2, 0, &none, 4)));
  first = rc(syscall(SYS_close, raw));
  say("raw close", "%s %s", first, rc(syscall(SYS_close, raw)));

  /* nesting: an outer instance sees an inner one's kernel member */
  int outer = epoll_create1(0);
  int inner = epoll_create1(0);
  add(inner, tfd, EPOLLIN, 5);
  say("nest", "%s", rc(add(outer, inner, EPOLLIN, 6)));
  its.it_value.tv_nsec = 1;
  timerfd_settime(tfd, 0, &its, NULL);
  n = waitn(outer, 1000, got, 8);
  say("nested kernel event", "%s %llu", rc(n), n > 0 ? (unsigned long long)got[0] : 0ULL);
  say("loop", "%s", rc(add(inner, outer, EPOLLIN, 7)));

  /* TCP on the loopback network (in-process sockets under UEPOLL_PRELOAD_INET=loopback) */
  int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  struct sockaddr_in la = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof la;
  const char* b1 = rc(bind(l, (struct sockaddr*)&la, sizeof la));
  say("tcp listen", "%s %s %s", b1, rc(listen(l, 4)),
      rc(getsockname(l, (struct sockaddr*)&la, &alen)));
  int lep = epoll_create1(0);
  say("tcp watch listener", "%s", rc(add(lep, l, EPOLLIN, 10)));
  say("tcp accept empty", "%s", rc(accept(l, NULL, NULL)));
  int cl = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  say("tcp connect", "%s", rc(connect(cl, (struct sockaddr*)&la, sizeof la)));
  n = waitn(lep, 2000, got, 8);
  say("tcp listener ready", "%s %llu", rc(n), n > 0 ? (unsigned long long)got[0] : 0ULL);
  struct pollfd lpf = {l, POLLIN, 0};
  rr = rc(poll(&lpf, 1, 0));
  say("tcp listener poll", "%s %#x", rr, lpf.revents);
  struct sockaddr_in from, cname, peer4;
  socklen_t flen = sizeof from, clen = sizeof cname, plen4 = sizeof peer4;
  int sv4 = accept4(l, (struct sockaddr*)&from, &flen, SOCK_NONBLOCK | SOCK_CLOEXEC);
  say("tcp accepted", "%s cloexec %d", sv4 >= 0 ? "yes" : rc(sv4), fcntl(sv4, F_GETFD));
  say("tcp watch client", "%s", rc(add(lep, cl, EPOLLOUT, 11)));
  n = waitn(lep, 2000, got, 8);
  say("tcp client writable", "%s %llu", rc(n), n > 0 ? (unsigned long long)got[0] : 0ULL);
  int soerr = -1;
  len = sizeof soerr;
  getsockopt(cl, SOL_SOCKET, SO_ERROR, &soerr, &len);
  getsockname(cl, (struct sockaddr*)&cname, &clen);
  getpeername(sv4, (struct sockaddr*)&peer4, &plen4);
  say("tcp names", "SO_ERROR %d from=client %d peer=client %d", soerr,
      from.sin_port == cname.sin_port, peer4.sin_port == cname.sin_port);
  const char* sent = rc(send(cl, "ping", 4, 0));
  say("tcp send", "%s %s", sent, rc(write(cl, "pong", 4)));
  int inq = -1;
  rr = rc(ioctl(sv4, FIONREAD, &inq));
  say("tcp FIONREAD", "%s %d", rr, inq);
  memset(buf, 0, sizeof buf);
  rr = rc(recv(sv4, buf, sizeof buf, 0));
  say("tcp recv", "%s '%s'", rr, buf);
  const char* shut = rc(shutdown(cl, SHUT_WR));
  struct pollfd eof = {sv4, POLLIN, 0};
  poll(&eof, 1, 2000);
  say("tcp shutdown", "%s %s", shut, rc(recv(sv4, buf, sizeof buf, 0)));
  close(cl);
  close(sv4);
  say("tcp accept after", "%s", rc(accept(l, NULL, NULL)));
  /* a client in another process reaches the same listener through the kernel */
  pid_t cpid = fork();
  if (cpid == 0) {
    int k = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(k, (struct sockaddr*)&la, sizeof la) == 0) {
      write(k, "ext", 3);
    }
    _exit(0);
  }
  n = waitn(lep, 5000, got, 8);
  int ext = accept(l, NULL, NULL);
  memset(buf, 0, sizeof buf);
  rr = rc(read(ext, buf, 3));
  say("tcp other process", "%s %s '%s'", rc(n), ext >= 0 ? "accepted" : rc(ext), buf);
  waitpid(cpid, NULL, 0);
  close(ext);
  close(l);
  close(lep);

  /* fork: the child writes to a pipe and a socketpair made before; the parent reads */
  int q[2];
  pipe(q);
  int s2[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, s2);
  write(q[1], "pre|", 4);
  pid_t pid = fork();
  if (pid == 0) {
    write(q[1], "child", 5);
    send(s2[1], "kid", 3, 0);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  memset(buf, 0, sizeof buf);
  rr = rc(read(q[0], buf, sizeof buf));
  say("fork pipe", "%s '%s'", rr, buf);
  memset(buf, 0, sizeof buf);
  rr = rc(recv(s2[0], buf, sizeof buf, 0));
  say("fork socketpair", "%s '%s'", rr, buf);
  /* exec: a shell reads what the parent wrote into a pipe made before */
  int r[2];
  pipe(r);
  write(r[1], "to exec\n", 8);
  close(r[1]);
  pid = fork();
  if (pid == 0) {
    dup2(r[0], 0);
    execl("/bin/sh", "sh", "-c", "read line; test \"$line\" = 'to exec'", (char*)NULL);
    _exit(127);
  }
  waitpid(pid, &status, 0);
  say("exec reads the pipe", "exit %d", WEXITSTATUS(status));

  /* close_range over everything above stdio leaves nothing open */
  say("close_range", "%s", rc(close_range(3, ~0U, 0)));
  say("after close_range", "open %d", open_fds() - base);
  int again = eventfd(0, 0);
  say("numbers after", "%d", again);
  return 0;
}
