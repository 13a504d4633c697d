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
    if (err == 0 || err == EPIPE) {
      if (!nosignal) {
        raise_sigpipe();
      }
      return Result<size_t>(Error{EPIPE});
    }
    return Result<size_t>(Error{err});
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
      InetConn::Side& me = c->side[s];
      if (!me.closed && (me.shut & kSendShutdown) == 0) {
        return size_t{0};
      }
      err = me.err != 0 ? std::exchange(me.err, 0) : EPIPE;
    }
    if (err == EPIPE && !nosignal) {
      raise_sigpipe();
    }
    return Error{err};
  }
  const auto* in = static_cast<const unsigned char*>(buf);
  std::size_t sent = 0;
  Chunk* chunk = nullptr;  // filled outside the lock for large writes

  enum class Step { kProgress, kFull, kFailed };
  // Queues what fits. On kFailed, `err` holds the error (0: the socket was reset by an orphan
  // peer and the bytes count as sent).
  auto step = [&](int& err) noexcept -> Step {
    InetSocket* wake = nullptr;
    PollMask key = kDataReadyKey;
    Step result;
    {
      SpinGuard guard(c->lock);
      InetConn::Side& me = c->side[s];
      InetConn::Side& other = c->side[1 - s];
      if (me.closed || (me.shut & kSendShutdown) != 0 || me.err != 0) {
        if (sent == 0) {
          err = me.err != 0 ? std::exchange(me.err, 0) : EPIPE;
        }
        return Step::kFailed;
      }
      if (other.sock == nullptr) {
        // The peer closed: its stack answers data with a RST, which resets us. The write itself
        // succeeds, as on Linux.
        reset_side(me);
        sent = len;
        err = 0;
        wake = grab(this);
        key = 0;
        result = Step::kFailed;
      } else {
        const std::size_t room =
            other.rx.bytes() < other.limit.hold ? other.limit.hold - other.rx.bytes() : 0;
        if (room == 0) {
          me.nospace = true;
          return Step::kFull;
        }
        std::size_t n = std::min(room, len - sent);
        Chunk* tail = other.rx.tail();
        if (chunk != nullptr) {
          n = std::min<std::size_t>(n, chunk->size());
          chunk->end = chunk->begin + static_cast<std::uint32_t>(n);
          other.rx.push(std::exchange(chunk, nullptr));
        } else if (tail != nullptr && n <= kCoalesceMax && n <= tail->spare()) {
          std::memcpy(tail->data() + tail->end, in + sent, n);
          other.rx.grew_tail(n);
        } else {
          return Step::kProgress;  // the caller prepares a chunk outside the lock
        }
        sent += n;
        const int lowat = other.sock->opts_.rcvlowat.load(std::memory_order_relaxed);
        if (other.rx.bytes() >= static_cast<std::size_t>(std::max(lowat, 1))) {
          wake = grab(other.sock);
        }
        result = Step::kProgress;
      }
    }
    if (wake != nullptr) {
      wake_and_put(wake, key);
    }
    return result;
  };

  sent_data_.store(true, std::memory_order_relaxed);
  // Queues as much as fits; bytes queued are reported whatever ends the call.
  auto attempt = [&]() noexcept -> std::optional<Result<size_t>> {
    while (sent < len) {
      int err = 0;
      const std::size_t before = sent;
      Step st = step(err);
      if (st == Step::kProgress && sent == before) {
        // Needs a new chunk: allocate and copy without the lock, then queue it.
        std::size_t n = std::min(len - sent, kMaxChunk);
        chunk = Chunk::create(std::max(n, kMinChunk));
        if (chunk == nullptr) {
          return sent > 0 ? Result<size_t>(sent) : Result<size_t>(Error{ENOBUFS});
        }
        std::memcpy(chunk->data(), in + sent, n);
        chunk->end = static_cast<std::uint32_t>(n);
        st = step(err);
        if (chunk != nullptr) {
          Chunk::destroy(std::exchange(chunk, nullptr));
        }
      }
      if (st == Step::kProgress) {
        continue;
      }
      if (st == Step::kFull) {
        return std::nullopt;
      }
      if (sent > 0) {
        return Result<size_t>(sent);
      }
      if (err == EPIPE && !nosignal) {
        raise_sigpipe();
      }
      return Result<size_t>(Error{err});
    }
    return Result<size_t>(sent);
  };
  return block_on<size_t>(queue_, dont_wait, timeout, attempt, [&](int error) noexcept {
    return sent > 0 ? Result<size_t>(sent)
                    : Result<size_t>(Error{error == ETIMEDOUT ? EAGAIN : error});
  });
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
  const bool peek = (flags.msg_flags & MSG_PEEK) != 0;
  const bool waitall = (flags.msg_flags & MSG_WAITALL) != 0;
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
  const int lowat = std::max(opts_.rcvlowat.load(std::memory_order_relaxed), 1);
  std::size_t target = waitall ? len : std::min<std::size_t>(static_cast<std::size_t>(lowat), len);
  if (target == 0) {
    target = 1;
  }
  auto* out = static_cast<unsigned char*>(buf);
  std::size_t copied = 0;

  auto step = [&]() noexcept -> std::optional<Result<size_t>> {
    Chunk* freed = nullptr;
    InetSocket* writer = nullptr;
    std::optional<Result<size_t>> result;
    {
      SpinGuard guard(c->lock);
      InetConn::Side& me = c->side[s];
      InetConn::Side& other = c->side[1 - s];
      const bool had_data = peek ? me.rx.bytes() > copied : !me.rx.empty();
      copied += me.rx.copy_out(out + copied, len - copied, peek ? copied : 0, !peek, &freed);
      if (copied >= target || (len == 0 && had_data)) {
        result = copied;
      } else if (copied > 0) {
        if (me.err != 0 || me.closed || (me.shut & kRcvShutdown) != 0) {
          result = copied;
        }
      } else if (me.done) {
        result = size_t{0};
      } else if (me.err != 0) {
        result = Error{std::exchange(me.err, 0)};
      } else if ((me.shut & kRcvShutdown) != 0) {
        result = size_t{0};
      } else if (me.closed) {
        result = Error{ENOTCONN};
      }
      if (freed != nullptr && other.nospace && other.sock != nullptr &&
          me.limit.writable_with(me.rx.bytes())) {
        other.nospace = false;
        writer = grab(other.sock);
      }
    }
    Chunk::destroy_list(freed);
    wake_and_put(writer, kWriteSpaceKey);
    return result;
  };

  // Bytes already copied are returned whatever stopped the wait; else EAGAIN (a receive timeout
  // reads as EAGAIN too) or EINTR.
  return block_on<size_t>(queue_, dont_wait, timeout, step, [&](int error) noexcept {
    return copied > 0 ? Result<size_t>(copied)
                      : Result<size_t>(Error{error == ETIMEDOUT ? EAGAIN : error});
  });
}

}  // namespace uepoll::inet
