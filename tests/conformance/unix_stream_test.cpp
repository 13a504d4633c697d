// AF_UNIX SOCK_STREAM socketpairs on both backends (the host kernel and uepoll): the expected
// values were measured on Linux 6.18 and the kernel instance keeps them honest. Stress tests that
// need uepoll alone are in tests/unit/unix_stream_test.cpp.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "conformance.hpp"
#include "support/backend.hpp"
#include "support/blocked.hpp"
#include "uepoll/uepoll.h"

namespace {

using uepoll_conformance::sigpipes_so_far;
using uepoll_test::Api;
using uepoll_test::run_blocked;

constexpr unsigned kAllEvents = 0x7fff;

int sysctl_int(const char* path, int fallback) {
  int v = fallback;
  if (FILE* f = std::fopen(path, "re")) {
    if (std::fscanf(f, "%d", &v) != 1) {
      v = fallback;
    }
    std::fclose(f);
  }
  return v;
}

// The writability thresholds below (70, 278, 24, 93 writes...) assume the default send buffer
// of 212992 bytes (net.core.wmem_default) that they were measured with.
class UnixStream : public testing::TestWithParam<const Api*> {
 protected:
  const Api& api() const { return *GetParam(); }

  void SetUp() override {
    ASSERT_EQ(api().socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv_), 0);
  }
  void TearDown() override {
    for (int fd : sv_) {
      if (fd >= 0) {
        api().close(fd);
      }
    }
  }
  void close_end(int i) {
    ASSERT_EQ(api().close(sv_[i]), 0);
    sv_[i] = -1;
  }
  unsigned mask(int fd) const {
    pollfd p{fd, static_cast<short>(kAllEvents), 0};
    int n = api().poll(&p, 1, 0);
    EXPECT_EQ(n, p.revents != 0 ? 1 : 0);
    return static_cast<unsigned short>(p.revents);
  }
  bool out(int fd) const { return (mask(fd) & POLLOUT) != 0; }
  void set_blocking(int fd) { ASSERT_EQ(api().fcntl(fd, F_SETFL, 0), 0); }
  int sockerr(int fd) {
    int e = -1;
    socklen_t l = sizeof e;
    EXPECT_EQ(api().getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l), 0);
    return e;
  }

  int sv_[2] = {-1, -1};
};

std::string api_name(const testing::TestParamInfo<const Api*>& info) { return info.param->name; }

INSTANTIATE_TEST_SUITE_P(Backends, UnixStream,
                         testing::ValuesIn(uepoll_test::both_apis_begin(),
                                           uepoll_test::both_apis_end()),
                         api_name);

// Masks measured on Linux 6.18.
constexpr unsigned kWritable = POLLOUT | POLLWRNORM | POLLWRBAND;         // 0x304
constexpr unsigned kRdhup = kWritable | POLLIN | POLLRDNORM | POLLRDHUP;  // 0x2345
constexpr unsigned kHup = kRdhup | POLLHUP;                               // 0x2355
constexpr unsigned kReset = kHup | POLLERR;                               // 0x235d

TEST_P(UnixStream, FreshPairIsWritableOnly) {
  EXPECT_EQ(mask(sv_[0]), kWritable);
  EXPECT_EQ(mask(sv_[1]), kWritable);
  char b[4];
  errno = 0;
  EXPECT_EQ(api().read(sv_[0], b, sizeof b), -1);
  EXPECT_EQ(errno, EAGAIN);
}

TEST_P(UnixStream, ShutWrGivesThePeerRdhupAndEof) {
  ASSERT_EQ(api().write(sv_[0], "ab", 2), 2);
  ASSERT_EQ(api().shutdown(sv_[0], SHUT_WR), 0);
  EXPECT_EQ(mask(sv_[0]), kWritable);
  EXPECT_EQ(mask(sv_[1]), kRdhup);
  char b[8];
  EXPECT_EQ(api().read(sv_[1], b, sizeof b), 2);  // queued data first
  EXPECT_EQ(api().read(sv_[1], b, sizeof b), 0);
  int before = sigpipes_so_far();
  errno = 0;
  EXPECT_EQ(api().write(sv_[0], "x", 1), -1);
  EXPECT_EQ(errno, EPIPE);
  EXPECT_EQ(sigpipes_so_far(), before + 1);
  errno = 0;
  EXPECT_EQ(api().write(sv_[0], "", 0), -1);  // even an empty write
  EXPECT_EQ(errno, EPIPE);
  EXPECT_EQ(sigpipes_so_far(), before + 2);
  errno = 0;
  EXPECT_EQ(api().send(sv_[0], "x", 1, MSG_NOSIGNAL), -1);
  EXPECT_EQ(errno, EPIPE);
  EXPECT_EQ(sigpipes_so_far(), before + 2);
}

TEST_P(UnixStream, BothDirectionsShutGivesHup) {
  ASSERT_EQ(api().shutdown(sv_[0], SHUT_WR), 0);
  ASSERT_EQ(api().shutdown(sv_[1], SHUT_WR), 0);
  EXPECT_EQ(mask(sv_[0]), kHup);
  EXPECT_EQ(mask(sv_[1]), kHup);
}

TEST_P(UnixStream, ShutRdIsThePeersShutWr) {
  ASSERT_EQ(api().write(sv_[1], "abc", 3), 3);
  ASSERT_EQ(api().shutdown(sv_[0], SHUT_RD), 0);
  EXPECT_EQ(mask(sv_[0]), kRdhup);
  EXPECT_EQ(mask(sv_[1]), kWritable);
  errno = 0;
  EXPECT_EQ(api().send(sv_[1], "x", 1, MSG_NOSIGNAL), -1);
  EXPECT_EQ(errno, EPIPE);
  char b[8];
  EXPECT_EQ(api().read(sv_[0], b, sizeof b), 3);  // what was queued stays readable
  EXPECT_EQ(api().read(sv_[0], b, sizeof b), 0);
}

TEST_P(UnixStream, ShutRdwrAndInvalidHow) {
  ASSERT_EQ(api().shutdown(sv_[0], SHUT_RDWR), 0);
  EXPECT_EQ(mask(sv_[0]), kHup);
  EXPECT_EQ(mask(sv_[1]), kHup);
  EXPECT_EQ(api().shutdown(sv_[0], SHUT_RDWR), 0);
  errno = 0;
  EXPECT_EQ(api().shutdown(sv_[0], 3), -1);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(api().shutdown(sv_[0], -1), -1);
  EXPECT_EQ(errno, EINVAL);
}

TEST_P(UnixStream, PeerCloseGivesHupEofAndEpipe) {
  close_end(0);
  EXPECT_EQ(mask(sv_[1]), kHup);
  char b[4];
  EXPECT_EQ(api().read(sv_[1], b, sizeof b), 0);
  int before = sigpipes_so_far();
  errno = 0;
  EXPECT_EQ(api().write(sv_[1], "x", 1), -1);
  EXPECT_EQ(errno, EPIPE);
  EXPECT_EQ(sigpipes_so_far(), before + 1);
}

TEST_P(UnixStream, CloseWithUnreadDataResetsThePeerOnce) {
  ASSERT_EQ(api().write(sv_[1], "abc", 3), 3);  // never read by sv_[0]
  ASSERT_EQ(api().write(sv_[0], "zz", 2), 2);   // sv_[1] will read this first
  close_end(0);
  EXPECT_EQ(mask(sv_[1]), kReset);
  errno = 0;
  EXPECT_EQ(api().send(sv_[1], "x", 1, MSG_NOSIGNAL), -1);
  EXPECT_EQ(errno, EPIPE);  // the shutdown is checked before the error
  EXPECT_EQ(mask(sv_[1]), kReset);
  char b[8];
  EXPECT_EQ(api().read(sv_[1], b, 1), 1);
  EXPECT_EQ(api().read(sv_[1], b, sizeof b), 1);
  errno = 0;
  EXPECT_EQ(api().read(sv_[1], b, sizeof b), -1);
  EXPECT_EQ(errno, ECONNRESET);
  EXPECT_EQ(mask(sv_[1]), kHup);
  EXPECT_EQ(api().read(sv_[1], b, sizeof b), 0);
}

TEST_P(UnixStream, SoErrorReportsAndClearsTheReset) {
  ASSERT_EQ(api().write(sv_[1], "abc", 3), 3);
  close_end(0);
  EXPECT_EQ(sockerr(sv_[1]), ECONNRESET);
  EXPECT_EQ(mask(sv_[1]), kHup);
  EXPECT_EQ(sockerr(sv_[1]), 0);
  char b[4];
  EXPECT_EQ(api().read(sv_[1], b, sizeof b), 0);
}

// Counts successful non-blocking writes of `size` bytes until EAGAIN; `*drop` gets the number of
// the write after which EPOLLOUT went away.
int fill(const Api& api, int fd, std::size_t size, int* drop, long* bytes) {
  std::vector<char> buf(size, 'x');
  int n = 0;
  *drop = -1;
  *bytes = 0;
  for (;;) {
    ssize_t r = api.write(fd, buf.data(), size);
    if (r < 0) {
      EXPECT_EQ(errno, EAGAIN);
      return n;
    }
    ++n;
    *bytes += r;
    pollfd p{fd, POLLOUT, 0};
    api.poll(&p, 1, 0);
    if (*drop < 0 && (p.revents & POLLOUT) == 0) {
      *drop = n;
    }
  }
}

TEST_P(UnixStream, OutDropsAfterSeventyOneByteWrites) {
  int drop;
  long bytes;
  EXPECT_EQ(fill(api(), sv_[0], 1, &drop, &bytes), 278);
  EXPECT_EQ(drop, 70);
  EXPECT_FALSE(out(sv_[0]));
  // EPOLLOUT comes back once 209 of the 278 one-byte buffers are consumed.
  char b;
  for (int i = 0; i < 208; ++i) {
    ASSERT_EQ(api().read(sv_[1], &b, 1), 1);
  }
  EXPECT_FALSE(out(sv_[0]));
  ASSERT_EQ(api().read(sv_[1], &b, 1), 1);
  EXPECT_TRUE(out(sv_[0]));
}

TEST_P(UnixStream, OutDropsAfterTwentyFourThousandByteWrites) {
  int drop;
  long bytes;
  EXPECT_EQ(fill(api(), sv_[0], 1000, &drop, &bytes), 93);
  EXPECT_EQ(drop, 24);
  EXPECT_EQ(bytes, 93000);
}

TEST_P(UnixStream, OneBigWriteIsCutIntoBuffers) {
  std::vector<char> big(1 << 20, 'y');
  EXPECT_EQ(api().write(sv_[0], big.data(), big.size()), 219264);  // 6 buffers of 36544
  EXPECT_FALSE(out(sv_[0]));
  errno = 0;
  EXPECT_EQ(api().write(sv_[0], "z", 1), -1);
  EXPECT_EQ(errno, EAGAIN);
  // 1000-byte reads: EPOLLOUT returns once the charge is back under a quarter of sndbuf,
  // i.e. after 5 whole buffers (183000 bytes read, the 5th buffer finished at 182720).
  long got = 0;
  while (!out(sv_[0])) {
    ssize_t r = api().read(sv_[1], big.data(), 1000);
    ASSERT_GT(r, 0);
    got += r;
  }
  EXPECT_EQ(got, 183000);
}

TEST_P(UnixStream, WritesOfFiftyThousandBytesSplitAcrossBuffers) {
  int drop;
  long bytes;
  EXPECT_EQ(fill(api(), sv_[0], 50000, &drop, &bytes), 5);
  EXPECT_EQ(drop, 2);
  EXPECT_EQ(bytes, 236544);  // the 5th write stopped after its first 36544-byte buffer
}

TEST_P(UnixStream, SmallSendBufferLowersTheThresholds) {
  int v = 4096;  // Linux doubles it: sndbuf 8192
  ASSERT_EQ(api().setsockopt(sv_[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v), 0);
  socklen_t l = sizeof v;
  ASSERT_EQ(api().getsockopt(sv_[0], SOL_SOCKET, SO_SNDBUF, &v, &l), 0);
  EXPECT_EQ(v, 8192);
  int drop;
  long bytes;
  EXPECT_EQ(fill(api(), sv_[0], 1, &drop, &bytes), 11);
  EXPECT_EQ(drop, 3);
  v = 1;
  ASSERT_EQ(api().setsockopt(sv_[1], SOL_SOCKET, SO_SNDBUF, &v, sizeof v), 0);
  ASSERT_EQ(api().getsockopt(sv_[1], SOL_SOCKET, SO_SNDBUF, &v, &l), 0);
  EXPECT_EQ(v, 4608);  // the minimum
}

TEST_P(UnixStream, PeekWaitallAndZeroLengthReads) {
  char b[16];
  errno = 0;
  EXPECT_EQ(api().recv(sv_[1], b, 0, 0), -1);  // nothing queued: a zero-length recv waits
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_EQ(api().read(sv_[1], b, 0), 0);  // read() answers a zero length itself
  ASSERT_EQ(api().write(sv_[0], "abc", 3), 3);
  ASSERT_EQ(api().write(sv_[0], "de", 2), 2);
  EXPECT_EQ(api().recv(sv_[1], b, 0, 0), 0);
  EXPECT_EQ(api().recv(sv_[1], b, sizeof b, MSG_PEEK), 5);  // peeks across writes
  EXPECT_EQ(std::string(b, 5), "abcde");
  EXPECT_EQ(api().recv(sv_[1], b, 1, 0), 1);
  EXPECT_EQ(api().recv(sv_[1], b, sizeof b, MSG_PEEK), 4);
  EXPECT_EQ(api().recv(sv_[1], b, sizeof b, MSG_WAITALL | MSG_DONTWAIT), 4);
  EXPECT_EQ(std::string(b, 4), "bcde");
  errno = 0;
  EXPECT_EQ(api().recv(sv_[1], b, 1, MSG_OOB), -1);
  EXPECT_EQ(errno, EINVAL);
}

TEST_P(UnixStream, DontwaitOnABlockingSocket) {
  set_blocking(sv_[1]);
  char b[4];
  errno = 0;
  EXPECT_EQ(api().recv(sv_[1], b, sizeof b, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EAGAIN);
}

TEST_P(UnixStream, EdgeTriggeredSeesEveryWriteAndEveryFreedBuffer) {
  int ep = api().epoll_create1(0);
  ASSERT_GE(ep, 0);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u32 = 0;
  ASSERT_EQ(api().epoll_ctl(ep, EPOLL_CTL_ADD, sv_[0], &ev), 0);
  ev.data.u32 = 1;
  ASSERT_EQ(api().epoll_ctl(ep, EPOLL_CTL_ADD, sv_[1], &ev), 0);
  epoll_event out[4];
  auto wait = [&](std::vector<std::pair<unsigned, unsigned>> want) {
    int n = api().epoll_wait(ep, out, 4, 0);
    ASSERT_EQ(n, static_cast<int>(want.size()));
    for (int i = 0; i < n; ++i) {
      bool found = false;
      for (auto& w : want) {
        if (w.first == out[i].data.u32) {
          EXPECT_EQ(out[i].events, w.second) << "item " << w.first;
          found = true;
        }
      }
      EXPECT_TRUE(found);
    }
  };
  wait({{0, EPOLLOUT}, {1, EPOLLOUT}});
  ASSERT_EQ(api().write(sv_[0], "a", 1), 1);
  wait({{1, EPOLLIN | EPOLLOUT}});
  ASSERT_EQ(api().write(sv_[0], "a", 1), 1);  // unread data, yet another edge
  wait({{1, EPOLLIN | EPOLLOUT}});
  char b[4];
  ASSERT_EQ(api().read(sv_[1], b, 1), 1);  // frees a buffer: the writer hears of it
  wait({{0, EPOLLOUT}});
  ASSERT_EQ(api().write(sv_[0], "", 0), 0);  // nothing written, no wake-up
  wait({});
  ASSERT_EQ(api().write(sv_[0], "abc", 3), 3);
  wait({{1, EPOLLIN | EPOLLOUT}});
  ASSERT_EQ(api().read(sv_[1], b, 1), 1);  // finishes the first buffer
  wait({{0, EPOLLOUT}});
  ASSERT_EQ(api().read(sv_[1], b, 1), 1);  // part of the second one: no wake-up
  wait({});
  ASSERT_EQ(api().read(sv_[1], b, 2), 2);
  wait({{0, EPOLLOUT}});
  ASSERT_EQ(api().shutdown(sv_[0], SHUT_RD), 0);  // both ends hear a shutdown
  wait({{0, EPOLLIN | EPOLLOUT | EPOLLRDHUP}, {1, EPOLLOUT}});
  close_end(0);
  wait({{1, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLHUP}});
  api().close(ep);
}

TEST_P(UnixStream, SocketOptions) {
  int v = -1;
  socklen_t l = sizeof v;
  ASSERT_EQ(api().getsockopt(sv_[0], SOL_SOCKET, SO_TYPE, &v, &l), 0);
  EXPECT_EQ(v, SOCK_STREAM);
  EXPECT_EQ(l, sizeof v);
  ASSERT_EQ(api().getsockopt(sv_[0], SOL_SOCKET, SO_DOMAIN, &v, &l), 0);
  EXPECT_EQ(v, AF_UNIX);
  ASSERT_EQ(api().getsockopt(sv_[0], SOL_SOCKET, SO_PROTOCOL, &v, &l), 0);
  EXPECT_EQ(v, 0);
  ASSERT_EQ(api().getsockopt(sv_[0], SOL_SOCKET, SO_ACCEPTCONN, &v, &l), 0);
  EXPECT_EQ(v, 0);
  ASSERT_EQ(api().getsockopt(sv_[0], SOL_SOCKET, SO_SNDBUF, &v, &l), 0);
  EXPECT_EQ(v, sysctl_int("/proc/sys/net/core/wmem_default", 212992));
  ASSERT_EQ(api().getsockopt(sv_[0], SOL_SOCKET, SO_RCVBUF, &v, &l), 0);
  EXPECT_EQ(v, sysctl_int("/proc/sys/net/core/rmem_default", 212992));
  ASSERT_EQ(api().getsockopt(sv_[0], SOL_SOCKET, SO_ERROR, &v, &l), 0);
  EXPECT_EQ(v, 0);
  errno = 0;
  EXPECT_EQ(api().getsockopt(sv_[0], SOL_SOCKET, 1000, &v, &l), -1);
  EXPECT_EQ(errno, ENOPROTOOPT);
  errno = 0;
  EXPECT_EQ(api().getsockopt(sv_[0], IPPROTO_TCP, 1, &v, &l), -1);
  EXPECT_EQ(errno, EOPNOTSUPP);
  errno = 0;
  EXPECT_EQ(api().setsockopt(sv_[0], IPPROTO_TCP, 1, &v, sizeof v), -1);
  EXPECT_EQ(errno, EOPNOTSUPP);
  // Length conventions: a short buffer gets a prefix, a long one the int's size.
  long long wide = -1;
  l = sizeof wide;
  ASSERT_EQ(api().getsockopt(sv_[0], SOL_SOCKET, SO_TYPE, &wide, &l), 0);
  EXPECT_EQ(l, sizeof(int));
  l = 0;
  EXPECT_EQ(api().getsockopt(sv_[0], SOL_SOCKET, SO_TYPE, &v, &l), 0);
  EXPECT_EQ(l, 0u);
  l = static_cast<socklen_t>(-1);
  errno = 0;
  EXPECT_EQ(api().getsockopt(sv_[0], SOL_SOCKET, SO_TYPE, &v, &l), -1);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(api().getsockopt(sv_[0], SOL_SOCKET, SO_TYPE, &v, nullptr), -1);
  EXPECT_EQ(errno, EFAULT);
  v = 1;
  EXPECT_EQ(api().setsockopt(sv_[0], SOL_SOCKET, SO_REUSEADDR, &v, sizeof v), 0);
  errno = 0;
  EXPECT_EQ(api().setsockopt(sv_[0], SOL_SOCKET, SO_REUSEADDR, &v, 2), -1);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(api().setsockopt(sv_[0], SOL_SOCKET, SO_ERROR, &v, sizeof v), -1);
  EXPECT_EQ(errno, ENOPROTOOPT);
  timeval tv{0, 1'000'000};
  errno = 0;
  EXPECT_EQ(api().setsockopt(sv_[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), -1);
  EXPECT_EQ(errno, EDOM);
  ucred cred{};
  l = sizeof cred;
  ASSERT_EQ(api().getsockopt(sv_[0], SOL_SOCKET, SO_PEERCRED, &cred, &l), 0);
  EXPECT_EQ(cred.pid, getpid());
}

TEST_P(UnixStream, NameAndUnsupportedCalls) {
  sockaddr_un un;
  std::memset(&un, 0x55, sizeof un);
  socklen_t l = sizeof un;
  ASSERT_EQ(api().getsockname(sv_[0], reinterpret_cast<sockaddr*>(&un), &l), 0);
  EXPECT_EQ(l, sizeof(sa_family_t));
  EXPECT_EQ(un.sun_family, AF_UNIX);
  EXPECT_EQ(static_cast<unsigned char>(un.sun_path[0]), 0x55u);  // nothing else written
  l = 0;
  ASSERT_EQ(api().getsockname(sv_[0], reinterpret_cast<sockaddr*>(&un), &l), 0);
  EXPECT_EQ(l, sizeof(sa_family_t));
  l = static_cast<socklen_t>(-1);
  errno = 0;
  EXPECT_EQ(api().getsockname(sv_[0], reinterpret_cast<sockaddr*>(&un), &l), -1);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(api().getsockname(sv_[0], reinterpret_cast<sockaddr*>(&un), nullptr), -1);
  EXPECT_EQ(errno, EFAULT);

  errno = 0;
  EXPECT_EQ(api().listen(sv_[0], 1), -1);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(api().accept(sv_[0], nullptr, nullptr), -1);
  EXPECT_EQ(errno, EINVAL);
  sockaddr sa{};
  sa.sa_family = AF_UNIX;
  errno = 0;
  EXPECT_EQ(api().connect(sv_[0], &sa, sizeof(sa_family_t)), -1);
  EXPECT_EQ(errno, EINVAL);
  sa.sa_family = AF_INET;
  errno = 0;
  EXPECT_EQ(api().connect(sv_[0], &sa, sizeof sa), -1);
  EXPECT_EQ(errno, EINVAL);
  sockaddr_un abstract{};
  abstract.sun_family = AF_UNIX;
  std::strcpy(abstract.sun_path + 1, "uepoll-unit-test-nobody-listens-here");
  errno = 0;
  EXPECT_EQ(api().connect(sv_[0], reinterpret_cast<sockaddr*>(&abstract), sizeof abstract), -1);
  EXPECT_EQ(errno, ECONNREFUSED);
  errno = 0;
  EXPECT_EQ(api().bind(sv_[0], &sa, 1), -1);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(api().bind(sv_[0], nullptr, sizeof(sa_family_t)), -1);
  EXPECT_EQ(errno, EFAULT);
  // An autobind gives an abstract name: a NUL and five hex digits.
  sa.sa_family = AF_UNIX;
  ASSERT_EQ(api().bind(sv_[0], &sa, sizeof(sa_family_t)), 0);
  ASSERT_EQ(api().bind(sv_[0], &sa, sizeof(sa_family_t)), 0);  // again: nothing changes
  l = sizeof un;
  ASSERT_EQ(api().getsockname(sv_[0], reinterpret_cast<sockaddr*>(&un), &l), 0);
  EXPECT_EQ(l, sizeof(sa_family_t) + 6);
  EXPECT_EQ(un.sun_path[0], '\0');
}

TEST_P(UnixStream, NegativeReceiveTimeoutMeansDoNotWait) {
  set_blocking(sv_[1]);
  timeval tv{-1, 0};
  ASSERT_EQ(api().setsockopt(sv_[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  char b[4];
  errno = 0;
  EXPECT_EQ(api().read(sv_[1], b, sizeof b), -1);
  EXPECT_EQ(errno, EAGAIN);
}

TEST_P(UnixStream, ReceiveTimeoutExpires) {
  set_blocking(sv_[1]);
  timeval tv{0, 30'000};
  ASSERT_EQ(api().setsockopt(sv_[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  char b[4];
  auto start = std::chrono::steady_clock::now();
  errno = 0;
  EXPECT_EQ(api().read(sv_[1], b, sizeof b), -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(25));
}

// --- blocking calls, on both backends ---

TEST_P(UnixStream, BlockingReadWakesOnWrite) {
  set_blocking(sv_[1]);
  char b[8];
  long r = run_blocked([&] { return api().read(sv_[1], b, sizeof b); },
                       [&] { ASSERT_EQ(api().write(sv_[0], "hey", 3), 3); });
  EXPECT_EQ(r, 3);
}

TEST_P(UnixStream, BlockingReadEndsWithEofWhenThePeerCloses) {
  set_blocking(sv_[1]);
  char b[8];
  long r = run_blocked([&] { return api().read(sv_[1], b, sizeof b); }, [&] { close_end(0); });
  EXPECT_EQ(r, 0);
}

TEST_P(UnixStream, BlockingWaitallCollectsSeveralWrites) {
  set_blocking(sv_[1]);
  char b[6];
  long r = run_blocked([&] { return api().recv(sv_[1], b, sizeof b, MSG_WAITALL); },
                       [&] {
                         ASSERT_EQ(api().write(sv_[0], "abc", 3), 3);
                         std::this_thread::sleep_for(std::chrono::milliseconds(10));
                         ASSERT_EQ(api().write(sv_[0], "def", 3), 3);
                       });
  EXPECT_EQ(r, 6);
  EXPECT_EQ(std::string(b, 6), "abcdef");
}

TEST_P(UnixStream, BlockingWriteWaitsForTheReader) {
  int drop;
  long bytes;
  fill(api(), sv_[0], 1, &drop, &bytes);
  set_blocking(sv_[0]);
  long r = run_blocked([&] { return api().write(sv_[0], "w", 1); },
                       [&] {
                         char b[300];
                         // Draining below a quarter of sndbuf wakes the writer.
                         for (int i = 0; i < 278; ++i) {
                           ASSERT_EQ(api().read(sv_[1], b, 1), 1);
                         }
                       });
  EXPECT_EQ(r, 1);
}

TEST_P(UnixStream, BlockedWriterGetsTheResetWhenThePeerCloses) {
  int drop;
  long bytes;
  fill(api(), sv_[0], 1, &drop, &bytes);
  set_blocking(sv_[0]);
  int before = sigpipes_so_far();
  // The peer closes with our data unread: the pending error wins over the shutdown, and an
  // error other than EPIPE raises no SIGPIPE.
  long r = run_blocked([&] { return api().send(sv_[0], "w", 1, 0); }, [&] { close_end(1); });
  EXPECT_EQ(r, -1);
  EXPECT_EQ(errno, ECONNRESET);
  EXPECT_EQ(sigpipes_so_far(), before);
  errno = 0;
  EXPECT_EQ(api().send(sv_[0], "w", 1, 0), -1);
  EXPECT_EQ(errno, EPIPE);
  EXPECT_EQ(sigpipes_so_far(), before + 1);
}

TEST_P(UnixStream, SignalInterruptsABlockedRead) {
  set_blocking(sv_[1]);
  char b[8];
  std::atomic<bool> done{false};
  long r = 0;
  int err = 0;
  std::thread t([&] {
    errno = 0;
    r = api().read(sv_[1], b, sizeof b);
    err = errno;
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  for (int i = 0; i < 500 && !done; ++i) {
    pthread_kill(t.native_handle(), SIGUSR1);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  t.join();
  EXPECT_EQ(r, -1);
  EXPECT_EQ(err, EINTR);
}

TEST_P(UnixStream, SignalInterruptsABlockedWriteAfterPartialProgress) {
  set_blocking(sv_[0]);
  std::vector<char> big(1 << 20, 'q');
  std::atomic<bool> done{false};
  long r = 0;
  std::thread t([&] {
    r = api().write(sv_[0], big.data(), big.size());
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  for (int i = 0; i < 500 && !done; ++i) {
    pthread_kill(t.native_handle(), SIGUSR1);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  t.join();
  EXPECT_EQ(r, 219264);  // what fitted before the signal
}

}  // namespace
