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
// AF_UNIX's skb accounting, measured on Linux 6.18 (x86-64) through SIOCOUTQ (unix_stream.cpp
// has the figures it reproduces): one skb carries at most 36544 bytes (3776 in its linear head
// + 32768 in pages) and at most sndbuf/2 - 64; its truesize is the head's power-of-two bucket
// (512..4096, holding the rest plus 320 bytes of overhead) + 256 + the paged bytes rounded up
// to pages, the paged part being min(n, roundup(n - 3776, 4096)) when n > 3776.

namespace {

constexpr std::size_t kPage = 4096;
constexpr std::size_t kLinearMax = 3776;    // payload bytes that fit an skb's linear head
constexpr std::size_t kPagedMax = 32768;    // paged bytes of one skb at most
constexpr std::size_t kHeadOverhead = 320;  // shared-info overhead of the head allocation
constexpr std::size_t kSkbOverhead = 256;   // the skb header itself

constexpr std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

constexpr std::size_t truesize(std::size_t n) {
  std::size_t paged = n > kLinearMax ? std::min(n, round_up(n - kLinearMax, kPage)) : 0;
  std::size_t head = n - paged + kHeadOverhead;
  std::size_t bucket = 512;
  while (bucket < head) {
    bucket *= 2;
  }
  return bucket + kSkbOverhead + round_up(paged, kPage);
}
static_assert(truesize(1) == 768 && truesize(192) == 768 && truesize(193) == 1280);
static_assert(truesize(1000) == 2304 && truesize(3776) == 4352);
static_assert(truesize(3777) == 4864 && truesize(7873) == 8960);
static_assert(truesize(14017) == 16640 && truesize(36544) == 37120);

}  // namespace

std::size_t skb_truesize(std::size_t n) noexcept { return truesize(n); }

std::size_t max_skb_payload(std::size_t sndbuf) noexcept {
  const std::size_t half = sndbuf / 2;
  return std::clamp<std::size_t>(half > 64 ? half - 64 : 1, 1, kLinearMax + kPagedMax);
}

Limit Limit::skb(int sndbuf) noexcept {
  const auto buf = static_cast<std::size_t>(std::max(sndbuf, 0));
  // EPOLLOUT while 4 * (charge + 1) <= sndbuf.
  return Limit{buf, buf >= 8 ? buf / 4 - 1 : 0};
}

bool Conn::writable(const Side& reader) const noexcept {
  const std::size_t used = rules.skb_accounting ? reader.rx.charge() : reader.rx.bytes();
  return used <= reader.limit.writable;
}

// ---------------------------------------------------------------------------------------------
// Wake-ups and SIGPIPE

void Socket::wake_and_put(Socket* s, PollMask key) noexcept {
  if (s == nullptr) {
    return;
  }
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
  int s;
  const unsigned char* in;
  std::size_t len;
  std::size_t sent = 0;
  Chunk* chunk = nullptr;     // the next piece, filled outside the lock
  std::size_t chunk_len = 0;  // what the next chunk should carry (set by kNeedChunk)
  int err = 0;                // the error of kFailed (0: reset by an orphan peer, all "sent")
  Socket* wake = nullptr;
  PollMask wake_key = 0;

  ~Sender() { Chunk::destroy(chunk); }

  // Linux's order: a pending error, our shutdown (or a reset), then the peer, then the room.
  Step step() noexcept {
    SpinGuard guard(c.lock);
    Side& me = c.side[s];
    Side& other = c.side[1 - s];
    if (me.closed || (me.shut & kSendShutdown) != 0 || me.err != 0) {
      if (sent == 0 || (me.err != 0 && c.rules.progress_clears_error)) {
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
    if (c.rules.skb_accounting) {
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
    } else if (!c.rules.skb_accounting && tail != nullptr && n <= kCoalesceMax &&
               n <= tail->spare()) {
      std::memcpy(tail->data() + tail->end, in + sent, n);
      other.rx.grew_tail(n);
    } else {
      chunk_len = c.rules.skb_accounting ? std::min(n, max_skb_payload(other.limit.hold))
                                         : std::min(n, kMaxChunk);
      return Step::kNeedChunk;
    }
    sent += n;
    const std::size_t lowat =
        c.rules.lowat_delays_wakeup
            ? static_cast<std::size_t>(
                  std::max(other.sock->options().rcvlowat.load(std::memory_order_relaxed), 1))
            : 1;
    if (other.rx.bytes() >= lowat) {
      wake = grab(other.sock);
      wake_key = kDataReadyKey;
    }
    return Step::kQueued;
  }

  // Fills the next chunk outside the lock; false when memory is short.
  bool fill_chunk() noexcept {
    const std::size_t cap = c.rules.skb_accounting ? chunk_len : std::max(chunk_len, kMinChunk);
    chunk = Chunk::create(cap);
    if (chunk == nullptr) {
      return false;
    }
    std::memcpy(chunk->data(), in + sent, chunk_len);
    chunk->end = static_cast<std::uint32_t>(chunk_len);
    if (c.rules.skb_accounting) {
      chunk->charge = static_cast<std::uint32_t>(skb_truesize(chunk_len));
    }
    return true;
  }
};

}  // namespace

Result<size_t> Socket::send_on(Conn& c, int s, const void* buf, size_t len, bool nosignal,
                               bool dont_wait, Timeout& timeout) noexcept {
  Sender sender{c, s, static_cast<const unsigned char*>(buf), len};
  // Queues as much as fits; bytes queued are reported whatever ends the call.
  auto attempt = [&]() noexcept -> std::optional<Result<size_t>> {
    while (sender.sent < len) {
      Step step = sender.step();
      if (step == Step::kNeedChunk) {
        if (!sender.fill_chunk()) {
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

Result<size_t> Socket::recv_on(Conn& c, int s, void* buf, size_t len, int msg_flags, bool dont_wait,
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
