// Stream sockets: AF_UNIX socketpairs, and AF_INET/AF_INET6 stream sockets (kernel loopback TCP
// on the kernel backend, uepoll's in-process sockets on the other), which must look alike.
//
// readiness(fd) is what a fresh LT instance watching IN|OUT|RDHUP|PRI reports for fd right now;
// a/b are the two ends of a socketpair; "c" is a TCP client, "s" the server side of the same
// connection and "L" the listener.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <tuple>
#include <vector>

#include "conformance.hpp"

namespace uepoll_conformance {
namespace {

constexpr uint32_t IN = EPOLLIN;
constexpr uint32_t OUT = EPOLLOUT;
constexpr uint32_t ERR = EPOLLERR;
constexpr uint32_t HUP = EPOLLHUP;
constexpr uint32_t RDHUP = EPOLLRDHUP;

class SocketFixture : public Conformance {
 protected:
  // Readiness once it includes all of `bits`, or whatever it is after 2 s. The kernel may finish
  // TCP work (a FIN, a reset) a little after the call that caused it returned.
  uint32_t readiness_with(int fd, uint32_t bits) {
    Fd ep = make_epoll();
    add(ep, fd, bits, 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    for (;;) {
      const uint32_t now = readiness(fd);
      if ((now & bits) == bits || std::chrono::steady_clock::now() > deadline) return now;
      wait(ep, 1, 10);
    }
  }
  int so_error(int fd) {
    int v = -1;
    socklen_t len = sizeof v;
    must(api().getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &len), "getsockopt(SO_ERROR)");
    return v;
  }
};

// ---- AF_UNIX socketpair -----------------------------------------------------------------------

class UnixSocketpair : public SocketFixture {};

TEST_P(UnixSocketpair, FreshPairIsWritableOnly) {
  auto [a, b] = make_socketpair();
  EXPECT_EQ(readiness(a), OUT);
  EXPECT_EQ(readiness(b), OUT);
  write_byte(a);
  EXPECT_EQ(readiness(b), IN | OUT);
  EXPECT_EQ(readiness(a), OUT);
}

TEST_P(UnixSocketpair, ShutWrGivesThePeerRdhup) {
  auto [a, b] = make_socketpair();
  ASSERT_EQ(api().shutdown(a, SHUT_WR), 0);
  EXPECT_EQ(readiness(a), OUT);
  EXPECT_EQ(readiness(b), IN | OUT | RDHUP);
  char c;
  EXPECT_EQ(api().read(b, &c, 1), 0);
  EXPECT_ERRNO(EPIPE, api().send(a, "x", 1, MSG_NOSIGNAL));
  write_byte(b);  // the other direction still works
  EXPECT_EQ(api().read(a, &c, 1), 1);
}

TEST_P(UnixSocketpair, ShutRdIsThePeersShutWr) {
  auto [a, b] = make_socketpair();
  ASSERT_EQ(api().shutdown(a, SHUT_RD), 0);
  EXPECT_EQ(readiness(a), IN | OUT | RDHUP);
  EXPECT_EQ(readiness(b), OUT);
  EXPECT_ERRNO(EPIPE, api().send(b, "x", 1, MSG_NOSIGNAL));
}

TEST_P(UnixSocketpair, BothDirectionsShutGivesHup) {
  auto [a, b] = make_socketpair();
  ASSERT_EQ(api().shutdown(a, SHUT_WR), 0);
  ASSERT_EQ(api().shutdown(b, SHUT_WR), 0);
  EXPECT_EQ(readiness(a), IN | OUT | HUP | RDHUP);
  EXPECT_EQ(readiness(b), IN | OUT | HUP | RDHUP);

  auto [c, d] = make_socketpair();
  ASSERT_EQ(api().shutdown(c, SHUT_RDWR), 0);
  EXPECT_EQ(readiness(c), IN | OUT | HUP | RDHUP);
  EXPECT_EQ(readiness(d), IN | OUT | HUP | RDHUP);
}

// ep -LT,IN|RDHUP-> b ; a closes
TEST_P(UnixSocketpair, PeerCloseGivesHup) {
  auto [a, b] = make_socketpair();
  Fd ep = make_epoll();
  add(ep, b, EPOLLIN | EPOLLRDHUP, 1);
  a.reset();
  EXPECT_EQ(wait(ep), (Evs{{IN | HUP | RDHUP, 1}}));
  EXPECT_EQ(readiness(b), IN | OUT | HUP | RDHUP);
  char c;
  EXPECT_EQ(api().read(b, &c, 1), 0);
}

TEST_P(UnixSocketpair, WriteToAClosedPeerIsEpipeAndSigpipeUnlessNosignal) {
  auto [a, b] = make_socketpair();
  a.reset();
  BlockedSignal sigpipe(SIGPIPE);
  EXPECT_ERRNO(EPIPE, api().send(b, "x", 1, MSG_NOSIGNAL));
  EXPECT_FALSE(sigpipe.consume()) << "MSG_NOSIGNAL must not raise SIGPIPE";
  EXPECT_ERRNO(EPIPE, api().send(b, "x", 1, 0));
  EXPECT_TRUE(sigpipe.pending_for_thread());
  EXPECT_TRUE(sigpipe.consume());
  EXPECT_ERRNO(EPIPE, api().write(b, "x", 1));
  EXPECT_TRUE(sigpipe.pending_for_thread());
  EXPECT_TRUE(sigpipe.consume());
}

// b wrote to a, a never read it, a closes: b sees ERR, and one read fails with ECONNRESET
TEST_P(UnixSocketpair, CloseWithUnreadDataResetsThePeer) {
  auto [a, b] = make_socketpair();
  Fd ep = make_epoll();
  add(ep, b, EPOLLIN, 1);
  write_byte(b);
  a.reset();
  EXPECT_EQ(wait(ep), (Evs{{IN | ERR | HUP, 1}}));
  EXPECT_EQ(readiness(b), IN | OUT | ERR | HUP | RDHUP);
  char c;
  EXPECT_ERRNO(ECONNRESET, api().read(b, &c, 1));
  EXPECT_EQ(readiness(b), IN | OUT | HUP | RDHUP);
  EXPECT_EQ(api().read(b, &c, 1), 0);
}

TEST_P(UnixSocketpair, SoErrorReportsAndClearsTheReset) {
  auto [a, b] = make_socketpair();
  write_byte(b);
  a.reset();
  EXPECT_EQ(so_error(b), ECONNRESET);
  EXPECT_EQ(so_error(b), 0);
  EXPECT_EQ(readiness(b), IN | OUT | HUP | RDHUP);
}

// EPOLLOUT goes away long before writes fail: Linux counts queued buffers, so about 70 unread
// small writes are enough whatever their size.
TEST_P(UnixSocketpair, OutDropsAfterAboutSeventySmallWrites) {
  for (size_t size : {size_t{1}, size_t{100}}) {
    SCOPED_TRACE("writes of " + std::to_string(size) + " bytes");
    auto [a, b] = make_socketpair(SOCK_NONBLOCK);
    std::string chunk(size, 'x');
    int writes = 0;
    while ((readiness(a) & OUT) != 0 && writes < 10000) {
      ASSERT_EQ(api().write(a, chunk.data(), size), static_cast<ssize_t>(size));
      ++writes;
    }
    EXPECT_GE(writes, 60);
    EXPECT_LE(writes, 80);
    // Writing still works for a while.
    EXPECT_EQ(api().write(a, chunk.data(), size), static_cast<ssize_t>(size));
    EXPECT_EQ(readiness(b), IN | OUT);
    std::vector<char> sink(1 << 16);
    while (api().read(b, sink.data(), sink.size()) > 0) {
    }
    EXPECT_EQ(readiness(a), OUT);
  }
}

TEST_P(UnixSocketpair, WritesUntilEagainThenOutReturnsAfterDraining) {
  auto [a, b] = make_socketpair(SOCK_NONBLOCK);
  int writes = 0;
  while (api().write(a, "x", 1) == 1 && writes < 100000) ++writes;
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_GT(writes, 80);
  EXPECT_EQ(readiness(a), 0U);
  std::vector<char> sink(1 << 16);
  while (api().read(b, sink.data(), sink.size()) > 0) {
  }
  EXPECT_EQ(readiness(a), OUT);
}

TEST_P(UnixSocketpair, PeekDontwaitAndStreamJoining) {
  auto [a, b] = make_socketpair();
  char buf[16] = {};
  EXPECT_ERRNO(EAGAIN, api().recv(b, buf, sizeof buf, MSG_DONTWAIT));
  ASSERT_EQ(api().write(a, "abc", 3), 3);
  ASSERT_EQ(api().send(a, "de", 2, 0), 2);
  EXPECT_EQ(api().recv(b, buf, 2, MSG_PEEK), 2);
  EXPECT_EQ(std::string(buf, 2), "ab");
  EXPECT_EQ(api().recv(b, buf, sizeof buf, 0), 5);  // a stream joins the writes
  EXPECT_EQ(std::string(buf, 5), "abcde");
  EXPECT_EQ(readiness(b), OUT);
}

// A socketpair's peer has no name: the address is the family alone, even once the peer closed.
TEST_P(UnixSocketpair, PeerNameIsTheFamilyAloneAndFionreadCountsUnreadBytes) {
  auto [a, b] = make_socketpair();
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ASSERT_EQ(api().getpeername(a, reinterpret_cast<sockaddr*>(&ss), &len), 0);
  EXPECT_EQ(len, sizeof(sa_family_t));
  EXPECT_EQ(ss.ss_family, AF_UNIX);
  int n = -1;
  ASSERT_EQ(api().fionread(b, &n), 0);
  EXPECT_EQ(n, 0);
  ASSERT_EQ(api().send(a, "hello", 5, 0), 5);
  ASSERT_EQ(api().send(a, "!", 1, 0), 1);
  char c;
  ASSERT_EQ(api().read(b, &c, 1), 1);
  ASSERT_EQ(api().fionread(b, &n), 0);
  EXPECT_EQ(n, 5);
  a.reset();
  len = sizeof ss;
  EXPECT_EQ(api().getpeername(b, reinterpret_cast<sockaddr*>(&ss), &len), 0);
  EXPECT_EQ(len, sizeof(sa_family_t));
  ASSERT_EQ(api().fionread(b, &n), 0);
  EXPECT_EQ(n, 5);
  auto [p, q] = make_pipe();
  len = sizeof ss;
  EXPECT_ERRNO(ENOTSOCK, api().getpeername(p, reinterpret_cast<sockaddr*>(&ss), &len));
}

TEST_P(UnixSocketpair, NonblockingReadOfEmptySocketIsEagain) {
  auto [a, b] = make_socketpair(SOCK_NONBLOCK);
  char c;
  EXPECT_ERRNO(EAGAIN, api().read(a, &c, 1));
  EXPECT_EQ(api().fcntl(a, F_GETFL, 0), O_RDWR | O_NONBLOCK);
}

// t1: blocking read on b | a writes
TEST_P(UnixSocketpair, BlockingReadWakesOnPeerWrite) {
  Fd a, b;  // not a structured binding: lambdas below capture them
  std::tie(a, b) = make_socketpair();
  char got = 0;
  const long n = returns_after([&] { return static_cast<long>(api().read(b, &got, 1)); },
                               [&] { write_byte(a); });
  EXPECT_EQ(n, 1);
  EXPECT_EQ(got, 'w');
}

// t1: blocking read on b | a closes
TEST_P(UnixSocketpair, BlockingReadEndsWhenPeerCloses) {
  Fd a, b;  // not a structured binding: lambdas below capture them
  std::tie(a, b) = make_socketpair();
  char got = 0;
  const long n =
      returns_after([&] { return static_cast<long>(api().read(b, &got, 1)); }, [&] { a.reset(); });
  EXPECT_EQ(n, 0);
}

// ---- AF_INET / AF_INET6 stream sockets ---------------------------------------------------------

class InetStream : public SocketFixture {
 protected:
  Fd tcp_socket(int flags = 0, int domain = AF_INET) {
    return adopt(static_cast<int>(must(api().socket(domain, SOCK_STREAM | flags, 0), "socket")));
  }
  static sockaddr_in loopback(uint16_t port = 0) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
  }
  sockaddr_in local_address(int fd) {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    must(api().getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), "getsockname");
    return a;
  }
  int bind_to(int fd, const sockaddr_in& a) {
    return api().bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  }
  int connect_to(int fd, const sockaddr_in& a) {
    return api().connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  }
  // A listener on 127.0.0.1 with a kernel-chosen port; its address in `addr`.
  Fd listener(sockaddr_in* addr, int flags = 0) {
    Fd l = tcp_socket(flags);
    must(bind_to(l, loopback()), "bind");
    must(api().listen(l, 16), "listen");
    *addr = local_address(l);
    return l;
  }
  // A connected pair {client, server} through a fresh listener.
  std::pair<Fd, Fd> connected() {
    sockaddr_in addr{};
    Fd l = listener(&addr);
    Fd c = tcp_socket();
    must(connect_to(c, addr), "connect");
    Fd s = adopt(static_cast<int>(must(api().accept(l, nullptr, nullptr), "accept")));
    return {std::move(c), std::move(s)};
  }
};

TEST_P(InetStream, FreshSocketIsOutAndHup) {
  Fd s = tcp_socket();
  EXPECT_EQ(readiness(s), OUT | HUP);
  ASSERT_EQ(bind_to(s, loopback()), 0);
  EXPECT_EQ(readiness(s), OUT | HUP);
  // So an item for a socket that will be connected later fires at once.
  Fd ep = make_epoll();
  add(ep, s, EPOLLOUT | EPOLLET, 1);
  EXPECT_EQ(wait(ep), (Evs{{OUT | HUP, 1}}));
  int type = 0;
  socklen_t len = sizeof type;
  EXPECT_EQ(api().getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &len), 0);
  EXPECT_EQ(type, SOCK_STREAM);
  EXPECT_EQ(so_error(s), 0);
}

TEST_P(InetStream, BindListenConnectAccept) {
  Fd l = tcp_socket();
  int one = 1;
  EXPECT_EQ(api().setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
  ASSERT_EQ(bind_to(l, loopback()), 0);
  const sockaddr_in bound = local_address(l);
  EXPECT_EQ(bound.sin_family, AF_INET);
  EXPECT_EQ(bound.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
  EXPECT_NE(bound.sin_port, 0);
  ASSERT_EQ(api().listen(l, 8), 0);
  EXPECT_EQ(readiness(l), 0U);

  Fd c = tcp_socket();
  ASSERT_EQ(connect_to(c, bound), 0);
  EXPECT_EQ(readiness(c), OUT);
  EXPECT_EQ(readiness_with(l, IN), IN);
  const sockaddr_in client_addr = local_address(c);
  EXPECT_EQ(client_addr.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
  EXPECT_NE(client_addr.sin_port, 0);

  sockaddr_in peer{};
  socklen_t len = sizeof peer;
  Fd s = adopt(
      api().accept4(l, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC));
  ASSERT_GE(s.get(), 0);
  EXPECT_EQ(len, sizeof peer);
  EXPECT_EQ(peer.sin_port, client_addr.sin_port);
  EXPECT_EQ(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
  EXPECT_EQ(local_address(s).sin_port, bound.sin_port);
  EXPECT_EQ(api().fcntl(s, F_GETFL, 0), O_RDWR | O_NONBLOCK);
  EXPECT_EQ(api().fcntl(s, F_GETFD, 0), FD_CLOEXEC);
  EXPECT_EQ(readiness(l), 0U);
  EXPECT_EQ(readiness(s), OUT);

  ASSERT_EQ(api().send(c, "ping", 4, 0), 4);
  EXPECT_EQ(readiness_with(s, IN), IN | OUT);
  char buf[8] = {};
  EXPECT_EQ(api().recv(s, buf, sizeof buf, 0), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");
  EXPECT_ERRNO(EAGAIN, api().recv(s, buf, sizeof buf, 0));
  ASSERT_EQ(api().write(s, "pong", 4), 4);
  EXPECT_EQ(api().read(c, buf, sizeof buf), 4);
  EXPECT_EQ(std::string(buf, 4), "pong");
  EXPECT_ERRNO(EISCONN, connect_to(c, bound));
}

TEST_P(InetStream, AcceptedSocketDoesNotInheritNonblock) {
  sockaddr_in addr{};
  Fd l = listener(&addr, SOCK_NONBLOCK);
  EXPECT_ERRNO(EAGAIN, api().accept(l, nullptr, nullptr));
  Fd c = tcp_socket();
  ASSERT_EQ(connect_to(c, addr), 0);
  readiness_with(l, IN);
  Fd s = adopt(api().accept(l, nullptr, nullptr));
  ASSERT_GE(s.get(), 0);
  EXPECT_EQ(api().fcntl(s, F_GETFL, 0), O_RDWR);
  EXPECT_EQ(api().fcntl(s, F_GETFD, 0), 0);
}

TEST_P(InetStream, SecondBindToAListeningPortIsEaddrinuse) {
  sockaddr_in addr{};
  Fd l = listener(&addr);
  Fd other = tcp_socket();
  EXPECT_ERRNO(EADDRINUSE, bind_to(other, addr));
}

TEST_P(InetStream, ListenWithoutBindPicksAPort) {
  Fd l = tcp_socket();
  ASSERT_EQ(api().listen(l, 4), 0);
  EXPECT_NE(local_address(l).sin_port, 0);
  EXPECT_EQ(readiness(l), 0U);
}

TEST_P(InetStream, UnboundSocketNameIsAnyAddressPortZero) {
  Fd s = tcp_socket();
  const sockaddr_in a = local_address(s);
  EXPECT_EQ(a.sin_family, AF_INET);
  EXPECT_EQ(a.sin_port, 0);
  EXPECT_EQ(a.sin_addr.s_addr, htonl(INADDR_ANY));
}

// getpeername answers while a connection exists and has not reached TCP_CLOSE; FIONREAD
// (SIOCINQ) counts unread bytes, a FIN included in nothing, and refuses a listener.
TEST_P(InetStream, PeerNameAndFionreadFollowTheConnection) {
  Fd fresh = tcp_socket();
  sockaddr_in a{};
  socklen_t len = sizeof a;
  EXPECT_ERRNO(ENOTCONN, api().getpeername(fresh, reinterpret_cast<sockaddr*>(&a), &len));
  int n = -1;
  ASSERT_EQ(api().fionread(fresh, &n), 0);
  EXPECT_EQ(n, 0);

  sockaddr_in addr{};
  Fd l = listener(&addr);
  EXPECT_ERRNO(EINVAL, api().fionread(l, &n));
  len = sizeof a;
  EXPECT_ERRNO(ENOTCONN, api().getpeername(l, reinterpret_cast<sockaddr*>(&a), &len));
  Fd c = tcp_socket();
  ASSERT_EQ(connect_to(c, addr), 0);
  sockaddr_in from{};
  socklen_t from_len = sizeof from;
  Fd s = adopt(static_cast<int>(
      must(api().accept(l, reinterpret_cast<sockaddr*>(&from), &from_len), "accept")));
  len = sizeof a;
  ASSERT_EQ(api().getpeername(c, reinterpret_cast<sockaddr*>(&a), &len), 0);
  EXPECT_EQ(len, sizeof a);
  EXPECT_EQ(a.sin_port, addr.sin_port);
  EXPECT_EQ(a.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
  len = sizeof a;
  ASSERT_EQ(api().getpeername(s, reinterpret_cast<sockaddr*>(&a), &len), 0);
  EXPECT_EQ(a.sin_port, local_address(c).sin_port);
  EXPECT_EQ(a.sin_port, from.sin_port);

  ASSERT_EQ(api().send(c, "abcdef", 6, 0), 6);
  c.reset();  // data, then the FIN
  EXPECT_EQ(readiness_with(s, RDHUP), IN | OUT | RDHUP);
  ASSERT_EQ(api().fionread(s, &n), 0);
  EXPECT_EQ(n, 6);
  len = sizeof a;
  EXPECT_EQ(api().getpeername(s, reinterpret_cast<sockaddr*>(&a), &len), 0);  // CLOSE_WAIT
  ASSERT_EQ(api().send(s, "y", 1, MSG_NOSIGNAL), 1);  // answered by a reset: TCP_CLOSE
  EXPECT_EQ(readiness_with(s, ERR) & ERR, ERR);
  len = sizeof a;
  EXPECT_ERRNO(ENOTCONN, api().getpeername(s, reinterpret_cast<sockaddr*>(&a), &len));
}

// Setting the buffers turns autotuning off: a writer that nobody reads from stops (EAGAIN,
// no EPOLLOUT) after some tens of kilobytes instead of megabytes.
TEST_P(InetStream, SetBuffersLimitWhatAWriterMayQueue) {
  auto [c, s] = connected();
  const int small = 4096;
  ASSERT_EQ(api().setsockopt(s, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
  ASSERT_EQ(api().setsockopt(c, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
  ASSERT_EQ(api().fcntl(c, F_SETFL, O_NONBLOCK), 0);
  std::vector<char> buf(4096, 'b');
  size_t queued = 0;
  for (;;) {
    const ssize_t n = api().send(c, buf.data(), buf.size(), 0);
    if (n < 0) {
      EXPECT_EQ(errno, EAGAIN);
      break;
    }
    queued += static_cast<size_t>(n);
    ASSERT_LT(queued, 1u << 20) << "the writer never stopped";
  }
  EXPECT_GT(queued, 0u);
  EXPECT_LT(queued, 256u * 1024);
  EXPECT_EQ(readiness(c) & OUT, 0U);
}

// ep -LT,IN|RDHUP-> s ; the client closes
TEST_P(InetStream, PeerCloseGivesRdhupWithoutHup) {
  auto [c, s] = connected();
  ASSERT_EQ(api().send(c, "x", 1, 0), 1);
  c.reset();
  EXPECT_EQ(readiness_with(s, RDHUP), IN | OUT | RDHUP);  // unlike AF_UNIX: no HUP
  char buf[4];
  EXPECT_EQ(api().read(s, buf, sizeof buf), 1);
  EXPECT_EQ(api().read(s, buf, sizeof buf), 0);
  EXPECT_EQ(readiness(s), IN | OUT | RDHUP);
}

TEST_P(InetStream, ShutdownOfBothDirectionsGivesHup) {
  auto [c, s] = connected();
  ASSERT_EQ(api().shutdown(c, SHUT_WR), 0);
  EXPECT_EQ(readiness_with(s, RDHUP), IN | OUT | RDHUP);
  EXPECT_EQ(readiness(c), OUT);
  ASSERT_EQ(api().shutdown(s, SHUT_WR), 0);
  EXPECT_EQ(readiness_with(c, HUP), IN | OUT | HUP | RDHUP);
  EXPECT_EQ(readiness(s), IN | OUT | HUP | RDHUP);
}

// s is in CLOSE_WAIT (the client closed); s writes, the client's side answers with a reset
TEST_P(InetStream, ResetInCloseWaitIsEpipe) {
  auto [c, s] = connected();
  c.reset();
  ASSERT_EQ(readiness_with(s, RDHUP), IN | OUT | RDHUP);
  EXPECT_EQ(api().send(s, "y", 1, MSG_NOSIGNAL), 1);  // accepted locally, then reset
  EXPECT_EQ(readiness_with(s, ERR), IN | OUT | ERR | HUP | RDHUP);
  EXPECT_EQ(so_error(s), EPIPE);
  EXPECT_EQ(readiness(s), IN | OUT | HUP | RDHUP);
  EXPECT_ERRNO(EPIPE, api().send(s, "y", 1, MSG_NOSIGNAL));
}

TEST_P(InetStream, BlockingConnectToAClosedPortIsRefused) {
  Fd bound = tcp_socket();
  ASSERT_EQ(bind_to(bound, loopback()), 0);  // a port nobody listens on
  const sockaddr_in addr = local_address(bound);
  Fd c = tcp_socket();
  EXPECT_ERRNO(ECONNREFUSED, connect_to(c, addr));
  EXPECT_EQ(readiness(c), OUT | HUP);
  EXPECT_EQ(so_error(c), 0);  // the error went to connect
}

// ep -LT,OUT-> c ; c connects without blocking to a port nobody listens on
TEST_P(InetStream, NonblockingConnectToAClosedPortReportsTheError) {
  Fd bound = tcp_socket();
  ASSERT_EQ(bind_to(bound, loopback()), 0);
  const sockaddr_in addr = local_address(bound);
  Fd c = tcp_socket(SOCK_NONBLOCK);
  const int rc = connect_to(c, addr);
  const int err = errno;
  ASSERT_EQ(rc, -1);
  ASSERT_TRUE(err == EINPROGRESS || err == ECONNREFUSED) << errno_name(err);
  if (err == EINPROGRESS) {
    EXPECT_EQ(readiness_with(c, ERR), IN | OUT | ERR | HUP | RDHUP);
    EXPECT_EQ(so_error(c), ECONNREFUSED);
  }
  EXPECT_EQ(so_error(c), 0);
  EXPECT_EQ(readiness(c), IN | OUT | HUP | RDHUP);
}

// ep -ET,OUT-> c ; non-blocking connect to a listener
TEST_P(InetStream, NonblockingConnectCompletesWithOut) {
  sockaddr_in addr{};
  Fd l = listener(&addr);
  Fd c = tcp_socket(SOCK_NONBLOCK);
  const int rc = connect_to(c, addr);
  if (rc != 0) {
    ASSERT_EQ(errno, EINPROGRESS) << errno_name(errno);
  }
  EXPECT_EQ(readiness_with(c, OUT), OUT);
  EXPECT_EQ(so_error(c), 0);
  Fd s = adopt(api().accept(l, nullptr, nullptr));
  EXPECT_GE(s.get(), 0);
}

TEST_P(InetStream, SendOnANeverConnectedSocketIsEpipeWithSigpipe) {
  Fd s = tcp_socket();
  BlockedSignal sigpipe(SIGPIPE);
  EXPECT_ERRNO(EPIPE, api().send(s, "x", 1, MSG_NOSIGNAL));
  EXPECT_FALSE(sigpipe.consume());
  EXPECT_ERRNO(EPIPE, api().send(s, "x", 1, 0));
  EXPECT_TRUE(sigpipe.pending_for_thread());
  EXPECT_TRUE(sigpipe.consume());
  char c;
  EXPECT_ERRNO(ENOTCONN, api().read(s, &c, 1));
}

TEST_P(InetStream, Ipv6LoopbackConnection) {
  Fd l = tcp_socket(0, AF_INET6);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  ASSERT_EQ(api().bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(api().listen(l, 4), 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(api().getsockname(l, reinterpret_cast<sockaddr*>(&a), &len), 0);
  EXPECT_EQ(len, sizeof a);
  EXPECT_NE(a.sin6_port, 0);
  Fd c = tcp_socket(0, AF_INET6);
  ASSERT_EQ(api().connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  Fd s = adopt(api().accept(l, nullptr, nullptr));
  ASSERT_GE(s.get(), 0);
  ASSERT_EQ(api().send(c, "six", 3, 0), 3);
  EXPECT_EQ(readiness_with(s, IN), IN | OUT);
  char buf[4];
  EXPECT_EQ(api().recv(s, buf, sizeof buf, 0), 3);
}

// t1: blocking accept on L | a client connects
TEST_P(InetStream, BlockingAcceptWakesOnConnect) {
  sockaddr_in addr{};
  Fd l = listener(&addr);
  Fd c = tcp_socket();
  const long n = returns_after([&] { return static_cast<long>(api().accept(l, nullptr, nullptr)); },
                               [&] { ASSERT_EQ(connect_to(c, addr), 0); });
  ASSERT_GE(n, 0);
  Fd s = adopt(static_cast<int>(n));
}

// t1: blocking recv on s | the client sends
TEST_P(InetStream, BlockingRecvWakesOnData) {
  Fd c, s;  // not a structured binding: lambdas below capture them
  std::tie(c, s) = connected();
  char got = 0;
  const long n = returns_after([&] { return static_cast<long>(api().recv(s, &got, 1, 0)); },
                               [&] { ASSERT_EQ(api().send(c, "q", 1, 0), 1); });
  EXPECT_EQ(n, 1);
  EXPECT_EQ(got, 'q');
}

// t0: ew(ep0)  t1: ew(ep1) | ep0 -EXCLUSIVE,IN-> L, ep1 -EXCLUSIVE,IN-> L | one connect
TEST_P(InetStream, ExclusiveListenerWakesOneOfTwoInstances) {
  sockaddr_in addr{};
  Fd l = listener(&addr);
  Fd ep0 = make_epoll();
  Fd ep1 = make_epoll();
  add(ep0, l, EPOLLIN | EPOLLEXCLUSIVE, 0);
  add(ep1, l, EPOLLIN | EPOLLEXCLUSIVE, 1);
  Fd c = tcp_socket();
  auto r = run_waiters(api(), {{ep0, WaitKind::kEpollWait, 1}, {ep1, WaitKind::kEpollWait, 1}}, 1,
                       [&] { ASSERT_EQ(connect_to(c, addr), 0); });
  EXPECT_EQ(harvest_count(r), 1);
}

}  // namespace

UEPOLL_CONFORMANCE_SUITE(UnixSocketpair);
UEPOLL_CONFORMANCE_SUITE(InetStream);

}  // namespace uepoll_conformance
