// The wrk-like load generator of the benchmark: one ClientThread per thread, each with its own
// descriptor table (backend object), its own epoll instance and a fixed share of the
// connections, written once over the backend.
//
// Each connection: non-blocking connect(), watched edge-triggered for
// EPOLLIN|EPOLLOUT|EPOLLRDHUP; sends "GET / HTTP/1.1"; reads and parses the response (status
// line, headers, Content-Length body); records the latency from the first byte of the request
// written to the last byte of the response read (wrk's definition) when the run is in its
// measured window; then sends the next request if the server keeps the connection, or closes
// and reconnects. Errors (refused, reset, broken pipe, EOF mid-response, unparsable response,
// timeout) are counted and the connection is reopened.
#pragma once

#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common.hpp"
#include "histogram.hpp"
#include "http_parse.hpp"

namespace uepoll_bench::http {

struct ClientConfig {
  sockaddr_in server{};
  int timeout_ms = 2000;  // a request (connect included) taking longer is an error
  int max_events = 512;
  int wait_timeout_ms = 20;
};

struct ClientStats {
  std::uint64_t requests = 0;        // responses completed inside the measured window
  std::uint64_t requests_total = 0;  // whole run
  std::uint64_t connects = 0;        // whole run
  std::uint64_t non_2xx = 0;         // inside the window (counted as requests too, like wrk)
  std::uint64_t errors = 0;          // inside the window: the kinds below, summed
  std::uint64_t errors_outside = 0;  // warm-up and drain
  std::uint64_t connect_errors = 0;  // whole run, per kind
  std::uint64_t read_errors = 0;     // ECONNRESET on read, EOF before the response ended
  std::uint64_t write_errors = 0;    // EPIPE, ECONNRESET on send
  std::uint64_t parse_errors = 0;    // malformed or unframable response
  std::uint64_t timeouts = 0;
  std::uint64_t last_errno = 0;  // the errno of the latest error, for diagnostics

  void add(const ClientStats& o) noexcept {
    requests += o.requests;
    requests_total += o.requests_total;
    connects += o.connects;
    non_2xx += o.non_2xx;
    errors += o.errors;
    errors_outside += o.errors_outside;
    connect_errors += o.connect_errors;
    read_errors += o.read_errors;
    write_errors += o.write_errors;
    parse_errors += o.parse_errors;
    timeouts += o.timeouts;
    if (o.last_errno != 0) {
      last_errno = o.last_errno;
    }
  }
};

template <class B>
class ClientThread {
 public:
  static constexpr std::size_t kBufSize = 4096;

  ClientThread(B& backend, int connections, const ClientConfig& cfg, const RunControl& control)
      : b_(backend), cfg_(cfg), control_(control), conns_(static_cast<std::size_t>(connections)) {
    char host[64];
    std::snprintf(host, sizeof host, "127.0.0.1:%u", ntohs(cfg.server.sin_port));
    request_ = std::string("GET / HTTP/1.1\r\nHost: ") + host + "\r\n\r\n";
    for (std::size_t i = 0; i < conns_.size(); ++i) {
      conns_[i].index = static_cast<std::uint32_t>(i);
    }
  }
  ClientThread(const ClientThread&) = delete;
  ClientThread& operator=(const ClientThread&) = delete;
  ~ClientThread() { teardown(); }

  bool setup(std::string* err) {
    ep_ = b_.epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) {
      *err = "epoll_create1: " + errno_text(errno);
      return false;
    }
    return true;
  }

  /// The event loop; returns once the client phase is kStop.
  void run() {
    std::vector<epoll_event> events(static_cast<std::size_t>(cfg_.max_events));
    now_ = now_ns();
    for (auto& c : conns_) {
      open(c);
    }
    std::uint64_t next_scan = now_ + kScanIntervalNs;
    for (;;) {
      const int phase = control_.client_phase.load(std::memory_order_acquire);
      if (phase == kStop) {
        break;
      }
      recording_ = phase == kMeasure;
      // Connections waiting to be reopened are retried when due.
      int timeout = cfg_.wait_timeout_ms;
      if (!retry_.empty()) {
        const std::uint64_t due = retry_.front().first;
        timeout = due <= now_ ? 0
                              : static_cast<int>(std::min<std::uint64_t>(
                                    (due - now_ + 999'999) / 1'000'000, timeout));
      }
      const int n = b_.epoll_wait(ep_, events.data(), cfg_.max_events, timeout);
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        fatal_errno_ = errno;
        break;
      }
      now_ = now_ns();
      for (int i = 0; i < n; ++i) {
        const epoll_event& e = events[static_cast<std::size_t>(i)];
        on_event(e.data.u64, e.events);
      }
      if (!retry_.empty() && retry_.front().first <= now_) {
        std::vector<std::pair<std::uint64_t, std::uint32_t>> again;
        again.swap(retry_);
        for (const auto& [due, i] : again) {
          if (due <= now_) {
            open(conns_[i]);
          } else {
            schedule(due, i);
          }
        }
      }
      if (now_ >= next_scan) {
        expire();
        next_scan = now_ + kScanIntervalNs;
      }
    }
  }

  /// Closes every connection and the epoll instance.
  void teardown() {
    for (auto& c : conns_) {
      if (c.fd >= 0) {
        b_.close(c.fd);
        c.fd = -1;
      }
    }
    if (ep_ >= 0) {
      b_.close(ep_);
      ep_ = -1;
    }
  }

  const ClientStats& stats() const noexcept { return stats_; }
  const LatencyHistogram& histogram() const noexcept { return hist_; }
  int fatal_errno() const noexcept { return fatal_errno_; }

 private:
  static constexpr std::uint64_t kScanIntervalNs = 100'000'000;
  static constexpr std::uint64_t kConnectRetryNs = 10'000'000;

  enum class State : std::uint8_t { kClosed, kConnecting, kSending, kReading };
  struct Conn {
    int fd = -1;
    std::uint32_t index = 0;
    std::uint32_t gen = 0;
    State state = State::kClosed;
    bool head_done = false;
    bool body_to_eof = false;  // no Content-Length: the body ends with the connection
    bool keep_alive = false;
    int status = 0;
    std::size_t sent = 0;
    std::size_t len = 0;
    std::uint64_t body_left = 0;
    std::uint64_t start = 0;  // connect() or first byte of the request
    std::unique_ptr<char[]> buf{new char[kBufSize]};
  };

  static std::uint64_t key(const Conn& c) noexcept {
    return (std::uint64_t{c.gen} << 32) | c.index;
  }

  void count_error(std::uint64_t ClientStats::*kind, int err) noexcept {
    ++(stats_.*kind);
    stats_.last_errno = static_cast<std::uint64_t>(err);
    if (recording_) {
      ++stats_.errors;
    } else {
      ++stats_.errors_outside;
    }
  }

  void close(Conn& c) {
    if (c.fd >= 0) {
      b_.close(c.fd);
      c.fd = -1;
    }
    ++c.gen;
    c.state = State::kClosed;
  }

  /// Counts an error, closes the connection and reopens it: on the next loop turn, or after
  /// kConnectRetryNs when the connection could not be opened (a refusing server must not make
  /// the generator spin).
  void fail(Conn& c, std::uint64_t ClientStats::*kind, int err) {
    count_error(kind, err);
    close(c);
    if (control_.client_phase.load(std::memory_order_relaxed) != kStop) {
      const std::uint64_t delay = kind == &ClientStats::connect_errors ? kConnectRetryNs : 0;
      schedule(now_ns() + delay, c.index);
    }
  }

  /// Queues a reopen, keeping retry_ ordered by due time (searching from the back: the newest
  /// entries are usually the latest).
  void schedule(std::uint64_t due, std::uint32_t index) {
    auto it = retry_.end();
    while (it != retry_.begin() && std::prev(it)->first > due) {
      --it;
    }
    retry_.emplace(it, due, index);
  }

  void open(Conn& c) {
    c.fd = b_.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
      fail(c, &ClientStats::connect_errors, errno);
      return;
    }
    ++stats_.connects;
    c.start = now_;
    c.sent = 0;
    const int r =
        b_.connect(c.fd, reinterpret_cast<const sockaddr*>(&cfg_.server), sizeof cfg_.server);
    if (r < 0 && errno != EINPROGRESS) {
      fail(c, &ClientStats::connect_errors, errno);
      return;
    }
    c.state = r == 0 ? State::kSending : State::kConnecting;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = key(c);
    if (b_.epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev) < 0) {
      fail(c, &ClientStats::connect_errors, errno);
      return;
    }
    if (c.state == State::kSending) {
      send_request(c);
    }
  }

  void on_event(std::uint64_t k, std::uint32_t events) {
    const auto index = static_cast<std::uint32_t>(k & 0xffffffffu);
    if (index >= conns_.size()) {
      return;
    }
    Conn& c = conns_[index];
    if (c.fd < 0 || c.gen != static_cast<std::uint32_t>(k >> 32)) {
      return;
    }
    switch (c.state) {
      case State::kConnecting: {
        if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) {
          return;
        }
        int err = 0;
        socklen_t len = sizeof err;
        if (b_.getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
          err = errno;
        }
        if (err != 0) {
          fail(c, &ClientStats::connect_errors, err);
          return;
        }
        c.state = State::kSending;
        send_request(c);
        return;
      }
      case State::kSending:
        if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0) {
          send_request(c);
        }
        return;
      case State::kReading:
        // An EPOLLOUT-only edge (send-buffer space) says nothing about the response.
        if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) {
          read_response(c, (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
        }
        return;
      case State::kClosed: return;
    }
  }

  void send_request(Conn& c) {
    if (c.sent == 0) {
      c.start = now_ns();
    }
    while (c.sent < request_.size()) {
      const ssize_t n =
          b_.send(c.fd, request_.data() + c.sent, request_.size() - c.sent, MSG_NOSIGNAL);
      if (n > 0) {
        c.sent += static_cast<std::size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return;  // EPOLLOUT resumes
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        fail(c, &ClientStats::write_errors, n < 0 ? errno : EPIPE);
        return;
      }
    }
    c.state = State::kReading;
    c.head_done = false;
    c.len = 0;
    c.body_left = 0;
    c.body_to_eof = false;
  }

  /// Parses what is buffered. Returns 1 when the response is complete, 0 when more is needed,
  /// -1 on a malformed response (already counted and the connection reopened).
  int parse(Conn& c) {
    if (!c.head_done) {
      ResponseHead h;
      ParseStatus st = parse_response_head({c.buf.get(), c.len}, h);
      while (st == ParseStatus::kDone && h.status >= 100 && h.status < 200) {
        consume(c, h.head_len);  // interim response: the final one follows
        st = parse_response_head({c.buf.get(), c.len}, h);
      }
      if (st == ParseStatus::kIncomplete && c.len == kBufSize) {
        st = ParseStatus::kError;  // head larger than the buffer
      }
      if (st == ParseStatus::kError || (st == ParseStatus::kDone && h.chunked)) {
        fail(c, &ClientStats::parse_errors, 0);
        return -1;
      }
      if (st == ParseStatus::kIncomplete) {
        return 0;
      }
      consume(c, h.head_len);
      c.head_done = true;
      c.status = h.status;
      c.keep_alive = h.keep_alive;
      const bool body = response_has_body(h, false);
      c.body_to_eof = body && !h.has_content_length;
      c.keep_alive = c.keep_alive && !c.body_to_eof;
      c.body_left = body ? h.content_length : 0;
    }
    // Body bytes are counted and dropped.
    const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(c.body_left, c.len));
    consume(c, take);
    c.body_left -= take;
    if (c.body_to_eof) {
      c.len = 0;
      return 0;
    }
    return c.body_left == 0 ? 1 : 0;
  }

  static void consume(Conn& c, std::size_t n) noexcept {
    if (n < c.len) {
      std::memmove(c.buf.get(), c.buf.get() + n, c.len - n);
    }
    c.len -= n;
  }

  /// A whole response arrived: record it, then reuse or reopen the connection.
  void complete(Conn& c) {
    const std::uint64_t end = now_ns();
    ++stats_.requests_total;
    if (recording_) {
      ++stats_.requests;
      hist_.record(end - c.start);
      if (c.status < 200 || c.status > 399) {
        ++stats_.non_2xx;
      }
    }
    if (c.keep_alive && c.len == 0 &&
        control_.client_phase.load(std::memory_order_relaxed) != kStop) {
      c.sent = 0;
      c.state = State::kSending;
      send_request(c);
      return;
    }
    close(c);
    if (control_.client_phase.load(std::memory_order_relaxed) != kStop) {
      now_ = end;
      open(c);
    }
  }

  void read_response(Conn& c, bool hangup) {
    for (;;) {
      const std::size_t space = kBufSize - c.len;
      const ssize_t n = b_.recv(c.fd, c.buf.get() + c.len, space, 0);
      if (n > 0) {
        c.len += static_cast<std::size_t>(n);
        const int r = parse(c);
        if (r < 0) {
          return;
        }
        if (r > 0) {
          complete(c);
          return;
        }
        if (static_cast<std::size_t>(n) < space && !hangup) {
          return;  // a short read drained the socket; the next edge brings more
        }
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return;
      }
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n == 0 && c.head_done && c.body_to_eof) {
        complete(c);  // close-delimited body
        return;
      }
      fail(c, &ClientStats::read_errors, n < 0 ? errno : 0);
      return;
    }
  }

  /// Requests (or connects) older than the timeout are abandoned and reopened.
  void expire() {
    const std::uint64_t limit = static_cast<std::uint64_t>(cfg_.timeout_ms) * 1'000'000u;
    for (auto& c : conns_) {
      // c.start may be later than now_ (taken before this turn's events were handled).
      if (c.fd >= 0 && c.state != State::kClosed && now_ > c.start && now_ - c.start > limit) {
        fail(c, &ClientStats::timeouts, ETIMEDOUT);
      }
    }
  }

  B& b_;
  const ClientConfig cfg_;
  const RunControl& control_;
  std::vector<Conn> conns_;
  std::vector<std::pair<std::uint64_t, std::uint32_t>> retry_;  // (due, connection), by due
  std::string request_;
  int ep_ = -1;
  int fatal_errno_ = 0;
  bool recording_ = false;
  std::uint64_t now_ = 0;
  ClientStats stats_;
  LatencyHistogram hist_;
};

}  // namespace uepoll_bench::http
