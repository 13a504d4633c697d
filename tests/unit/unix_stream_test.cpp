// AF_UNIX SOCK_STREAM socketpairs, uepoll only: stress and races with close. The scenarios both
// backends share are tests/conformance/unix_stream_test.cpp.
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

#include "support/backend.hpp"
#include "uepoll/uepoll.h"

namespace {

// Writers here race closes: an EPIPE must fail a check, not kill the test binary with SIGPIPE.
const bool g_sigpipe_ignored = [] {
  signal(SIGPIPE, SIG_IGN);
  return true;
}();

TEST(UnixStreamUepoll, ConcurrentTransferKeepsEveryByte) {
  int sv[2];
  ASSERT_EQ(uepoll_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  constexpr std::size_t kTotal = 8 << 20;
  std::thread writer([&] {
    std::vector<unsigned char> buf(7919);
    std::size_t sent = 0;
    while (sent < kTotal) {
      std::size_t n = std::min(buf.size(), kTotal - sent);
      for (std::size_t i = 0; i < n; ++i) {
        buf[i] = static_cast<unsigned char>((sent + i) * 131 % 251);
      }
      ssize_t r = uepoll_write(sv[0], buf.data(), n);
      ASSERT_GT(r, 0);
      sent += static_cast<std::size_t>(r);
    }
    uepoll_shutdown(sv[0], SHUT_WR);
  });
  std::vector<unsigned char> buf(65536);
  std::size_t got = 0;
  bool ok = true;
  for (;;) {
    ssize_t r = uepoll_read(sv[1], buf.data(), 1 + got % buf.size());
    ASSERT_GE(r, 0);
    if (r == 0) {
      break;
    }
    for (ssize_t i = 0; i < r && ok; ++i) {
      ok = buf[i] == static_cast<unsigned char>((got + i) * 131 % 251);
    }
    got += static_cast<std::size_t>(r);
  }
  writer.join();
  EXPECT_TRUE(ok);
  EXPECT_EQ(got, kTotal);
  uepoll_close(sv[0]);
  uepoll_close(sv[1]);
}

TEST(UnixStreamUepoll, ManyPairsCloseWithDataQueued) {
  // Creation, queued data in both directions and close in every order: checked by the leak
  // sanitizer and ThreadSanitizer runs.
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < 500; ++i) {
        int sv[2];
        ASSERT_EQ(uepoll_socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
        ASSERT_EQ(uepoll_write(sv[0], "data", 4), 4);
        if ((i + t) % 2 == 0) {
          ASSERT_EQ(uepoll_write(sv[1], "back", 4), 4);
        }
        uepoll_close(sv[(i + t) % 2]);
        uepoll_close(sv[1 - (i + t) % 2]);
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
}

TEST(UnixStreamUepoll, BlockedReaderAndWriterRaceWithClose) {
  for (int round = 0; round < 50; ++round) {
    int sv[2];
    ASSERT_EQ(uepoll_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    std::thread reader([&] {
      char b[64];
      while (uepoll_read(sv[1], b, sizeof b) > 0) {
      }
    });
    std::thread writer([&] {
      char b[4096] = {};
      while (uepoll_send(sv[0], b, sizeof b, MSG_NOSIGNAL) > 0) {
      }
    });
    std::this_thread::sleep_for(std::chrono::microseconds(200 + round * 20));
    uepoll_shutdown(sv[1], SHUT_RDWR);
    reader.join();
    writer.join();
    uepoll_close(sv[0]);
    uepoll_close(sv[1]);
  }
}

}  // namespace
