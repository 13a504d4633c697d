// The stream layer: a two-sided connection of byte queues, shared by AF_UNIX socketpairs
// (unix_stream.cpp) and in-process TCP (inet/). One send path, one receive path, one wake-up
// helper and one SIGPIPE rule; what really differs between the families is a small policy
// (Rules) and each direction's Limit:
//
//   AF_UNIX  every write is one skb charged to the writer at Linux's truesize; a writer may
//            queue while its charge is under its SO_SNDBUF and is writable while the charge is at
//            most a quarter of it; every freed skb wakes a writable writer (sock_wfree); a call
//            that made progress still consumes a pending error (sock_error in its loop).
//   TCP      bytes count; a direction holds at most `hold` bytes and is writable up to
//            `writable`; small writes fill the last chunk's spare room; the reader's SO_RCVLOWAT
//            delays its wake-up (tcp_data_ready); only a writer that found no room is woken
//            (SOCK_NOSPACE); a pending error waits for the next call when this one made progress.
//
// Locking: a connection's SpinLock guards both sides (docs/locking.md, `kObject` and §8); the paths
// here take it, never hold it across a wake-up or an allocation, and drop a side's socket reference
// after waking it. A socket's queue_ is what poll() hooks and what blocking calls sleep on.
#pragma once

#include <sys/epoll.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "objects/socket_common.hpp"
#include "sync/block_cache.hpp"
#include "uepoll/blocking.hpp"
#include "uepoll/file.hpp"
#include "uepoll/result.hpp"
#include "uepoll/sync.hpp"
#include "uepoll/wait_queue.hpp"

namespace uepoll::stream {

/// Linux's sk_shutdown bits.
constexpr unsigned kRcvShutdown = 1;
constexpr unsigned kSendShutdown = 2;
constexpr unsigned kShutdownMask = 3;

/// Wake-up keys, as Linux's socket callbacks pass them.
constexpr std::uint32_t kDataReadyKey = EPOLLIN | EPOLLPRI | EPOLLRDNORM | EPOLLRDBAND;
constexpr std::uint32_t kWriteSpaceKey = EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND;

// ---------------------------------------------------------------------------------------------
// Byte queues

/// One contiguous piece of queued data; the payload follows the header in the same allocation.
struct Chunk {
  Chunk* next;
  std::uint32_t begin;   // first unread byte
  std::uint32_t end;     // one past the last written byte
  std::uint32_t cap;     // payload capacity
  std::uint32_t charge;  // accounting units released when the chunk is fully read
  unsigned char* data() noexcept { return reinterpret_cast<unsigned char*>(this + 1); }
  std::uint32_t size() const noexcept { return end - begin; }
  std::uint32_t spare() const noexcept { return cap - end; }

  /// A chunk with room for `cap` bytes, or null when memory is short (never throws).
  static Chunk* create(std::size_t cap) noexcept;
  static void destroy(Chunk* chunk) noexcept;
  /// Frees a list linked through `next`.
  static void destroy_list(Chunk* list) noexcept;
};

/// A FIFO of chunks with byte and charge totals. Not synchronised: its owner's lock guards it.
class ByteQueue {
 public:
  ByteQueue() = default;
  ByteQueue(const ByteQueue&) = delete;
  ByteQueue& operator=(const ByteQueue&) = delete;
  ~ByteQueue() { Chunk::destroy_list(take_all()); }

  bool empty() const noexcept { return head_ == nullptr; }
  std::size_t bytes() const noexcept { return bytes_; }
  std::size_t charge() const noexcept { return charge_; }
  Chunk* tail() noexcept { return tail_; }

  /// Appends a chunk holding at least one byte.
  void push(Chunk* chunk) noexcept;
  /// Records `n` bytes the caller has just written at the end of tail().
  void grew_tail(std::size_t n) noexcept {
    tail_->end += static_cast<std::uint32_t>(n);
    bytes_ += n;
  }
  /// Copies up to `n` bytes, starting `skip` bytes into the queue, to `out`. When `consume`,
  /// the bytes are removed (skip must be 0) and emptied chunks are moved onto `*freed` (the
  /// caller frees them after dropping its lock). Returns the number of bytes copied.
  std::size_t copy_out(unsigned char* out, std::size_t n, std::size_t skip, bool consume,
                       Chunk** freed) noexcept;
  /// Empties the queue; returns the chunks for the caller to free.
  Chunk* take_all() noexcept;

 private:
  Chunk* head_ = nullptr;
  Chunk* tail_ = nullptr;
  std::size_t bytes_ = 0;
  std::size_t charge_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Policies

/// What differs between the families (see the top of this file).
struct Rules {
  bool skb_accounting;         // AF_UNIX: one charged skb per write, woken on every free
  bool lowat_delays_wakeup;    // TCP: a reader wakes once SO_RCVLOWAT bytes are queued
  bool progress_clears_error;  // AF_UNIX: a call that moved bytes consumes the pending error
};
inline constexpr Rules kUnixRules{true, false, true};
inline constexpr Rules kTcpRules{false, true, false};

/// Chunk sizes under byte accounting: small chunks stay in malloc's per-thread cache, small
/// writes copy into the last chunk's spare room.
constexpr std::size_t kMinChunk = 512 - sizeof(Chunk);
constexpr std::size_t kMaxChunk = 65536;
constexpr std::size_t kCoalesceMax = 1024;

/// How much one direction may hold, in bytes or (skb accounting) in charge units.
struct Limit {
  std::size_t hold = 0;      // a writer may queue while below this (bytes: up to it)
  std::size_t writable = 0;  // the writer is writable (EPOLLOUT) while at most this is used

  /// AF_UNIX's limits for a writer whose SO_SNDBUF is `sndbuf`: EPOLLOUT while
  /// 4 * (charge + 1) <= sndbuf (Linux's unix_writable(); the kernel's write-memory counter
  /// starts at 1). Below 8 nothing is ever writable; SO_SNDBUF's minimum is 4608 anyway.
  static constexpr Limit skb(int sndbuf) noexcept {
    const auto buf = static_cast<std::size_t>(sndbuf > 0 ? sndbuf : 0);
    return Limit{buf, buf >= 8 ? buf / 4 - 1 : 0};
  }
};

// AF_UNIX's skb accounting, measured on Linux 6.18 (x86-64) through SIOCOUTQ (unix_stream.cpp
// has the figures it reproduces): one skb carries at most 36544 bytes (3776 in its linear head
// + 32768 in pages) and at most sndbuf/2 - 64; its truesize is the head's power-of-two bucket
// (512..4096, holding the rest plus 320 bytes of overhead) + 256 + the paged bytes rounded up
// to pages, the paged part being min(n, roundup(n - 3776, 4096)) when n > 3776.
namespace skb {
constexpr std::size_t kPage = 4096;
constexpr std::size_t kLinearMax = 3776;    // payload bytes that fit an skb's linear head
constexpr std::size_t kPagedMax = 32768;    // paged bytes of one skb at most
constexpr std::size_t kHeadOverhead = 320;  // shared-info overhead of the head allocation
constexpr std::size_t kOverhead = 256;      // the skb header itself
constexpr std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }
}  // namespace skb

/// Linux's truesize of an AF_UNIX skb carrying `n` bytes.
constexpr std::size_t skb_truesize(std::size_t n) noexcept {
  using namespace skb;
  const std::size_t paged = n > kLinearMax ? std::min(n, round_up(n - kLinearMax, kPage)) : 0;
  const std::size_t head = n - paged + kHeadOverhead;
  std::size_t bucket = 512;
  while (bucket < head) {
    bucket *= 2;
  }
  return bucket + kOverhead + round_up(paged, kPage);
}

/// The payload one AF_UNIX skb may carry under a send buffer of `sndbuf`.
constexpr std::size_t max_skb_payload(std::size_t sndbuf) noexcept {
  const std::size_t half = sndbuf / 2;
  return std::clamp<std::size_t>(half > 64 ? half - 64 : 1, 1, skb::kLinearMax + skb::kPagedMax);
}

// ---------------------------------------------------------------------------------------------
// Connections

class Socket;

/// One end's view of the connection, guarded by the connection's lock.
struct Side {
  Socket* sock = nullptr;  // null once that socket is released (an orphan)
  ByteQueue rx;            // bytes for this side to read
  unsigned shut = 0;       // sk_shutdown
  int err = 0;             // sk_err
  bool done = false;       // the peer's FIN arrived (SOCK_DONE; TCP only)
  bool closed = false;     // TCP_CLOSE: reset, or both FINs exchanged (TCP only)
  bool nospace = false;    // this side's writer found no room (SOCK_NOSPACE)
  Limit limit;             // how much `rx` may hold
};

/// Both directions of one connection; freed by the last of its two sockets, as its most
/// derived type (no virtual destructor: the block cache's sized delete needs the real size).
struct Conn : detail::BlockCached {
  explicit Conn(const Rules& family_rules) noexcept : rules(family_rules) {}
  const Rules& rules;
  SpinLock lock;
  Side side[2] UEPOLL_GUARDED_BY(lock);
  std::atomic<int> refs{2};

  /// Whether the writer into `reader` may report EPOLLOUT.
  bool writable(const Side& reader) const noexcept UEPOLL_REQUIRES(lock) {
    const std::size_t used = rules.skb_accounting ? reader.rx.charge() : reader.rx.bytes();
    return used <= reader.limit.writable;
  }
  /// Drops one reference; true when it was the last and the caller frees the connection.
  bool drop_ref() noexcept { return refs.fetch_sub(1, std::memory_order_acq_rel) == 1; }
};

/// A stream socket: the file at one end of a Conn.
class Socket : public File {
 public:
  Result<size_t> read(void* buf, size_t count, IoFlags flags) noexcept override {
    if (count == 0) {
      return size_t{0};  // the socket layer answers a zero-length read() itself
    }
    return recv(buf, count, flags);
  }
  Result<size_t> write(const void* buf, size_t count, IoFlags flags) noexcept override {
    return send(buf, count, flags);
  }

  const sockcommon::SockOptions& options() const noexcept { return opts_; }

 protected:
  explicit Socket(int status_flags) noexcept : File(O_RDWR, status_flags) {}

  /// Wakes `s`'s waiters and drops the reference the caller took under a lock (null: nothing).
  /// Key 0 is a state change that every waiter must see.
  static void wake_and_put(Socket* s, PollMask key) noexcept {
    if (s != nullptr) {
      wake_and_put_nonnull(s, key);
    }
  }

  static void wake_and_put_nonnull(Socket* s, PollMask key) noexcept;

  /// Queues `len` (> 0) bytes for side `s`'s peer: what fits now, then, unless `dont_wait`,
  /// waits for room until `timeout`. Reports the bytes queued whatever ends the call; EPIPE
  /// raises SIGPIPE unless `nosignal`.
  Result<size_t> send_on(Conn& c, int s, const void* buf, size_t len, bool nosignal, bool dont_wait,
                         Timeout& timeout) noexcept;
  /// Reads up to `len` bytes of side `s` (MSG_PEEK and MSG_WAITALL in `msg_flags`), waiting
  /// for SO_RCVLOWAT bytes (all of them with MSG_WAITALL) unless `dont_wait`.
  Result<size_t> recv_on(Conn& c, int s, void* buf, size_t len, int msg_flags, bool dont_wait,
                         Timeout& timeout) noexcept;

  WaitQueue queue_;  // what poll() hooks; blocking sends and receives sleep here
  sockcommon::SockOptions opts_;
};

/// A reference on `s` unless it is null or being released (the pattern for waking a peer
/// found under a lock).
template <class S>
S* grab(S* s) noexcept {
  return s != nullptr && s->try_get() ? s : nullptr;
}

/// Linux's tcp_reset() as seen by `side`: closed, both directions shut, and the error its state
/// gives (EPIPE once the peer's FIN had come and we could still send, else ECONNRESET).
void reset(Side& side) noexcept;

/// Our FIN arriving at `peer` (Linux's tcp_fin): end of file after its data, and TCP_CLOSE if it
/// had sent its own FIN. Returns whether both FINs have now been exchanged.
bool deliver_fin(Side& peer) noexcept;

/// Linux's EPIPE: SIGPIPE to the calling thread unless MSG_NOSIGNAL.
Error broken_pipe(bool nosignal) noexcept;

}  // namespace uepoll::stream
