// Kernel descriptors in epoll instances, and instances in kernel event loops. On the kernel
// backend everything is the kernel's own epoll (the oracle); on uepoll the instances are uepoll
// instances, kernel descriptors join them through uepoll_epoll_ctl_kernel, and a kernel event
// loop watches uepoll_epoll_kernel_fd. The kernel objects (eventfds, pipes, socketpairs, timers,
// epolls) are real kernel descriptors on both.
//
// Notation: X, Y are the backend's instances; K, E are kernel descriptors (E: a kernel epoll);
// "X -k-> K" is K in X through epoll_ctl_kernel; "X -u-> Y" is the backend's own epoll_ctl.
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cstdint>
#include <set>
#include <utility>

#include "conformance.hpp"

namespace uepoll_conformance {
namespace {

// A kernel descriptor, closed on destruction.
class KFd {
 public:
  explicit KFd(int fd = -1) : fd_(fd) {}
  KFd(KFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  KFd& operator=(KFd&& o) noexcept {
    reset();
    fd_ = std::exchange(o.fd_, -1);
    return *this;
  }
  ~KFd() { reset(); }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int release() { return std::exchange(fd_, -1); }
  operator int() const { return fd_; }  // NOLINT(google-explicit-constructor)

 private:
  int fd_;
};

KFd kernel_eventfd(unsigned initval = 0) {
  return KFd(static_cast<int>(must(::eventfd(initval, EFD_NONBLOCK), "eventfd")));
}
KFd kernel_epoll() { return KFd(static_cast<int>(must(::epoll_create1(0), "epoll_create1"))); }
void kwrite(int fd) {
  const uint64_t one = 1;
  must(::write(fd, &one, sizeof one), "write");
}
void kread(int fd) {
  uint64_t v;
  must(::read(fd, &v, sizeof v), "read");
}

class KernelMembers : public Conformance {
 protected:
  int ctl_kernel(int ep, int op, int kfd, uint32_t events, uint64_t data) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = data;
    return api().epoll_ctl_kernel(ep, op, kfd, &ev);
  }
  void add_kernel(int ep, int kfd, uint32_t events, uint64_t data) {
    must(ctl_kernel(ep, EPOLL_CTL_ADD, kfd, events, data), "epoll_ctl_kernel ADD");
  }
};

// ---- one kernel member --------------------------------------------------------------------

// X -k-> K (LT, then MOD to ET) | write K: level-triggered reports every time, edge once.
TEST_P(KernelMembers, LevelAndEdgeTriggered) {
  Fd x = make_epoll();
  KFd k = kernel_eventfd();
  add_kernel(x, k, EPOLLIN, 1);
  EXPECT_EQ(wait(x), Evs{});
  kwrite(k);
  EXPECT_EQ(wait(x), (Evs{{EPOLLIN, 1}}));
  EXPECT_EQ(wait(x), (Evs{{EPOLLIN, 1}}));
  must(ctl_kernel(x, EPOLL_CTL_MOD, k, EPOLLIN | EPOLLET, 2), "MOD");
  EXPECT_EQ(wait(x), (Evs{{EPOLLIN, 2}}));
  EXPECT_EQ(wait(x), Evs{});
  kwrite(k);  // a new edge although still readable
  EXPECT_EQ(wait(x), (Evs{{EPOLLIN, 2}}));
}

// X -k-> K (ONESHOT): one event, nothing more until MOD re-arms it.
TEST_P(KernelMembers, OneShot) {
  Fd x = make_epoll();
  KFd k = kernel_eventfd(1);
  add_kernel(x, k, EPOLLIN | EPOLLONESHOT, 3);
  EXPECT_EQ(wait(x), (Evs{{EPOLLIN, 3}}));
  kwrite(k);
  EXPECT_EQ(wait(x), Evs{});
  must(ctl_kernel(x, EPOLL_CTL_MOD, k, EPOLLIN | EPOLLONESHOT, 4), "MOD");
  EXPECT_EQ(wait(x), (Evs{{EPOLLIN, 4}}));
}

// X -k-> kernel socketpair end (RDHUP) | peer shuts its write side.
TEST_P(KernelMembers, RdhupOfAKernelSocket) {
  Fd x = make_epoll();
  int sv[2];
  must(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), "socketpair");
  KFd a(sv[0]), b(sv[1]);
  add_kernel(x, a, EPOLLIN | EPOLLRDHUP, 5);
  EXPECT_EQ(wait(x), Evs{});
  must(::shutdown(b, SHUT_WR), "shutdown");
  EXPECT_EQ(wait(x), (Evs{{EPOLLIN | EPOLLRDHUP, 5}}));
}

// A timerfd: the kernel object uepoll cannot have.
TEST_P(KernelMembers, TimerExpiryWakesABlockedWait) {
  Fd x = make_epoll();
  KFd t(static_cast<int>(must(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK), "timerfd")));
  add_kernel(x, t, EPOLLIN, 6);
  itimerspec in{};
  in.it_value.tv_nsec = 20'000'000;
  must(::timerfd_settime(t, 0, &in, nullptr), "timerfd_settime");
  epoll_event ev[4];
  EXPECT_EQ(api().epoll_wait(x, ev, 4, -1), 1);
  EXPECT_EQ(ev[0].data.u64, 6u);
}

// ---- errno --------------------------------------------------------------------------------

TEST_P(KernelMembers, ErrnoOfTheKernelsEpollCtl) {
  Fd x = make_epoll();
  KFd k = kernel_eventfd();
  char path[] = "/tmp/uepoll-regular-XXXXXX";
  KFd file(static_cast<int>(must(::mkstemp(path), "mkstemp")));
  ::unlink(path);
  const int closed_number = kNeverOpenFd;  // a number never open in either table
  epoll_event ev{};
  ev.events = EPOLLIN;

  EXPECT_ERRNO(EFAULT, api().epoll_ctl_kernel(x, EPOLL_CTL_ADD, k, nullptr));
  EXPECT_ERRNO(EBADF, api().epoll_ctl_kernel(kNeverOpenFd, EPOLL_CTL_ADD, k, &ev));
  EXPECT_ERRNO(EBADF, api().epoll_ctl_kernel(x, EPOLL_CTL_ADD, closed_number, &ev));
  EXPECT_ERRNO(EPERM, api().epoll_ctl_kernel(x, EPOLL_CTL_ADD, file, &ev));
  EXPECT_ERRNO(ENOENT, api().epoll_ctl_kernel(x, EPOLL_CTL_MOD, k, &ev));
  EXPECT_ERRNO(ENOENT, api().epoll_ctl_kernel(x, EPOLL_CTL_DEL, k, nullptr));
  EXPECT_EQ(api().epoll_ctl_kernel(x, EPOLL_CTL_ADD, k, &ev), 0);
  EXPECT_ERRNO(EEXIST, api().epoll_ctl_kernel(x, EPOLL_CTL_ADD, k, &ev));
  ev.events = EPOLLIN | EPOLLEXCLUSIVE;
  EXPECT_ERRNO(EINVAL, api().epoll_ctl_kernel(x, EPOLL_CTL_MOD, k, &ev));
  EXPECT_ERRNO(EINVAL, api().epoll_ctl_kernel(x, 99, k, &ev));

  // epfd open but no epoll instance: the target is judged first (EBADF, EPERM), then EINVAL.
  Fd not_epoll = make_eventfd();
  ev.events = EPOLLIN;
  EXPECT_ERRNO(EBADF, api().epoll_ctl_kernel(not_epoll, EPOLL_CTL_ADD, closed_number, &ev));
  EXPECT_ERRNO(EPERM, api().epoll_ctl_kernel(not_epoll, EPOLL_CTL_ADD, file, &ev));
  EXPECT_ERRNO(EINVAL, api().epoll_ctl_kernel(not_epoll, EPOLL_CTL_ADD, k, &ev));
  EXPECT_ERRNO(EINVAL, api().epoll_kernel_fd(not_epoll));
  EXPECT_ERRNO(EBADF, api().epoll_kernel_fd(kNeverOpenFd));
}

// ---- the (file, fd) key and the last close ---------------------------------------------------

// X -k-> K; K2 = dup(K); close(K): the item stays while K2 keeps the description; close(K2)
// removes it. A new description at K's number is a new member (no EEXIST).
TEST_P(KernelMembers, RemovedAtTheLastCloseAndTheNumberReusable) {
  Fd x = make_epoll();
  KFd k = kernel_eventfd(1);
  const int number = k;
  add_kernel(x, k, EPOLLIN, 7);
  KFd k2(::dup(k));
  k.reset();
  EXPECT_EQ(wait(x), (Evs{{EPOLLIN, 7}}));
  k2.reset();
  EXPECT_EQ(wait(x), Evs{});
  KFd again = kernel_eventfd(1);
  ASSERT_EQ(static_cast<int>(again), number);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 8;
  EXPECT_EQ(api().epoll_ctl_kernel(x, EPOLL_CTL_ADD, again, &ev), 0);
  EXPECT_EQ(wait(x), (Evs{{EPOLLIN, 8}}));
  EXPECT_EQ(api().epoll_ctl_kernel(x, EPOLL_CTL_DEL, again, nullptr), 0);
}

// ---- both kinds in one instance -----------------------------------------------------------

// X -u-> U (the backend's eventfd), X -k-> K: one wait returns both.
TEST_P(KernelMembers, BothKindsComeBackInOneCall) {
  Fd x = make_epoll();
  Fd u = make_eventfd(1);
  KFd k = kernel_eventfd(1);
  add(x, u, EPOLLIN, 10);
  add_kernel(x, k, EPOLLIN, 20);
  Evs got = wait(x, 8);
  std::set<uint64_t> data;
  for (const Ev& e : got) data.insert(e.data);
  EXPECT_EQ(data, (std::set<uint64_t>{10, 20}));
}

// Three ready members of each kind, level-triggered, maxevents 1: every member is reported
// within 12 calls (neither kind starves the other).
TEST_P(KernelMembers, NeitherKindStarvesTheOther) {
  Fd x = make_epoll();
  std::vector<Fd> us;
  std::vector<KFd> ks;
  for (uint64_t i = 0; i < 3; ++i) {
    us.push_back(make_eventfd(1));
    add(x, us.back(), EPOLLIN, 100 + i);
    ks.push_back(kernel_eventfd(1));
    add_kernel(x, ks.back(), EPOLLIN, 200 + i);
  }
  std::set<uint64_t> seen;
  for (int call = 0; call < 12; ++call) {
    for (const Ev& e : wait(x, 1)) seen.insert(e.data);
  }
  EXPECT_EQ(seen, (std::set<uint64_t>{100, 101, 102, 200, 201, 202}));
}

// A thread asleep in epoll_wait on X wakes for either kind.
TEST_P(KernelMembers, ABlockedWaitWakesForEitherKind) {
  Fd x = make_epoll();
  Fd u = make_eventfd();
  KFd k = kernel_eventfd();
  add(x, u, EPOLLIN | EPOLLET, 1);
  add_kernel(x, k, EPOLLIN | EPOLLET, 2);
  epoll_event ev[4];
  EXPECT_EQ(returns_after([&] { return static_cast<long>(api().epoll_wait(x, ev, 4, -1)); },
                          [&] { kwrite(k); }),
            1);
  EXPECT_EQ(ev[0].data.u64, 2u);
  EXPECT_EQ(returns_after([&] { return static_cast<long>(api().epoll_wait(x, ev, 4, -1)); },
                          [&] { write_u64(u, 1); }),
            1);
  EXPECT_EQ(ev[0].data.u64, 1u);
}

// poll() on an instance blocks until a kernel member (here two levels down) is ready.
TEST_P(KernelMembers, BlockedPollOnAnInstanceWakesForAKernelEvent) {
  Fd y = make_epoll();
  Fd x = make_epoll();
  KFd k = kernel_eventfd();
  add_kernel(x, k, EPOLLIN, 1);
  add(y, x, EPOLLIN, 2);
  pollfd p[2] = {{y, POLLIN, 0}, {x, POLLIN, 0}};
  EXPECT_EQ(
      returns_after([&] { return static_cast<long>(api().poll(p, 2, -1)); }, [&] { kwrite(k); }),
      2);
  EXPECT_EQ(p[0].revents, POLLIN);
  EXPECT_EQ(p[1].revents, POLLIN);
}

// With kernel members, a wait still times out, and a handler still ends it with EINTR.
TEST_P(KernelMembers, TimeoutAndEintr) {
  Fd x = make_epoll();
  KFd k = kernel_eventfd();
  add_kernel(x, k, EPOLLIN, 1);
  epoll_event ev[4];
  EXPECT_EQ(api().epoll_wait(x, ev, 4, 20), 0);
  const timespec ms{0, 20'000'000};
  sigset_t none;
  sigemptyset(&none);
  EXPECT_EQ(api().epoll_pwait2(x, ev, 4, &ms, &none), 0);
  auto r = run_waiters(api(), {{x, WaitKind::kEpollWait, 4}, {x, WaitKind::kPwait, 4}}, 0, [] {});
  for (const auto& w : r) {
    EXPECT_EQ(w.rc, -1);
    EXPECT_EQ(w.err, EINTR) << errno_name(w.err);
  }
}

// Two instances each -k-> K with EPOLLEXCLUSIVE, one thread asleep in each: one write wakes 1.
TEST_P(KernelMembers, ExclusiveWakesOneOfTwoInstances) {
  Fd x1 = make_epoll();
  Fd x2 = make_epoll();
  KFd k = kernel_eventfd();
  add_kernel(x1, k, EPOLLIN | EPOLLEXCLUSIVE, 1);
  add_kernel(x2, k, EPOLLIN | EPOLLEXCLUSIVE, 2);
  auto r = run_waiters(api(), {{x1, WaitKind::kEpollWait, 1}, {x2, WaitKind::kEpollWait, 1}}, 1,
                       [&] { kwrite(k); });
  EXPECT_EQ(harvest_count(r), 1);
}

// ---- nesting over both kinds ----------------------------------------------------------------

// Y -u-> X -k-> K, a thread asleep on Y: a kernel event two levels down wakes it. Both orders:
// X gets its kernel member before and after Y watches X.
TEST_P(KernelMembers, OuterWaitWakesForAnInnerKernelEvent) {
  for (bool member_first : {true, false}) {
    SCOPED_TRACE(member_first ? "member first" : "nesting first");
    Fd y = make_epoll();
    Fd x = make_epoll();
    KFd k = kernel_eventfd();
    if (member_first) add_kernel(x, k, EPOLLIN, 1);
    add(y, x, EPOLLIN, 9);
    if (!member_first) add_kernel(x, k, EPOLLIN, 1);
    EXPECT_EQ(wait(y), Evs{});
    epoll_event ev[4];
    EXPECT_EQ(returns_after([&] { return static_cast<long>(api().epoll_wait(y, ev, 4, -1)); },
                            [&] { kwrite(k); }),
              1);
    EXPECT_EQ(ev[0].data.u64, 9u);
    EXPECT_EQ(poll_in(y), 1);
    EXPECT_EQ(wait(x), (Evs{{EPOLLIN, 1}}));
    kread(k);
    EXPECT_EQ(wait(y), Evs{});
    EXPECT_EQ(poll_in(y), 0);
  }
}

// Y -u-> X -k-> K, K readable: poll() on Y says readable, and the very next non-blocking wait on
// Y returns X (the inner kernel event reaches Y's harvest whichever side it serves first).
TEST_P(KernelMembers, OuterPollThenNonBlockingWaitSeeTheInnerKernelEvent) {
  Fd y = make_epoll();
  Fd x = make_epoll();
  KFd k = kernel_eventfd();
  add_kernel(x, k, EPOLLIN, 1);
  add(y, x, EPOLLIN, 9);
  for (int round = 0; round < 4; ++round) {
    kwrite(k);
    EXPECT_EQ(poll_in(y), 1);
    EXPECT_EQ(wait(y, 1), (Evs{{EPOLLIN, 9}}));
    kread(k);
  }
}

// X -k-> E (a kernel epoll), then E -> X's kernel descriptor: a loop through both kinds.
TEST_P(KernelMembers, LoopThroughBothKindsIsEloop) {
  Fd x = make_epoll();
  KFd e = kernel_epoll();
  add_kernel(x, e, EPOLLIN, 1);
  const int xk = static_cast<int>(must(api().epoll_kernel_fd(x), "epoll_kernel_fd"));
  epoll_event ev{};
  ev.events = EPOLLIN;
  EXPECT_ERRNO(ELOOP, ::epoll_ctl(e, EPOLL_CTL_ADD, xk, &ev));
}

// X1 -u-> X2 -k-> E1 -> E2 -> E3 is a chain of five instances; a sixth at either end is ELOOP.
TEST_P(KernelMembers, ChainDepthCountsBothKinds) {
  KFd e3 = kernel_epoll();
  KFd e2 = kernel_epoll();
  KFd e1 = kernel_epoll();
  epoll_event ev{};
  ev.events = EPOLLIN;
  must(::epoll_ctl(e2, EPOLL_CTL_ADD, e3, &ev), "E2 -> E3");
  must(::epoll_ctl(e1, EPOLL_CTL_ADD, e2, &ev), "E1 -> E2");
  Fd x2 = make_epoll();
  add_kernel(x2, e1, EPOLLIN, 1);
  Fd x1 = make_epoll();
  add(x1, x2, EPOLLIN, 2);
  KFd e4 = kernel_epoll();
  EXPECT_ERRNO(ELOOP, ::epoll_ctl(e3, EPOLL_CTL_ADD, e4, &ev));
  Fd x0 = make_epoll();
  EXPECT_ERRNO(ELOOP, api().epoll_ctl(x0, EPOLL_CTL_ADD, x1, &ev));
  // ...and the refused link left nothing behind: X0 can still watch X2's parent's sibling.
  Fd x3 = make_epoll();
  EXPECT_EQ(api().epoll_ctl(x0, EPOLL_CTL_ADD, x3, &ev), 0);
}

// ---- an instance in a kernel event loop -------------------------------------------------------

// poll() on X's kernel descriptor is readable exactly while X has events.
TEST_P(KernelMembers, KernelDescriptorIsReadableWhileEventsExist) {
  Fd x = make_epoll();
  Fd u = make_eventfd();
  add(x, u, EPOLLIN, 1);
  const int xk = static_cast<int>(must(api().epoll_kernel_fd(x), "epoll_kernel_fd"));
  auto readable = [&] {
    pollfd p{xk, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
  };
  EXPECT_FALSE(readable());
  write_u64(u, 1);
  EXPECT_TRUE(readable());
  EXPECT_EQ(wait(x), (Evs{{EPOLLIN, 1}}));
  EXPECT_TRUE(readable());  // level-triggered: still there
  read_u64(u);
  EXPECT_EQ(wait(x), Evs{});
  EXPECT_FALSE(readable());
  KFd k = kernel_eventfd(1);
  add_kernel(x, k, EPOLLIN, 2);
  EXPECT_TRUE(readable());
}

// A kernel epoll E watches X's kernel descriptor edge-triggered: every new event in X is a new
// edge, whether or not X was harvested in between.
TEST_P(KernelMembers, EdgeTriggeredKernelLoopSeesEveryNewEvent) {
  Fd x = make_epoll();
  Fd u = make_eventfd();
  add(x, u, EPOLLIN | EPOLLET, 1);
  KFd e = kernel_epoll();
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  must(::epoll_ctl(e, EPOLL_CTL_ADD, static_cast<int>(must(api().epoll_kernel_fd(x), "kernel_fd")),
                   &ev),
       "E -> X");
  epoll_event out[4];
  EXPECT_EQ(::epoll_wait(e, out, 4, 0), 0);
  write_u64(u, 1);
  EXPECT_EQ(::epoll_wait(e, out, 4, 0), 1);
  EXPECT_EQ(::epoll_wait(e, out, 4, 0), 0);
  write_u64(u, 1);  // not harvested yet: still a new edge
  EXPECT_EQ(::epoll_wait(e, out, 4, 0), 1);
  EXPECT_EQ(wait(x), (Evs{{EPOLLIN, 1}}));
  write_u64(u, 1);
  EXPECT_EQ(::epoll_wait(e, out, 4, 0), 1);
}

}  // namespace

UEPOLL_CONFORMANCE_SUITE(KernelMembers);

}  // namespace uepoll_conformance
