// errno precedence of the epoll calls: when several things are wrong at once, Linux reports them
// in a fixed order, and so must uepoll. Each test makes two or more checks fail together and
// expects the one Linux reports first.
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <stdexcept>

#include "conformance.hpp"

namespace uepoll_conformance {
namespace {

constexpr int kBadOp = 99;

constexpr const char* kUnmappedPointerDeviation =
    "uepoll does not detect unmapped or read-only user pointers (only NULL and addresses outside "
    "user space): docs/deviations.md, \"Memory faults (EFAULT)\"";

// An address in the kernel half of the address space: no user pointer can be there, so Linux
// rejects it before looking at anything else it would copy.
template <typename T>
T* kernel_half_pointer() {
  return reinterpret_cast<T*>(uintptr_t{0xffff800000000000});
}

// One anonymous page with the given protection, unmapped on destruction.
class Page {
 public:
  explicit Page(int prot) {
    void* p = mmap(nullptr, 4096, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("mmap failed");
    addr_ = p;
  }
  ~Page() { munmap(addr_, 4096); }
  Page(const Page&) = delete;
  Page& operator=(const Page&) = delete;
  template <typename T>
  T* as() const {
    return static_cast<T*>(addr_);
  }

 private:
  void* addr_ = nullptr;
};

epoll_event in_event(uint64_t data = 0) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = data;
  return ev;
}

// ---- epoll_create / epoll_create1 ----------------------------------------------------------

class EpollCreateErrors : public Conformance {};

TEST_P(EpollCreateErrors, SizeMustBePositive) {
  EXPECT_ERRNO(EINVAL, api().epoll_create(0));
  EXPECT_ERRNO(EINVAL, api().epoll_create(-1));
  EXPECT_ERRNO(EINVAL, api().epoll_create(INT_MIN));
  Fd one = adopt(api().epoll_create(1));
  EXPECT_GE(one.get(), 0);
  Fd big = adopt(api().epoll_create(INT_MAX));  // the size is only a hint
  EXPECT_GE(big.get(), 0);
}

TEST_P(EpollCreateErrors, Create1RejectsEveryFlagButCloexec) {
  EXPECT_ERRNO(EINVAL, api().epoll_create1(O_NONBLOCK));
  EXPECT_ERRNO(EINVAL, api().epoll_create1(1));
  EXPECT_ERRNO(EINVAL, api().epoll_create1(-1));
  EXPECT_ERRNO(EINVAL, api().epoll_create1(EPOLL_CLOEXEC | O_NONBLOCK));
}

TEST_P(EpollCreateErrors, Create1RecordsCloexec) {
  Fd plain = adopt(static_cast<int>(must(api().epoll_create1(0), "epoll_create1")));
  Fd cloexec = adopt(static_cast<int>(must(api().epoll_create1(EPOLL_CLOEXEC), "epoll_create1")));
  Fd old = adopt(static_cast<int>(must(api().epoll_create(5), "epoll_create")));
  EXPECT_EQ(api().fcntl(plain, F_GETFD, 0), 0);
  EXPECT_EQ(api().fcntl(cloexec, F_GETFD, 0), FD_CLOEXEC);
  EXPECT_EQ(api().fcntl(old, F_GETFD, 0), 0);
  EXPECT_EQ(api().fcntl(plain, F_GETFL, 0), O_RDWR);
}

// ---- epoll_ctl ---------------------------------------------------------------------------------
// Linux's order: EFAULT copying the event (every op but DEL, even an invalid op), EBADF for
// epfd, EBADF for fd, EPERM for a target without poll, EINVAL for the same file or an epfd that
// is not an epoll, EINVAL for EPOLLEXCLUSIVE misuse, ELOOP, then EEXIST/ENOENT, and an invalid
// op last of all.

class EpollCtlErrors : public Conformance {};

TEST_P(EpollCtlErrors, EfaultBeforeEbadf) {
  EXPECT_ERRNO(EFAULT, api().epoll_ctl(kNeverOpenFd, EPOLL_CTL_ADD, kNeverOpenFd, nullptr));
  EXPECT_ERRNO(EFAULT, api().epoll_ctl(-1, EPOLL_CTL_MOD, -1, nullptr));
}

TEST_P(EpollCtlErrors, EfaultEvenForAnInvalidOp) {
  EXPECT_ERRNO(EFAULT, api().epoll_ctl(kNeverOpenFd, kBadOp, kNeverOpenFd, nullptr));
  EXPECT_ERRNO(EFAULT, api().epoll_ctl(-1, -1, -1, nullptr));
}

TEST_P(EpollCtlErrors, DelNeverReadsTheEvent) {
  EXPECT_ERRNO(EBADF, api().epoll_ctl(kNeverOpenFd, EPOLL_CTL_DEL, kNeverOpenFd, nullptr));
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  add(ep, efd, EPOLLIN, 1);
  EXPECT_EQ(api().epoll_ctl(ep, EPOLL_CTL_DEL, efd, nullptr), 0);
  add(ep, efd, EPOLLIN, 1);
  EXPECT_EQ(api().epoll_ctl(ep, EPOLL_CTL_DEL, efd, kernel_half_pointer<epoll_event>()), 0);
}

TEST_P(EpollCtlErrors, EfaultForAnEventOutsideUserMemory) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  EXPECT_ERRNO(EFAULT, api().epoll_ctl(ep, EPOLL_CTL_ADD, efd, kernel_half_pointer<epoll_event>()));
  EXPECT_ERRNO(EFAULT, api().epoll_ctl(ep, EPOLL_CTL_ADD, efd, nullptr));
  // Nothing was registered.
  EXPECT_ERRNO(ENOENT, api().epoll_ctl(ep, EPOLL_CTL_DEL, efd, nullptr));
}

TEST_P(EpollCtlErrors, EfaultForAnUnmappedEvent) {
  if (!on_kernel()) GTEST_SKIP() << kUnmappedPointerDeviation;
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  Page none(PROT_NONE);
  EXPECT_ERRNO(EFAULT, api().epoll_ctl(ep, EPOLL_CTL_ADD, efd, none.as<epoll_event>()));
  EXPECT_ERRNO(ENOENT, api().epoll_ctl(ep, EPOLL_CTL_DEL, efd, nullptr));
}

TEST_P(EpollCtlErrors, EbadfForEitherDescriptor) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  epoll_event ev = in_event();
  EXPECT_ERRNO(EBADF, api().epoll_ctl(kNeverOpenFd, EPOLL_CTL_ADD, efd, &ev));
  EXPECT_ERRNO(EBADF, api().epoll_ctl(-1, EPOLL_CTL_ADD, efd, &ev));
  EXPECT_ERRNO(EBADF, api().epoll_ctl(ep, EPOLL_CTL_ADD, kNeverOpenFd, &ev));
  EXPECT_ERRNO(EBADF, api().epoll_ctl(ep, EPOLL_CTL_MOD, -1, &ev));
  EXPECT_ERRNO(EBADF, api().epoll_ctl(ep, EPOLL_CTL_DEL, -1, &ev));
}

TEST_P(EpollCtlErrors, EbadfForClosedDescriptors) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  const int closed_ep = make_epoll().get();  // closed at the end of the statement
  const int closed_fd = make_eventfd().get();
  epoll_event ev = in_event();
  EXPECT_ERRNO(EBADF, api().epoll_ctl(closed_ep, EPOLL_CTL_ADD, efd, &ev));
  EXPECT_ERRNO(EBADF, api().epoll_ctl(ep, EPOLL_CTL_ADD, closed_fd, &ev));
}

TEST_P(EpollCtlErrors, EbadfForFdBeforeEinvalForNonEpoll) {
  Fd efd = make_eventfd();
  epoll_event ev = in_event();
  EXPECT_ERRNO(EBADF, api().epoll_ctl(efd, EPOLL_CTL_ADD, kNeverOpenFd, &ev));
  EXPECT_ERRNO(EBADF, api().epoll_ctl(efd, kBadOp, kNeverOpenFd, &ev));
}

// A target without a poll method (a regular file) is EPERM, checked before "epfd is not an
// epoll". uepoll has no descriptor type without poll, so there is nothing to check there.
TEST_P(EpollCtlErrors, EpermForUnpollableTargetBeforeEinval) {
  if (!on_kernel()) GTEST_SKIP() << "uepoll has no descriptor type without a poll method";
  char path[] = "/tmp/uepoll-conformance-XXXXXX";
  const int file = static_cast<int>(must(mkstemp(path), "mkstemp"));
  unlink(path);
  Fd owned(api(), file);
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  epoll_event ev = in_event();
  EXPECT_ERRNO(EPERM, api().epoll_ctl(ep, EPOLL_CTL_ADD, file, &ev));
  EXPECT_ERRNO(EPERM, api().epoll_ctl(efd, EPOLL_CTL_ADD, file, &ev));
  EXPECT_ERRNO(EPERM, api().epoll_ctl(ep, kBadOp, file, &ev));
}

TEST_P(EpollCtlErrors, EinvalWhenEpfdIsNotAnEpoll) {
  Fd efd = make_eventfd();
  auto [r, w] = make_pipe();
  epoll_event ev = in_event();
  EXPECT_ERRNO(EINVAL, api().epoll_ctl(efd, EPOLL_CTL_ADD, r, &ev));
  EXPECT_ERRNO(EINVAL, api().epoll_ctl(r, EPOLL_CTL_MOD, w, &ev));
  EXPECT_ERRNO(EINVAL, api().epoll_ctl(w, EPOLL_CTL_DEL, efd, nullptr));
  EXPECT_ERRNO(EINVAL, api().epoll_ctl(efd, EPOLL_CTL_ADD, efd, &ev));
}

TEST_P(EpollCtlErrors, EinvalForTheInstanceItselfBeforeEnoent) {
  Fd ep = make_epoll();
  Fd ep_dup = adopt(static_cast<int>(must(api().dup(ep), "dup")));
  epoll_event ev = in_event();
  EXPECT_ERRNO(EINVAL, api().epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev));
  EXPECT_ERRNO(EINVAL, api().epoll_ctl(ep, EPOLL_CTL_ADD, ep_dup, &ev));  // same file
  EXPECT_ERRNO(EINVAL, api().epoll_ctl(ep_dup, EPOLL_CTL_ADD, ep, &ev));
  EXPECT_ERRNO(EINVAL, api().epoll_ctl(ep, EPOLL_CTL_MOD, ep, &ev));
  EXPECT_ERRNO(EINVAL, api().epoll_ctl(ep, EPOLL_CTL_DEL, ep, nullptr));
}

TEST_P(EpollCtlErrors, ExclusiveWithModIsEinvalBeforeEnoent) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLEXCLUSIVE;
  EXPECT_ERRNO(EINVAL, api().epoll_ctl(ep, EPOLL_CTL_MOD, efd, &ev));  // not registered
  add(ep, efd, EPOLLIN, 0);
  EXPECT_ERRNO(EINVAL, api().epoll_ctl(ep, EPOLL_CTL_MOD, efd, &ev));  // registered
}

TEST_P(EpollCtlErrors, ExclusiveRejectsEpollTargetsAndNonWakeupBits) {
  Fd ep = make_epoll();
  Fd inner = make_epoll();
  Fd efd = make_eventfd();
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLEXCLUSIVE;
  EXPECT_ERRNO(EINVAL, api().epoll_ctl(ep, EPOLL_CTL_ADD, inner, &ev));
  for (uint32_t extra : {uint32_t{EPOLLRDHUP}, uint32_t{EPOLLPRI}, uint32_t{EPOLLONESHOT},
                         uint32_t{EPOLLRDNORM}, uint32_t{EPOLLWRNORM}}) {
    ev.events = EPOLLIN | EPOLLEXCLUSIVE | extra;
    EXPECT_ERRNO(EINVAL, api().epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev))
        << "with " << event_names(extra);
  }
  // The allowed companions: IN, OUT, ERR, HUP, WAKEUP, ET.
  ev.events = EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE;
  EXPECT_EQ(api().epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev), 0);
}

TEST_P(EpollCtlErrors, ExclusiveItemCannotBeModified) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  add(ep, efd, EPOLLIN | EPOLLEXCLUSIVE, 0);
  epoll_event ev = in_event();
  EXPECT_ERRNO(EINVAL, api().epoll_ctl(ep, EPOLL_CTL_MOD, efd, &ev));
  ev.events = EPOLLIN | EPOLLEXCLUSIVE;
  EXPECT_ERRNO(EEXIST, api().epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev));
  EXPECT_EQ(api().epoll_ctl(ep, EPOLL_CTL_DEL, efd, nullptr), 0);
}

TEST_P(EpollCtlErrors, EexistAndEnoent) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  epoll_event ev = in_event();
  EXPECT_ERRNO(ENOENT, api().epoll_ctl(ep, EPOLL_CTL_MOD, efd, &ev));
  EXPECT_ERRNO(ENOENT, api().epoll_ctl(ep, EPOLL_CTL_DEL, efd, nullptr));
  EXPECT_EQ(api().epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev), 0);
  EXPECT_ERRNO(EEXIST, api().epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev));
  EXPECT_EQ(api().epoll_ctl(ep, EPOLL_CTL_MOD, efd, &ev), 0);
  EXPECT_EQ(api().epoll_ctl(ep, EPOLL_CTL_DEL, efd, nullptr), 0);
  EXPECT_ERRNO(ENOENT, api().epoll_ctl(ep, EPOLL_CTL_DEL, efd, nullptr));
}

TEST_P(EpollCtlErrors, InvalidOpIsReportedLast) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  Fd other = make_eventfd();
  epoll_event ev = in_event();
  add(ep, efd, EPOLLIN, 0);
  EXPECT_ERRNO(EBADF, api().epoll_ctl(kNeverOpenFd, kBadOp, efd, &ev));
  EXPECT_ERRNO(EBADF, api().epoll_ctl(ep, kBadOp, kNeverOpenFd, &ev));
  // Neither EEXIST nor ENOENT: the op is judged after the lookup.
  EXPECT_ERRNO(EINVAL, api().epoll_ctl(ep, kBadOp, efd, &ev));
  EXPECT_ERRNO(EINVAL, api().epoll_ctl(ep, kBadOp, other, &ev));
  EXPECT_ERRNO(EINVAL, api().epoll_ctl(ep, 0, other, &ev));
  EXPECT_ERRNO(EINVAL, api().epoll_ctl(ep, -1, other, &ev));
  // The failed calls changed nothing.
  EXPECT_ERRNO(EEXIST, api().epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev));
  EXPECT_ERRNO(ENOENT, api().epoll_ctl(ep, EPOLL_CTL_DEL, other, nullptr));
}

TEST_P(EpollCtlErrors, InvalidOpSkipsTheLoopCheck) {
  // e0 -> e1 -> e0 would be a cycle: ADD reports ELOOP...
  Fd e0 = make_epoll();
  Fd e1 = make_epoll();
  add(e0, e1, EPOLLIN, 0);
  epoll_event ev = in_event();
  EXPECT_ERRNO(ELOOP, api().epoll_ctl(e1, EPOLL_CTL_ADD, e0, &ev));
  // ...and the cycle check is not made for an invalid op.
  EXPECT_ERRNO(EINVAL, api().epoll_ctl(e1, kBadOp, e0, &ev));
}

TEST_P(EpollCtlErrors, WakeupFlagIsAccepted) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd(1);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLWAKEUP;
  EXPECT_EQ(api().epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev), 0);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 0}}));
}

// ---- epoll_wait / epoll_pwait / epoll_pwait2 ------------------------------------------------
// Linux's order: EBADF for epfd, EINVAL for maxevents <= 0 or too large, EFAULT for an events
// buffer that cannot be user memory, EINVAL for an epfd that is not an epoll. The pwait calls
// read their signal mask first, and epoll_pwait2 its timespec before that.

class EpollWaitErrors : public Conformance {};

// More events than Linux accepts in one call.
constexpr int kTooManyEvents = static_cast<int>(INT_MAX / sizeof(epoll_event)) + 1;

TEST_P(EpollWaitErrors, EbadfBeforeEinvalForMaxevents) {
  epoll_event buf[4];
  EXPECT_ERRNO(EBADF, api().epoll_wait(kNeverOpenFd, buf, 0, 0));
  EXPECT_ERRNO(EBADF, api().epoll_wait(-1, buf, -1, 0));
  EXPECT_ERRNO(EBADF, api().epoll_wait(-1, buf, 1, 0));
  EXPECT_ERRNO(EBADF, api().epoll_wait(-1, kernel_half_pointer<epoll_event>(), 1, 0));
}

TEST_P(EpollWaitErrors, EinvalForMaxevents) {
  Fd ep = make_epoll();
  epoll_event buf[4];
  EXPECT_ERRNO(EINVAL, api().epoll_wait(ep, buf, 0, 0));
  EXPECT_ERRNO(EINVAL, api().epoll_wait(ep, buf, -1, 0));
  EXPECT_ERRNO(EINVAL, api().epoll_wait(ep, buf, INT_MIN, 0));
  EXPECT_ERRNO(EINVAL, api().epoll_wait(ep, buf, kTooManyEvents, 0));
  EXPECT_ERRNO(EINVAL, api().epoll_wait(ep, buf, INT_MAX, 0));
}

TEST_P(EpollWaitErrors, EinvalForMaxeventsBeforeEfault) {
  Fd ep = make_epoll();
  EXPECT_ERRNO(EINVAL, api().epoll_wait(ep, kernel_half_pointer<epoll_event>(), 0, 0));
  Fd efd = make_eventfd();
  EXPECT_ERRNO(EINVAL, api().epoll_wait(efd, kernel_half_pointer<epoll_event>(), 0, 0));
}

TEST_P(EpollWaitErrors, EfaultBeforeEinvalForNonEpoll) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  EXPECT_ERRNO(EFAULT, api().epoll_wait(ep, kernel_half_pointer<epoll_event>(), 1, 0));
  EXPECT_ERRNO(EFAULT, api().epoll_wait(efd, kernel_half_pointer<epoll_event>(), 1, 0));
}

TEST_P(EpollWaitErrors, EinvalForNonEpoll) {
  Fd efd = make_eventfd();
  auto [r, w] = make_pipe();
  auto [a, b] = make_socketpair();
  epoll_event buf[4];
  EXPECT_ERRNO(EINVAL, api().epoll_wait(efd, buf, 4, 0));
  EXPECT_ERRNO(EINVAL, api().epoll_wait(r, buf, 4, 0));
  EXPECT_ERRNO(EINVAL, api().epoll_wait(w, buf, 4, 0));
  EXPECT_ERRNO(EINVAL, api().epoll_wait(a, buf, 4, 0));
  EXPECT_ERRNO(EINVAL, api().epoll_pwait(efd, buf, 4, 0, nullptr));
  timespec zero{0, 0};
  EXPECT_ERRNO(EINVAL, api().epoll_pwait2(efd, buf, 4, &zero, nullptr));
}

// Linux only range-checks the buffer up front; a NULL or unmapped buffer fails only when an
// event has to be copied into it.
TEST_P(EpollWaitErrors, NullBufferFailsOnlyWhenAnEventIsDelivered) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  add(ep, efd, EPOLLIN, 7);
  EXPECT_EQ(api().epoll_wait(ep, nullptr, 1, 0), 0);
  EXPECT_EQ(api().epoll_pwait(ep, nullptr, 1, 0, nullptr), 0);
  write_u64(efd, 1);
  EXPECT_ERRNO(EFAULT, api().epoll_wait(ep, nullptr, 1, 0));
  EXPECT_ERRNO(EFAULT, api().epoll_pwait(ep, nullptr, 1, 0, nullptr));
  const timespec zero{0, 0};
  EXPECT_ERRNO(EFAULT, api().epoll_pwait2(ep, nullptr, 1, &zero, nullptr));
}

TEST_P(EpollWaitErrors, UnmappedOrReadOnlyBufferFailsOnlyWhenAnEventIsDelivered) {
  if (!on_kernel()) GTEST_SKIP() << kUnmappedPointerDeviation;
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  Page none(PROT_NONE);
  Page read_only(PROT_READ);
  add(ep, efd, EPOLLIN, 7);
  EXPECT_EQ(api().epoll_wait(ep, none.as<epoll_event>(), 1, 0), 0);
  write_u64(efd, 1);
  EXPECT_ERRNO(EFAULT, api().epoll_wait(ep, none.as<epoll_event>(), 1, 0));
  EXPECT_ERRNO(EFAULT, api().epoll_wait(ep, read_only.as<epoll_event>(), 1, 0));
}

// A signal mask on an unreadable page, nothing ready, a wait that would sleep: EFAULT at once.
// (uepoll once took ppoll's EFAULT for a wake-up and spun until the timeout, or forever.)
TEST_P(EpollWaitErrors, UnreadableSignalMaskOfASleepingWaitIsEfault) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  add(ep, efd, EPOLLIN, 7);
  Page none(PROT_NONE);
  epoll_event ev{};
  EXPECT_ERRNO(EFAULT, api().epoll_pwait(ep, &ev, 1, 1000, none.as<sigset_t>()));
  const timespec second{1, 0};
  EXPECT_ERRNO(EFAULT, api().epoll_pwait2(ep, &ev, 1, &second, none.as<sigset_t>()));
  EXPECT_ERRNO(EFAULT, api().epoll_pwait2(ep, &ev, 1, nullptr, none.as<sigset_t>()));
}

TEST_P(EpollWaitErrors, EventSurvivesAFailedCopy) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd(1);
  add(ep, efd, EPOLLIN | EPOLLET, 7);
  EXPECT_ERRNO(EFAULT, api().epoll_wait(ep, nullptr, 1, 0));
  // Even an ET event is not lost when it could not be copied out.
  EXPECT_EQ(wait(ep), (Evs{{EPOLLIN, 7}}));
  EXPECT_EQ(wait(ep), Evs{});
}

TEST_P(EpollWaitErrors, PwaitReadsTheSignalMaskFirst) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  epoll_event buf[4];
  const sigset_t* bad_mask = kernel_half_pointer<const sigset_t>();
  EXPECT_ERRNO(EFAULT, api().epoll_pwait(kNeverOpenFd, buf, 4, 0, bad_mask));
  EXPECT_ERRNO(EFAULT, api().epoll_pwait(efd, buf, 0, 0, bad_mask));
  EXPECT_ERRNO(EFAULT, api().epoll_pwait(ep, buf, 4, 0, bad_mask));
  // With a good mask the usual order applies.
  sigset_t empty;
  sigemptyset(&empty);
  EXPECT_ERRNO(EBADF, api().epoll_pwait(kNeverOpenFd, buf, 0, 0, &empty));
  EXPECT_ERRNO(EINVAL, api().epoll_pwait(ep, buf, 0, 0, &empty));
  EXPECT_ERRNO(EFAULT, api().epoll_pwait(efd, kernel_half_pointer<epoll_event>(), 1, 0, &empty));
  EXPECT_ERRNO(EINVAL, api().epoll_pwait(efd, buf, 4, 0, &empty));
  EXPECT_EQ(api().epoll_pwait(ep, buf, 4, 0, &empty), 0);
}

TEST_P(EpollWaitErrors, Pwait2RejectsBadTimespecFirst) {
  epoll_event buf[4];
  const sigset_t* bad_mask = kernel_half_pointer<const sigset_t>();
  for (const timespec ts : {timespec{-1, 0}, timespec{0, -1}, timespec{0, 1000000000},
                            timespec{-5, 999999999}, timespec{0, 2000000000}}) {
    EXPECT_ERRNO(EINVAL, api().epoll_pwait2(kNeverOpenFd, buf, 0, &ts, bad_mask))
        << "timespec {" << ts.tv_sec << ", " << ts.tv_nsec << "}";
  }
  EXPECT_ERRNO(EFAULT,
               api().epoll_pwait2(kNeverOpenFd, buf, 0, kernel_half_pointer<timespec>(), nullptr));
}

TEST_P(EpollWaitErrors, Pwait2UnmappedTimespecIsEfaultBeforeEbadf) {
  if (!on_kernel()) GTEST_SKIP() << kUnmappedPointerDeviation;
  epoll_event buf[4];
  Page none(PROT_NONE);
  EXPECT_ERRNO(EFAULT, api().epoll_pwait2(kNeverOpenFd, buf, 0, none.as<timespec>(), nullptr));
}

TEST_P(EpollWaitErrors, Pwait2ChecksMaskThenDescriptor) {
  Fd ep = make_epoll();
  Fd efd = make_eventfd();
  epoll_event buf[4];
  const timespec zero{0, 0};
  const sigset_t* bad_mask = kernel_half_pointer<const sigset_t>();
  EXPECT_ERRNO(EFAULT, api().epoll_pwait2(kNeverOpenFd, buf, 0, &zero, bad_mask));
  EXPECT_ERRNO(EFAULT, api().epoll_pwait2(kNeverOpenFd, buf, 0, nullptr, bad_mask));
  EXPECT_ERRNO(EBADF, api().epoll_pwait2(kNeverOpenFd, buf, 0, &zero, nullptr));
  EXPECT_ERRNO(EINVAL, api().epoll_pwait2(ep, buf, 0, &zero, nullptr));
  EXPECT_ERRNO(EINVAL, api().epoll_pwait2(ep, buf, kTooManyEvents, &zero, nullptr));
  EXPECT_ERRNO(EFAULT,
               api().epoll_pwait2(efd, kernel_half_pointer<epoll_event>(), 1, &zero, nullptr));
  EXPECT_ERRNO(EINVAL, api().epoll_pwait2(efd, buf, 1, &zero, nullptr));
  EXPECT_EQ(api().epoll_pwait2(ep, buf, 4, &zero, nullptr), 0);
}

TEST_P(EpollWaitErrors, EbadfForClosedInstance) {
  const int closed = make_epoll().get();
  epoll_event buf[4];
  EXPECT_ERRNO(EBADF, api().epoll_wait(closed, buf, 4, 0));
  EXPECT_ERRNO(EBADF, api().epoll_pwait(closed, buf, 4, 0, nullptr));
  const timespec zero{0, 0};
  EXPECT_ERRNO(EBADF, api().epoll_pwait2(closed, buf, 4, &zero, nullptr));
}

}  // namespace

UEPOLL_CONFORMANCE_SUITE(EpollCreateErrors);
UEPOLL_CONFORMANCE_SUITE(EpollCtlErrors);
UEPOLL_CONFORMANCE_SUITE(EpollWaitErrors);

}  // namespace uepoll_conformance
