// The stream layer's internals (src/objects/stream.hpp): byte queues, AF_UNIX's skb accounting,
// and each family rule of the shared send and receive paths, on a connection built by hand.
// What the families look like from outside is tests/conformance (unix_stream, inet_loopback).
#include "objects/stream.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <string>
#include <vector>

namespace {

using uepoll::IoFlags;
using uepoll::PollMask;
using uepoll::Result;
using uepoll::Timeout;
using namespace uepoll::stream;

// ---------------------------------------------------------------------------------------------
// Byte queues

Chunk* chunk_of(const std::string& s, std::uint32_t charge = 0) {
  Chunk* c = Chunk::create(s.size());
  std::memcpy(c->data(), s.data(), s.size());
  c->end = static_cast<std::uint32_t>(s.size());
  c->charge = charge;
  return c;
}

TEST(ByteQueue, PeekSkipsAndConsumeFreesWholeChunksOnly) {
  ByteQueue q;
  q.push(chunk_of("abc", 10));
  q.push(chunk_of("defg", 20));
  EXPECT_EQ(q.bytes(), 7u);
  EXPECT_EQ(q.charge(), 30u);
  unsigned char out[8] = {};
  Chunk* freed = nullptr;
  EXPECT_EQ(q.copy_out(out, 3, 2, false, &freed), 3u);  // a peek from offset 2
  EXPECT_EQ(std::string(reinterpret_cast<char*>(out), 3), "cde");
  EXPECT_EQ(freed, nullptr);
  EXPECT_EQ(q.bytes(), 7u);
  EXPECT_EQ(q.copy_out(out, 4, 0, true, &freed), 4u);  // all of the first chunk, 1 of the second
  ASSERT_NE(freed, nullptr);
  EXPECT_EQ(freed->next, nullptr);
  EXPECT_EQ(q.bytes(), 3u);
  EXPECT_EQ(q.charge(), 20u);  // the charge leaves with the whole chunk only
  Chunk::destroy_list(freed);
}

// ---------------------------------------------------------------------------------------------
// AF_UNIX's accounting

TEST(SkbAccounting, LimitsOfTheDefaultSendBuffer) {
  const Limit limit = Limit::skb(212992);
  EXPECT_EQ(limit.hold, 212992u);
  EXPECT_EQ(limit.writable, 53247u);  // 4 * (charge + 1) <= 212992
  EXPECT_EQ(max_skb_payload(212992), 36544u);
  EXPECT_EQ(max_skb_payload(4608), 4608u / 2 - 64);
  EXPECT_EQ(skb_truesize(1), 768u);
  EXPECT_EQ(skb_truesize(36544), 37120u);
}

// ---------------------------------------------------------------------------------------------
// A connection built by hand: two ends that count their wake-ups

// Recorded under the wait queue's spinlock, where nothing may allocate.
struct Wakeups : uepoll::WaitEntry {
  PollMask keys[64] = {};
  std::size_t count = 0;
};

bool count_wakeup(uepoll::WaitEntry& e, PollMask key) noexcept {
  auto& w = static_cast<Wakeups&>(e);
  if (w.count < std::size(w.keys)) {
    w.keys[w.count] = key;
  }
  ++w.count;
  return false;
}

class End final : public Socket {
 public:
  End(Conn* conn, int side) noexcept : Socket(O_NONBLOCK), conn_(conn), side_(side) {
    wakeups_.on_wake = &count_wakeup;
    queue_.add(wakeups_);
    opts_.sndbuf.store(212992);  // AF_UNIX sizes its skbs by the writer's send buffer
  }
  ~End() override { uepoll::WaitQueue::remove(wakeups_); }

  PollMask poll(uepoll::PollTable*) noexcept override { return 0; }
  Result<size_t> send(const void* buf, size_t len, IoFlags flags) noexcept override {
    Timeout zero = Timeout::zero();
    return send_on(*conn_, side_, buf, len, (flags.msg_flags & MSG_NOSIGNAL) != 0, true, zero);
  }
  Result<size_t> recv(void* buf, size_t len, IoFlags flags) noexcept override {
    Timeout zero = Timeout::zero();
    return recv_on(*conn_, side_, buf, len, flags.msg_flags, true, zero);
  }

  void set_rcvlowat(int v) { opts_.rcvlowat.store(v); }
  std::vector<PollMask> wakeups() const {
    return {wakeups_.keys, wakeups_.keys + std::min(wakeups_.count, std::size(wakeups_.keys))};
  }
  void forget_wakeups() { wakeups_.count = 0; }

 private:
  Conn* conn_;
  int side_;
  Wakeups wakeups_;
};

class StreamTest : public ::testing::TestWithParam<bool> {
 protected:
  StreamTest() : conn_(GetParam() ? kUnixRules : kTcpRules) {
    for (int i = 0; i < 2; ++i) {
      end_[i] = uepoll::make_ref<End>(&conn_, i);
      uepoll::SpinGuard guard(conn_.lock);
      conn_.side[i].sock = end_[i].get();
      conn_.side[i].limit = unix() ? Limit::skb(212992) : Limit{1000, 600};
    }
  }
  ~StreamTest() override {
    uepoll::SpinGuard guard(conn_.lock);
    for (Side& side : conn_.side) {
      side.sock = nullptr;
    }
  }

  bool unix() const { return GetParam(); }
  Side& side(int i) UEPOLL_NO_THREAD_SAFETY_ANALYSIS { return conn_.side[i]; }
  End& end(int i) { return *end_[i]; }
  Result<size_t> send(int i, const std::string& s, int flags = MSG_NOSIGNAL) {
    return end(i).send(s.data(), s.size(), IoFlags{flags, true});
  }
  std::string recv(int i, size_t n, int flags = 0) {
    std::string out(n, '\0');
    Result<size_t> r = end(i).recv(out.data(), n, IoFlags{flags, true});
    if (!r) {
      return "errno " + std::to_string(r.error());
    }
    out.resize(r.value());
    return out;
  }

  Conn conn_;
  uepoll::Ref<End> end_[2];
};

INSTANTIATE_TEST_SUITE_P(Families, StreamTest, ::testing::Values(true, false),
                         [](const auto& param_info) { return param_info.param ? "unix" : "tcp"; });

TEST_P(StreamTest, BytesArriveInOrderAndWakeTheReader) {
  ASSERT_EQ(send(0, "hello").value(), 5u);
  ASSERT_EQ(send(0, " world").value(), 6u);
  EXPECT_EQ(end(1).wakeups(), (std::vector<PollMask>{kDataReadyKey, kDataReadyKey}));
  EXPECT_EQ(recv(1, 3, MSG_PEEK), "hel");
  EXPECT_EQ(recv(1, 64), "hello world");
  EXPECT_EQ(recv(1, 64), "errno " + std::to_string(EAGAIN));
}

TEST_P(StreamTest, SmallWritesShareAChunkOnlyUnderByteAccounting) {
  ASSERT_TRUE(send(0, "a"));
  Chunk* first = side(1).rx.tail();
  ASSERT_TRUE(send(0, "b"));
  EXPECT_EQ(side(1).rx.tail() == first, !unix());
  EXPECT_EQ(side(1).rx.charge(), unix() ? 2 * skb_truesize(1) : 0u);
}

TEST_P(StreamTest, AFullDirectionTakesWhatFitsThenEagain) {
  const std::string big(4000, 'x');
  Result<size_t> r = send(0, big);
  ASSERT_TRUE(r);
  // TCP stops at the byte limit; AF_UNIX queues whole skbs while its charge is under sndbuf.
  EXPECT_EQ(r.value(), unix() ? big.size() : 1000u);
  if (unix()) {
    while ((r = send(0, big))) {
    }
  } else {
    r = send(0, big);
  }
  EXPECT_EQ(r.error(), EAGAIN);
  EXPECT_TRUE(side(0).nospace);
}

TEST_P(StreamTest, AReadWakesTheWriterPerTheFamilysRule) {
  ASSERT_TRUE(send(0, std::string(700, 'x')));
  // Under the writable mark again after the read: AF_UNIX wakes its writer on every freed skb,
  // TCP only a writer that found no room.
  EXPECT_EQ(recv(1, 700).size(), 700u);
  EXPECT_EQ(end(0).wakeups().size(), unix() ? 1u : 0u);
  end(0).forget_wakeups();
  ASSERT_TRUE(send(0, std::string(2000, 'x')));  // TCP: 1000 queued, then no room
  EXPECT_EQ(recv(1, 1000).size(), 1000u);
  if (!unix()) {
    EXPECT_EQ(end(0).wakeups(), std::vector<PollMask>{kWriteSpaceKey});
    EXPECT_FALSE(side(0).nospace);
  }
}

TEST_P(StreamTest, ReaderLowWaterMarkDelaysTheWakeUpOnlyForTcp) {
  end(1).set_rcvlowat(4);
  ASSERT_TRUE(send(0, "ab"));
  EXPECT_EQ(end(1).wakeups().size(), unix() ? 1u : 0u);
  ASSERT_TRUE(send(0, "cd"));
  EXPECT_EQ(end(1).wakeups().size(), unix() ? 2u : 1u);
}

TEST_P(StreamTest, APartialReadConsumesThePendingErrorOnlyForUnix) {
  ASSERT_TRUE(send(0, "ab"));
  {
    uepoll::SpinGuard guard(conn_.lock);
    side(1).err = ECONNRESET;
  }
  EXPECT_EQ(recv(1, 8, MSG_WAITALL), "ab");  // the error ends the wait for more
  EXPECT_EQ(recv(1, 8),
            unix() ? "errno " + std::to_string(EAGAIN) : "errno " + std::to_string(ECONNRESET));
}

TEST_P(StreamTest, PendingErrorComesBeforeTheShutdownAndEpipeRaisesSigpipe) {
  {
    uepoll::SpinGuard guard(conn_.lock);
    side(0).err = ECONNRESET;
    side(0).shut = kShutdownMask;
  }
  EXPECT_EQ(send(0, "x").error(), ECONNRESET);
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGPIPE);
  sigset_t old;
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &block, &old), 0);
  EXPECT_EQ(send(0, "x", 0).error(), EPIPE);
  sigset_t pending;
  sigpending(&pending);
  EXPECT_EQ(sigismember(&pending, SIGPIPE), 1);
  int sig;
  sigwait(&block, &sig);
  EXPECT_EQ(send(0, "x", MSG_NOSIGNAL).error(), EPIPE);
  sigpending(&pending);
  EXPECT_EQ(sigismember(&pending, SIGPIPE), 0);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

TEST_P(StreamTest, ShutdownAndEndOfFileAfterTheData) {
  ASSERT_TRUE(send(0, "ab"));
  {
    uepoll::SpinGuard guard(conn_.lock);
    side(1).shut |= kRcvShutdown;
  }
  EXPECT_EQ(recv(1, 8, MSG_WAITALL), "ab");
  EXPECT_EQ(recv(1, 8), "");
}

TEST(StreamTcp, DataToAClosedPeerResetsTheWriterButCountsAsSent) {
  Conn conn(kTcpRules);
  uepoll::Ref<End> writer = uepoll::make_ref<End>(&conn, 0);
  {
    uepoll::SpinGuard guard(conn.lock);
    conn.side[0].sock = writer.get();
    conn.side[1].limit = Limit{1000, 600};
  }
  EXPECT_EQ(writer->send("abc", 3, IoFlags{MSG_NOSIGNAL, true}).value(), 3u);
  uepoll::SpinGuard guard(conn.lock);
  EXPECT_TRUE(conn.side[0].closed);
  EXPECT_EQ(conn.side[0].err, ECONNRESET);
  EXPECT_EQ(conn.side[0].shut, kShutdownMask);
  EXPECT_EQ(writer->wakeups(), std::vector<PollMask>{0});  // a state change for every waiter
  conn.side[0].sock = nullptr;
}

TEST(StreamTcp, ResetAfterThePeersFinIsEpipe) {
  Side could_send;
  could_send.done = true;
  reset(could_send);
  EXPECT_EQ(could_send.err, EPIPE);
  EXPECT_TRUE(could_send.closed);
  Side had_shut;
  had_shut.done = true;
  had_shut.shut = kSendShutdown;
  reset(had_shut);
  EXPECT_EQ(had_shut.err, ECONNRESET);
  had_shut.err = 0;
  reset(had_shut);  // already closed: nothing changes
  EXPECT_EQ(had_shut.err, 0);
}

}  // namespace
