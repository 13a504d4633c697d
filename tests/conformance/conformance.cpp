#include "conformance.hpp"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace uepoll_conformance {

long must(long rc, const char* what) {
  if (rc < 0) {
    const int err = errno;
    throw std::runtime_error(std::string(what) + " failed: " + errno_name(err));
  }
  return rc;
}

std::string errno_name(int err) {
  if (err == 0) return "0 (errno not set)";
  const char* name = strerrorname_np(err);
  return name != nullptr ? std::string(name) : "errno " + std::to_string(err);
}

testing::AssertionResult failed_with(const char* /*expected_text*/, const char* call_text,
                                     int expected, long rc) {
  const int err = errno;
  if (rc == -1 && err == expected) return testing::AssertionSuccess();
  testing::AssertionResult result = testing::AssertionFailure();
  result << call_text << "\n  expected: -1 with " << errno_name(expected) << "\n  actual:   ";
  if (rc == -1) {
    result << "-1 with " << errno_name(err);
  } else {
    result << rc << " (success)";
  }
  return result;
}

std::string event_names(uint32_t events) {
  static constexpr std::array<std::pair<uint32_t, const char*>, 13> kNames = {{
      {EPOLLIN, "IN"},
      {EPOLLPRI, "PRI"},
      {EPOLLOUT, "OUT"},
      {EPOLLERR, "ERR"},
      {EPOLLHUP, "HUP"},
      {EPOLLRDNORM, "RDNORM"},
      {EPOLLRDBAND, "RDBAND"},
      {EPOLLWRNORM, "WRNORM"},
      {EPOLLWRBAND, "WRBAND"},
      {EPOLLMSG, "MSG"},
      {EPOLLRDHUP, "RDHUP"},
      {EPOLLONESHOT, "ONESHOT"},
      {EPOLLET, "ET"},
  }};
  std::string out;
  for (const auto& [bit, name] : kNames) {
    if ((events & bit) != 0) {
      if (!out.empty()) out += '|';
      out += name;
      events &= ~bit;
    }
  }
  if (events != 0) {
    char rest[24];
    std::snprintf(rest, sizeof rest, "%s0x%x", out.empty() ? "" : "|", events);
    out += rest;
  }
  return out.empty() ? "0" : out;
}

void PrintTo(const Ev& ev, std::ostream* os) {
  *os << "{" << event_names(ev.events) << ", data " << ev.data << "}";
}

std::string backend_name(const testing::TestParamInfo<const Api*>& info) {
  return info.param->name;
}

// ---- Conformance fixture -------------------------------------------------------------------

Fd Conformance::make_epoll() {
  return adopt(static_cast<int>(must(api().epoll_create1(0), "epoll_create1")));
}

Fd Conformance::make_eventfd(unsigned initval, int flags) {
  return adopt(static_cast<int>(must(api().eventfd(initval, flags), "eventfd")));
}

std::pair<Fd, Fd> Conformance::make_pipe(int flags) {
  int fds[2];
  must(api().pipe2(fds, flags), "pipe2");
  return {adopt(fds[0]), adopt(fds[1])};
}

std::pair<Fd, Fd> Conformance::make_socketpair(int type_flags) {
  int sv[2];
  must(api().socketpair(AF_UNIX, SOCK_STREAM | type_flags, 0, sv), "socketpair");
  return {adopt(sv[0]), adopt(sv[1])};
}

void Conformance::add(int epfd, int fd, uint32_t events, uint64_t data) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = data;
  must(api().epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev), "epoll_ctl(ADD)");
}

void Conformance::mod(int epfd, int fd, uint32_t events, uint64_t data) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = data;
  must(api().epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev), "epoll_ctl(MOD)");
}

void Conformance::del(int epfd, int fd) {
  must(api().epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nullptr), "epoll_ctl(DEL)");
}

Evs Conformance::wait(int epfd, int maxevents, int timeout_ms) {
  std::vector<epoll_event> buf(static_cast<size_t>(maxevents));
  const int n = static_cast<int>(
      must(api().epoll_wait(epfd, buf.data(), maxevents, timeout_ms), "epoll_wait"));
  Evs out;
  for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
    out.push_back({buf[i].events, buf[i].data.u64});
  }
  return out;
}

int Conformance::wait_count(int epfd, int maxevents) {
  return static_cast<int>(wait(epfd, maxevents, 0).size());
}

int Conformance::poll_in(int fd) {
  pollfd pfd{fd, POLLIN, 0};
  return static_cast<int>(must(api().poll(&pfd, 1, 0), "poll"));
}

uint32_t Conformance::readiness(int fd) {
  Fd ep = make_epoll();
  add(ep, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI, 0);
  const Evs got = wait(ep, 4, 0);
  if (got.size() > 1) throw std::runtime_error("readiness: more than one event for one item");
  return got.empty() ? 0 : got[0].events;
}

void Conformance::write_byte(int fd) {
  const char c = 'w';
  if (must(api().write(fd, &c, 1), "write") != 1) throw std::runtime_error("short write");
}

void Conformance::write_u64(int fd, uint64_t value) {
  if (must(api().write(fd, &value, sizeof value), "write") != sizeof value) {
    throw std::runtime_error("short write");
  }
}

uint64_t Conformance::read_u64(int fd) {
  uint64_t value = 0;
  if (must(api().read(fd, &value, sizeof value), "read") != sizeof value) {
    throw std::runtime_error("short read");
  }
  return value;
}

// ---- Signals ---------------------------------------------------------------------------------

namespace {
std::atomic<int> g_sigusr1_runs{0};
struct sigaction g_previous_sigusr1;

void count_sigusr1(int /*signo*/) { g_sigusr1_runs.fetch_add(1, std::memory_order_relaxed); }
}  // namespace

Sigusr1Handler::Sigusr1Handler(bool restart) {
  struct sigaction sa {};
  sa.sa_handler = count_sigusr1;
  sa.sa_flags = restart ? SA_RESTART : 0;
  sigemptyset(&sa.sa_mask);
  must(sigaction(SIGUSR1, &sa, &g_previous_sigusr1), "sigaction(SIGUSR1)");
  reset_runs();
}

Sigusr1Handler::~Sigusr1Handler() { sigaction(SIGUSR1, &g_previous_sigusr1, nullptr); }

int Sigusr1Handler::runs() { return g_sigusr1_runs.load(); }
void Sigusr1Handler::reset_runs() { g_sigusr1_runs.store(0); }

BlockedSignal::BlockedSignal(int signo) : signo_(signo) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, signo);
  pthread_sigmask(SIG_BLOCK, &set, &old_);
}

BlockedSignal::~BlockedSignal() {
  while (consume()) {
  }
  pthread_sigmask(SIG_SETMASK, &old_, nullptr);
}

bool BlockedSignal::pending_for_thread() const {
  // The "SigPnd" line of /proc/thread-self/status is the thread's own pending set, in hex.
  std::ifstream in("/proc/thread-self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("SigPnd:", 0) == 0) {
      const unsigned long long bits = std::stoull(line.substr(7), nullptr, 16);
      return ((bits >> (signo_ - 1)) & 1U) != 0;
    }
  }
  return false;
}

bool BlockedSignal::consume() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, signo_);
  const timespec zero{0, 0};
  return sigtimedwait(&set, nullptr, &zero) == signo_;
}

// ---- Waiter threads --------------------------------------------------------------------------

bool wait_until_asleep(pid_t tid, int limit_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(limit_ms);
  const std::string path = "/proc/self/task/" + std::to_string(tid) + "/stat";
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(path);
    if (!in.is_open()) return false;  // the thread has exited
    std::string line;
    std::getline(in, line);
    const auto close_paren = line.rfind(')');
    if (close_paren != std::string::npos && close_paren + 2 < line.size() &&
        line[close_paren + 2] == 'S') {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return false;
}

long returns_after(const std::function<long()>& blocking_call,
                   const std::function<void()>& unblock) {
  std::atomic<pid_t> tid{0};
  long result = -2;
  std::thread t([&] {
    tid = gettid();
    result = blocking_call();
  });
  while (tid.load() == 0) std::this_thread::yield();
  wait_until_asleep(tid.load());
  unblock();
  t.join();
  return result;
}

namespace {

struct WaiterSlot {
  std::thread thread;
  pthread_t handle{};
  pid_t tid = 0;
  bool started = false;
  bool done = false;
  WaiterResult result;
};

int do_wait(const Api& api, const WaiterSpec& spec) {
  std::vector<epoll_event> buf(static_cast<size_t>(spec.maxevents > 0 ? spec.maxevents : 1));
  switch (spec.kind) {
    case WaitKind::kEpollWait: return api.epoll_wait(spec.epfd, buf.data(), spec.maxevents, -1);
    case WaitKind::kPwait:
      return api.epoll_pwait(spec.epfd, buf.data(), spec.maxevents, -1, nullptr);
    case WaitKind::kPwait2:
      return api.epoll_pwait2(spec.epfd, buf.data(), spec.maxevents, nullptr, nullptr);
    case WaitKind::kPollThenWait: {
      pollfd pfd{spec.epfd, POLLIN, 0};
      const int n = api.poll(&pfd, 1, -1);
      if (n <= 0) return n;
      return api.epoll_wait(spec.epfd, buf.data(), spec.maxevents, 0);
    }
  }
  return -1;
}

}  // namespace

std::vector<WaiterResult> run_waiters(const Api& api, const std::vector<WaiterSpec>& specs,
                                      size_t must_return, bool in_order,
                                      const std::function<void()>& emit) {
  Sigusr1Handler handler;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<WaiterSlot> slots(specs.size());

  for (size_t i = 0; i < specs.size(); ++i) {
    if (in_order && i > 0) {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return slots[i - 1].started; });
      const pid_t previous = slots[i - 1].tid;
      lock.unlock();
      wait_until_asleep(previous);
    }
    slots[i].thread = std::thread([&, i] {
      {
        std::lock_guard lock(mu);
        slots[i].handle = pthread_self();
        slots[i].tid = gettid();
        slots[i].started = true;
      }
      cv.notify_all();
      const int rc = do_wait(api, specs[i]);
      const int err = errno;
      {
        std::lock_guard lock(mu);
        slots[i].result.rc = rc;
        slots[i].result.err = rc < 0 ? err : 0;
        slots[i].done = true;
      }
      cv.notify_all();
    });
  }

  std::unique_lock lock(mu);
  cv.wait(lock, [&] {
    for (const auto& s : slots)
      if (!s.started) return false;
    return true;
  });
  std::vector<pid_t> tids;
  for (const auto& s : slots) tids.push_back(s.tid);
  lock.unlock();
  // Every waiter must be asleep in its call before the event is produced; otherwise the test
  // would check the fast path instead of the wake-up.
  for (pid_t tid : tids) wait_until_asleep(tid);

  emit();

  auto finished = [&] {
    size_t n = 0;
    for (const auto& s : slots) n += s.done ? 1 : 0;
    return n;
  };
  lock.lock();
  if (!cv.wait_for(lock, std::chrono::seconds(5), [&] { return finished() >= must_return; })) {
    ADD_FAILURE() << "only " << finished() << " of the " << must_return
                  << " waiters that must wake returned within 5 s";
  }
  if (finished() < slots.size()) {
    // Settle: a waiter that should not wake gets a moment to (wrongly) return.
    cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return finished() == slots.size(); });
  }
  // End the waits that are still blocked. Repeat the signal until each returns: a signal that
  // lands just before the thread enters its call would otherwise be lost.
  for (auto& s : slots) {
    while (!s.done) {
      s.result.interrupted = true;
      pthread_kill(s.handle, SIGUSR1);
      cv.wait_for(lock, std::chrono::milliseconds(20), [&] { return s.done; });
    }
  }
  lock.unlock();

  std::vector<WaiterResult> results;
  for (size_t i = 0; i < slots.size(); ++i) {
    slots[i].thread.join();
    const WaiterResult& r = slots[i].result;
    if (r.interrupted) {
      // A wake-up already in flight when the signal came may still deliver events; that is
      // judged by the caller's counts. A failure must be EINTR.
      EXPECT_TRUE(r.rc >= 0 || r.err == EINTR)
          << "waiter " << i << " was ended by SIGUSR1 and failed with " << errno_name(r.err)
          << ", expected EINTR";
    } else {
      EXPECT_GE(r.rc, 0) << "waiter " << i << " failed with " << errno_name(r.err);
    }
    results.push_back(r);
  }
  return results;
}

unsigned harvest_mask(const std::vector<WaiterResult>& results) {
  unsigned mask = 0;
  for (size_t i = 0; i < results.size(); ++i)
    if (results[i].harvested()) mask |= 1U << i;
  return mask;
}

int harvest_count(const std::vector<WaiterResult>& results) {
  int n = 0;
  for (const auto& r : results) n += r.harvested() ? 1 : 0;
  return n;
}

namespace {
std::atomic<int> g_sigpipes{0};
void on_sigpipe(int) { g_sigpipes.fetch_add(1); }
void on_sigusr1(int) {}
const bool g_signals_installed = [] {
  struct sigaction sa {};
  sa.sa_handler = on_sigpipe;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPIPE, &sa, nullptr);
  sa.sa_handler = on_sigusr1;
  sigaction(SIGUSR1, &sa, nullptr);
  return true;
}();
}  // namespace

int sigpipes_so_far() { return g_sigpipes.load(); }

}  // namespace uepoll_conformance
