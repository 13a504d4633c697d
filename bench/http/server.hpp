// The nginx-like HTTP server of the benchmark: one ServerWorker per thread, each with its own
// descriptor table (backend object) and its own epoll instance, written once over the backend.
//
// Per worker, as an nginx worker does it: the listener is watched level-triggered (with
// EPOLLEXCLUSIVE when the listener is shared by all workers); accepted connections are
// non-blocking and watched edge-triggered for EPOLLIN|EPOLLOUT|EPOLLRDHUP. A readable
// connection is read (a short read ends the burst unless the peer hung up), its request head
// parsed, a Content-Length body read and discarded, and the fixed response sent. After
// keepalive_requests responses, or when the client asked for it, the connection is closed with
// close() alone: no EPOLL_CTL_DEL, so that close is the last close of a watched file (Linux's
// eventpoll_release_file, uepoll's removal path C).
#pragma once

#include <sys/epoll.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common.hpp"
#include "http_parse.hpp"

namespace uepoll_bench::http {

struct ServerConfig {
  int keepalive_requests = 1;    // responses per connection before the server closes it
  int body_bytes = 100;          // size of the 200 response's body
  int idle_timeout_ms = 10'000;  // connections idle this long are closed
  int max_events = 512;          // epoll_wait batch
  int wait_timeout_ms = 20;      // epoll_wait timeout (phase checks, idle scans)
};

struct ServerStats {
  std::uint64_t accepted = 0;        // whole run
  std::uint64_t requests = 0;        // responses completed inside the measured window
  std::uint64_t requests_total = 0;  // whole run
  std::uint64_t errors = 0;          // inside the window (the kinds below, summed)
  std::uint64_t errors_outside = 0;  // warm-up and drain
  std::uint64_t accept_errors = 0;   // whole run, per kind
  std::uint64_t io_errors = 0;       // ECONNRESET, EPIPE, ... on read or write
  std::uint64_t bad_requests = 0;    // answered with 4xx / 5xx
  std::uint64_t truncated = 0;       // peer closed in the middle of a request
  std::uint64_t timeouts = 0;        // idle connections closed by the server

  void add(const ServerStats& o) noexcept {
    accepted += o.accepted;
    requests += o.requests;
    requests_total += o.requests_total;
    errors += o.errors;
    errors_outside += o.errors_outside;
    accept_errors += o.accept_errors;
    io_errors += o.io_errors;
    bad_requests += o.bad_requests;
    truncated += o.truncated;
    timeouts += o.timeouts;
  }
};

/// The responses a worker sends. The Date header is patched in place once a second (like
/// nginx's cached time); the strings never move, so a response still being sent stays valid.
class Responses {
 public:
  explicit Responses(int body_bytes) {
    std::string body(static_cast<std::size_t>(body_bytes), 'x');
    for (std::size_t i = 0; i < body.size(); ++i) {
      body[i] = static_cast<char>('a' + i % 26);
    }
    if (!body.empty()) {
      body.back() = '\n';
    }
    ok_close_ = build("200 OK", body, false, &ok_close_head_);
    ok_keep_ = build("200 OK", body, true, &ok_keep_head_);
    bad_request_ = build("400 Bad Request", "", false, nullptr);
    too_large_ = build("413 Request Entity Too Large", "", false, nullptr);
    header_too_large_ = build("431 Request Header Fields Too Large", "", false, nullptr);
    not_implemented_ = build("501 Not Implemented", "", false, nullptr);
    bad_version_ = build("505 HTTP Version Not Supported", "", false, nullptr);
    refresh();
  }
  Responses(const Responses&) = delete;
  Responses& operator=(const Responses&) = delete;

  /// Rewrites the Date headers when the wall-clock second changed.
  void refresh() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    if (ts.tv_sec == second_) {
      return;
    }
    second_ = ts.tv_sec;
    tm t{};
    gmtime_r(&ts.tv_sec, &t);
    char date[64];
    if (strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &t) != kDateLen) {
      return;  // cannot happen for years 1000..9999
    }
    for (std::string* s : {&ok_close_, &ok_keep_, &bad_request_, &too_large_, &header_too_large_,
                           &not_implemented_, &bad_version_}) {
      std::memcpy(s->data() + s->find(kDatePrefix) + std::strlen(kDatePrefix), date, kDateLen);
    }
  }

  /// The 200 response; `head_only` leaves out the body (HEAD).
  std::string_view ok(bool keep_alive, bool head_only) const noexcept {
    const std::string& s = keep_alive ? ok_keep_ : ok_close_;
    return head_only ? std::string_view(s).substr(0, keep_alive ? ok_keep_head_ : ok_close_head_)
                     : std::string_view(s);
  }
  std::string_view error(int status) const noexcept {
    switch (status) {
      case 413: return too_large_;
      case 431: return header_too_large_;
      case 501: return not_implemented_;
      case 505: return bad_version_;
      default: return bad_request_;
    }
  }

 private:
  static constexpr std::size_t kDateLen = 29;  // "Sun, 06 Nov 1994 08:49:37 GMT"
  static constexpr const char* kDatePrefix = "\r\nDate: ";

  static std::string build(const char* status, const std::string& body, bool keep_alive,
                           std::size_t* head_len) {
    std::string s;
    s.reserve(256 + body.size());
    s += "HTTP/1.1 ";
    s += status;
    s += "\r\nServer: uepoll-http-bench";
    s += kDatePrefix;
    s.append(kDateLen, '-');
    s += "\r\nContent-Type: text/plain\r\nContent-Length: ";
    s += std::to_string(body.size());
    s += keep_alive ? "\r\nConnection: keep-alive\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
    if (head_len != nullptr) {
      *head_len = s.size();
    }
    s += body;
    return s;
  }

  time_t second_ = -1;
  std::string ok_close_, ok_keep_;
  std::size_t ok_close_head_ = 0, ok_keep_head_ = 0;
  std::string bad_request_, too_large_, header_too_large_, not_implemented_, bad_version_;
};

template <class B>
class ServerWorker {
 public:
  static constexpr std::size_t kBufSize = 8192;  // request head limit (nginx: 8k buffers)

  ServerWorker(B& backend, int listen_fd, const ServerConfig& cfg, const RunControl& control)
      : b_(backend),
        listen_fd_(listen_fd),
        cfg_(cfg),
        control_(control),
        responses_(cfg.body_bytes) {}
  ServerWorker(const ServerWorker&) = delete;
  ServerWorker& operator=(const ServerWorker&) = delete;
  ~ServerWorker() { teardown(); }

  /// Creates the epoll instance and watches the listener; `exclusive` adds EPOLLEXCLUSIVE.
  bool setup(bool exclusive, std::string* err) {
    ep_ = b_.epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) {
      *err = "epoll_create1: " + errno_text(errno);
      return false;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | (exclusive ? EPOLLEXCLUSIVE : 0u);
    ev.data.u64 = kListenerTag;
    if (b_.epoll_ctl(ep_, EPOLL_CTL_ADD, listen_fd_, &ev) < 0) {
      *err = "epoll_ctl(ADD listener): " + errno_text(errno);
      return false;
    }
    return true;
  }

  /// The event loop; returns once the server phase is kStop.
  void run() {
    std::vector<epoll_event> events(static_cast<std::size_t>(cfg_.max_events));
    std::uint64_t next_scan = now_ns() + kScanIntervalNs;
    for (;;) {
      const int phase = control_.server_phase.load(std::memory_order_acquire);
      if (phase == kStop) {
        break;
      }
      recording_ = phase == kMeasure;
      const int n = b_.epoll_wait(ep_, events.data(), cfg_.max_events, cfg_.wait_timeout_ms);
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        fatal_errno_ = errno;
        break;
      }
      now_ = now_ns();
      responses_.refresh();
      for (int i = 0; i < n; ++i) {
        const epoll_event& e = events[static_cast<std::size_t>(i)];
        if (e.data.u64 == kListenerTag) {
          accept_all();
        } else {
          on_connection_event(e.data.u64, e.events);
        }
      }
      if (now_ >= next_scan) {
        close_idle();
        next_scan = now_ + kScanIntervalNs;
      }
    }
  }

  /// Closes every connection, this worker's listener descriptor and its epoll instance.
  void teardown() {
    for (auto& c : conns_) {
      if (c->fd >= 0) {
        close_conn(*c);
      }
    }
    if (listen_fd_ >= 0) {
      b_.close(listen_fd_);
      listen_fd_ = -1;
    }
    if (ep_ >= 0) {
      b_.close(ep_);
      ep_ = -1;
    }
  }

  const ServerStats& stats() const noexcept { return stats_; }
  /// errno of a failed epoll_wait that ended the loop early, or 0.
  int fatal_errno() const noexcept { return fatal_errno_; }
  std::size_t open_connections() const noexcept { return conns_.size() - free_.size(); }

 private:
  static constexpr std::uint64_t kListenerTag = ~std::uint64_t{0};
  static constexpr std::uint64_t kScanIntervalNs = 250'000'000;

  enum class State : std::uint8_t { kReading, kWriting };
  struct Conn {
    int fd = -1;
    std::uint32_t index = 0;
    std::uint32_t gen = 0;  // bumped on close: events for an older connection are ignored
    State state = State::kReading;
    bool head_done = false;
    bool keep_alive = true;
    bool head_method = false;
    bool close_after = false;
    bool ok_response = false;  // the pending response is a 200
    std::uint32_t served = 0;
    std::size_t len = 0;
    std::uint64_t body_left = 0;
    std::string_view out;
    std::size_t out_off = 0;
    std::uint64_t last_active = 0;
    std::unique_ptr<char[]> buf{new char[kBufSize]};
  };

  static std::uint64_t key(const Conn& c) noexcept {
    return (std::uint64_t{c.gen} << 32) | c.index;
  }

  void count_error(std::uint64_t ServerStats::*kind) noexcept {
    ++(stats_.*kind);
    if (recording_) {
      ++stats_.errors;
    } else {
      ++stats_.errors_outside;
    }
  }

  Conn& alloc_conn() {
    if (free_.empty()) {
      auto c = std::make_unique<Conn>();
      c->index = static_cast<std::uint32_t>(conns_.size());
      conns_.push_back(std::move(c));
      return *conns_.back();
    }
    Conn& c = *conns_[free_.back()];
    free_.pop_back();
    return c;
  }

  /// close() without EPOLL_CTL_DEL: the last close of a watched file.
  void close_conn(Conn& c) {
    b_.close(c.fd);
    c.fd = -1;
    ++c.gen;
    free_.push_back(c.index);
  }

  void accept_all() {
    for (;;) {
      const int fd = b_.accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          return;
        }
        if (errno == EINTR || errno == ECONNABORTED) {
          continue;
        }
        count_error(&ServerStats::accept_errors);  // EMFILE and the like: try next turn
        return;
      }
      ++stats_.accepted;
      Conn& c = alloc_conn();
      c.fd = fd;
      c.state = State::kReading;
      c.head_done = false;
      c.close_after = false;
      c.served = 0;
      c.len = 0;
      c.body_left = 0;
      c.out = {};
      c.out_off = 0;
      c.last_active = now_;
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
      ev.data.u64 = key(c);
      if (b_.epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) < 0) {
        count_error(&ServerStats::accept_errors);
        close_conn(c);
      }
    }
  }

  void on_connection_event(std::uint64_t k, std::uint32_t events) {
    const auto index = static_cast<std::uint32_t>(k & 0xffffffffu);
    if (index >= conns_.size()) {
      return;
    }
    Conn& c = *conns_[index];
    if (c.fd < 0 || c.gen != static_cast<std::uint32_t>(k >> 32)) {
      return;  // a stale event for a connection closed earlier in this batch
    }
    c.last_active = now_;
    // Like nginx's separate read and write handlers: an edge that cannot advance the current
    // state (EPOLLOUT while waiting for a request, EPOLLIN while a response waits for space)
    // costs no system call. Data that arrived meanwhile is read after the response is sent.
    const bool hangup = (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
    const bool readable = hangup || (events & EPOLLIN) != 0;
    const bool writable = (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0;
    if (c.state == State::kReading ? !readable : !writable) {
      return;
    }
    drive(c, hangup);
  }

  enum class Io { kDone, kAgain, kClosed };

  /// Sends the pending response; kClosed after an error (the connection is gone).
  Io flush(Conn& c) {
    while (c.out_off < c.out.size()) {
      const ssize_t n =
          b_.send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
      if (n > 0) {
        c.out_off += static_cast<std::size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return Io::kAgain;  // EPOLLOUT (edge) resumes it
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        count_error(&ServerStats::io_errors);
        close_conn(c);
        return Io::kClosed;
      }
    }
    return Io::kDone;
  }

  void respond(Conn& c, std::string_view response, bool ok, bool close_after) {
    c.out = response;
    c.ok_response = ok;
    c.out_off = 0;
    c.close_after = close_after;
    c.state = State::kWriting;
  }

  /// Consumes `n` bytes from the front of the buffer.
  static void consume(Conn& c, std::size_t n) noexcept {
    if (n < c.len) {
      std::memmove(c.buf.get(), c.buf.get() + n, c.len - n);
    }
    c.len -= n;
  }

  /// Parses what is buffered; true when a response was queued (state kWriting).
  bool process(Conn& c) {
    if (!c.head_done) {
      RequestHead h;
      const ParseStatus st = parse_request_head({c.buf.get(), c.len}, h);
      if (st == ParseStatus::kIncomplete) {
        if (c.len < kBufSize) {
          return false;
        }
        h.error_status = 431;
      }
      if (st != ParseStatus::kDone) {
        count_error(&ServerStats::bad_requests);
        respond(c, responses_.error(h.error_status), false, true);
        return true;
      }
      consume(c, h.head_len);
      c.head_done = true;
      c.body_left = h.content_length;
      c.keep_alive = h.keep_alive;
      c.head_method = h.head_method;
    }
    if (c.body_left > 0) {
      const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(c.body_left, c.len));
      consume(c, take);
      c.body_left -= take;
      if (c.body_left > 0) {
        return false;
      }
    }
    // A whole request: answer it.
    c.head_done = false;
    ++c.served;
    const bool keep = c.keep_alive &&
                      c.served < static_cast<std::uint32_t>(cfg_.keepalive_requests) &&
                      control_.server_phase.load(std::memory_order_relaxed) != kStop;
    respond(c, responses_.ok(keep, c.head_method), true, !keep);
    return true;
  }

  /// Runs the connection until it waits for the network or is closed. `hangup`: the event
  /// reported EPOLLRDHUP/EPOLLHUP/EPOLLERR, so reads go on to EOF or the error.
  void drive(Conn& c, bool hangup) {
    for (;;) {
      if (c.state == State::kWriting) {
        const Io w = flush(c);
        if (w != Io::kDone) {
          return;
        }
        ++stats_.requests_total;
        if (recording_ && c.ok_response) {
          ++stats_.requests;
        }
        if (c.close_after) {
          close_conn(c);  // keepalive_requests reached: the seed's release path
          return;
        }
        c.state = State::kReading;
      }
      if (process(c)) {
        continue;
      }
      // Need more bytes.
      const std::size_t space = kBufSize - c.len;
      const ssize_t n = b_.recv(c.fd, c.buf.get() + c.len, space, 0);
      if (n > 0) {
        c.len += static_cast<std::size_t>(n);
        if (static_cast<std::size_t>(n) < space && !hangup && !process(c)) {
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
      if (n == 0) {
        if (c.len > 0 || c.head_done) {
          count_error(&ServerStats::truncated);
        }
      } else {
        count_error(&ServerStats::io_errors);
      }
      close_conn(c);
      return;
    }
  }

  void close_idle() {
    const std::uint64_t limit = static_cast<std::uint64_t>(cfg_.idle_timeout_ms) * 1'000'000u;
    for (auto& c : conns_) {
      if (c->fd >= 0 && now_ > c->last_active && now_ - c->last_active > limit) {
        count_error(&ServerStats::timeouts);
        close_conn(*c);
      }
    }
  }

  B& b_;
  int listen_fd_;
  const ServerConfig cfg_;
  const RunControl& control_;
  Responses responses_;
  int ep_ = -1;
  int fatal_errno_ = 0;
  bool recording_ = false;
  std::uint64_t now_ = 0;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<std::uint32_t> free_;
  ServerStats stats_;
};

}  // namespace uepoll_bench::http
