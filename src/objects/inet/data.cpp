// Data: send and receive on a connection, and the unconnected cases.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "objects/inet/socket.hpp"

namespace uepoll::inet {

// A send before a connection exists: waits out a handshake in progress, then EPIPE (with
// SIGPIPE) or the pending error. EAGAIN with a connection: it connected meanwhile.
Result<size_t> InetSocket::send_unconnected(bool nosignal, bool dont_wait,
                                            Timeout& timeout) noexcept {
  auto attempt = [&]() noexcept -> std::optional<Result<size_t>> {
    int err = 0;
    {
      SpinGuard guard(lock_);
      if (conn_bits_.load(std::memory_order_acquire) != 0) {
        return Result<size_t>(Error{EAGAIN});  // the caller retries on the connection
      }
      if (err_ == 0 && mode_ == Mode::kSynSent) {
        return std::nullopt;
      }
      err = std::exchange(err_, 0);
    }
    return Result<size_t>(err == 0 || err == EPIPE ? broken_pipe(nosignal) : Error{err});
  };
  return block_on<size_t>(queue_, dont_wait, timeout, attempt, [](int error) noexcept {
    return Result<size_t>(Error{error == ETIMEDOUT ? EAGAIN : error});
  });
}

Result<size_t> InetSocket::send(const void* buf, size_t len, IoFlags flags) noexcept {
  if ((flags.msg_flags & MSG_OOB) != 0) {
    return Error{EOPNOTSUPP};  // urgent data is not modelled (docs/deviations.md)
  }
  const bool nosignal = (flags.msg_flags & MSG_NOSIGNAL) != 0;
  Timeout timeout = socket_timeout(sndtimeo());
  const bool dont_wait = flags.dont_wait() || timeout.is_zero();
  int s;
  InetConn* c = conn(&s);
  if (c == nullptr) {
    Result<size_t> r = send_unconnected(nosignal, dont_wait, timeout);
    c = conn(&s);
    if (c == nullptr || r || r.error() != EAGAIN) {
      return r;  // (EAGAIN with a connection: it connected meanwhile, go on)
    }
  }
  if (len == 0) {
    // Linux checks the connection state even for an empty write.
    int err = 0;
    {
      SpinGuard guard(c->lock);
      Side& me = c->side[s];
      if (!me.closed && (me.shut & kSendShutdown) == 0) {
        return size_t{0};
      }
      err = me.err != 0 ? std::exchange(me.err, 0) : EPIPE;
    }
    return err == EPIPE ? broken_pipe(nosignal) : Error{err};
  }
  sent_data_.store(true, std::memory_order_relaxed);
  return send_on(*c, s, buf, len, nosignal, dont_wait, timeout);
}

// A receive before a connection exists: waits out a handshake in progress, then the pending
// error, EOF after a shutdown, or ENOTCONN. EAGAIN with a connection: it connected meanwhile.
Result<size_t> InetSocket::recv_unconnected(bool dont_wait, Timeout& timeout) noexcept {
  auto attempt = [&]() noexcept -> std::optional<Result<size_t>> {
    SpinGuard guard(lock_);
    if (conn_bits_.load(std::memory_order_acquire) != 0) {
      return Result<size_t>(Error{EAGAIN});  // the caller retries on the connection
    }
    switch (mode_) {
      case Mode::kListen: return Result<size_t>(Error{ENOTCONN});
      case Mode::kSynSent: return std::nullopt;
      case Mode::kClosed:
      case Mode::kConn: break;
    }
    if (err_ != 0) {
      return Result<size_t>(Error{std::exchange(err_, 0)});
    }
    if ((shut_ & kRcvShutdown) != 0) {
      return Result<size_t>(size_t{0});
    }
    return Result<size_t>(Error{ENOTCONN});
  };
  return block_on<size_t>(queue_, dont_wait, timeout, attempt, [](int error) noexcept {
    return Result<size_t>(Error{error == ETIMEDOUT ? EAGAIN : error});
  });
}

Result<size_t> InetSocket::recv(void* buf, size_t len, IoFlags flags) noexcept {
  if ((flags.msg_flags & MSG_OOB) != 0) {
    return Error{EINVAL};  // no urgent data is ever pending
  }
  Timeout timeout = socket_timeout(rcvtimeo());
  const bool dont_wait = flags.dont_wait() || timeout.is_zero();
  int s;
  InetConn* c = conn(&s);
  if (c == nullptr) {
    Result<size_t> r = recv_unconnected(dont_wait, timeout);
    c = conn(&s);
    if (c == nullptr || r || r.error() != EAGAIN) {
      return r;  // (EAGAIN with a connection: it connected meanwhile, go on)
    }
  }
  return recv_on(*c, s, buf, len, flags.msg_flags, dont_wait, timeout);
}

}  // namespace uepoll::inet
