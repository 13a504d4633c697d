// Every allocation of the process can fail, not only uepoll's own: this binary replaces malloc
// and its relatives, and for each C-API call below, run on a fresh thread (so that per-thread
// state is created inside the call, too), it makes the calling thread's N-th allocation fail,
// anywhere in the process (uepoll, libstdc++, libc, liburcu), for N = 1, 2, ... until the call
// makes fewer than N allocations. Each failing call must return the errno Linux gives for that
// call when memory runs out (or succeed, for calls Linux cannot fail that way), and leave nothing
// behind: live files, instances and items, the max_user_watches count, the lowest free
// descriptor and what the instance under test reports are what they were before the call.
//
// The hook also aborts when anything allocates while the calling thread holds a uepoll SpinLock
// (debug builds), the rule of docs/locking.md.
//
// Not built with sanitizers: they replace malloc themselves.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "uepoll/stats.hpp"
#include "uepoll/sync.hpp"
#include "uepoll/uepoll.h"

// ---------------------------------------------------------------------------------------------
// The process-wide allocator hook

extern "C" {
void* __libc_malloc(size_t size);
void* __libc_calloc(size_t n, size_t size);
void* __libc_realloc(void* p, size_t size);
void* __libc_memalign(size_t alignment, size_t size);
void __libc_free(void* p);
}

namespace {

constinit thread_local long t_countdown = 0;  // 0: disarmed; n: the n-th allocation fails

bool fail_this_allocation() noexcept {
  if (uepoll::detail::lockdep_spinlocks_held() > 0) {
    std::fputs("alloc_sweep_test: allocation while holding a uepoll SpinLock\n", stderr);
    std::abort();
  }
  return t_countdown > 0 && --t_countdown == 0;
}

}  // namespace

extern "C" {
void* malloc(size_t size) {
  if (fail_this_allocation()) {
    errno = ENOMEM;
    return nullptr;
  }
  return __libc_malloc(size);
}
void* calloc(size_t n, size_t size) {
  if (fail_this_allocation()) {
    errno = ENOMEM;
    return nullptr;
  }
  return __libc_calloc(n, size);
}
void* realloc(void* p, size_t size) {
  if (fail_this_allocation()) {
    errno = ENOMEM;
    return nullptr;
  }
  return __libc_realloc(p, size);
}
void* memalign(size_t alignment, size_t size) {
  if (fail_this_allocation()) {
    errno = ENOMEM;
    return nullptr;
  }
  return __libc_memalign(alignment, size);
}
void* aligned_alloc(size_t alignment, size_t size) { return memalign(alignment, size); }
int posix_memalign(void** out, size_t alignment, size_t size) {
  void* p = memalign(alignment, size);
  if (p == nullptr) {
    return ENOMEM;
  }
  *out = p;
  return 0;
}
void free(void* p) { __libc_free(p); }
}

namespace {

// ---------------------------------------------------------------------------------------------
// The state a failed call must leave as it was

struct State {
  uepoll::stats::Snapshot live;
  int lowest_free_fd = -1;
  int ready = -1;  // what the world's instance reports (level-triggered: not consumed)
  bool operator==(const State& o) const {
    return live.files == o.live.files && live.instances == o.live.instances &&
           live.watches == o.live.watches && live.user_watches == o.live.user_watches &&
           lowest_free_fd == o.lowest_free_fd && ready == o.ready;
  }
};

std::string describe(const State& s) {
  return "files " + std::to_string(s.live.files) + ", instances " +
         std::to_string(s.live.instances) + ", watches " + std::to_string(s.live.watches) +
         ", user_watches " + std::to_string(s.live.user_watches) + ", lowest free fd " +
         std::to_string(s.lowest_free_fd) + ", ready " + std::to_string(s.ready);
}

// The descriptors a scenario works with; everything still open is closed after each attempt.
struct World {
  int ep = -1;  // an instance every scenario has; its ready count is part of the state
  std::vector<int> fds;
  sockaddr_in listen_addr{};
  int a = -1, b = -1, c = -1;  // scenario-specific descriptors
  int pair[2] = {-1, -1};

  World() { fds.reserve(64); }  // keep() inside an armed call must not allocate
  int keep(int fd) {
    if (fd >= 0) {
      fds.push_back(fd);
    }
    return fd;
  }
  void close_all() {
    for (int fd : fds) {
      uepoll_close(fd);
    }
    fds.clear();
  }
};

State capture(World& w) {
  State s;
  s.live = uepoll::stats::quiesce_and_read();
  int probe = uepoll_dup(w.ep);
  s.lowest_free_fd = probe;
  uepoll_close(probe);
  epoll_event ev[8];
  s.ready = uepoll_epoll_wait(w.ep, ev, 8, 0);
  return s;
}

int add(int ep, int fd, std::uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  return uepoll_epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

// A listener on 127.0.0.1 and an ephemeral port, in w.a; its address in w.listen_addr.
void open_listener(World& w, bool keep) {
  w.a = uepoll_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (keep) {
    w.keep(w.a);
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  uepoll_bind(w.a, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  uepoll_listen(w.a, 64);
  socklen_t len = sizeof w.listen_addr;
  uepoll_getsockname(w.a, reinterpret_cast<sockaddr*>(&w.listen_addr), &len);
}
void make_listener(World& w) { open_listener(w, true); }

// A connected in-process TCP pair: w.b (client) and w.c (accepted); the listener is closed with
// the others unless the scenario closes it.
void connect_to_a_listener(World& w, bool keep_listener) {
  open_listener(w, keep_listener);
  w.b = w.keep(uepoll_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
  uepoll_connect(w.b, reinterpret_cast<sockaddr*>(&w.listen_addr), sizeof w.listen_addr);
  w.c = w.keep(uepoll_accept4(w.a, nullptr, nullptr, SOCK_NONBLOCK));
}
void make_connection(World& w) { connect_to_a_listener(w, true); }

struct Scenario {
  const char* name;
  std::function<void(World&)> setup;  // unarmed, on the test thread
  std::function<long(World&)> call;   // armed, on a fresh thread: the C-API call(s) under test
  std::set<int> allowed;              // Linux's errnos for this call out of memory; empty: none
  std::function<void(World&, long)> keep_result = [](World& w, long rc) {
    w.keep(static_cast<int>(rc));
  };
};

const char* name_of(int err) {
  switch (err) {
    case ENOMEM: return "ENOMEM";
    case ENOBUFS: return "ENOBUFS";
    case EADDRINUSE: return "EADDRINUSE";
    case EINTR: return "EINTR";
    case EAGAIN: return "EAGAIN";
    default: return "?";
  }
}

// Runs one scenario with every allocation of the calling thread failing in turn.
void sweep(const Scenario& s) {
  SCOPED_TRACE(s.name);
  World base;
  base.ep = uepoll_epoll_create1(0);
  const State at_start = capture(base);
  int failures = 0;
  int absorbed = 0;
  for (long n = 1;; ++n) {
    ASSERT_LT(n, 2000) << "the call never stopped allocating";
    World w;
    w.ep = base.ep;
    s.setup(w);
    const State before = capture(w);
    long rc = 0;
    int err = 0;
    bool reached = false;
    std::thread([&] {
      t_countdown = n;
      rc = s.call(w);
      err = errno;
      reached = t_countdown == 0;
      t_countdown = 0;
    }).join();
    if (rc >= 0) {
      s.keep_result(w, rc);
    } else {
      ++failures;
      EXPECT_TRUE(reached) << "allocation " << n << ": failed without an injected failure, errno "
                           << err;
      EXPECT_TRUE(s.allowed.count(err) == 1)
          << "allocation " << n << ": errno " << err << " (" << name_of(err)
          << "), which Linux does not give for this call out of memory";
      const State after = capture(w);
      EXPECT_TRUE(after == before)
          << "allocation " << n << " left state behind:\n  before: " << describe(before)
          << "\n  after:  " << describe(after);
    }
    if (rc >= 0 && reached) {
      ++absorbed;  // a failure uepoll absorbed (a cache, a nap instead of a parker, ...)
    }
    w.close_all();
    if (!reached) {
      std::printf("%s: %ld allocations, %d failed the call, %d absorbed\n", s.name, n - 1, failures,
                  absorbed);
      break;
    }
  }
  uepoll_close(base.ep);
  base.ep = uepoll_epoll_create1(0);
  EXPECT_TRUE(capture(base) == at_start) << "the sweep leaked";
  uepoll_close(base.ep);
}

const std::set<int> kNoMemory{ENOMEM};

std::vector<Scenario> scenarios() {
  auto nothing = [](World&) {};
  auto ignore = [](World&, long) {};
  std::vector<Scenario> v;
  v.push_back({"epoll_create1", nothing, [](World&) -> long { return uepoll_epoll_create1(0); },
               kNoMemory});
  v.push_back({"eventfd", nothing, [](World&) -> long { return uepoll_eventfd(1, EFD_NONBLOCK); },
               kNoMemory});
  v.push_back({"pipe2", nothing, [](World& w) -> long { return uepoll_pipe2(w.pair, O_NONBLOCK); },
               kNoMemory,
               [](World& w, long) {
                 w.keep(w.pair[0]);
                 w.keep(w.pair[1]);
               }});
  v.push_back({"socketpair", nothing,
               [](World& w) -> long { return uepoll_socketpair(AF_UNIX, SOCK_STREAM, 0, w.pair); },
               kNoMemory,
               [](World& w, long) {
                 w.keep(w.pair[0]);
                 w.keep(w.pair[1]);
               }});
  v.push_back({"socket",
               nothing,
               [](World&) -> long { return uepoll_socket(AF_INET, SOCK_STREAM, 0); },
               {ENOMEM, ENOBUFS}});
  v.push_back({"bind and listen",
               [](World& w) { w.a = w.keep(uepoll_socket(AF_INET, SOCK_STREAM, 0)); },
               [](World& w) -> long {
                 sockaddr_in addr{};
                 addr.sin_family = AF_INET;
                 addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                 if (uepoll_bind(w.a, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
                   return -1;
                 }
                 return uepoll_listen(w.a, 16);
               },
               {ENOMEM, EADDRINUSE},
               ignore});
  v.push_back({"connect",
               make_listener,
               [](World& w) -> long {
                 w.b = uepoll_socket(AF_INET, SOCK_STREAM, 0);
                 if (w.b < 0) {
                   return -1;
                 }
                 long rc = uepoll_connect(w.b, reinterpret_cast<sockaddr*>(&w.listen_addr),
                                          sizeof w.listen_addr);
                 if (rc != 0) {
                   const int err = errno;
                   uepoll_close(w.b);
                   errno = err;
                 }
                 return rc;
               },
               {ENOMEM, ENOBUFS},
               [](World& w, long) { w.keep(w.b); }});
  v.push_back({"accept4",
               [](World& w) {
                 make_listener(w);
                 w.b = w.keep(uepoll_socket(AF_INET, SOCK_STREAM, 0));
                 uepoll_connect(w.b, reinterpret_cast<sockaddr*>(&w.listen_addr),
                                sizeof w.listen_addr);
               },
               [](World& w) -> long { return uepoll_accept4(w.a, nullptr, nullptr, 0); },
               {ENOMEM, ENOBUFS}});
  v.push_back({"epoll_ctl ADD of a ready eventfd",
               [](World& w) { w.a = w.keep(uepoll_eventfd(1, 0)); },
               [](World& w) -> long { return add(w.ep, w.a, EPOLLIN); }, kNoMemory, ignore});
  v.push_back({"epoll_ctl ADD of a pipe",
               [](World& w) {
                 uepoll_pipe2(w.pair, O_NONBLOCK);
                 w.keep(w.pair[0]);
                 w.keep(w.pair[1]);
                 uepoll_write(w.pair[1], "x", 1);
               },
               [](World& w) -> long { return add(w.ep, w.pair[0], EPOLLIN); }, kNoMemory, ignore});
  v.push_back({"epoll_ctl ADD of a connected socket", make_connection,
               [](World& w) -> long { return add(w.ep, w.c, EPOLLIN | EPOLLOUT | EPOLLRDHUP); },
               kNoMemory, ignore});
  v.push_back({"epoll_ctl ADD of a nested instance",
               [](World& w) {
                 w.a = w.keep(uepoll_epoll_create1(0));
                 w.b = w.keep(uepoll_eventfd(1, 0));
                 add(w.a, w.b, EPOLLIN);
               },
               [](World& w) -> long { return add(w.ep, w.a, EPOLLIN); }, kNoMemory, ignore});
  v.push_back({"epoll_ctl MOD and DEL",
               [](World& w) {
                 w.a = w.keep(uepoll_eventfd(1, 0));
                 add(w.ep, w.a, EPOLLOUT);
               },
               [](World& w) -> long {
                 epoll_event ev{};
                 ev.events = EPOLLIN;
                 if (uepoll_epoll_ctl(w.ep, EPOLL_CTL_MOD, w.a, &ev) != 0) {
                   return -1;
                 }
                 return uepoll_epoll_ctl(w.ep, EPOLL_CTL_DEL, w.a, nullptr);
               },
               {},
               ignore});
  v.push_back({"epoll_wait with an event ready",
               [](World& w) {
                 w.a = w.keep(uepoll_epoll_create1(0));
                 w.b = w.keep(uepoll_eventfd(1, 0));
                 add(w.a, w.b, EPOLLIN | EPOLLET);
               },
               [](World& w) -> long {
                 epoll_event ev{};
                 return uepoll_epoll_wait(w.a, &ev, 1, -1) == 1 ? 0 : -1;
               },
               {},
               ignore});
  v.push_back({"epoll_wait that sleeps until another thread writes",
               [](World& w) {
                 w.a = w.keep(uepoll_epoll_create1(0));
                 w.b = w.keep(uepoll_eventfd(0, 0));
                 add(w.a, w.b, EPOLLIN);
               },
               [](World& w) -> long {
                 int efd = w.b;
                 // The writer is not the armed thread: its allocations never fail.
                 std::thread writer;
                 {
                   const long saved = t_countdown;
                   t_countdown = 0;
                   writer = std::thread([efd] {
                     std::this_thread::sleep_for(std::chrono::milliseconds(2));
                     const std::uint64_t one = 1;
                     uepoll_write(efd, &one, sizeof one);
                   });
                   t_countdown = saved;
                 }
                 epoll_event ev{};
                 const int n = uepoll_epoll_wait(w.a, &ev, 1, -1);
                 const int err = errno;
                 const long saved = t_countdown;
                 t_countdown = 0;
                 writer.join();
                 t_countdown = saved;
                 errno = err;
                 return n == 1 ? 0 : -1;
               },
               {},
               ignore});
  v.push_back({"epoll_pwait with a signal mask that sleeps",
               [](World& w) {
                 w.a = w.keep(uepoll_epoll_create1(0));
                 w.b = w.keep(uepoll_eventfd(0, 0));
                 add(w.a, w.b, EPOLLIN);
               },
               [](World& w) -> long {
                 sigset_t mask;
                 sigemptyset(&mask);
                 epoll_event ev{};
                 return uepoll_epoll_pwait(w.a, &ev, 1, 1, &mask) == 0 ? 0 : -1;
               },
               {},
               ignore});
  v.push_back({"close of a watched eventfd (its last reference)",
               [](World& w) {
                 w.a = uepoll_eventfd(1, 0);
                 add(w.ep, w.a, EPOLLIN);
               },
               [](World& w) -> long { return uepoll_close(w.a); },
               {},
               ignore});
  v.push_back({"close of an instance with items (its last reference)",
               [](World& w) {
                 w.a = uepoll_epoll_create1(0);
                 for (int i = 0; i < 20; ++i) {
                   add(w.a, w.keep(uepoll_eventfd(1, 0)), EPOLLIN);
                 }
               },
               [](World& w) -> long { return uepoll_close(w.a); },
               {},
               ignore});
  v.push_back({"close of a listener with an accepted socket (its last reference)",
               [](World& w) { connect_to_a_listener(w, /*keep_listener=*/false); },
               [](World& w) -> long { return uepoll_close(w.a); },
               {},
               ignore});
  v.push_back({"eventfd read and write",
               [](World& w) { w.a = w.keep(uepoll_eventfd(0, 0)); },
               [](World& w) -> long {
                 std::uint64_t count = 5;
                 if (uepoll_write(w.a, &count, sizeof count) != sizeof count) {
                   return -1;
                 }
                 return uepoll_read(w.a, &count, sizeof count) == sizeof count ? 0 : -1;
               },
               {},
               ignore});
  v.push_back({"pipe write (a new page)",
               [](World& w) {
                 uepoll_pipe2(w.pair, O_NONBLOCK);
                 w.keep(w.pair[0]);
                 w.keep(w.pair[1]);
               },
               [](World& w) -> long { return uepoll_write(w.pair[1], "data", 4) == 4 ? 0 : -1; },
               kNoMemory, ignore});
  v.push_back({"socketpair send and recv",
               [](World& w) {
                 uepoll_socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, w.pair);
                 w.keep(w.pair[0]);
                 w.keep(w.pair[1]);
               },
               [](World& w) -> long {
                 if (uepoll_send(w.pair[0], "data", 4, 0) != 4) {
                   return -1;
                 }
                 char buf[8];
                 return uepoll_recv(w.pair[1], buf, sizeof buf, 0) == 4 ? 0 : -1;
               },
               {ENOMEM, ENOBUFS},
               ignore});
  v.push_back({"TCP send and recv",
               make_connection,
               [](World& w) -> long {
                 if (uepoll_send(w.b, "data", 4, 0) != 4) {
                   return -1;
                 }
                 char buf[8];
                 return uepoll_recv(w.c, buf, sizeof buf, 0) == 4 ? 0 : -1;
               },
               {ENOMEM, ENOBUFS},
               ignore});
  v.push_back({"dup2 into a new table block", [](World& w) { w.a = w.keep(uepoll_eventfd(0, 0)); },
               [](World& w) -> long { return uepoll_dup2(w.a, 700); }, kNoMemory});
  v.push_back({"F_DUPFD into a new table block",
               [](World& w) { w.a = w.keep(uepoll_eventfd(0, 0)); },
               [](World& w) -> long { return uepoll_fcntl(w.a, F_DUPFD, 1500); }, kNoMemory});
  v.push_back({"poll of an eventfd and a pipe",
               [](World& w) {
                 w.a = w.keep(uepoll_eventfd(0, 0));
                 uepoll_pipe2(w.pair, O_NONBLOCK);
                 w.keep(w.pair[0]);
                 w.keep(w.pair[1]);
               },
               [](World& w) -> long {
                 pollfd p[2] = {{w.a, POLLIN, 0}, {w.pair[0], POLLIN, 0}};
                 return uepoll_poll(p, 2, 1) == 0 ? 0 : -1;
               },
               kNoMemory, ignore});
  v.push_back({"setsockopt, getsockopt, getsockname, shutdown",
               make_connection,
               [](World& w) -> long {
                 int one = 1;
                 socklen_t len = sizeof one;
                 sockaddr_in addr{};
                 socklen_t alen = sizeof addr;
                 if (uepoll_setsockopt(w.b, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
                     uepoll_getsockopt(w.b, SOL_SOCKET, SO_ERROR, &one, &len) != 0 ||
                     uepoll_getsockname(w.b, reinterpret_cast<sockaddr*>(&addr), &alen) != 0) {
                   return -1;
                 }
                 return uepoll_shutdown(w.b, SHUT_WR);
               },
               {},
               ignore});
  return v;
}

class AllocSweep : public ::testing::TestWithParam<Scenario> {};

TEST_P(AllocSweep, FailsAsLinuxAndLeavesNothingBehind) { sweep(GetParam()); }

INSTANTIATE_TEST_SUITE_P(CApi, AllocSweep, ::testing::ValuesIn(scenarios()),
                         [](const ::testing::TestParamInfo<Scenario>& scenario) {
                           std::string name;
                           for (const char* c = scenario.param.name; *c != '\0'; ++c) {
                             name += std::isalnum(static_cast<unsigned char>(*c)) ? *c : '_';
                           }
                           return name;
                         });

}  // namespace
