// The stream layer's queues, limits, and its one send and one receive path.
#include "objects/stream.hpp"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <optional>

#include "sync/fault_injection.hpp"

namespace uepoll::stream {

// ---------------------------------------------------------------------------------------------
// Chunks and byte queues

Chunk* Chunk::create(std::size_t cap) noexcept {
  void* mem = detail::allocation_should_fail() ? nullptr
                                               : ::operator new(sizeof(Chunk) + cap, std::nothrow);
  if (mem == nullptr) {
    return nullptr;
  }
  auto* c = static_cast<Chunk*>(mem);
  c->next = nullptr;
  c->begin = 0;
  c->end = 0;
  c->cap = static_cast<std::uint32_t>(cap);
  c->charge = 0;
  return c;
}

void Chunk::destroy(Chunk* chunk) noexcept { ::operator delete(static_cast<void*>(chunk)); }

void Chunk::destroy_list(Chunk* list) noexcept {
  while (list != nullptr) {
    Chunk* next = list->next;
    destroy(list);
    list = next;
  }
}

void ByteQueue::push(Chunk* chunk) noexcept {
  chunk->next = nullptr;
  if (tail_ == nullptr) {
    head_ = chunk;
  } else {
    tail_->next = chunk;
  }
  tail_ = chunk;
  bytes_ += chunk->size();
  charge_ += chunk->charge;
}

std::size_t ByteQueue::copy_out(unsigned char* out, std::size_t n, std::size_t skip, bool consume,
                                Chunk** freed) noexcept {
  std::size_t done = 0;
  Chunk* c = head_;
  while (c != nullptr && skip >= c->size()) {
    skip -= c->size();
    c = c->next;
  }
  while (c != nullptr && done < n) {
    std::size_t take = std::min<std::size_t>(c->size() - skip, n - done);
    std::memcpy(out + done, c->data() + c->begin + skip, take);
    done += take;
    skip = 0;
    Chunk* next = c->next;
    if (consume) {
      c->begin += static_cast<std::uint32_t>(take);
      bytes_ -= take;
      if (c->size() == 0) {
        head_ = next;
        if (head_ == nullptr) {
          tail_ = nullptr;
        }
        charge_ -= c->charge;
        c->next = *freed;
        *freed = c;
      }
    }
    c = next;
  }
  return done;
}

Chunk* ByteQueue::take_all() noexcept {
  Chunk* all = head_;
  head_ = nullptr;
  tail_ = nullptr;
  bytes_ = 0;
  charge_ = 0;
  return all;
}

// ---------------------------------------------------------------------------------------------
// Limits

static_assert(skb_truesize(1) == 768 && skb_truesize(192) == 768 && skb_truesize(193) == 1280);
static_assert(skb_truesize(1000) == 2304 && skb_truesize(3776) == 4352);
static_assert(skb_truesize(3777) == 4864 && skb_truesize(7873) == 8960);
static_assert(skb_truesize(14017) == 16640 && skb_truesize(36544) == 37120);
static_assert(Limit::skb(212992).writable == 53247);  // 69 one-byte skbs of 768 stay writable

// ---------------------------------------------------------------------------------------------
// Wake-ups and SIGPIPE

void Socket::wake_and_put_nonnull(Socket* s, PollMask key) noexcept {
  if (key == 0) {
    s->queue_.wake_all(0);
  } else {
    s->queue_.wake(key);
  }
  s->put();
}

// Thread-directed, as Linux's send_sig from a sending task.
Error broken_pipe(bool nosignal) noexcept {
  if (!nosignal) {
    pthread_kill(pthread_self(), SIGPIPE);
  }
  return Error{EPIPE};
}

// ---------------------------------------------------------------------------------------------
// Sending

namespace {

enum class Step { kQueued, kNeedChunk, kFull, kFailed };

// One send call's progress, between lock round trips.
struct Sender {
  Conn& c;
  const Rules rules;  // a copy: read on every step, never changes
  int s;
  const unsigned char* in;
  std::size_t len;
  std::size_t sent = 0;
  Chunk* chunk = nullptr;     // the next piece, filled outside the lock
  std::size_t chunk_len = 0;  // what the next chunk should carry (set by kNeedChunk)
  int err = 0;                // the error of kFailed (0: reset by an orphan peer, all "sent")
  Socket* wake = nullptr;
  PollMask wake_key = 0;

  ~Sender() {
    if (chunk != nullptr) {
      Chunk::destroy(chunk);
    }
  }

  // Linux's order: a pending error, our shutdown (or a reset), then the peer, then the room.
  Step step() noexcept {
    SpinGuard guard(c.lock);
    Side& me = c.side[s];
    Side& other = c.side[1 - s];
    if (me.closed || (me.shut & kSendShutdown) != 0 || me.err != 0) {
      if (sent == 0 || (me.err != 0 && rules.progress_clears_error)) {
        err = me.err != 0 ? std::exchange(me.err, 0) : EPIPE;
      }
      return Step::kFailed;
    }
    if (other.sock == nullptr) {
      // A closed TCP peer answers data with a RST, which resets us; the write itself succeeds,
      // as on Linux. (AF_UNIX never gets here: a closing end shuts the survivor's sending side.)
      reset(me);
      sent = len;
      err = 0;
      wake = grab(me.sock);
      wake_key = 0;
      return Step::kFailed;
    }
    return queue(me, other);
  }

  Step queue(Side& me, Side& other) noexcept UEPOLL_REQUIRES(c.lock) {
    std::size_t room;
    if (rules.skb_accounting) {
      room = other.rx.charge() < other.limit.hold ? len - sent : 0;
    } else {
      room = other.rx.bytes() < other.limit.hold ? other.limit.hold - other.rx.bytes() : 0;
    }
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
    } else if (!rules.skb_accounting && tail != nullptr && n <= kCoalesceMax &&
               n <= tail->spare()) {
      std::memcpy(tail->data() + tail->end, in + sent, n);
      other.rx.grew_tail(n);
    } else {
      chunk_len = std::min(n, kMaxChunk);  // (skb accounting always brings its chunk)
      return Step::kNeedChunk;
    }
    sent += n;
    const std::size_t lowat =
        rules.lowat_delays_wakeup
            ? static_cast<std::size_t>(
                  std::max(other.sock->options().rcvlowat.load(std::memory_order_relaxed), 1))
            : 1;
    if (other.rx.bytes() >= lowat) {
      wake = grab(other.sock);
      wake_key = kDataReadyKey;
    }
    return Step::kQueued;
  }

  // Fills the next chunk outside the lock; false when memory is short. An skb is sized by the
  // writer's send buffer (read without the lock, as Linux reads sk_sndbuf).
  bool fill_chunk(int sndbuf) noexcept {
    if (rules.skb_accounting) {
      chunk_len =
          std::min(len - sent, max_skb_payload(static_cast<std::size_t>(std::max(sndbuf, 0))));
    }
    const std::size_t cap = rules.skb_accounting ? chunk_len : std::max(chunk_len, kMinChunk);
    chunk = Chunk::create(cap);
    if (chunk == nullptr) {
      return false;
    }
    std::memcpy(chunk->data(), in + sent, chunk_len);
    chunk->end = static_cast<std::uint32_t>(chunk_len);
    if (rules.skb_accounting) {
      chunk->charge = static_cast<std::uint32_t>(skb_truesize(chunk_len));
    }
    return true;
  }
};

}  // namespace

// Flattened: the attempt closure and the Sender inline into one loop, as the two copies were.
[[gnu::flatten]] Result<size_t> Socket::send_on(Conn& c, int s, const void* buf, size_t len,
                                                bool nosignal, bool dont_wait,
                                                Timeout& timeout) noexcept {
  Sender sender{c, c.rules, s, static_cast<const unsigned char*>(buf), len};
  // Queues as much as fits; bytes queued are reported whatever ends the call.
  auto attempt = [&]() noexcept -> std::optional<Result<size_t>> {
    while (sender.sent < len) {
      // Every AF_UNIX write is a new skb: it is filled before the lock is taken.
      Step step =
          sender.rules.skb_accounting && sender.chunk == nullptr ? Step::kNeedChunk : sender.step();
      if (step == Step::kNeedChunk) {
        if (!sender.fill_chunk(opts_.sndbuf.load(std::memory_order_relaxed))) {
          return sender.sent > 0 ? Result<size_t>(sender.sent) : Result<size_t>(Error{ENOBUFS});
        }
        step = sender.step();
      }
      wake_and_put(std::exchange(sender.wake, nullptr), sender.wake_key);
      if (step == Step::kFull) {
        return std::nullopt;  // wait for the reader to make room
      }
      if (step == Step::kFailed) {
        if (sender.sent > 0) {
          return Result<size_t>(sender.sent);
        }
        return Result<size_t>(sender.err == EPIPE ? broken_pipe(nosignal) : Error{sender.err});
      }
    }
    return Result<size_t>(sender.sent);
  };
  return block_on<size_t>(queue_, dont_wait, timeout, attempt, [&](int error) noexcept {
    return sender.sent > 0 ? Result<size_t>(sender.sent)
                           : Result<size_t>(Error{error == ETIMEDOUT ? EAGAIN : error});
  });
}

// ---------------------------------------------------------------------------------------------
// Receiving

namespace {

// Linux's tcp_recvmsg / unix_stream_read_generic decision once the queue is copied from: a
// final result, or nothing to wait for more.
std::optional<Result<size_t>> receive_outcome(Side& me, const Rules& rules, std::size_t copied,
                                              std::size_t target, bool had_data,
                                              std::size_t len) noexcept {
  if (copied >= target || (len == 0 && had_data)) {
    return copied;
  }
  if (copied > 0) {
    if (me.err != 0 && rules.progress_clears_error) {
      me.err = 0;
      return copied;
    }
    if (me.err != 0 || me.closed || (me.shut & kRcvShutdown) != 0) {
      return copied;
    }
    return std::nullopt;
  }
  if (me.done) {
    return size_t{0};
  }
  if (me.err != 0) {
    return Error{std::exchange(me.err, 0)};
  }
  if ((me.shut & kRcvShutdown) != 0) {
    return size_t{0};
  }
  if (me.closed) {
    return Error{ENOTCONN};
  }
  return std::nullopt;
}

}  // namespace

[[gnu::flatten]] Result<size_t> Socket::recv_on(Conn& c, int s, void* buf, size_t len,
                                                int msg_flags, bool dont_wait,
                                                Timeout& timeout) noexcept {
  const bool peek = (msg_flags & MSG_PEEK) != 0;
  // Linux's sock_rcvlowat(): the bytes a blocking read waits for.
  const auto lowat =
      static_cast<std::size_t>(std::max(opts_.rcvlowat.load(std::memory_order_relaxed), 1));
  const std::size_t target =
      std::max<std::size_t>((msg_flags & MSG_WAITALL) != 0 ? len : std::min(lowat, len), 1);
  auto* out = static_cast<unsigned char*>(buf);
  std::size_t copied = 0;

  auto step = [&]() noexcept -> std::optional<Result<size_t>> {
    Chunk* freed = nullptr;
    Socket* writer = nullptr;
    std::optional<Result<size_t>> result;
    {
      SpinGuard guard(c.lock);
      Side& me = c.side[s];
      Side& other = c.side[1 - s];
      const bool had_data = peek ? me.rx.bytes() > copied : !me.rx.empty();
      copied += me.rx.copy_out(out + copied, len - copied, peek ? copied : 0, !peek, &freed);
      result = receive_outcome(me, c.rules, copied, target, had_data, len);
      // A freed chunk wakes the writer when it can go on (every skb for AF_UNIX, TCP's writer
      // only when it had found no room).
      if (freed != nullptr && other.sock != nullptr && (c.rules.skb_accounting || other.nospace) &&
          c.writable(me)) {
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

// Linux's tcp_reset() as seen by `side`: the error depends on the state.
void reset(Side& side) noexcept {
  if (side.closed) {
    return;
  }
  side.err = (side.done && (side.shut & kSendShutdown) == 0) ? EPIPE : ECONNRESET;
  side.closed = true;
  side.shut = kShutdownMask;
}

bool deliver_fin(Side& peer) noexcept {
  peer.shut |= kRcvShutdown;
  peer.done = true;
  if ((peer.shut & kSendShutdown) == 0) {
    return false;
  }
  peer.closed = true;
  peer.shut = kShutdownMask;
  return true;
}

}  // namespace uepoll::stream
