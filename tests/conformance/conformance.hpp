// Shared pieces of the conformance suite: every test is written once against `uepoll_test::Api`
// and runs on both backends (the host kernel and uepoll). The kernel is the oracle: a test passes
// on the kernel instance by construction, and the uepoll instance must give the same result.
//
// Setup steps that must succeed go through `must()`, which throws on failure; GoogleTest turns the
// exception into a failure of the running test, so a broken setup stops the test at once instead
// of cascading into unrelated assertions.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/types.h>

#include <cerrno>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "support/backend.hpp"

namespace uepoll_conformance {

using uepoll_test::Api;

// A descriptor that cannot be open in either table: far above the kernel's RLIMIT_NOFILE and
// far above anything the suite allocates from uepoll.
inline constexpr int kNeverOpenFd = 987654;

// Returns `rc`; throws std::runtime_error naming `what` and errno when `rc` is negative.
long must(long rc, const char* what);

// `errno` as its symbolic name ("EBADF"), for messages.
std::string errno_name(int err);

// For EXPECT_ERRNO: success when `rc == -1 && errno == expected`. It reads errno, so it must be
// called right after the call under test (EXPECT_PRED_FORMAT2 evaluates its arguments first).
testing::AssertionResult failed_with(const char* expected_text, const char* call_text, int expected,
                                     long rc);

// EXPECT_ERRNO(EBADF, api().close(-1)): the call fails with -1 and that errno. errno is cleared
// before the call, so a -1 that leaves errno alone shows up as such. Accepts `<< message`.
#define EXPECT_ERRNO(err, call) \
  switch (0)                    \
  case 0:                       \
  default:                      \
    if ((errno = 0) != 0) {     \
    } else                      \
      EXPECT_PRED_FORMAT2(::uepoll_conformance::failed_with, err, call)

// One descriptor of one backend, closed on destruction. It converts to int, so it can be passed
// straight to the API; close it by hand only after release().
class Fd {
 public:
  Fd() = default;
  Fd(const Api& api, int fd) : api_(&api), fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : api_(other.api_), fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      api_ = other.api_;
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~Fd() { reset(); }

  int get() const { return fd_; }
  operator int() const { return fd_; }  // NOLINT(google-explicit-constructor): reads like an fd
  // Gives up ownership (for tests that close by hand).
  int release() { return std::exchange(fd_, -1); }
  void reset() {
    if (fd_ >= 0 && api_ != nullptr) api_->close(fd_);
    fd_ = -1;
  }

 private:
  const Api* api_ = nullptr;
  int fd_ = -1;
};

// One delivered event, comparable and printable.
struct Ev {
  uint32_t events;
  uint64_t data;
  friend bool operator==(const Ev&, const Ev&) = default;
};
std::string event_names(uint32_t events);  // "IN|OUT|HUP"
void PrintTo(const Ev& ev, std::ostream* os);
using Evs = std::vector<Ev>;

// Base fixture: the parameter is the backend.
class Conformance : public testing::TestWithParam<const Api*> {
 protected:
  const Api& api() const { return *GetParam(); }
  bool on_kernel() const { return GetParam()->is_kernel; }

  Fd make_epoll();
  Fd make_eventfd(unsigned initval = 0, int flags = 0);
  std::pair<Fd, Fd> make_pipe(int flags = 0);             // {read end, write end}
  std::pair<Fd, Fd> make_socketpair(int type_flags = 0);  // AF_UNIX stream
  Fd adopt(int fd) { return Fd(api(), fd); }

  void add(int epfd, int fd, uint32_t events, uint64_t data);
  void mod(int epfd, int fd, uint32_t events, uint64_t data);
  void del(int epfd, int fd);

  // epoll_wait on `epfd`; throws when it fails.
  Evs wait(int epfd, int maxevents = 16, int timeout_ms = 0);
  // Number of events a non-blocking epoll_wait returns (for counting-only checks).
  int wait_count(int epfd, int maxevents);
  // poll(POLLIN) on one descriptor with timeout 0: the poll() return value.
  int poll_in(int fd);
  // The readiness an epoll instance sees for `fd` right now: `fd` is added to a fresh instance
  // with IN|OUT|RDHUP|PRI, level-triggered, and one non-blocking wait is made. 0 when not ready.
  uint32_t readiness(int fd);

  void write_byte(int fd);
  void write_u64(int fd, uint64_t value);
  uint64_t read_u64(int fd);
};

// For INSTANTIATE_TEST_SUITE_P: names the instances "kernel" and "uepoll".
std::string backend_name(const testing::TestParamInfo<const Api*>& info);

#define UEPOLL_CONFORMANCE_SUITE(suite)                                                \
  INSTANTIATE_TEST_SUITE_P(                                                            \
      Backends, suite,                                                                 \
      testing::ValuesIn(uepoll_test::both_apis_begin(), uepoll_test::both_apis_end()), \
      ::uepoll_conformance::backend_name)

// Installs an empty SIGUSR1 handler (with SA_RESTART unless told otherwise) for the lifetime of
// the object, restoring the previous disposition afterwards, and counts its runs. Linux never
// restarts epoll_wait or poll, so a blocked wait that takes the signal fails with EINTR despite
// SA_RESTART. Not nestable.
class Sigusr1Handler {
 public:
  explicit Sigusr1Handler(bool restart = true);
  ~Sigusr1Handler();
  Sigusr1Handler(const Sigusr1Handler&) = delete;
  Sigusr1Handler& operator=(const Sigusr1Handler&) = delete;
  static int runs();
  static void reset_runs();
};

// Blocks `signo` in the calling thread for the object's lifetime; on destruction any pending
// instance is consumed and the previous mask restored. Used to observe SIGPIPE without dying.
class BlockedSignal {
 public:
  explicit BlockedSignal(int signo);
  ~BlockedSignal();
  BlockedSignal(const BlockedSignal&) = delete;
  BlockedSignal& operator=(const BlockedSignal&) = delete;
  // Pending for the calling thread itself (not merely for the process).
  bool pending_for_thread() const;
  // Pending for the thread or the process; consumes one instance if so.
  bool consume();

 private:
  int signo_;
  sigset_t old_;
};

// How a waiter thread waits on its instance.
enum class WaitKind {
  kEpollWait,     // epoll_wait(timeout -1)
  kPwait,         // epoll_pwait(timeout -1, NULL mask)
  kPwait2,        // epoll_pwait2(NULL timeout, NULL mask)
  kPollThenWait,  // poll(POLLIN, timeout -1) on the instance, then epoll_wait(timeout 0)
};

struct WaiterSpec {
  int epfd;
  WaitKind kind;
  int maxevents;
};

struct WaiterResult {
  int rc = 0;   // what the last call returned (for kPollThenWait: the epoll_wait, if made)
  int err = 0;  // errno when rc is -1
  bool interrupted = false;  // the harness had to end this wait with SIGUSR1
  bool harvested() const { return rc > 0; }
};

// Starts one thread per spec, waits until each is asleep in its call, then runs `emit` on the
// calling thread. It then waits (up to a few seconds, failing the test otherwise) until at least
// `must_return` waiters have returned; if any are still blocked, it allows a short settle delay
// for late wake-ups and then ends the remaining waits with SIGUSR1 (it installs its own
// Sigusr1Handler, so the caller must not hold one). Interrupted waits must fail with EINTR;
// other failures are reported.
// With `in_order`, waiter i starts only once waiter i-1 sleeps, so that they go to sleep in the
// order of `specs` (the wake order tests).
std::vector<WaiterResult> run_waiters(const Api& api, const std::vector<WaiterSpec>& specs,
                                      size_t must_return, bool in_order,
                                      const std::function<void()>& emit);
inline std::vector<WaiterResult> run_waiters(const Api& api, const std::vector<WaiterSpec>& specs,
                                             size_t must_return,
                                             const std::function<void()>& emit) {
  return run_waiters(api, specs, must_return, /*in_order=*/false, emit);
}

// Bit i set when waiter i harvested at least one event.
unsigned harvest_mask(const std::vector<WaiterResult>& results);
int harvest_count(const std::vector<WaiterResult>& results);

// Runs `blocking_call` on a new thread, waits until that thread sleeps in it, then runs
// `unblock` on the calling thread, and returns what `blocking_call` returned.
long returns_after(const std::function<long()>& blocking_call,
                   const std::function<void()>& unblock);

// Blocks until the thread `tid` sleeps in the kernel (state S), or `limit_ms` passes, or the
// thread is gone. True when it was seen asleep.
bool wait_until_asleep(pid_t tid, int limit_ms = 2000);

// SIGPIPEs delivered to the process so far: the socket tests count them with a handler installed
// at start (SIGUSR1 gets one too, without SA_RESTART, so that it interrupts blocking calls).
int sigpipes_so_far();

}  // namespace uepoll_conformance
