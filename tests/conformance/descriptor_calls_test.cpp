// The descriptor table and the non-epoll calls: bad descriptors, bad flags, bad ops, and the
// table rules (lowest free number first, close-on-exec per descriptor, status flags per open
// file description).
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <climits>

#include "conformance.hpp"

namespace uepoll_conformance {
namespace {

// A flag bit that no creation call accepts.
constexpr int kBogusFlag = O_APPEND;
// A socket type with a bit set that is neither a type nor SOCK_NONBLOCK/SOCK_CLOEXEC.
constexpr int kBogusSocketType = SOCK_STREAM | 0x100;

sockaddr_in loopback_any_port() {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// ---- Bad descriptors ---------------------------------------------------------------------------

class DescriptorErrors : public Conformance {};

TEST_P(DescriptorErrors, EbadfForDescriptorsNeverOpened) {
  char buf[8] = {};
  for (int fd : {-1, kNeverOpenFd, INT_MAX}) {
    SCOPED_TRACE("fd " + std::to_string(fd));
    EXPECT_ERRNO(EBADF, api().close(fd));
    EXPECT_ERRNO(EBADF, api().read(fd, buf, sizeof buf));
    EXPECT_ERRNO(EBADF, api().write(fd, buf, sizeof buf));
    EXPECT_ERRNO(EBADF, api().recv(fd, buf, sizeof buf, 0));
    EXPECT_ERRNO(EBADF, api().send(fd, buf, sizeof buf, MSG_NOSIGNAL));
    EXPECT_ERRNO(EBADF, api().dup(fd));
    EXPECT_ERRNO(EBADF, api().fcntl(fd, F_GETFD, 0));
    EXPECT_ERRNO(EBADF, api().fcntl(fd, F_GETFL, 0));
    EXPECT_ERRNO(EBADF, api().fcntl(fd, F_DUPFD, 0));
    EXPECT_ERRNO(EBADF, api().shutdown(fd, SHUT_RDWR));
    EXPECT_ERRNO(EBADF, api().listen(fd, 1));
    EXPECT_ERRNO(EBADF, api().accept(fd, nullptr, nullptr));
    EXPECT_ERRNO(EBADF, api().accept4(fd, nullptr, nullptr, kBogusFlag));  // EBADF first
    int v = 0;
    socklen_t len = sizeof v;
    EXPECT_ERRNO(EBADF, api().getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len));
    EXPECT_ERRNO(EBADF, api().setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &v, len));
    sockaddr_in a = loopback_any_port();
    socklen_t alen = sizeof a;
    EXPECT_ERRNO(EBADF, api().bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a));
    EXPECT_ERRNO(EBADF, api().connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a));
    EXPECT_ERRNO(EBADF, api().getsockname(fd, reinterpret_cast<sockaddr*>(&a), &alen));
  }
}

TEST_P(DescriptorErrors, EbadfAfterClose) {
  Fd efd = make_eventfd(1);
  const int n = efd.release();
  ASSERT_EQ(api().close(n), 0);
  EXPECT_ERRNO(EBADF, api().close(n));
  uint64_t v = 0;
  EXPECT_ERRNO(EBADF, api().read(n, &v, sizeof v));
  EXPECT_ERRNO(EBADF, api().dup(n));
}

TEST_P(DescriptorErrors, PipeEndsHaveOneDirection) {
  auto [r, w] = make_pipe();
  char c = 'x';
  EXPECT_ERRNO(EBADF, api().read(w, &c, 1));
  EXPECT_ERRNO(EBADF, api().write(r, &c, 1));
}

TEST_P(DescriptorErrors, SocketCallsOnNonSocketsAreEnotsock) {
  Fd efd = make_eventfd();
  auto [r, w] = make_pipe();
  Fd ep = make_epoll();
  char buf[8] = {};
  for (int fd : {efd.get(), r.get(), ep.get()}) {
    EXPECT_ERRNO(ENOTSOCK, api().recv(fd, buf, sizeof buf, MSG_DONTWAIT));
    EXPECT_ERRNO(ENOTSOCK, api().send(fd, buf, sizeof buf, MSG_DONTWAIT | MSG_NOSIGNAL));
    EXPECT_ERRNO(ENOTSOCK, api().shutdown(fd, SHUT_RD));
    EXPECT_ERRNO(ENOTSOCK, api().listen(fd, 1));
    EXPECT_ERRNO(ENOTSOCK, api().accept(fd, nullptr, nullptr));
    int v = 0;
    socklen_t len = sizeof v;
    EXPECT_ERRNO(ENOTSOCK, api().getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len));
    EXPECT_ERRNO(ENOTSOCK, api().setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &v, len));
    sockaddr_in a = loopback_any_port();
    socklen_t alen = sizeof a;
    EXPECT_ERRNO(ENOTSOCK, api().bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a));
    EXPECT_ERRNO(ENOTSOCK, api().connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a));
    EXPECT_ERRNO(ENOTSOCK, api().getsockname(fd, reinterpret_cast<sockaddr*>(&a), &alen));
  }
  // accept4 checks its flags before the descriptor type.
  EXPECT_ERRNO(EINVAL, api().accept4(efd, nullptr, nullptr, kBogusFlag));
  EXPECT_ERRNO(ENOTSOCK, api().accept4(efd, nullptr, nullptr, SOCK_NONBLOCK));
}

// ---- dup, dup2, dup3, fcntl ------------------------------------------------------------------

class DescriptorTable : public Conformance {};

TEST_P(DescriptorTable, LowestFreeNumberIsReused) {
  Fd a = make_eventfd();
  Fd b = make_eventfd();
  Fd c = make_eventfd();
  const int freed = a.get();
  a.reset();
  Fd d = adopt(static_cast<int>(must(api().dup(c), "dup")));
  EXPECT_EQ(d.get(), freed);
  const int freed2 = b.get();
  b.reset();
  Fd e = make_epoll();
  EXPECT_EQ(e.get(), freed2);
}

TEST_P(DescriptorTable, Dup2Rules) {
  Fd a = make_eventfd(5);
  Fd b = make_eventfd(0);
  EXPECT_EQ(api().dup2(a, a), a.get());                         // same number: a no-op
  EXPECT_ERRNO(EBADF, api().dup2(kNeverOpenFd, kNeverOpenFd));  // ...but a must be open
  EXPECT_ERRNO(EBADF, api().dup2(kNeverOpenFd, b));
  EXPECT_ERRNO(EBADF, api().dup2(a, -1));
  EXPECT_ERRNO(EBADF, api().dup2(a, INT_MAX));
  // b is silently closed and becomes a second number of a's eventfd.
  ASSERT_EQ(api().dup2(a, b), b.get());
  EXPECT_EQ(read_u64(b), 5U);
  write_u64(a, 3);
  EXPECT_EQ(read_u64(b), 3U);
}

TEST_P(DescriptorTable, Dup3Rules) {
  Fd a = make_eventfd(5);
  Fd b = make_eventfd(0);
  // Flags first, then "same number", then the descriptors.
  EXPECT_ERRNO(EINVAL, api().dup3(kNeverOpenFd, b, O_NONBLOCK));
  EXPECT_ERRNO(EINVAL, api().dup3(kNeverOpenFd, kNeverOpenFd, 0));
  EXPECT_ERRNO(EINVAL, api().dup3(a, a, 0));
  EXPECT_ERRNO(EINVAL, api().dup3(a, a, O_CLOEXEC));
  EXPECT_ERRNO(EBADF, api().dup3(a, INT_MAX, 0));
  EXPECT_ERRNO(EBADF, api().dup3(a, -1, 0));
  EXPECT_ERRNO(EBADF, api().dup3(kNeverOpenFd, b, 0));
  ASSERT_EQ(api().dup3(a, b, O_CLOEXEC), b.get());
  EXPECT_EQ(api().fcntl(b, F_GETFD, 0), FD_CLOEXEC);
  EXPECT_EQ(api().fcntl(a, F_GETFD, 0), 0);
  EXPECT_EQ(read_u64(b), 5U);
}

TEST_P(DescriptorTable, FcntlRejectsUnknownCommandsAndBadArguments) {
  Fd a = make_eventfd();
  EXPECT_ERRNO(EINVAL, api().fcntl(a, 9999, 0));
  EXPECT_ERRNO(EINVAL, api().fcntl(a, F_DUPFD, -1));
  EXPECT_ERRNO(EINVAL, api().fcntl(a, F_DUPFD, INT_MAX));
  EXPECT_ERRNO(EINVAL, api().fcntl(a, F_DUPFD_CLOEXEC, INT_MAX));
}

TEST_P(DescriptorTable, FcntlDupfdTakesLowestFreeAtOrAboveArgument) {
  Fd a = make_eventfd();
  const int floor = a.get() + 40;
  Fd b = adopt(api().fcntl(a, F_DUPFD, floor));
  EXPECT_GE(b.get(), floor);
  Fd c = adopt(api().fcntl(a, F_DUPFD_CLOEXEC, b.get()));
  EXPECT_GT(c.get(), b.get());
  EXPECT_EQ(api().fcntl(b, F_GETFD, 0), 0);
  EXPECT_EQ(api().fcntl(c, F_GETFD, 0), FD_CLOEXEC);
  // With argument 0 it is the lowest free number of all, like dup.
  Fd d = adopt(api().fcntl(a, F_DUPFD, 0));
  EXPECT_LT(d.get(), floor);
}

TEST_P(DescriptorTable, CloseOnExecBelongsToTheNumber) {
  Fd a = make_eventfd(0, EFD_CLOEXEC);
  EXPECT_EQ(api().fcntl(a, F_GETFD, 0), FD_CLOEXEC);
  Fd b = adopt(static_cast<int>(must(api().dup(a), "dup")));
  EXPECT_EQ(api().fcntl(b, F_GETFD, 0), 0);  // dup clears it
  EXPECT_EQ(api().fcntl(b, F_SETFD, FD_CLOEXEC), 0);
  EXPECT_EQ(api().fcntl(b, F_GETFD, 0), FD_CLOEXEC);
  EXPECT_EQ(api().fcntl(a, F_SETFD, 0), 0);
  EXPECT_EQ(api().fcntl(a, F_GETFD, 0), 0);
  EXPECT_EQ(api().fcntl(b, F_GETFD, 0), FD_CLOEXEC);

  auto [r, w] = make_pipe(O_CLOEXEC);
  EXPECT_EQ(api().fcntl(r, F_GETFD, 0), FD_CLOEXEC);
  EXPECT_EQ(api().fcntl(w, F_GETFD, 0), FD_CLOEXEC);
  auto [s, t] = make_socketpair(SOCK_CLOEXEC);
  EXPECT_EQ(api().fcntl(s, F_GETFD, 0), FD_CLOEXEC);
  EXPECT_EQ(api().fcntl(t, F_GETFD, 0), FD_CLOEXEC);
  auto [u, v] = make_socketpair();
  EXPECT_EQ(api().fcntl(u, F_GETFD, 0), 0);
  Fd sock = adopt(api().socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(api().fcntl(sock, F_GETFD, 0), FD_CLOEXEC);
}

TEST_P(DescriptorTable, StatusFlagsBelongToTheDescription) {
  Fd efd = make_eventfd();
  auto [r, w] = make_pipe();
  auto [s, t] = make_socketpair(SOCK_NONBLOCK);
  Fd ep = make_epoll();
  Fd nb = make_eventfd(0, EFD_NONBLOCK);
  EXPECT_EQ(api().fcntl(efd, F_GETFL, 0), O_RDWR);
  EXPECT_EQ(api().fcntl(nb, F_GETFL, 0), O_RDWR | O_NONBLOCK);
  EXPECT_EQ(api().fcntl(r, F_GETFL, 0), O_RDONLY);
  EXPECT_EQ(api().fcntl(w, F_GETFL, 0), O_WRONLY);
  EXPECT_EQ(api().fcntl(s, F_GETFL, 0), O_RDWR | O_NONBLOCK);
  EXPECT_EQ(api().fcntl(ep, F_GETFL, 0), O_RDWR);

  // O_NONBLOCK set through one number shows through a dup: it is on the description.
  Fd efd2 = adopt(static_cast<int>(must(api().dup(efd), "dup")));
  EXPECT_EQ(api().fcntl(efd2, F_SETFL, O_NONBLOCK), 0);
  EXPECT_EQ(api().fcntl(efd, F_GETFL, 0), O_RDWR | O_NONBLOCK);
  uint64_t v = 0;
  EXPECT_ERRNO(EAGAIN, api().read(efd, &v, sizeof v));
  // F_SETFL ignores the access mode bits.
  EXPECT_EQ(api().fcntl(r, F_SETFL, O_WRONLY | O_NONBLOCK), 0);
  EXPECT_EQ(api().fcntl(r, F_GETFL, 0), O_RDONLY | O_NONBLOCK);
  char c;
  EXPECT_ERRNO(EAGAIN, api().read(r, &c, 1));
  EXPECT_EQ(api().fcntl(r, F_SETFL, 0), 0);
  EXPECT_EQ(api().fcntl(r, F_GETFL, 0), O_RDONLY);
}

// ---- Creation calls ------------------------------------------------------------------------

class CreationErrors : public Conformance {};

TEST_P(CreationErrors, EventfdRejectsUnknownFlags) {
  EXPECT_ERRNO(EINVAL, api().eventfd(0, 2));
  EXPECT_ERRNO(EINVAL, api().eventfd(0, kBogusFlag));
  EXPECT_ERRNO(EINVAL, api().eventfd(0, -1));
  Fd all = adopt(api().eventfd(0, EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC));
  EXPECT_GE(all.get(), 0);
}

TEST_P(CreationErrors, PipeRejectsUnknownFlagsBeforeTheBuffer) {
  int fds[2] = {-1, -1};
  EXPECT_ERRNO(EINVAL, api().pipe2(fds, kBogusFlag));
  EXPECT_ERRNO(EINVAL, api().pipe2(nullptr, kBogusFlag));
  EXPECT_ERRNO(EFAULT, api().pipe2(nullptr, 0));
  EXPECT_ERRNO(EFAULT, api().pipe(nullptr));
  EXPECT_EQ(fds[0], -1);
}

TEST_P(CreationErrors, SocketpairErrors) {
  int sv[2] = {-1, -1};
  EXPECT_ERRNO(EOPNOTSUPP, api().socketpair(AF_INET, SOCK_STREAM, 0, sv));
  EXPECT_ERRNO(EAFNOSUPPORT, api().socketpair(12345, SOCK_STREAM, 0, sv));
  EXPECT_ERRNO(EINVAL, api().socketpair(AF_UNIX, kBogusSocketType, 0, sv));
  EXPECT_ERRNO(EINVAL, api().socketpair(12345, kBogusSocketType, 0, sv));  // flags first
  EXPECT_ERRNO(EPROTONOSUPPORT, api().socketpair(AF_UNIX, SOCK_STREAM, 2, sv));
  EXPECT_ERRNO(EFAULT, api().socketpair(AF_UNIX, SOCK_STREAM, 0, nullptr));
  // Protocol 0 and PF_UNIX itself are both accepted.
  ASSERT_EQ(api().socketpair(AF_UNIX, SOCK_STREAM, PF_UNIX, sv), 0);
  Fd a = adopt(sv[0]);
  Fd b = adopt(sv[1]);
  int type = 0;
  socklen_t len = sizeof type;
  EXPECT_EQ(api().getsockopt(a, SOL_SOCKET, SO_TYPE, &type, &len), 0);
  EXPECT_EQ(type, SOCK_STREAM);
}

TEST_P(CreationErrors, SocketErrors) {
  EXPECT_ERRNO(EAFNOSUPPORT, api().socket(12345, SOCK_STREAM, 0));
  EXPECT_ERRNO(EINVAL, api().socket(AF_INET, kBogusSocketType, 0));
  EXPECT_ERRNO(EINVAL, api().socket(12345, kBogusSocketType, 0));  // flags first
  EXPECT_ERRNO(EPROTONOSUPPORT, api().socket(AF_INET, SOCK_STREAM, IPPROTO_UDP));
  Fd tcp = adopt(api().socket(AF_INET, SOCK_STREAM, IPPROTO_TCP));
  EXPECT_GE(tcp.get(), 0);
  Fd v6 = adopt(api().socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0));
  EXPECT_GE(v6.get(), 0);
  EXPECT_EQ(api().fcntl(v6, F_GETFL, 0), O_RDWR | O_NONBLOCK);
}

// ---- Socket option and shutdown arguments -----------------------------------------------------

class SocketArgumentErrors : public Conformance {};

TEST_P(SocketArgumentErrors, ShutdownHowMustBeValid) {
  auto [a, b] = make_socketpair();
  EXPECT_ERRNO(EINVAL, api().shutdown(a, 3));
  EXPECT_ERRNO(EINVAL, api().shutdown(a, -1));
  EXPECT_EQ(api().shutdown(a, SHUT_RD), 0);
}

TEST_P(SocketArgumentErrors, UnknownOptionIsEnoprotoopt) {
  auto [a, b] = make_socketpair();
  int v = 1;
  socklen_t len = sizeof v;
  EXPECT_ERRNO(ENOPROTOOPT, api().getsockopt(a, SOL_SOCKET, 12345, &v, &len));
  EXPECT_ERRNO(ENOPROTOOPT, api().setsockopt(a, SOL_SOCKET, 12345, &v, len));
  EXPECT_EQ(api().getsockopt(a, SOL_SOCKET, SO_ERROR, &v, &len), 0);
  EXPECT_EQ(v, 0);
}

TEST_P(SocketArgumentErrors, ConnectedUnixSocketCannotListenOrAccept) {
  auto [a, b] = make_socketpair();
  EXPECT_ERRNO(EINVAL, api().listen(a, 1));
  EXPECT_ERRNO(EINVAL, api().accept(a, nullptr, nullptr));
}

TEST_P(SocketArgumentErrors, BindChecksLengthAndRebinding) {
  Fd s = adopt(static_cast<int>(must(api().socket(AF_INET, SOCK_STREAM, 0), "socket")));
  sockaddr_in a = loopback_any_port();
  EXPECT_ERRNO(EINVAL, api().bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a - 1));
  EXPECT_EQ(api().bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_ERRNO(EINVAL, api().bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a));
}

TEST_P(SocketArgumentErrors, UnconnectedStreamSocket) {
  Fd s = adopt(static_cast<int>(must(api().socket(AF_INET, SOCK_STREAM, 0), "socket")));
  EXPECT_ERRNO(EINVAL, api().accept(s, nullptr, nullptr));  // not listening
  EXPECT_ERRNO(EINVAL, api().accept4(s, nullptr, nullptr, kBogusFlag));
  char c = 'x';
  EXPECT_ERRNO(ENOTCONN, api().recv(s, &c, 1, MSG_DONTWAIT));
  EXPECT_ERRNO(EPIPE, api().send(s, &c, 1, MSG_NOSIGNAL));
  EXPECT_ERRNO(ENOTCONN, api().shutdown(s, SHUT_WR));
}

// ---- poll() arguments ------------------------------------------------------------------------

class PollArguments : public Conformance {};

TEST_P(PollArguments, BadAndNegativeDescriptors) {
  Fd efd = make_eventfd();
  pollfd fds[3] = {{kNeverOpenFd, POLLIN, 0}, {-5, POLLIN, 0}, {efd, POLLIN | POLLOUT, 0}};
  EXPECT_EQ(api().poll(fds, 3, 0), 2);
  EXPECT_EQ(fds[0].revents, POLLNVAL);  // not open: reported, counts as ready
  EXPECT_EQ(fds[1].revents, 0);         // negative: ignored
  EXPECT_EQ(fds[2].revents, POLLOUT);
  EXPECT_EQ(api().poll(nullptr, 0, 0), 0);
}

TEST_P(PollArguments, ErrAndHupAreReportedWithoutBeingAsked) {
  auto [r, w] = make_pipe();
  r.reset();
  pollfd pfd{w, 0, 0};
  EXPECT_EQ(api().poll(&pfd, 1, 0), 1);
  EXPECT_EQ(pfd.revents, POLLERR);
}

}  // namespace

UEPOLL_CONFORMANCE_SUITE(DescriptorErrors);
UEPOLL_CONFORMANCE_SUITE(DescriptorTable);
UEPOLL_CONFORMANCE_SUITE(CreationErrors);
UEPOLL_CONFORMANCE_SUITE(SocketArgumentErrors);
UEPOLL_CONFORMANCE_SUITE(PollArguments);

}  // namespace uepoll_conformance
