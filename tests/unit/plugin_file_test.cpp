// Plug-in objects through the C API (uepoll.h: uepoll_file_create, uepoll_file_notify), used
// exactly as a stack written in C would use them: only the public header, the object's state in
// the caller's own memory (lock-free atomics with relaxed order, as the header allows), every
// change of state followed by uepoll_file_notify. The harness is C++; the object is not.
//
// Covered: readiness through epoll (level, edge, one-shot) and poll(); which bits epoll and
// poll() may report; read/write error mapping and blocking; release (once, after the last
// close, after every registration is gone, never for a failed create); the create flags; and
// races: notify against the last close, and a ring against ADD + epoll_wait, poll() and a
// blocking read (lost wake-ups). Each race is bounded by a round count and ~1 s of wall time.
//
// Every descriptor here lives in the process-wide table (Process::global()); each test checks
// that it leaves none behind. ctest runs each test in its own process.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "uepoll/uepoll.h"

namespace {

using Clock = std::chrono::steady_clock;

// The descriptor-table test fills the table: keep it small. uepoll's table takes its size from
// RLIMIT_NOFILE when it is first used, which is after static initialisation. (1024 kernel
// descriptors are plenty for the rest of this program.)
const bool g_small_table = [] {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > 1024) {
    rl.rlim_cur = 1024;
    return setrlimit(RLIMIT_NOFILE, &rl) == 0;
  }
  return true;
}();

constexpr std::uint32_t kPrivateBits =
    EPOLLET | EPOLLONESHOT | EPOLLEXCLUSIVE | EPOLLWAKEUP | (1u << 27) | (1u << 20);
constexpr std::uint32_t kAllPollBits = EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLERR | EPOLLHUP |
                                       EPOLLRDNORM | EPOLLRDBAND | EPOLLWRNORM | EPOLLWRBAND |
                                       EPOLLMSG | EPOLLRDHUP;
constexpr int kLostWakeupMs = 10'000;  // a wait this long means the wake-up was lost

// ------------------------------------------------------------------------------------------
// The doorbell: readable while rung; a read consumes the ring. Written as the header says:
// change the state, then notify. (The counters are the test's instrumentation.)

struct Doorbell {
  std::atomic<bool> rung{false};
  std::atomic<int> polls{0};
  std::atomic<int> reads{0};
  std::atomic<int> misses{0};  // polls and reads that found it not rung (test instrumentation)
  std::atomic<int> releases{0};
  struct uepoll_file* handle = nullptr;
};

std::uint32_t doorbell_poll(void* priv) {
  auto* d = static_cast<Doorbell*>(priv);
  d->polls.fetch_add(1, std::memory_order_relaxed);
  if (!d->rung.load(std::memory_order_relaxed)) {
    d->misses.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }
  return EPOLLIN;
}

ssize_t doorbell_read(void* priv, void* buf, size_t n) {
  auto* d = static_cast<Doorbell*>(priv);
  d->reads.fetch_add(1, std::memory_order_relaxed);
  if (!d->rung.exchange(false, std::memory_order_relaxed)) {
    d->misses.fetch_add(1, std::memory_order_relaxed);
    return -EAGAIN;
  }
  const std::uint64_t one = 1;
  const size_t len = std::min(n, sizeof one);
  std::memcpy(buf, &one, len);
  return static_cast<ssize_t>(len);
}

void doorbell_release(void* priv) {
  static_cast<Doorbell*>(priv)->releases.fetch_add(1, std::memory_order_relaxed);
}

void ring(Doorbell& d) {
  d.rung.store(true, std::memory_order_relaxed);  // the state first...
  uepoll_file_notify(d.handle, EPOLLIN);          // ...then the notify
}

const uepoll_file_ops kDoorbellOps = {doorbell_poll, doorbell_read, nullptr, doorbell_release};

int make_doorbell(Doorbell& d, int flags = 0) {
  return uepoll_file_create(&kDoorbellOps, &d, flags, &d.handle);
}

// ------------------------------------------------------------------------------------------
// The mailbox: a scripted object for read/write. poll reports `mask`; read hands out `value`
// (-EAGAIN while it is 0) unless `read_result` says otherwise; write takes one value while
// `room` is set.

struct Mailbox {
  std::atomic<std::uint32_t> mask{0};
  std::atomic<std::uint64_t> value{0};
  std::atomic<bool> room{false};
  std::atomic<ssize_t> read_result{0};   // 0: the normal behaviour above; else returned as is
  std::atomic<ssize_t> write_result{0};  // likewise
  std::atomic<int> reads{0};
  std::atomic<int> writes{0};
  std::atomic<int> releases{0};
  struct uepoll_file* handle = nullptr;
};

std::uint32_t mailbox_poll(void* priv) {
  return static_cast<Mailbox*>(priv)->mask.load(std::memory_order_relaxed);
}

ssize_t mailbox_read(void* priv, void* buf, size_t n) {
  auto* m = static_cast<Mailbox*>(priv);
  m->reads.fetch_add(1, std::memory_order_relaxed);
  if (const ssize_t r = m->read_result.load(std::memory_order_relaxed); r != 0) {
    return r;
  }
  const std::uint64_t v = m->value.exchange(0, std::memory_order_relaxed);
  if (v == 0) {
    return -EAGAIN;
  }
  const size_t len = std::min(n, sizeof v);
  std::memcpy(buf, &v, len);
  return static_cast<ssize_t>(len);
}

ssize_t mailbox_write(void* priv, const void* buf, size_t n) {
  auto* m = static_cast<Mailbox*>(priv);
  m->writes.fetch_add(1, std::memory_order_relaxed);
  if (const ssize_t r = m->write_result.load(std::memory_order_relaxed); r != 0) {
    return r;
  }
  if (!m->room.exchange(false, std::memory_order_relaxed)) {
    return -EAGAIN;
  }
  std::uint64_t v = 0;
  std::memcpy(&v, buf, std::min(n, sizeof v));
  m->value.store(v, std::memory_order_relaxed);
  return static_cast<ssize_t>(n);
}

void mailbox_release(void* priv) {
  static_cast<Mailbox*>(priv)->releases.fetch_add(1, std::memory_order_relaxed);
}

const uepoll_file_ops kMailboxOps = {mailbox_poll, mailbox_read, mailbox_write, mailbox_release};

int make_mailbox(Mailbox& m, int flags = 0) {
  return uepoll_file_create(&kMailboxOps, &m, flags, &m.handle);
}

// ------------------------------------------------------------------------------------------
// Helpers

// Ends a call that blocks when it should not (or forever): once `after` has passed, signals
// the thread that made it with SIGUSR1 every 100 ms until it is destroyed. The handler is
// installed without SA_RESTART, so the blocked call fails with EINTR and the test reports it
// instead of hanging.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::milliseconds after = std::chrono::milliseconds(kLostWakeupMs))
      : target_(pthread_self()), after_(after), thread_([this] { run(); }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(mu_);
      over_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  static void on_signal(int) {}
  void run() {
    static const bool installed = [] {
      struct sigaction sa {};
      sa.sa_handler = on_signal;
      sigemptyset(&sa.sa_mask);
      sa.sa_flags = 0;  // no SA_RESTART
      return sigaction(SIGUSR1, &sa, nullptr) == 0;
    }();
    EXPECT_TRUE(installed);
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, after_, [&] { return over_; })) {
      return;
    }
    ADD_FAILURE() << "a call blocked for " << after_.count() << " ms: interrupting it";
    while (!cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return over_; })) {
      pthread_kill(target_, SIGUSR1);
    }
  }

  pthread_t target_;
  std::chrono::milliseconds after_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool over_ = false;
  std::thread thread_;  // last: starts once the rest is constructed
};

int add(int ep, int fd, std::uint32_t events, std::uint64_t data = 0) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = data;
  return uepoll_epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

int wait_now(int ep, epoll_event* out, int max = 1) { return uepoll_epoll_wait(ep, out, max, 0); }

// poll() of one descriptor that must be woken. A poll() whose wake-up was lost still returns
// the event, after its timeout (the last look after the timer, as on Linux): so whether it
// was woken is whether it returned before kLostWakeupMs.
bool poll_woken(pollfd& p) {
  const Clock::time_point start = Clock::now();
  const int n = uepoll_poll(&p, 1, kLostWakeupMs);
  return n == 1 && Clock::now() - start < std::chrono::milliseconds(kLostWakeupMs);
}

// The lowest free descriptor (the table allocates lowest-first): what a new object would get.
int lowest_free() {
  const int fd = uepoll_eventfd(0, 0);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(uepoll_close(fd), 0);
  return fd;
}

// Bounded race rounds: `max` rounds or `cap` of wall time, whichever ends first.
class Rounds {
 public:
  explicit Rounds(int max, std::chrono::milliseconds cap = std::chrono::milliseconds(1000))
      : max_(max), end_(Clock::now() + cap) {}
  bool next() {
    if (done_ >= max_ || Clock::now() >= end_) {
      return false;
    }
    ++done_;
    return true;
  }
  int done() const { return done_; }

 private:
  int max_;
  Clock::time_point end_;
  int done_ = 0;
};

// Busy waiting, `iterations` steps: how the two sides of a race are offset from each other.
void spin(std::atomic<int>& sink, unsigned iterations) {
  for (unsigned i = 0; i < iterations; ++i) {
    sink.fetch_add(1, std::memory_order_relaxed);
  }
}

class PluginFile : public ::testing::Test {
 protected:
  void SetUp() override { first_free_ = lowest_free(); }
  void TearDown() override { EXPECT_EQ(lowest_free(), first_free_) << "a descriptor leaked"; }
  int first_free_ = -1;
};

// ------------------------------------------------------------------------------------------
// Readiness

TEST_F(PluginFile, LevelTriggeredReportsTheStateUntilItIsConsumed) {
  Watchdog watchdog;  // a read or write here that blocks is a failure
  Doorbell d;
  const int fd = make_doorbell(d);
  ASSERT_GE(fd, 0);
  const int ep = uepoll_epoll_create1(0);
  ASSERT_GE(ep, 0);
  ASSERT_EQ(add(ep, fd, EPOLLIN, 42), 0);
  epoll_event out[2]{};
  EXPECT_EQ(wait_now(ep, out, 2), 0);
  ring(d);
  ASSERT_EQ(wait_now(ep, out, 2), 1);
  EXPECT_EQ(out[0].events, std::uint32_t{EPOLLIN});
  EXPECT_EQ(out[0].data.u64, 42u);
  EXPECT_EQ(wait_now(ep, out, 2), 1) << "level-triggered: still rung, still reported";
  std::uint64_t v = 0;
  EXPECT_EQ(uepoll_read(fd, &v, sizeof v), static_cast<ssize_t>(sizeof v));
  EXPECT_EQ(v, 1u);
  EXPECT_EQ(wait_now(ep, out, 2), 0) << "consumed: no longer reported";

  // A waiter asleep in epoll_wait is woken by a ring from another thread.
  std::thread ringer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // lets the waiter sleep
    ring(d);
  });
  EXPECT_EQ(uepoll_epoll_wait(ep, out, 2, kLostWakeupMs), 1);
  ringer.join();
  EXPECT_EQ(out[0].data.u64, 42u);

  EXPECT_EQ(uepoll_close(fd), 0);
  EXPECT_EQ(d.releases.load(), 1);
  EXPECT_EQ(wait_now(ep, out, 2), 0) << "the registration went with the object";
  EXPECT_EQ(uepoll_close(ep), 0);
}

TEST_F(PluginFile, EdgeTriggeredReportsEveryNotifyOnce) {
  Watchdog watchdog;  // a read or write here that blocks is a failure
  Doorbell d;
  const int fd = make_doorbell(d);
  ASSERT_GE(fd, 0);
  const int ep = uepoll_epoll_create1(0);
  ASSERT_EQ(add(ep, fd, EPOLLIN | EPOLLET, 7), 0);
  epoll_event out[1]{};
  EXPECT_EQ(wait_now(ep, out), 0);
  ring(d);
  ASSERT_EQ(wait_now(ep, out), 1);
  EXPECT_EQ(out[0].events, std::uint32_t{EPOLLIN});
  EXPECT_EQ(out[0].data.u64, 7u);
  EXPECT_EQ(wait_now(ep, out), 0) << "edge-triggered: one report per edge";
  ring(d);  // still rung, but a new notify is a new edge (as a kernel file's wake-up)
  EXPECT_EQ(wait_now(ep, out), 1);
  EXPECT_EQ(wait_now(ep, out), 0);
  // A notify whose bits the item does not want is not an edge for it.
  uepoll_file_notify(d.handle, EPOLLOUT);
  EXPECT_EQ(wait_now(ep, out), 0);
  // A notify without a state change reports nothing: the item re-polls and finds nothing.
  std::uint64_t v = 0;
  EXPECT_EQ(uepoll_read(fd, &v, sizeof v), static_cast<ssize_t>(sizeof v));
  uepoll_file_notify(d.handle, EPOLLIN);
  EXPECT_EQ(wait_now(ep, out), 0);

  std::thread ringer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // lets the waiter sleep
    ring(d);
  });
  EXPECT_EQ(uepoll_epoll_wait(ep, out, 1, kLostWakeupMs), 1);
  ringer.join();

  EXPECT_EQ(uepoll_close(fd), 0);
  EXPECT_EQ(uepoll_close(ep), 0);
  EXPECT_EQ(d.releases.load(), 1);
}

TEST_F(PluginFile, OneshotReportsOnceUntilRearmed) {
  Doorbell d;
  const int fd = make_doorbell(d);
  ASSERT_GE(fd, 0);
  const int ep = uepoll_epoll_create1(0);
  ASSERT_EQ(add(ep, fd, EPOLLIN | EPOLLONESHOT, 3), 0);
  epoll_event out[1]{};
  EXPECT_EQ(wait_now(ep, out), 0);
  ring(d);
  ASSERT_EQ(wait_now(ep, out), 1);
  EXPECT_EQ(out[0].events, std::uint32_t{EPOLLIN}) << "EPOLLONESHOT is not reported";
  EXPECT_EQ(wait_now(ep, out), 0) << "disarmed, though still rung (level)";
  ring(d);
  EXPECT_EQ(wait_now(ep, out), 0) << "disarmed: a new notify is ignored";
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLONESHOT;
  ev.data.u64 = 4;
  ASSERT_EQ(uepoll_epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev), 0);
  ASSERT_EQ(wait_now(ep, out), 1) << "re-armed while rung: reported at once";
  EXPECT_EQ(out[0].data.u64, 4u);
  EXPECT_EQ(wait_now(ep, out), 0);
  EXPECT_EQ(uepoll_close(fd), 0);
  EXPECT_EQ(uepoll_close(ep), 0);
  EXPECT_EQ(d.releases.load(), 1);
}

TEST_F(PluginFile, PollSeesTheStateAndIsWokenByNotify) {
  Doorbell d;
  const int fd = make_doorbell(d);
  ASSERT_GE(fd, 0);
  pollfd p{fd, POLLIN, 0};
  EXPECT_EQ(uepoll_poll(&p, 1, 0), 0);
  EXPECT_EQ(p.revents, 0);
  ring(d);
  ASSERT_EQ(uepoll_poll(&p, 1, 0), 1);
  EXPECT_EQ(p.revents, POLLIN);
  p.events = POLLOUT;
  EXPECT_EQ(uepoll_poll(&p, 1, 0), 0) << "POLLIN is not reported to a POLLOUT poller";
  EXPECT_EQ(p.revents, 0);

  std::uint64_t v = 0;
  ASSERT_EQ(uepoll_read(fd, &v, sizeof v), static_cast<ssize_t>(sizeof v));
  p.events = POLLIN;
  std::thread ringer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // lets poll() sleep
    ring(d);
  });
  EXPECT_TRUE(poll_woken(p));
  ringer.join();
  EXPECT_EQ(p.revents, POLLIN);
  EXPECT_EQ(uepoll_close(fd), 0);
  EXPECT_EQ(d.releases.load(), 1);
}

// poll() may return anything: epoll reports only the registration's bits plus EPOLLERR and
// EPOLLHUP, and never epoll's private bits (nor bits that mean nothing).
TEST_F(PluginFile, EpollReportsOnlyTheInterestMaskPlusErrAndHup) {
  Mailbox m;
  m.mask = kAllPollBits | kPrivateBits;
  const int fd = make_mailbox(m);
  ASSERT_GE(fd, 0);
  const std::uint32_t interests[] = {
      EPOLLIN,
      EPOLLOUT | EPOLLET,
      EPOLLIN | EPOLLONESHOT,
      EPOLLIN | EPOLLOUT | EPOLLEXCLUSIVE,
      EPOLLPRI | EPOLLRDHUP | EPOLLET | EPOLLONESHOT,
      0,
      kAllPollBits | EPOLLET,
  };
  for (const std::uint32_t interest : interests) {
    SCOPED_TRACE(testing::Message() << "interest 0x" << std::hex << interest);
    const int ep = uepoll_epoll_create1(0);
    ASSERT_EQ(add(ep, fd, interest, 9), 0);
    epoll_event out[1]{};
    ASSERT_EQ(wait_now(ep, out), 1);
    EXPECT_EQ(out[0].events, (interest & kAllPollBits) | EPOLLERR | EPOLLHUP);
    EXPECT_EQ(out[0].events & kPrivateBits, 0u);
    EXPECT_EQ(out[0].data.u64, 9u);
    EXPECT_EQ(uepoll_close(ep), 0);
  }

  // Without EPOLLERR/EPOLLHUP in the state, only the interest bits come back, and a state
  // outside the interest mask is not an event at all.
  m.mask = EPOLLIN | kPrivateBits;
  uepoll_file_notify(m.handle, EPOLLIN);
  for (const std::uint32_t interest : {std::uint32_t{EPOLLIN | EPOLLET}, std::uint32_t{EPOLLIN}}) {
    const int ep = uepoll_epoll_create1(0);
    ASSERT_EQ(add(ep, fd, interest), 0);
    epoll_event out[1]{};
    ASSERT_EQ(wait_now(ep, out), 1);
    EXPECT_EQ(out[0].events, std::uint32_t{EPOLLIN});
    EXPECT_EQ(uepoll_close(ep), 0);
  }
  const int ep = uepoll_epoll_create1(0);
  ASSERT_EQ(add(ep, fd, EPOLLOUT | EPOLLET), 0);
  epoll_event out[1]{};
  EXPECT_EQ(wait_now(ep, out), 0);

  // poll(): the asked-for bits plus POLLERR/POLLHUP.
  m.mask = kAllPollBits | kPrivateBits;
  pollfd p{fd, POLLIN | POLLPRI, 0};
  ASSERT_EQ(uepoll_poll(&p, 1, 0), 1);
  EXPECT_EQ(p.revents, POLLIN | POLLPRI | POLLERR | POLLHUP);
  p.events = 0;
  ASSERT_EQ(uepoll_poll(&p, 1, 0), 1);
  EXPECT_EQ(p.revents, POLLERR | POLLHUP);

  EXPECT_EQ(uepoll_close(ep), 0);
  EXPECT_EQ(uepoll_close(fd), 0);
  EXPECT_EQ(m.releases.load(), 1);
}

// A poll() that reports only bits that are not poll bits reports nothing: not even to an item
// whose mask holds those same private bits.
TEST_F(PluginFile, PrivateBitsAloneAreNotReadiness) {
  Mailbox m;
  m.mask = EPOLLET | EPOLLONESHOT | EPOLLEXCLUSIVE | (1u << 27);
  const int fd = make_mailbox(m);
  ASSERT_GE(fd, 0);
  const int ep_et = uepoll_epoll_create1(0);
  const int ep_lt = uepoll_epoll_create1(0);
  ASSERT_EQ(add(ep_et, fd, EPOLLIN | EPOLLOUT | EPOLLET | EPOLLONESHOT), 0);
  ASSERT_EQ(add(ep_lt, fd, EPOLLIN | EPOLLOUT | EPOLLEXCLUSIVE), 0);
  uepoll_file_notify(m.handle, EPOLLIN | EPOLLOUT);
  epoll_event out[1]{};
  EXPECT_EQ(wait_now(ep_et, out), 0);
  EXPECT_EQ(wait_now(ep_lt, out), 0);
  pollfd p{fd, POLLIN | POLLOUT | POLLPRI, 0};
  EXPECT_EQ(uepoll_poll(&p, 1, 0), 0);
  EXPECT_EQ(p.revents, 0);
  EXPECT_EQ(uepoll_close(ep_et), 0);
  EXPECT_EQ(uepoll_close(ep_lt), 0);
  EXPECT_EQ(uepoll_close(fd), 0);
}

// ------------------------------------------------------------------------------------------
// read and write

TEST_F(PluginFile, NullReadOrWriteIsEinval) {
  Watchdog watchdog;  // a read or write here that blocks is a failure
  Doorbell d;         // no write op
  const int fd = make_doorbell(d);
  ASSERT_GE(fd, 0);
  ring(d);
  const std::uint64_t one = 1;
  errno = 0;
  EXPECT_EQ(uepoll_write(fd, &one, sizeof one), -1);
  EXPECT_EQ(errno, EINVAL);

  const uepoll_file_ops poll_only = {doorbell_poll, nullptr, nullptr, doorbell_release};
  Doorbell d2;
  const int fd2 = uepoll_file_create(&poll_only, &d2, 0, &d2.handle);
  ASSERT_GE(fd2, 0);
  ring(d2);
  std::uint64_t v = 0;
  errno = 0;
  EXPECT_EQ(uepoll_read(fd2, &v, sizeof v), -1) << "blocking ufd: EINVAL, not a sleep";
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(uepoll_write(fd2, &one, sizeof one), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(d2.reads.load(), 0);

  // No release op either: the object still goes away at close.
  const uepoll_file_ops no_release = {doorbell_poll, doorbell_read, nullptr, nullptr};
  Doorbell d3;
  const int fd3 = uepoll_file_create(&no_release, &d3, 0, &d3.handle);
  ASSERT_GE(fd3, 0);
  EXPECT_EQ(uepoll_close(fd3), 0);

  EXPECT_EQ(uepoll_close(fd), 0);
  EXPECT_EQ(uepoll_close(fd2), 0);
  EXPECT_EQ(d.releases.load(), 1);
  EXPECT_EQ(d2.releases.load(), 1);
  EXPECT_EQ(d3.releases.load(), 0);
}

TEST_F(PluginFile, NegativeErrnoIsReturnedAsErrno) {
  Watchdog watchdog;  // a read or write here that blocks is a failure
  Mailbox m;
  const int fd = make_mailbox(m);
  ASSERT_GE(fd, 0);
  std::uint64_t v = 0;
  const struct {
    ssize_t returned;
    int expected_errno;
  } cases[] = {
      {-ECONNRESET, ECONNRESET},  {-EINTR, EINTR}, {-ENOSPC, ENOSPC}, {-EIO, EIO},
      {-1, 1 /* EPERM */},        {-4095, 4095},   {-4096, EIO},      {-100000, EIO},
      {-(ssize_t{1} << 40), EIO},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(testing::Message() << "op returned " << c.returned);
    m.read_result = c.returned;
    m.write_result = c.returned;
    errno = 0;
    EXPECT_EQ(uepoll_read(fd, &v, sizeof v), -1);
    EXPECT_EQ(errno, c.expected_errno);
    errno = 0;
    EXPECT_EQ(uepoll_write(fd, &v, sizeof v), -1);
    EXPECT_EQ(errno, c.expected_errno);
  }
  EXPECT_EQ(m.reads.load(), static_cast<int>(std::size(cases))) << "an error is not retried";
  EXPECT_EQ(m.writes.load(), static_cast<int>(std::size(cases)));

  // What the op returns as a count is the call's result (never more than was asked for).
  m.read_result = 3;
  EXPECT_EQ(uepoll_read(fd, &v, sizeof v), 3);
  m.read_result = 1000;
  EXPECT_EQ(uepoll_read(fd, &v, sizeof v), static_cast<ssize_t>(sizeof v));
  m.write_result = 5;
  EXPECT_EQ(uepoll_write(fd, &v, sizeof v), 5);

  EXPECT_EQ(uepoll_close(fd), 0);
  EXPECT_EQ(m.releases.load(), 1);
}

TEST_F(PluginFile, NonblockingAtCreateGivesEagain) {
  Watchdog watchdog;  // a read or write here that blocks is a failure
  Mailbox m;
  const int fd = make_mailbox(m, O_NONBLOCK);
  ASSERT_GE(fd, 0);
  std::uint64_t v = 0;
  errno = 0;
  EXPECT_EQ(uepoll_read(fd, &v, sizeof v), -1);
  EXPECT_EQ(errno, EAGAIN);
  errno = 0;
  EXPECT_EQ(uepoll_write(fd, &v, sizeof v), -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_EQ(m.reads.load(), 1) << "tried once, no retry";
  EXPECT_EQ(m.writes.load(), 1);
  // Data there: it is returned.
  m.value = 77;
  ASSERT_EQ(uepoll_read(fd, &v, sizeof v), static_cast<ssize_t>(sizeof v));
  EXPECT_EQ(v, 77u);
  EXPECT_EQ(uepoll_close(fd), 0);
}

// Blocks in the op's -EAGAIN until notify, then returns what the state change made available.
// `io` runs on another thread; `calls` counts the op's calls; `change` changes the state.
template <class Io, class Change>
void expect_blocks_until_notify(Io&& io, std::atomic<int>& calls, Change&& change,
                                struct uepoll_file* handle, std::uint32_t bits) {
  const int calls_before = calls.load();
  std::atomic<bool> done{false};
  ssize_t result = 0;
  int error = 0;
  std::thread t([&] {
    Watchdog watchdog;
    errno = 0;
    result = io();
    error = errno;
    done = true;
  });
  while (calls.load() == calls_before && !done.load()) {  // the op has said -EAGAIN once
    std::this_thread::yield();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // lets the caller go to sleep
  EXPECT_FALSE(done.load()) << "returned without waiting for a notify";
  change();
  uepoll_file_notify(handle, bits);
  t.join();
  EXPECT_EQ(result, 8) << "errno " << error;
  EXPECT_GE(calls.load() - calls_before, 2) << "retried after the notify";
}

TEST_F(PluginFile, BlockingReadWaitsForNotifyThenReturnsTheData) {
  Mailbox m;
  const int fd = make_mailbox(m);
  ASSERT_GE(fd, 0);
  std::uint64_t got = 0;
  expect_blocks_until_notify([&] { return uepoll_read(fd, &got, sizeof got); }, m.reads,
                             [&] { m.value.store(1234, std::memory_order_relaxed); }, m.handle,
                             EPOLLIN);
  EXPECT_EQ(got, 1234u);
  EXPECT_EQ(uepoll_close(fd), 0);
  EXPECT_EQ(m.releases.load(), 1);
}

TEST_F(PluginFile, BlockingWriteWaitsForNotifyThenWrites) {
  Mailbox m;
  const int fd = make_mailbox(m);
  ASSERT_GE(fd, 0);
  const std::uint64_t sent = 5678;
  expect_blocks_until_notify([&] { return uepoll_write(fd, &sent, sizeof sent); }, m.writes,
                             [&] { m.room.store(true, std::memory_order_relaxed); }, m.handle,
                             EPOLLOUT);
  EXPECT_EQ(m.value.load(), 5678u);
  EXPECT_EQ(uepoll_close(fd), 0);
}

TEST_F(PluginFile, NonblockingSetByFcntlGivesEagainAndClearingItBlocksAgain) {
  Watchdog watchdog;  // a read or write here that blocks is a failure
  Mailbox m;
  const int fd = make_mailbox(m);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(uepoll_fcntl(fd, F_SETFL, O_NONBLOCK), 0);
  EXPECT_NE(uepoll_fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
  std::uint64_t v = 0;
  errno = 0;
  EXPECT_EQ(uepoll_read(fd, &v, sizeof v), -1);
  EXPECT_EQ(errno, EAGAIN);
  errno = 0;
  EXPECT_EQ(uepoll_write(fd, &v, sizeof v), -1);
  EXPECT_EQ(errno, EAGAIN);
  // The flag belongs to the description: a dup sees it.
  const int dup = uepoll_dup(fd);
  ASSERT_GE(dup, 0);
  errno = 0;
  EXPECT_EQ(uepoll_read(dup, &v, sizeof v), -1);
  EXPECT_EQ(errno, EAGAIN);

  ASSERT_EQ(uepoll_fcntl(dup, F_SETFL, 0), 0);
  EXPECT_EQ(uepoll_fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
  expect_blocks_until_notify([&] { return uepoll_read(fd, &v, sizeof v); }, m.reads,
                             [&] { m.value.store(99, std::memory_order_relaxed); }, m.handle,
                             EPOLLIN);
  EXPECT_EQ(v, 99u);
  EXPECT_EQ(uepoll_close(fd), 0);
  EXPECT_EQ(uepoll_close(dup), 0);
  EXPECT_EQ(m.releases.load(), 1);
}

// ------------------------------------------------------------------------------------------
// release

TEST_F(PluginFile, ReleaseRunsOnceAfterTheLastClose) {
  Watchdog watchdog;  // a read or write here that blocks is a failure
  Doorbell d;
  const int fd = make_doorbell(d);
  ASSERT_GE(fd, 0);
  const int dup = uepoll_dup(fd);
  ASSERT_GE(dup, 0);
  EXPECT_EQ(uepoll_close(fd), 0);
  EXPECT_EQ(d.releases.load(), 0) << "a dup still refers to the object";
  ring(d);  // the handle is still valid, and reaches the object through the dup
  std::uint64_t v = 0;
  EXPECT_EQ(uepoll_read(dup, &v, sizeof v), static_cast<ssize_t>(sizeof v));
  // dup2 over the last descriptor closes it: that is the last reference.
  const int other = uepoll_eventfd(0, 0);
  ASSERT_GE(other, 0);
  EXPECT_EQ(uepoll_dup2(other, dup), dup);
  EXPECT_EQ(d.releases.load(), 1);
  EXPECT_EQ(uepoll_close(dup), 0);
  EXPECT_EQ(uepoll_close(other), 0);
  EXPECT_EQ(d.releases.load(), 1) << "exactly once";
}

// By the time release runs, every registration of the object is gone: no instance reports it
// (whether its item was idle, on the ready list, or made through a dup closed first), and no
// item is left counted against max_user_watches. (The second is the sharper check: an
// instance never reports a file whose last reference is gone, registration or not.)
struct Watched {
  std::atomic<int> releases{0};
  int fd = -1;
  int ep_lt = -1;  // also watches a ready eventfd, so that its harvest does report something
  int ep_et = -1;
  int probe = -1;  // an eventfd to ADD as a probe of the watch count
  // What release saw:
  int seen_lt = -1;
  std::uint64_t seen_lt_data = 0;
  int seen_et = -1;
  int probe_result = 0;
  int probe_errno = 0;
};

std::uint32_t always_readable(void*) { return EPOLLIN; }

// ADDs the probe to `ep` with max_user_watches set to `limit` for the call: fails with ENOSPC
// unless fewer than `limit` items exist. Returns the result and errno, and removes the probe.
std::pair<int, int> probe_watch_count(int ep, int probe, long limit) {
  const long saved = uepoll_max_user_watches();
  EXPECT_EQ(uepoll_set_max_user_watches(limit), 0);
  errno = 0;
  const int r = add(ep, probe, EPOLLIN, 99);
  const int e = errno;
  EXPECT_EQ(uepoll_set_max_user_watches(saved), 0);
  if (r == 0) {
    EXPECT_EQ(uepoll_epoll_ctl(ep, EPOLL_CTL_DEL, probe, nullptr), 0);
  }
  return {r, e};
}

void watched_release(void* priv) {
  auto* w = static_cast<Watched*>(priv);
  epoll_event out[4]{};
  w->seen_lt = uepoll_epoll_wait(w->ep_lt, out, 4, 0);
  w->seen_lt_data = w->seen_lt > 0 ? out[0].data.u64 : 0;
  w->seen_et = uepoll_epoll_wait(w->ep_et, out, 4, 0);
  // One item must remain (the eventfd's): room for exactly one more.
  std::tie(w->probe_result, w->probe_errno) = probe_watch_count(w->ep_et, w->probe, 2);
  w->releases.fetch_add(1);
}

TEST_F(PluginFile, ReleaseRunsAfterEveryRegistrationIsGone) {
  const uepoll_file_ops ops = {always_readable, nullptr, nullptr, watched_release};
  Watched w;
  struct uepoll_file* handle = nullptr;
  w.fd = uepoll_file_create(&ops, &w, 0, &handle);
  ASSERT_GE(w.fd, 0);
  w.ep_lt = uepoll_epoll_create1(0);
  w.ep_et = uepoll_epoll_create1(0);
  w.probe = uepoll_eventfd(0, 0);
  const int efd = uepoll_eventfd(1, 0);
  ASSERT_GE(efd, 0);
  ASSERT_EQ(add(w.ep_lt, w.fd, EPOLLIN, 1), 0);
  ASSERT_EQ(add(w.ep_lt, efd, EPOLLIN, 2), 0);
  ASSERT_EQ(add(w.ep_et, w.fd, EPOLLIN | EPOLLET, 1), 0);  // queued ready, never harvested
  epoll_event out[4]{};
  ASSERT_EQ(wait_now(w.ep_lt, out, 4), 2) << "both registrations live before the close";
  // The probe measures what it should: these three items and no others exist.
  EXPECT_EQ(probe_watch_count(w.ep_et, w.probe, 3), std::make_pair(-1, ENOSPC));
  EXPECT_EQ(probe_watch_count(w.ep_et, w.probe, 4), std::make_pair(0, 0));

  const int dup = uepoll_dup(w.fd);
  ASSERT_GE(dup, 0);
  EXPECT_EQ(uepoll_close(w.fd), 0);
  EXPECT_EQ(w.releases.load(), 0);
  ASSERT_EQ(wait_now(w.ep_lt, out, 4), 2) << "the registration lives while the object does";
  w.fd = dup;
  EXPECT_EQ(uepoll_close(dup), 0);

  ASSERT_EQ(w.releases.load(), 1);
  EXPECT_EQ(w.seen_lt, 1) << "during release, the instance reported the plug-in";
  EXPECT_EQ(w.seen_lt_data, 2u) << "only the eventfd may be reported";
  EXPECT_EQ(w.seen_et, 0) << "during release, the ready item was still reported";
  EXPECT_EQ(w.probe_result, 0) << "during release, the plug-in's items still existed (errno "
                               << w.probe_errno << ")";
  EXPECT_EQ(wait_now(w.ep_et, out, 4), 0);
  ASSERT_EQ(wait_now(w.ep_lt, out, 4), 1);
  EXPECT_EQ(out[0].data.u64, 2u);
  EXPECT_EQ(uepoll_close(efd), 0);
  EXPECT_EQ(uepoll_close(w.probe), 0);
  EXPECT_EQ(uepoll_close(w.ep_lt), 0);
  EXPECT_EQ(uepoll_close(w.ep_et), 0);
  EXPECT_EQ(w.releases.load(), 1);
}

TEST_F(PluginFile, FailedCreateNeverCallsRelease) {
  Doorbell d;
  struct uepoll_file* handle = nullptr;
  for (const int flags : {O_APPEND, O_RDWR, O_WRONLY, O_TRUNC, O_NONBLOCK | O_DIRECT,
                          O_CLOEXEC | O_NOCTTY, static_cast<int>(1u << 30), -1}) {
    SCOPED_TRACE(testing::Message() << "flags 0x" << std::hex << flags);
    errno = 0;
    EXPECT_EQ(uepoll_file_create(&kDoorbellOps, &d, flags, &handle), -1);
    EXPECT_EQ(errno, EINVAL);
  }
  errno = 0;
  EXPECT_EQ(uepoll_file_create(nullptr, &d, 0, &handle), -1);
  EXPECT_EQ(errno, EINVAL);
  const uepoll_file_ops no_poll = {nullptr, doorbell_read, nullptr, doorbell_release};
  errno = 0;
  EXPECT_EQ(uepoll_file_create(&no_poll, &d, 0, &handle), -1);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(uepoll_file_create(&kDoorbellOps, &d, 0, nullptr), -1);
  EXPECT_EQ(errno, EFAULT);
  EXPECT_EQ(d.releases.load(), 0);
  EXPECT_EQ(d.polls.load(), 0);
  EXPECT_EQ(lowest_free(), first_free_) << "a failed create took a descriptor";
}

TEST_F(PluginFile, FullDescriptorTableIsEmfileWithoutRelease) {
  ASSERT_TRUE(g_small_table);
  const int base = uepoll_eventfd(0, 0);
  ASSERT_GE(base, 0);
  std::vector<int> fds;
  for (;;) {
    const int fd = uepoll_dup(base);
    if (fd < 0) {
      ASSERT_EQ(errno, EMFILE);
      break;
    }
    fds.push_back(fd);
    ASSERT_LE(fds.size(), 1u << 20) << "the table never filled up";
  }
  Doorbell d;
  errno = 0;
  EXPECT_EQ(make_doorbell(d), -1);
  EXPECT_EQ(errno, EMFILE);
  EXPECT_EQ(d.releases.load(), 0) << "release ran for an object the caller never got";
  for (const int fd : fds) {
    EXPECT_EQ(uepoll_close(fd), 0);
  }
  // The same priv can be given to a successful create afterwards.
  const int fd = make_doorbell(d);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(uepoll_close(fd), 0);
  EXPECT_EQ(uepoll_close(base), 0);
  EXPECT_EQ(d.releases.load(), 1);
}

// ------------------------------------------------------------------------------------------
// flags

TEST_F(PluginFile, CreateFlagsAreReportedByFcntl) {
  const struct {
    int flags;
    int fd_flags;
  } cases[] = {
      {0, 0}, {O_CLOEXEC, FD_CLOEXEC}, {O_NONBLOCK, 0}, {O_NONBLOCK | O_CLOEXEC, FD_CLOEXEC}};
  for (const auto& c : cases) {
    SCOPED_TRACE(testing::Message() << "flags 0x" << std::hex << c.flags);
    Doorbell d;
    const int fd = make_doorbell(d, c.flags);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(uepoll_fcntl(fd, F_GETFD), c.fd_flags);
    const int fl = uepoll_fcntl(fd, F_GETFL);
    ASSERT_GE(fl, 0);
    EXPECT_EQ(fl & O_ACCMODE, O_RDWR);
    EXPECT_EQ(fl & O_NONBLOCK, c.flags & O_NONBLOCK);
    EXPECT_EQ(fl & O_CLOEXEC, 0) << "close-on-exec is a descriptor flag, not a status flag";
    const int dup = uepoll_dup(fd);
    EXPECT_EQ(uepoll_fcntl(dup, F_GETFD), 0) << "dup clears close-on-exec";
    EXPECT_EQ(uepoll_fcntl(dup, F_GETFL) & O_NONBLOCK, c.flags & O_NONBLOCK);
    EXPECT_EQ(uepoll_close(dup), 0);
    EXPECT_EQ(uepoll_close(fd), 0);
    EXPECT_EQ(d.releases.load(), 1);
  }
}

// ------------------------------------------------------------------------------------------
// Races

// notify may race the last close: the handle stays valid until release has run. The notifier
// rings until it sees release start; release waits for it to stop, then frees priv (so a call
// of the object's ops after release would touch freed memory: ASan's business).
struct Racer {
  std::atomic<bool> release_started{false};
  std::atomic<bool> notifier_stopped{false};
  std::atomic<bool> notifying{false};
  struct uepoll_file* handle = nullptr;
};

std::atomic<int> g_racer_releases{0};

std::uint32_t racer_poll(void* priv) {
  return static_cast<Racer*>(priv)->release_started.load(std::memory_order_relaxed)
             ? 0u
             : std::uint32_t{EPOLLIN};
}

void racer_release(void* priv) {
  auto* r = static_cast<Racer*>(priv);
  r->release_started.store(true, std::memory_order_seq_cst);
  while (!r->notifier_stopped.load(std::memory_order_acquire)) {
    std::this_thread::yield();
  }
  g_racer_releases.fetch_add(1);
  delete r;
}

// No handshake at all: a thread keeps notifying through a handle while its object is closed,
// and after, while later objects reuse the handle. A notify that finds the object gone does
// nothing; one that finds a newer object is a spurious wake-up of it. (Sanitizer builds check
// that no freed memory is touched.)
TEST_F(PluginFile, NotifyThroughAndAfterTheLastCloseIsSafe) {
  std::atomic<uepoll_file*> target{nullptr};
  std::atomic<bool> quit{false};
  std::atomic<long> notifies{0};
  std::thread notifier([&] {
    while (!quit.load(std::memory_order_relaxed)) {
      if (uepoll_file* h = target.load(std::memory_order_acquire)) {
        uepoll_file_notify(h, EPOLLIN);
        notifies.fetch_add(1, std::memory_order_relaxed);
      }
    }
  });
  const int ep = uepoll_epoll_create1(0);
  ASSERT_GE(ep, 0);
  Rounds rounds(3000);
  while (rounds.next()) {
    Doorbell d;
    const int fd = make_doorbell(d);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(add(ep, fd, EPOLLIN | EPOLLET), 0);
    target.store(d.handle, std::memory_order_release);  // stays there after the close
    ring(d);
    epoll_event ev[2];
    EXPECT_EQ(uepoll_epoll_wait(ep, ev, 2, 10'000), 1);
    EXPECT_EQ(uepoll_close(fd), 0);
    EXPECT_EQ(d.releases.load(), 1);
  }
  // On a loaded machine the rounds may all end before the notifier first runs: it still has
  // the last handle, closed, to notify through (the "after" half of the test).
  for (int i = 0; i < 10'000 && notifies.load() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  quit = true;
  notifier.join();
  EXPECT_GT(notifies.load(), 0);
  EXPECT_EQ(uepoll_close(ep), 0);
}

TEST_F(PluginFile, NotifyRacingTheLastCloseIsSafe) {
  const uepoll_file_ops ops = {racer_poll, nullptr, nullptr, racer_release};
  std::atomic<Racer*> next{nullptr};
  std::atomic<bool> quit{false};
  std::atomic<long> notifies{0};
  std::thread notifier([&] {
    for (;;) {
      Racer* r = next.exchange(nullptr, std::memory_order_acquire);
      if (r == nullptr) {
        if (quit.load()) {
          return;
        }
        std::this_thread::yield();
        continue;
      }
      long n = 0;
      while (!r->release_started.load(std::memory_order_seq_cst)) {
        uepoll_file_notify(r->handle, EPOLLIN);
        if (++n == 1) {
          r->notifying.store(true, std::memory_order_release);
        }
      }
      notifies.fetch_add(n, std::memory_order_relaxed);
      r->notifier_stopped.store(true, std::memory_order_release);  // last touch of r
    }
  });

  const int ep_lt = uepoll_epoll_create1(0);
  const int ep_et = uepoll_epoll_create1(0);
  ASSERT_GE(ep_lt, 0);
  ASSERT_GE(ep_et, 0);
  std::mt19937 rng(7);
  std::atomic<int> sink{0};
  Rounds rounds(5000);
  int leftovers = 0;
  int created = 0;
  while (rounds.next()) {
    auto* r = new Racer;
    const int fd = uepoll_file_create(&ops, r, 0, &r->handle);
    if (fd < 0) {
      ADD_FAILURE() << "uepoll_file_create: errno " << errno;
      delete r;
      break;
    }
    ++created;
    EXPECT_EQ(add(ep_lt, fd, EPOLLIN), 0);
    EXPECT_EQ(add(ep_et, fd, EPOLLIN | EPOLLET), 0);
    next.store(r, std::memory_order_release);
    if (rounds.done() % 2 == 0) {
      while (!r->notifying.load(std::memory_order_acquire)) {  // the close lands mid-notify
        std::this_thread::yield();
      }
    }
    spin(sink, rng() % 512);
    EXPECT_EQ(uepoll_close(fd), 0);  // r is freed once this returns
    epoll_event out[2]{};
    leftovers += wait_now(ep_lt, out, 2) + wait_now(ep_et, out, 2);
  }
  quit = true;
  notifier.join();
  EXPECT_EQ(g_racer_releases.load(), created) << "release ran once per object";
  EXPECT_EQ(leftovers, 0) << "an instance reported a closed object";
  EXPECT_EQ(uepoll_close(ep_lt), 0);
  EXPECT_EQ(uepoll_close(ep_et), 0);
  std::printf("%d rounds, %ld notifies\n", created, notifies.load());
}

// Busy-waits until `cond()`, yielding once it has taken a while (the other thread is
// descheduled: let it run).
template <class Cond>
void spin_until(Cond&& cond) {
  for (unsigned spins = 0; !cond(); ++spins) {
    if (spins > 10000) {
      std::this_thread::yield();
    }
  }
}

// A ring on another thread at the moment the main thread hooks a fresh doorbell: `hook` (ADD
// then epoll_wait, poll(), a blocking read) returns false when it missed the ring.
//
// The window that matters is a few cycles wide, where the hook looks at the state (the poll of
// ADD or poll(), the read's retry after arming). Each round the main thread asks the ringer to
// get ready, and starts the round once it has answered, so that both are on a CPU; the ringer
// then spins for the start (and yields if it does not come soon: the two threads may share one
// CPU on a loaded machine). One of them busy-waits a little before its move,
// by an offset that the main thread tunes round by round so that about half the rings land
// before that look and half after (the doorbell counts the looks that found it not rung), plus
// some jitter. The hand-offs that need not be tight (hook returned, ringer done) sleep on a
// condition variable. A blocking read that slept through its ring would never return: the
// ringer rings again after kLostWakeupMs and counts the round as lost.
template <class Hook>
void race_rings(const char* what, Hook&& hook) {
  std::atomic<int> ask{0};     // the round the main thread wants to start; -1: stop
  std::atomic<int> ready{0};   // the round the ringer is ready for, spinning
  std::atomic<int> go{0};      // the round that starts now
  std::atomic<int> offset{0};  // busy-wait before the move: > 0 the hook's, < 0 the ring's
  std::atomic<Doorbell*> bell{nullptr};
  std::mutex mu;
  std::condition_variable cv;
  int hooked = 0;  // under mu: the last round whose hook returned
  int rung = 0;    // under mu: the last round the ringer is done with
  int rescued = 0;
  std::thread ringer([&] {
    std::atomic<int> sink{0};
    for (int done = 0;;) {
      int r = 0;
      spin_until([&] { return (r = ask.load(std::memory_order_acquire)) != done; });
      if (r < 0) {
        return;
      }
      ready.store(r, std::memory_order_release);
      spin_until([&] { return go.load(std::memory_order_acquire) == r; });
      spin(sink, static_cast<unsigned>(std::max(0, -offset.load(std::memory_order_relaxed))));
      Doorbell* d = bell.load(std::memory_order_relaxed);
      ring(*d);
      std::unique_lock lock(mu);
      if (!cv.wait_for(lock, std::chrono::milliseconds(kLostWakeupMs),
                       [&] { return hooked == r; })) {
        ++rescued;
        ring(*d);  // the same state, notified again: ends a read that slept through the first
        cv.wait(lock, [&] { return hooked == r; });
      }
      rung = done = r;
      cv.notify_all();
    }
  });

  Rounds rounds(10000);
  int lost = 0;
  int late = 0;  // rounds whose ring came after the hook's look: the wake-up was needed
  int aim = 0;   // the offset that puts the ring at the hook's look, tuned below
  std::mt19937 rng(5);
  std::atomic<int> sink{0};
  while (rounds.next()) {
    Doorbell d;
    const int fd = make_doorbell(d);
    if (fd < 0) {
      ADD_FAILURE() << "uepoll_file_create: errno " << errno;
      break;
    }
    const int round = rounds.done();
    bell.store(&d, std::memory_order_relaxed);
    offset.store(aim + static_cast<int>(rng() % 128) - 64, std::memory_order_relaxed);
    ask.store(round, std::memory_order_release);
    spin_until([&] { return ready.load(std::memory_order_acquire) == round; });
    go.store(round, std::memory_order_release);
    spin(sink, static_cast<unsigned>(std::max(0, offset.load(std::memory_order_relaxed))));
    if (!hook(fd)) {
      ++lost;
    }
    if (d.misses.load() > 0) {  // the ring came after the look: hook later next time
      ++late;
      aim = std::min(4096, aim + 8);
    } else {
      aim = std::max(-4096, aim - 8);
    }
    {
      std::unique_lock lock(mu);
      hooked = round;
      cv.notify_all();
      cv.wait(lock, [&] { return rung == round; });  // the ringer is done with this doorbell
    }
    EXPECT_EQ(uepoll_close(fd), 0);
    EXPECT_EQ(d.releases.load(), 1);
  }
  ask.store(-1, std::memory_order_release);
  ringer.join();
  std::printf("%s: %d rounds (%d rang after the hook looked), %d lost, %d rescued (aim %d)\n", what,
              rounds.done(), late, lost, rescued, aim);
  EXPECT_EQ(lost, 0) << "of " << rounds.done() << " rounds";
  EXPECT_EQ(rescued, 0) << "of " << rounds.done() << " rounds: slept through the ring";
}

TEST_F(PluginFile, AddRacingARingNeverLosesTheEvent) {
  const int ep = uepoll_epoll_create1(0);
  ASSERT_GE(ep, 0);
  race_rings("epoll_ctl ADD + epoll_wait", [ep](int fd) {
    EXPECT_EQ(add(ep, fd, EPOLLIN | EPOLLET), 0);
    epoll_event out[1]{};
    return uepoll_epoll_wait(ep, out, 1, kLostWakeupMs) == 1;
  });
  epoll_event out[1]{};
  EXPECT_EQ(wait_now(ep, out), 0) << "closed doorbells left registrations behind";
  EXPECT_EQ(uepoll_close(ep), 0);
}

TEST_F(PluginFile, PollRacingARingNeverLosesTheWakeUp) {
  race_rings("poll", [](int fd) {
    pollfd p{fd, POLLIN, 0};
    return poll_woken(p) && p.revents == POLLIN;
  });
}

TEST_F(PluginFile, BlockingReadRacingARingNeverSleepsThroughIt) {
  Watchdog watchdog(std::chrono::seconds(30));  // a notify that wakes nothing at all
  race_rings("blocking read", [](int fd) {
    std::uint64_t v = 0;
    return uepoll_read(fd, &v, sizeof v) == static_cast<ssize_t>(sizeof v) && v == 1;
  });
}

}  // namespace
