// echo_demo: an echo server and its clients on uepoll's in-process sockets, written against the C
// API (<uepoll/uepoll.h>) exactly as it would be against Linux's system calls.
//
//   echo_demo [connections [messages [size]]]      defaults: 8 connections, 1000 messages, 64 bytes
//
// The server is the classic single-threaded epoll loop: one epoll instance; a non-blocking
// listening socket (level-triggered) accepted until EAGAIN; connections registered edge-triggered
// (EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET) and therefore read until EAGAIN on every event, echoing
// what they read and keeping what does not fit for the next EPOLLOUT; an eventfd tells it to
// stop. Each client is a thread with a blocking socket that connects to 127.0.0.1, sends its
// messages one at a time and checks that each comes back unchanged, then shuts down its sending
// side and waits for the server to close.
//
// The sockets live in an AF_INET address space private to this process: nothing touches the
// kernel's network stack, and the port cannot clash with another program.
//
// Prints what it does and a summary line; exits 0 when every echo came back intact, 1 otherwise,
// and 77 when the in-process sockets are not available in this build (EAFNOSUPPORT).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <uepoll/uepoll.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

constexpr std::uint16_t kPort = 7007;
constexpr int kExitUnavailable = 77;     // ctest's conventional "skipped"
constexpr long kVerboseConnections = 8;  // per-connection lines for the first few only

struct Options {
  int connections = 8;
  int messages = 1000;
  int size = 64;
};

sockaddr_in server_address() {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(kPort);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

void perror_uepoll(const char* what) {
  std::fprintf(stderr, "echo_demo: %s: %s\n", what, std::strerror(errno));
}

// ------------------------------------------------------------------------------------------------
// Server
// ------------------------------------------------------------------------------------------------

struct ServerStats {
  long accepted = 0;
  long closed = 0;
  long bytes = 0;
  long wakeups = 0;
  long events = 0;
  long max_open = 0;
  long errors = 0;
};

class EchoServer {
 public:
  // Creates, binds and listens; false (errno set) on failure.
  bool open() {
    listen_fd_ = uepoll_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) {
      return false;
    }
    const int one = 1;
    const sockaddr_in addr = server_address();
    if (uepoll_setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        uepoll_bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
        uepoll_listen(listen_fd_, 128) != 0) {
      return false;
    }
    stop_fd_ = uepoll_eventfd(0, 0);
    epoll_fd_ = uepoll_epoll_create1(EPOLL_CLOEXEC);
    if (stop_fd_ < 0 || epoll_fd_ < 0) {
      return false;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;  // level-triggered: accept() until EAGAIN anyway
    ev.data.fd = listen_fd_;
    if (uepoll_epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev) != 0) {
      return false;
    }
    ev.data.fd = stop_fd_;
    return uepoll_epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, stop_fd_, &ev) == 0;
  }

  // Any thread: makes run() return.
  void stop() {
    const std::uint64_t one = 1;
    if (uepoll_write(stop_fd_, &one, sizeof one) != static_cast<ssize_t>(sizeof one)) {
      perror_uepoll("write(stop eventfd)");
    }
  }

  void run() {
    std::vector<epoll_event> events(64);
    for (bool stopping = false; !stopping;) {
      const int n =
          uepoll_epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), -1);
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        perror_uepoll("epoll_wait");
        ++stats_.errors;
        break;
      }
      ++stats_.wakeups;
      stats_.events += n;
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == listen_fd_) {
          accept_all();
        } else if (fd == stop_fd_) {
          stopping = true;
        } else {
          serve(fd, events[i].events);
        }
      }
    }
    for (auto& [fd, conn] : conns_) {
      uepoll_close(fd);
      ++stats_.closed;
    }
    conns_.clear();
    uepoll_close(epoll_fd_);
    uepoll_close(stop_fd_);
    uepoll_close(listen_fd_);
  }

  const ServerStats& stats() const { return stats_; }

 private:
  struct Connection {
    std::string out;         // read but not yet echoed (the socket was full)
    bool peer_done = false;  // the client shut down its sending side
  };

  void accept_all() {
    for (;;) {
      sockaddr_in peer{};
      socklen_t len = sizeof peer;
      const int fd = uepoll_accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &len,
                                    SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          perror_uepoll("accept4");
          ++stats_.errors;
        }
        return;
      }
      char ip[INET_ADDRSTRLEN] = "?";
      inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof ip);
      if (stats_.accepted < kVerboseConnections) {
        std::printf("server: accepted fd %d from %s:%u\n", fd, ip, ntohs(peer.sin_port));
      }
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
      ev.data.fd = fd;
      if (uepoll_epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
        perror_uepoll("epoll_ctl(ADD connection)");
        ++stats_.errors;
        uepoll_close(fd);
        continue;
      }
      conns_.emplace(fd, Connection{});
      ++stats_.accepted;
      stats_.max_open = std::max<long>(stats_.max_open, static_cast<long>(conns_.size()));
    }
  }

  // One event on a connection. Edge-triggered: read until EAGAIN (or end of stream), write until
  // everything is out or EAGAIN; the next edge comes with the next change.
  void serve(int fd, std::uint32_t events) {
    auto it = conns_.find(fd);
    if (it == conns_.end()) {
      return;
    }
    Connection& conn = it->second;
    bool failed = (events & EPOLLERR) != 0;
    if (!failed && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) != 0) {
      char buf[16384];
      for (;;) {
        const ssize_t got = uepoll_read(fd, buf, sizeof buf);
        if (got > 0) {
          conn.out.append(buf, static_cast<size_t>(got));
          continue;
        }
        if (got == 0) {
          conn.peer_done = true;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
          perror_uepoll("read");
          failed = true;
        }
        break;
      }
    }
    while (!failed && !conn.out.empty()) {
      const ssize_t sent = uepoll_send(fd, conn.out.data(), conn.out.size(), MSG_NOSIGNAL);
      if (sent < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          perror_uepoll("send");
          failed = true;
        }
        break;  // full: EPOLLOUT will say when there is room
      }
      stats_.bytes += sent;
      conn.out.erase(0, static_cast<size_t>(sent));
    }
    if (failed) {
      ++stats_.errors;
    }
    if (failed || (conn.peer_done && conn.out.empty())) {
      // close() removes the registration: this is the only descriptor of the socket.
      uepoll_close(fd);
      conns_.erase(it);
      ++stats_.closed;
    }
  }

  int listen_fd_ = -1;
  int stop_fd_ = -1;
  int epoll_fd_ = -1;
  std::unordered_map<int, Connection> conns_;
  ServerStats stats_;
};

// ------------------------------------------------------------------------------------------------
// Clients
// ------------------------------------------------------------------------------------------------

struct ClientTotals {
  std::atomic<long> connected{0};
  std::atomic<long> messages{0};
  std::atomic<long> bytes{0};
  std::atomic<long> mismatches{0};
  std::atomic<long> errors{0};
};

bool send_all(int fd, const char* data, size_t len) {
  while (len > 0) {
    const ssize_t n = uepoll_send(fd, data, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

// Reads exactly `len` bytes; false on error or end of stream.
bool recv_all(int fd, char* data, size_t len) {
  while (len > 0) {
    const ssize_t n = uepoll_recv(fd, data, len, 0);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) {
        continue;
      }
      return false;
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

void client(int id, const Options& opt, ClientTotals& totals) {
  const int fd = uepoll_socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);  // blocking
  if (fd < 0) {
    perror_uepoll("client socket");
    ++totals.errors;
    return;
  }
  const sockaddr_in addr = server_address();
  if (uepoll_connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    perror_uepoll("connect");
    ++totals.errors;
    uepoll_close(fd);
    return;
  }
  ++totals.connected;
  sockaddr_in self{};
  socklen_t self_len = sizeof self;
  if (uepoll_getsockname(fd, reinterpret_cast<sockaddr*>(&self), &self_len) == 0 &&
      id < kVerboseConnections) {
    std::printf("client %d: connected from port %u\n", id, ntohs(self.sin_port));
  }

  const size_t size = static_cast<size_t>(opt.size);
  std::string message(size, '\0');
  std::string echo(size, '\0');
  for (int m = 0; m < opt.messages; ++m) {
    // A recognisable payload: "client <id> message <m> " repeated to the size.
    char head[48];
    const int head_len = std::snprintf(head, sizeof head, "client %d message %d ", id, m);
    for (size_t i = 0; i < size; ++i) {
      message[i] = head[i % static_cast<size_t>(head_len)];
    }
    if (!send_all(fd, message.data(), size) || !recv_all(fd, echo.data(), size)) {
      perror_uepoll("client send/recv");
      ++totals.errors;
      break;
    }
    if (echo != message) {
      ++totals.mismatches;
    }
    ++totals.messages;
    totals.bytes += static_cast<long>(size);
  }

  // Orderly end: stop sending; the server sees EPOLLRDHUP and end of stream, closes, and our
  // read returns 0.
  char extra;
  if (uepoll_shutdown(fd, SHUT_WR) != 0) {
    perror_uepoll("shutdown");
    ++totals.errors;
  } else if (uepoll_recv(fd, &extra, 1, 0) != 0) {
    std::fprintf(stderr, "client %d: expected end of stream after shutdown\n", id);
    ++totals.errors;
  }
  uepoll_close(fd);
}

int parse(const char* arg, int min, int max, const char* what) {
  char* end = nullptr;
  const long v = std::strtol(arg, &end, 10);
  if (end == arg || *end != '\0' || v < min || v > max) {
    std::fprintf(stderr, "echo_demo: %s must be between %d and %d\n", what, min, max);
    std::exit(2);
  }
  return static_cast<int>(v);
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  if (argc > 4) {
    std::fprintf(stderr, "usage: %s [connections [messages [size]]]\n", argv[0]);
    return 2;
  }
  if (argc > 1) {
    opt.connections = parse(argv[1], 1, 1000, "connections");
  }
  if (argc > 2) {
    opt.messages = parse(argv[2], 0, 10000000, "messages");
  }
  if (argc > 3) {
    opt.size = parse(argv[3], 1, 1 << 20, "size");
  }
  std::printf("echo_demo: %d connection(s) x %d message(s) of %d bytes, server on 127.0.0.1:%u\n",
              opt.connections, opt.messages, opt.size, kPort);

  EchoServer server;
  if (!server.open()) {
    if (errno == EAFNOSUPPORT) {
      std::printf(
          "echo_demo: in-process AF_INET sockets are not available in this build "
          "(socket: %s)\n",
          std::strerror(errno));
      return kExitUnavailable;
    }
    perror_uepoll("server setup");
    return 1;
  }
  std::printf("server: listening\n");

  const auto start = std::chrono::steady_clock::now();
  std::thread server_thread([&server] { server.run(); });
  ClientTotals totals;
  std::vector<std::thread> clients;
  clients.reserve(static_cast<size_t>(opt.connections));
  for (int id = 0; id < opt.connections; ++id) {
    clients.emplace_back(client, id, std::cref(opt), std::ref(totals));
  }
  for (std::thread& t : clients) {
    t.join();
  }
  const double elapsed_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  server.stop();
  server_thread.join();

  const ServerStats& s = server.stats();
  const long expected = static_cast<long>(opt.connections) * opt.messages;
  std::printf(
      "server: %ld accepted, %ld closed, %ld bytes echoed, %ld events in %ld epoll "
      "wake-ups, at most %ld open at once, %ld error(s)\n",
      s.accepted, s.closed, s.bytes, s.events, s.wakeups, s.max_open, s.errors);
  const bool ok = totals.connected == opt.connections && totals.messages == expected &&
                  totals.mismatches == 0 && totals.errors == 0 && s.errors == 0 &&
                  s.accepted == opt.connections && s.closed == opt.connections &&
                  s.bytes == totals.bytes;
  const double rate =
      elapsed_ms > 0 ? static_cast<double>(totals.messages) * 1000.0 / elapsed_ms : 0.0;
  std::printf(
      "echo_demo: %s: %ld connections, %ld/%ld messages, %ld bytes echoed, "
      "%ld mismatched, %ld error(s) in %.1f ms (%.0f messages/s)\n",
      ok ? "OK" : "FAILED", totals.connected.load(), totals.messages.load(), expected,
      totals.bytes.load(), totals.mismatches.load(), totals.errors.load() + s.errors, elapsed_ms,
      rate);
  return ok ? 0 : 1;
}
