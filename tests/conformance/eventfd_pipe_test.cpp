// Readiness thresholds and I/O rules of eventfds and pipes.
//
// readiness(fd) is what a fresh LT instance watching IN|OUT|RDHUP|PRI reports for fd right now.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "conformance.hpp"

namespace uepoll_conformance {
namespace {

constexpr uint64_t kEventfdMax = 0xfffffffffffffffeULL;  // the largest counter value
constexpr uint32_t IN = EPOLLIN;
constexpr uint32_t OUT = EPOLLOUT;

// ---- eventfd -----------------------------------------------------------------------------------

class EventfdObject : public Conformance {};

TEST_P(EventfdObject, ReadReturnsAndResetsTheCounter) {
  Fd efd = make_eventfd(3, EFD_NONBLOCK);
  EXPECT_EQ(readiness(efd), IN | OUT);
  write_u64(efd, 4);
  EXPECT_EQ(read_u64(efd), 7U);
  EXPECT_EQ(readiness(efd), OUT);
  uint64_t v = 0;
  EXPECT_ERRNO(EAGAIN, api().read(efd, &v, sizeof v));
}

TEST_P(EventfdObject, InitialValueIsTheCounter) {
  Fd efd = make_eventfd(UINT_MAX);
  EXPECT_EQ(read_u64(efd), uint64_t{UINT_MAX});
  Fd zero = make_eventfd(0);
  EXPECT_EQ(readiness(zero), OUT);
}

TEST_P(EventfdObject, SemaphoreModeReadsOneAtATime) {
  Fd efd = make_eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
  EXPECT_EQ(read_u64(efd), 1U);
  EXPECT_EQ(read_u64(efd), 1U);
  EXPECT_EQ(readiness(efd), IN | OUT);
  EXPECT_EQ(read_u64(efd), 1U);
  EXPECT_EQ(readiness(efd), OUT);
  uint64_t v = 0;
  EXPECT_ERRNO(EAGAIN, api().read(efd, &v, sizeof v));
  write_u64(efd, 2);
  EXPECT_EQ(read_u64(efd), 1U);
  EXPECT_EQ(read_u64(efd), 1U);
}

// EPOLLOUT while the counter is below 2^64-2; a write that would pass the maximum blocks (here:
// EAGAIN, non-blocking).
TEST_P(EventfdObject, WritableUntilTheCounterIsAtItsMaximum) {
  Fd efd = make_eventfd(0, EFD_NONBLOCK);
  write_u64(efd, kEventfdMax - 1);
  EXPECT_EQ(readiness(efd), IN | OUT);
  write_u64(efd, 1);
  EXPECT_EQ(readiness(efd), IN);
  const uint64_t one = 1;
  EXPECT_ERRNO(EAGAIN, api().write(efd, &one, sizeof one));
  write_u64(efd, 0);  // adding nothing always fits
  EXPECT_EQ(read_u64(efd), kEventfdMax);
  EXPECT_EQ(readiness(efd), OUT);
  write_u64(efd, kEventfdMax);  // in one step
  EXPECT_EQ(readiness(efd), IN);
}

TEST_P(EventfdObject, WritesMustBeEightBytesAndNotAllOnes) {
  Fd efd = make_eventfd(0, EFD_NONBLOCK);
  const uint64_t all_ones = ~0ULL;
  EXPECT_ERRNO(EINVAL, api().write(efd, &all_ones, sizeof all_ones));
  const uint64_t two[2] = {1, 1};
  EXPECT_ERRNO(EINVAL, api().write(efd, two, 4));
  EXPECT_ERRNO(EINVAL, api().write(efd, two, 7));
  EXPECT_ERRNO(EINVAL, api().write(efd, two, 9));
  EXPECT_ERRNO(EINVAL, api().write(efd, two, 16));
  EXPECT_EQ(readiness(efd), OUT);  // nothing was added
}

TEST_P(EventfdObject, ReadsNeedEightBytes) {
  Fd efd = make_eventfd(5, EFD_NONBLOCK);
  uint64_t buf[2] = {0, 0};
  EXPECT_ERRNO(EINVAL, api().read(efd, buf, 4));
  EXPECT_ERRNO(EINVAL, api().read(efd, buf, 0));
  EXPECT_EQ(api().read(efd, buf, sizeof buf), 8);  // a larger buffer is fine
  EXPECT_EQ(buf[0], 5U);
}

// t1: blocking read on an empty eventfd | write 9
TEST_P(EventfdObject, BlockingReadWakesOnWrite) {
  Fd efd = make_eventfd();
  uint64_t got = 0;
  const long n = returns_after([&] { return static_cast<long>(api().read(efd, &got, sizeof got)); },
                               [&] { write_u64(efd, 9); });
  EXPECT_EQ(n, 8);
  EXPECT_EQ(got, 9U);
}

// t1: blocking write of 2 into a counter at max-1 | read
TEST_P(EventfdObject, BlockingWriteWakesOnRead) {
  Fd efd = make_eventfd();
  write_u64(efd, kEventfdMax - 1);
  const uint64_t two = 2;
  const long n =
      returns_after([&] { return static_cast<long>(api().write(efd, &two, sizeof two)); },
                    [&] { EXPECT_EQ(read_u64(efd), kEventfdMax - 1); });
  EXPECT_EQ(n, 8);
  EXPECT_EQ(read_u64(efd), 2U);
}

// ---- pipes -------------------------------------------------------------------------------------

class PipeObject : public Conformance {};

TEST_P(PipeObject, FreshPipeIsWritableNotReadable) {
  auto [r, w] = make_pipe();
  EXPECT_EQ(readiness(r), 0U);
  EXPECT_EQ(readiness(w), OUT);
  write_byte(w);
  EXPECT_EQ(readiness(r), IN);
}

TEST_P(PipeObject, CapacityIs64KiB) {
  auto [r, w] = make_pipe(O_NONBLOCK);
  std::vector<char> buf(100000, 'p');
  EXPECT_EQ(api().write(w, buf.data(), buf.size()), 65536);
  EXPECT_ERRNO(EAGAIN, api().write(w, buf.data(), 1));
  EXPECT_EQ(readiness(w), 0U);
  EXPECT_EQ(readiness(r), IN);
}

// FIONREAD counts what both ends' shared buffer holds; an eventfd and an epoll have no such
// ioctl (an epoll's knows only its busy-poll parameters, Linux 6.9 and later).
TEST_P(PipeObject, FionreadCountsTheBufferFromEitherEnd) {
  auto [r, w] = make_pipe(O_NONBLOCK);
  int n = -1;
  ASSERT_EQ(api().fionread(r, &n), 0);
  EXPECT_EQ(n, 0);
  std::vector<char> buf(10000, 'p');
  ASSERT_EQ(api().write(w, buf.data(), 5000), 5000);
  ASSERT_EQ(api().write(w, buf.data(), 3), 3);
  ASSERT_EQ(api().read(r, buf.data(), 1000), 1000);
  ASSERT_EQ(api().fionread(r, &n), 0);
  EXPECT_EQ(n, 4003);
  ASSERT_EQ(api().fionread(w, &n), 0);
  EXPECT_EQ(n, 4003);
  Fd e = make_eventfd(3);
  EXPECT_ERRNO(ENOTTY, api().fionread(e, &n));
  Fd ep = make_epoll();
  EXPECT_ERRNO(EINVAL, api().fionread(ep, &n));
  EXPECT_ERRNO(EBADF, api().fionread(12345, &n));
}

// Full pipe: writable again only once a whole page (4096 bytes) is free.
TEST_P(PipeObject, WritableAgainOncePageIsFree) {
  auto [r, w] = make_pipe(O_NONBLOCK);
  std::vector<char> buf(65536, 'p');
  ASSERT_EQ(api().write(w, buf.data(), buf.size()), 65536);
  ASSERT_EQ(api().read(r, buf.data(), 4095), 4095);
  EXPECT_EQ(readiness(w), 0U);
  EXPECT_ERRNO(EAGAIN, api().write(w, buf.data(), 1));
  ASSERT_EQ(api().read(r, buf.data(), 1), 1);
  EXPECT_EQ(readiness(w), OUT);
  EXPECT_EQ(api().write(w, buf.data(), 4096), 4096);
  EXPECT_EQ(readiness(w), 0U);
}

// ep -ET,OUT-> w, full pipe ; the reader drains a page
TEST_P(PipeObject, DrainingAPageWakesTheWriterSide) {
  auto [r, w] = make_pipe(O_NONBLOCK);
  Fd ep = make_epoll();
  add(ep, w, EPOLLOUT | EPOLLET, 1);
  EXPECT_EQ(wait(ep), (Evs{{OUT, 1}}));
  std::vector<char> buf(65536, 'p');
  ASSERT_EQ(api().write(w, buf.data(), buf.size()), 65536);
  EXPECT_EQ(wait(ep), Evs{});
  ASSERT_EQ(api().read(r, buf.data(), 4096), 4096);
  EXPECT_EQ(wait(ep), (Evs{{OUT, 1}}));
}

TEST_P(PipeObject, ReaderGoneGivesErrEpipeAndSigpipe) {
  auto [r, w] = make_pipe();
  Fd ep = make_epoll();
  add(ep, w, EPOLLOUT, 1);
  r.reset();
  EXPECT_EQ(wait(ep), (Evs{{OUT | EPOLLERR, 1}}));
  BlockedSignal sigpipe(SIGPIPE);
  char c = 'x';
  EXPECT_ERRNO(EPIPE, api().write(w, &c, 1));
  EXPECT_TRUE(sigpipe.pending_for_thread()) << "SIGPIPE must be raised in the writing thread";
  EXPECT_TRUE(sigpipe.consume());
  EXPECT_FALSE(sigpipe.consume()) << "one failed write raises one SIGPIPE";
}

TEST_P(PipeObject, ReaderGoneFromAFullPipeGivesErrOnly) {
  auto [r, w] = make_pipe(O_NONBLOCK);
  std::vector<char> buf(65536, 'p');
  ASSERT_EQ(api().write(w, buf.data(), buf.size()), 65536);
  r.reset();
  EXPECT_EQ(readiness(w), uint32_t{EPOLLERR});
}

TEST_P(PipeObject, EpipeWithoutSignalWhenSigpipeIsIgnored) {
  auto [r, w] = make_pipe();
  r.reset();
  struct sigaction ignore {
  }, old{};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  ASSERT_EQ(sigaction(SIGPIPE, &ignore, &old), 0);
  char c = 'x';
  EXPECT_ERRNO(EPIPE, api().write(w, &c, 1));
  sigaction(SIGPIPE, &old, nullptr);
}

TEST_P(PipeObject, WriterGoneGivesHupAfterTheData) {
  auto [r, w] = make_pipe();
  Fd ep = make_epoll();
  add(ep, r, EPOLLIN | EPOLLRDHUP, 1);
  write_byte(w);
  w.reset();
  // No RDHUP for pipes, even when asked for.
  EXPECT_EQ(wait(ep), (Evs{{IN | EPOLLHUP, 1}}));
  char buf[4];
  EXPECT_EQ(api().read(r, buf, sizeof buf), 1);
  EXPECT_EQ(wait(ep), (Evs{{EPOLLHUP, 1}}));
  EXPECT_EQ(api().read(r, buf, sizeof buf), 0);  // EOF
}

TEST_P(PipeObject, NonblockingReadOfEmptyPipeIsEagain) {
  auto [r, w] = make_pipe(O_NONBLOCK);
  char c;
  EXPECT_ERRNO(EAGAIN, api().read(r, &c, 1));
  EXPECT_EQ(api().read(r, &c, 0), 0);
}

TEST_P(PipeObject, DataComesOutInOrderAcrossWrites) {
  auto [r, w] = make_pipe();
  ASSERT_EQ(api().write(w, "abc", 3), 3);
  ASSERT_EQ(api().write(w, "de", 2), 2);
  char buf[16] = {};
  ASSERT_EQ(api().read(r, buf, 2), 2);
  EXPECT_EQ(std::string(buf, 2), "ab");
  ASSERT_EQ(api().read(r, buf, sizeof buf), 3);
  EXPECT_EQ(std::string(buf, 3), "cde");
}

// t1: blocking read of an empty pipe | write one byte
TEST_P(PipeObject, BlockingReadWakesOnWrite) {
  Fd r, w;  // not a structured binding: lambdas below capture them
  std::tie(r, w) = make_pipe();
  char got = 0;
  const long n = returns_after([&] { return static_cast<long>(api().read(r, &got, 4)); },
                               [&] { write_byte(w); });
  EXPECT_EQ(n, 1);
  EXPECT_EQ(got, 'w');
}

// t1: blocking read of an empty pipe | the writer closes
TEST_P(PipeObject, BlockingReadEndsAtEofWhenWriterCloses) {
  Fd r, w;  // not a structured binding: lambdas below capture them
  std::tie(r, w) = make_pipe();
  char got = 0;
  const long n =
      returns_after([&] { return static_cast<long>(api().read(r, &got, 1)); }, [&] { w.reset(); });
  EXPECT_EQ(n, 0);
}

// t1: blocking 1-byte write into a full pipe | the reader takes a page
TEST_P(PipeObject, BlockingWriteWakesWhenAPageIsFree) {
  Fd r, w;  // not a structured binding: lambdas below capture them
  std::tie(r, w) = make_pipe();
  std::vector<char> buf(65536, 'p');
  ASSERT_EQ(api().write(w, buf.data(), buf.size()), 65536);
  const long n = returns_after([&] { return static_cast<long>(api().write(w, "z", 1)); },
                               [&] { ASSERT_EQ(api().read(r, buf.data(), 4096), 4096); });
  EXPECT_EQ(n, 1);
}

// t1: blocking read of an empty pipe | SIGUSR1 to t1 (handler with or without SA_RESTART),
// then a write. Returns what the read returned and its errno.
std::pair<long, int> read_through_a_signal(const Api& api, bool restart) {
  int fds[2];
  must(api.pipe(fds), "pipe");
  Fd r(api, fds[0]);
  Fd w(api, fds[1]);
  Sigusr1Handler handler(restart);
  std::atomic<pid_t> tid{0};
  long rc = -2;
  int err = 0;
  char got = 0;
  std::thread t([&] {
    tid = gettid();
    rc = api.read(r, &got, 1);
    err = errno;
  });
  while (tid.load() == 0) std::this_thread::yield();
  wait_until_asleep(tid.load());
  pthread_kill(t.native_handle(), SIGUSR1);
  // Settle: a read that the signal ends returns now. (Not waiting for the handler to run: a
  // sanitizer runtime may defer it until the read returns.)
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const char c = 'w';
  api.write(w, &c, 1);
  t.join();
  return {rc, err};
}

// t1: blocking read | SIGUSR1 with SA_RESTART | write: Linux restarts the read, which then
// returns the byte.
TEST_P(PipeObject, BlockingReadIsRestartedUnderSaRestart) {
  const auto [rc, err] = read_through_a_signal(api(), true);
  EXPECT_EQ(rc, 1) << errno_name(err);
}

// t1: blocking read | SIGUSR1 without SA_RESTART: the read fails with EINTR.
TEST_P(PipeObject, BlockingReadWithoutSaRestartIsEintr) {
  const auto [rc, err] = read_through_a_signal(api(), false);
  EXPECT_EQ(rc, -1);
  EXPECT_EQ(err, EINTR) << errno_name(err);
}

}  // namespace

UEPOLL_CONFORMANCE_SUITE(EventfdObject);
UEPOLL_CONFORMANCE_SUITE(PipeObject);

}  // namespace uepoll_conformance
