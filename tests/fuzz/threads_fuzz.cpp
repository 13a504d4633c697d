// libFuzzer target: 2-3 threads run byte-chosen sequences of epoll_ctl / epoll_wait (timeout 0) /
// eventfd and pipe I/O / close / create on shared uepoll instances and objects, through uepoll's C
// API. Nothing is compared with the kernel (the interleaving is not reproducible); instead:
//  - every call returns success or one of the errnos Linux documents for it,
//  - epoll_wait returns at most maxevents events, each carrying data that some ctl registered,
//  - after every descriptor is closed, uepoll::stats live counts (UEPOLL_STATS builds) are back
//    to their values before the input.
// Never blocks: every object is non-blocking and every timeout is 0.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "support/backend.hpp"
#include "uepoll/stats.hpp"

namespace {

constexpr int kShared = 8;  // shared descriptor slots
constexpr int kMaxStepsPerThread = 48;
constexpr int kSweepBound = 1024;  // numbers the final sweep closes
constexpr std::uint64_t kDataTag = 0x5eed000000000000ULL;

const uepoll_test::Api& api() { return uepoll_test::uepoll_api(); }

[[noreturn]] void fail(const char* what, int op, long ret, int err) {
  std::fprintf(stderr,
               "\n=== uepoll threads_fuzz INVARIANT FAILURE: %s (op %d, ret %ld, errno %d)\n", what,
               op, ret, err);
  std::fflush(stderr);
  std::abort();
}

void expect_errno(const char* what, int op, long ret, int err, std::initializer_list<int> allowed) {
  if (ret >= 0) return;
  for (int e : allowed) {
    if (e == err) return;
  }
  fail(what, op, ret, err);
}

struct Step {
  std::uint8_t kind = 0;
  std::uint8_t a = 0;
  std::uint8_t b = 0;
  std::uint8_t c = 0;
};

// Shared descriptor numbers: slots 0-1 epoll instances, 2-5 eventfds, 6-7 a pipe. Threads read
// and overwrite them racily on purpose (a closed number may be reused by another thread).
std::atomic<int> g_fd[kShared];

void run_thread(const std::vector<Step>& steps, std::atomic<int>& go) {
  while (go.load(std::memory_order_acquire) == 0) {
  }
  const uepoll_test::Api& u = api();
  epoll_event evs[8];
  for (const Step& s : steps) {
    int op = s.kind % 10;
    int fa = g_fd[s.a % kShared].load(std::memory_order_relaxed);
    int fb = g_fd[s.b % kShared].load(std::memory_order_relaxed);
    errno = 0;
    switch (op) {
      case 0:
      case 1: {  // ctl on an epoll instance
        static const int kOps[] = {EPOLL_CTL_ADD, EPOLL_CTL_MOD, EPOLL_CTL_DEL, EPOLL_CTL_ADD};
        int ctl = kOps[s.c & 3];
        epoll_event ev{};
        static const std::uint32_t kMasks[] = {EPOLLIN,
                                               EPOLLIN | EPOLLET,
                                               EPOLLIN | EPOLLOUT,
                                               EPOLLIN | EPOLLONESHOT,
                                               EPOLLOUT | EPOLLET,
                                               EPOLLIN | EPOLLEXCLUSIVE,
                                               EPOLLIN | EPOLLRDHUP,
                                               0};
        ev.events = kMasks[(s.c >> 2) & 7];
        ev.data.u64 = kDataTag | (s.b % kShared);
        int ep = g_fd[(s.a & 1)].load(std::memory_order_relaxed);
        int r = u.epoll_ctl(ep, ctl, fb, &ev);
        expect_errno("epoll_ctl", op, r, errno, {EBADF, EEXIST, ENOENT, EINVAL, ELOOP, EPERM});
        break;
      }
      case 2:
      case 3: {  // wait, timeout 0
        int ep = g_fd[(s.a & 1)].load(std::memory_order_relaxed);
        int max = 1 + s.c % 8;
        int r = u.epoll_wait(ep, evs, max, 0);
        expect_errno("epoll_wait", op, r, errno, {EBADF, EINVAL});
        if (r > max) fail("epoll_wait returned more than maxevents", op, r, 0);
        for (int i = 0; i < r; ++i) {
          if ((evs[i].data.u64 & ~0xffULL) != kDataTag)
            fail("epoll_wait: event data never registered", op, r, 0);
        }
        break;
      }
      case 4: {  // write 8 bytes (eventfd increment, pipe bytes)
        std::uint64_t v = 1 + (s.c & 3);
        long r = u.write(fa, &v, sizeof(v));
        expect_errno("write", op, r, errno, {EBADF, EAGAIN, EINVAL, EPIPE});
        break;
      }
      case 5: {  // read
        std::uint64_t buf[4];
        long r = u.read(fa, buf, (s.c & 1) ? sizeof(buf) : 8);
        expect_errno("read", op, r, errno, {EBADF, EAGAIN, EINVAL});
        break;
      }
      case 6: {  // close a shared descriptor
        int r = u.close(fa);
        expect_errno("close", op, r, errno, {EBADF});
        break;
      }
      case 7: {  // create a replacement object in a shared slot (the old number leaks to the sweep)
        int slot = s.a % kShared;
        int fd = -1;
        if (slot < 2) {
          fd = u.epoll_create1(EPOLL_CLOEXEC);
        } else if (slot < 6) {
          fd = u.eventfd(s.c & 3, EFD_NONBLOCK | ((s.c & 4) ? EFD_SEMAPHORE : 0));
        } else {
          int p[2];
          if (u.pipe2(p, O_NONBLOCK) == 0) {
            g_fd[6].store(p[0], std::memory_order_relaxed);
            g_fd[7].store(p[1], std::memory_order_relaxed);
          }
          break;
        }
        if (fd < 0) fail("create", op, fd, errno);
        g_fd[slot].store(fd, std::memory_order_relaxed);
        break;
      }
      case 8: {  // dup / dup2 onto another shared slot's number
        int r = (s.c & 1) ? u.dup2(fa, fb) : u.dup(fa);
        expect_errno("dup", op, r, errno, {EBADF});
        break;
      }
      default: {  // poll, timeout 0
        pollfd p[2] = {{fa, POLLIN | POLLOUT, 0}, {fb, POLLIN, 0}};
        int r = u.poll(p, 2, 0);
        expect_errno("poll", op, r, errno, {});
        break;
      }
    }
  }
}

bool open_in_uepoll(int n) { return api().fcntl(n, F_GETFD, 0) != -1; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool init = [] {
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, nullptr);
    return true;
  }();
  (void)init;
  if (size < 2) return 0;
  const uepoll_test::Api& u = api();

  std::vector<bool> foreign(kSweepBound);
  for (int n = 0; n < kSweepBound; ++n) foreign[static_cast<std::size_t>(n)] = open_in_uepoll(n);
  // The live counts with nothing of ours open, read once (quiescing costs RCU grace periods):
  // every input must bring them back to these values.
  static const uepoll::stats::Snapshot before = uepoll::stats::quiesce_and_read();

  // The shared objects.
  g_fd[0] = u.epoll_create1(0);
  g_fd[1] = u.epoll_create1(EPOLL_CLOEXEC);
  for (int i = 2; i < 6; ++i) g_fd[i] = u.eventfd(static_cast<unsigned>(i & 1), EFD_NONBLOCK);
  int p[2] = {-1, -1};
  if (u.pipe2(p, O_NONBLOCK) != 0) fail("pipe2", -1, -1, errno);
  g_fd[6] = p[0];
  g_fd[7] = p[1];
  for (int i = 0; i < kShared; ++i) {
    if (g_fd[i].load() < 0) fail("setup", -1, g_fd[i].load(), errno);
  }
  // Instance 1 watches instance 0 when the first byte says so (nested wakeups, loop checks).
  if (data[0] & 1) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kDataTag;
    if (u.epoll_ctl(g_fd[1].load(), EPOLL_CTL_ADD, g_fd[0].load(), &ev) != 0)
      fail("nest", -1, -1, errno);
  }

  int nthreads = 2 + (data[0] >> 1) % 2;
  std::vector<std::vector<Step>> plans(static_cast<std::size_t>(nthreads));
  std::size_t i = 1;
  int t = 0;
  while (i + 3 < size) {
    auto& plan = plans[static_cast<std::size_t>(t)];
    if (static_cast<int>(plan.size()) < kMaxStepsPerThread) {
      plan.push_back(Step{data[i], data[i + 1], data[i + 2], data[i + 3]});
    }
    i += 4;
    t = (t + 1) % nthreads;
  }

  std::atomic<int> go{0};
  std::vector<std::thread> threads;
  for (int k = 0; k < nthreads; ++k) {
    threads.emplace_back(run_thread, std::cref(plans[static_cast<std::size_t>(k)]), std::ref(go));
  }
  go.store(1, std::memory_order_release);
  for (auto& th : threads) th.join();

  // Close everything this input opened.
  for (int n = 0; n < kSweepBound; ++n) {
    if (!foreign[static_cast<std::size_t>(n)] && open_in_uepoll(n)) {
      if (u.close(n) != 0) fail("final close", -1, n, errno);
    }
  }
  for (int n = 0; n < kSweepBound; ++n) {
    if (!foreign[static_cast<std::size_t>(n)] && open_in_uepoll(n))
      fail("descriptor still open after sweep", -1, n, 0);
  }
  errno = 0;

  if (uepoll::stats::enabled()) {
    uepoll::stats::Snapshot after = uepoll::stats::quiesce_and_read();
    if (after.files != before.files || after.instances != before.instances ||
        after.watches != before.watches || after.user_watches != before.user_watches) {
      std::fprintf(stderr,
                   "\n=== uepoll threads_fuzz LEAK: live counts before/after: files %ld/%ld "
                   "instances %ld/%ld watches %ld/%ld user_watches %ld/%ld\n",
                   before.files, after.files, before.instances, after.instances, before.watches,
                   after.watches, before.user_watches, after.user_watches);
      std::fflush(stderr);
      std::abort();
    }
  }
  return 0;
}
