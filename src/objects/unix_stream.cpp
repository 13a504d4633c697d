// AF_UNIX SOCK_STREAM socketpairs.
//
// Each end owns the queue of bytes the other end wrote to it (Linux's receive queue) and its
// own wait queue; both ends share one lock. Readiness follows Linux's unix_poll():
//   EPOLLERR                   a pending error (the peer closed while we had not read its data)
//   EPOLLHUP                   both directions shut (ours and the peer's shutdowns, or the peer
//                              closed)
//   EPOLLIN|RDNORM|RDHUP       our receive side is shut (peer's SHUT_WR/close, or our SHUT_RD)
//   EPOLLIN|RDNORM             data queued
//   EPOLLOUT|WRNORM|WRBAND     writable (below)
//
// Writability counts buffers, as Linux does: every write is cut into socket buffers (skbs) and
// each skb's "truesize" is charged to the writer until the reader has consumed the whole skb.
// An end is writable while 4 * (charged + 1) <= sndbuf, and a write may queue a new skb while
// charged < sndbuf (sndbuf defaults to net.core.wmem_default, 212992). Measured on Linux 6.18
// (x86-64) through SIOCOUTQ, which reports the charge:
//   - one skb carries at most 36544 bytes (3776 in its linear head + 32768 in pages), and at
//     most sndbuf/2 - 64;
//   - truesize = head bucket + 256 + paged bytes rounded up to 4096, where the paged part is
//     min(n, roundup(n - 3776, 4096)) when n > 3776, and the head bucket is the power of two
//     (512..4096) that holds the rest plus 320 bytes of overhead.
//   So a 1..192-byte write costs 768, a 1000-byte one 2304, a 36544-byte one 37120, and:
//     1-byte writes:    EPOLLOUT drops at the 70th unread write, EAGAIN after 278 writes;
//     1000-byte writes: EPOLLOUT drops at the 24th, EAGAIN after 93 (93000 bytes);
//     one 1 MiB write:  219264 bytes accepted (6 skbs of 36544), EPOLLOUT off;
//   EPOLLOUT comes back when enough whole skbs were read to get 4 * charged <= sndbuf again
//   (209 of the 278 one-byte skbs). The model below reproduces these numbers exactly.
//
// Wake-ups, with Linux's keys: a write wakes the peer with IN|PRI|RDNORM|RDBAND (every write,
// so EPOLLET sees an edge per write); a read that frees an skb wakes the writer with
// OUT|WRNORM|WRBAND if it is writable again; shutdown and close wake with 0 ("anything").
// Closing an end with unread data gives the peer ECONNRESET (EPOLLERR, one failed read, then
// EOF); a write to a shut or closed peer fails with EPIPE and raises SIGPIPE unless
// MSG_NOSIGNAL.
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>

#include "objects/unix_inet_common.hpp"
#include "sync/fault_injection.hpp"
#include "uepoll/blocking.hpp"
#include "uepoll/objects.hpp"

namespace uepoll {
namespace {

using namespace sockcommon;

// --- Linux's skb accounting (see the comment at the top) ---
constexpr std::size_t kPage = 4096;
constexpr std::size_t kLinearMax = 3776;    // payload bytes that fit an skb's linear head
constexpr std::size_t kPagedMax = 32768;    // paged bytes of one skb at most
constexpr std::size_t kHeadOverhead = 320;  // shared-info overhead of the head allocation
constexpr std::size_t kSkbOverhead = 256;   // the skb header itself

constexpr std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

constexpr std::size_t skb_truesize(std::size_t n) {
  std::size_t paged = n > kLinearMax ? std::min(n, round_up(n - kLinearMax, kPage)) : 0;
  std::size_t head = n - paged + kHeadOverhead;
  std::size_t bucket = 512;
  while (bucket < head) {
    bucket *= 2;
  }
  return bucket + kSkbOverhead + round_up(paged, kPage);
}
static_assert(skb_truesize(1) == 768 && skb_truesize(192) == 768 && skb_truesize(193) == 1280);
static_assert(skb_truesize(1000) == 2304 && skb_truesize(3776) == 4352);
static_assert(skb_truesize(3777) == 4864 && skb_truesize(7873) == 8960);
static_assert(skb_truesize(14017) == 16640 && skb_truesize(36544) == 37120);

std::size_t max_skb_payload(int sndbuf) {
  long half = static_cast<long>(sndbuf) / 2 - 64;
  return std::min<std::size_t>(kLinearMax + kPagedMax,
                               half > 0 ? static_cast<std::size_t>(half) : 1);
}

// Linux's unix_writable(): EPOLLOUT while the writer's charge is at most a quarter of sndbuf.
// The kernel's write-memory counter starts at 1 (it doubles as a reference count), hence + 1.
bool poll_out_allowed(std::size_t charged, int sndbuf) {
  return (charged + 1) * 4 <= static_cast<std::size_t>(sndbuf);
}

class UnixStream;

struct UnixPair {
  struct End {
    UnixStream* sock = nullptr;  // null once that end's file is released
    ByteQueue rx;                // what the other end wrote; its charge is the writer's
    unsigned shutdown = 0;       // kRcvShutdown | kSendShutdown
    int err = 0;                 // pending error (sk_err)
    int sndbuf = 0;
  };
  SpinLock lock;
  End end[2] UEPOLL_GUARDED_BY(lock);
  std::atomic<int> refs{2};
};

std::atomic<unsigned> g_autobind_counter{0};

class UnixStream final : public File {
 public:
  UnixStream(UnixPair* pair, int me, int flags) noexcept
      : File(O_RDWR, flags), pair_(pair), me_(me) {
    opts_.sndbuf.store(wmem_default(), std::memory_order_relaxed);
    opts_.rcvbuf.store(rmem_default(), std::memory_order_relaxed);
  }

  PollMask poll(PollTable* table) noexcept override {
    poll_wait(table, queue_);
    UnixPair& p = *pair_;
    SpinGuard guard(p.lock);
    const UnixPair::End& me = p.end[me_];
    const UnixPair::End& peer = p.end[1 - me_];
    PollMask mask = 0;
    if (me.err != 0) {
      mask |= EPOLLERR;
    }
    if (me.shutdown == kShutdownMask) {
      mask |= EPOLLHUP;
    }
    if ((me.shutdown & kRcvShutdown) != 0) {
      mask |= EPOLLRDHUP | EPOLLIN | EPOLLRDNORM;
    }
    if (!me.rx.empty()) {
      mask |= EPOLLIN | EPOLLRDNORM;
    }
    if (poll_out_allowed(peer.rx.charge(), me.sndbuf)) {
      mask |= EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND;
    }
    return mask;
  }

  Result<size_t> read(void* buf, size_t count, IoFlags flags) noexcept override {
    if (count == 0) {
      return size_t{0};  // the socket layer answers a zero-length read() itself
    }
    return recv(buf, count, flags);
  }

  Result<size_t> write(const void* buf, size_t count, IoFlags flags) noexcept override {
    return send(buf, count, flags);
  }

  Result<size_t> recv(void* buf, size_t len, IoFlags flags) noexcept override;
  Result<size_t> send(const void* buf, size_t len, IoFlags flags) noexcept override;

  Result<void> shutdown(int how) noexcept override {
    if (how < SHUT_RD || how > SHUT_RDWR) {
      return Error{EINVAL};
    }
    const unsigned mode = static_cast<unsigned>(how) + 1;
    const unsigned peer_mode = ((mode & kRcvShutdown) != 0 ? kSendShutdown : 0) |
                               ((mode & kSendShutdown) != 0 ? kRcvShutdown : 0);
    UnixStream* peer = nullptr;
    {
      UnixPair& p = *pair_;
      SpinGuard guard(p.lock);
      p.end[me_].shutdown |= mode;
      UnixPair::End& other = p.end[1 - me_];
      if (other.sock != nullptr) {
        other.shutdown |= peer_mode;
        if (other.sock->try_get()) {
          peer = other.sock;
        }
      }
    }
    queue_.wake_all(0);
    wake_and_put(peer, 0);
    return {};
  }

  Result<void> getsockopt(int level, int name, void* val, socklen_t* len) noexcept override {
    if (level != SOL_SOCKET) {
      return Error{EOPNOTSUPP};
    }
    switch (name) {
      case SO_ERROR: {
        int err;
        {
          SpinGuard guard(pair_->lock);
          err = std::exchange(pair_->end[me_].err, 0);
        }
        return put_int_option(val, len, err);
      }
      case SO_SNDBUF: {
        int sndbuf;
        {
          SpinGuard guard(pair_->lock);
          sndbuf = pair_->end[me_].sndbuf;
        }
        return put_int_option(val, len, sndbuf);
      }
      case SO_PEERCRED: {
        ucred cred{getpid(), geteuid(), getegid()};
        return put_option(val, len, &cred, sizeof cred);
      }
      default: return get_common_option(opts_, SockIdentity{AF_UNIX, 0, false}, name, val, len);
    }
  }

  Result<void> setsockopt(int level, int name, const void* val, socklen_t len) noexcept override {
    if (level != SOL_SOCKET) {
      return Error{EOPNOTSUPP};
    }
    Result<void> r = set_common_option(opts_, name, val, len);
    if (r && (name == SO_SNDBUF || name == SO_SNDBUFFORCE)) {
      // Like Linux, a new send buffer size re-evaluates writability and wakes writers.
      bool now_writable;
      {
        SpinGuard guard(pair_->lock);
        UnixPair::End& me = pair_->end[me_];
        me.sndbuf = opts_.sndbuf.load(std::memory_order_relaxed);
        now_writable = poll_out_allowed(pair_->end[1 - me_].rx.charge(), me.sndbuf);
      }
      if (now_writable) {
        queue_.wake(kWriteSpaceKey);
      }
    }
    return r;
  }

  Result<void> getsockname(sockaddr* addr, socklen_t* len) noexcept override {
    return put_address(autobind_.load(std::memory_order_acquire), addr, len);
  }

  // A socketpair stays connected to its peer's socket even after the peer closed, as Linux's.
  Result<void> getpeername(sockaddr* addr, socklen_t* len) noexcept override {
    unsigned id = 0;
    {
      SpinGuard guard(pair_->lock);
      if (const UnixStream* peer = pair_->end[1 - me_].sock; peer != nullptr) {
        id = peer->autobind_.load(std::memory_order_acquire);
      }
    }
    return put_address(id, addr, len);
  }

  Result<size_t> readable_bytes() noexcept override {
    SpinGuard guard(pair_->lock);
    return pair_->end[me_].rx.bytes();
  }

  // AF_UNIX names live in the file system or the abstract namespace, neither of which uepoll
  // models: only an autobind (an address that is just the family) succeeds; a named bind fails
  // with EOPNOTSUPP (docs/deviations.md) after Linux's checks.
  Result<void> bind(const sockaddr* addr, socklen_t len) noexcept override {
    if (Result<void> r = check_sockaddr_in(addr, len); !r) {
      return r;
    }
    if (len == sizeof(sa_family_t) && addr->sa_family == AF_UNIX) {
      unsigned expected = 0;
      unsigned id = g_autobind_counter.fetch_add(1, std::memory_order_relaxed) % 0xfffff + 1;
      autobind_.compare_exchange_strong(expected, id, std::memory_order_acq_rel);
      return {};
    }
    if (Result<void> r = validate_unix_address(addr, len); !r) {
      return r;
    }
    if (autobind_.load(std::memory_order_acquire) != 0) {
      return Error{EINVAL};
    }
    return Error{EOPNOTSUPP};
  }

  // No name can exist in uepoll's model, so a connect fails as Linux's does for a name nobody
  // bound: ECONNREFUSED for an abstract name, ENOENT for a path.
  Result<void> connect(const sockaddr* addr, socklen_t len, IoFlags) noexcept override {
    if (Result<void> r = check_sockaddr_in(addr, len); !r) {
      return r;
    }
    if (Result<void> r = validate_unix_address(addr, len); !r) {
      return r;
    }
    const auto* un = reinterpret_cast<const sockaddr_un*>(addr);
    return Error{un->sun_path[0] == '\0' ? ECONNREFUSED : ENOENT};
  }

  Result<void> listen(int) noexcept override { return Error{EINVAL}; }  // a connected socket

  Result<Ref<File>> accept(sockaddr*, socklen_t*, int, IoFlags) noexcept override {
    return Error{EINVAL};  // not listening
  }

 protected:
  void release() noexcept override {
    UnixPair& p = *pair_;
    UnixStream* peer = nullptr;
    Chunk* purged;
    {
      SpinGuard guard(p.lock);
      UnixPair::End& me = p.end[me_];
      UnixPair::End& other = p.end[1 - me_];
      me.sock = nullptr;
      me.shutdown = kShutdownMask;
      const bool unread = !me.rx.empty();
      purged = me.rx.take_all();  // frees the peer's send charge
      if (other.sock != nullptr) {
        other.shutdown = kShutdownMask;
        if (unread) {
          other.err = ECONNRESET;
        }
        if (other.sock->try_get()) {
          peer = other.sock;
        }
      }
    }
    Chunk::destroy_list(purged);
    wake_and_put(peer, 0);
    if (p.refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      delete &p;
    }
  }

  Ref<File> connected_peer() noexcept override {
    UnixPair& p = *pair_;
    SpinGuard guard(p.lock);
    UnixStream* peer = p.end[1 - me_].sock;
    return peer != nullptr && peer->try_get() ? Ref<File>::adopt(peer) : nullptr;
  }

  // What this end has not read goes into the kernel socketpair through the kernel peer (the
  // kernel queues it at our kernel end); then our shutdowns. Without a kernel peer (the other
  // end is closed) unread data cannot be handed over.
  Result<void> hand_over(const KernelTwin& twin) noexcept override {
    UnixPair& p = *pair_;
    Chunk* unread;
    unsigned shut;
    {
      SpinGuard guard(p.lock);
      unread = p.end[me_].rx.take_all();
      shut = p.end[me_].shutdown;
    }
    int error = 0;
    for (Chunk* c = unread; c != nullptr && error == 0; c = c->next) {
      if (twin.peer_fd < 0 ||
          ::send(twin.peer_fd, c->data() + c->begin, c->size(), MSG_DONTWAIT | MSG_NOSIGNAL) !=
              static_cast<ssize_t>(c->size())) {
        error = twin.peer_fd < 0 ? EPIPE : errno;
      }
    }
    Chunk::destroy_list(unread);
    if ((shut & kSendShutdown) != 0) {
      ::shutdown(twin.fd, SHUT_WR);
    }
    if ((shut & kRcvShutdown) != 0) {
      ::shutdown(twin.fd, SHUT_RD);
    }
    return error == 0 ? Result<void>{} : Result<void>(Error{error});
  }

 private:
  static Result<void> validate_unix_address(const sockaddr* addr, socklen_t len) noexcept {
    if (len <= offsetof(sockaddr_un, sun_path) || len > sizeof(sockaddr_un) ||
        addr->sa_family != AF_UNIX) {
      return Error{EINVAL};
    }
    return {};
  }

  static void wake_and_put(UnixStream* s, PollMask key) noexcept {
    if (s != nullptr) {
      if (key == 0) {
        s->queue_.wake_all(0);  // a state change: every waiter must see it
      } else {
        s->queue_.wake(key);
      }
      s->put();
    }
  }

  UnixPair* const pair_;
  const int me_;
  WaitQueue queue_;
  SockOptions opts_;
  std::atomic<unsigned> autobind_{0};  // 0: unbound; else 1 + the autobind number

  // An address as Linux's unix_getname gives it: the family alone, or an autobind's name.
  static Result<void> put_address(unsigned autobind, sockaddr* addr, socklen_t* len) noexcept {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    socklen_t size = sizeof(sa_family_t);
    if (autobind != 0) {
      char name[8];
      std::snprintf(name, sizeof name, "%05x", (autobind - 1) & 0xfffff);
      std::memcpy(un.sun_path + 1, name, 5);  // an abstract name: a NUL, then 5 hex digits
      size += 6;
    }
    return put_sockaddr(addr, len, &un, size);
  }
};

Result<size_t> UnixStream::recv(void* buf, size_t len, IoFlags flags) noexcept {
  if ((flags.msg_flags & MSG_OOB) != 0) {
    return Error{EINVAL};  // no out-of-band byte is ever pending (docs/deviations.md)
  }
  const bool peek = (flags.msg_flags & MSG_PEEK) != 0;
  const bool waitall = (flags.msg_flags & MSG_WAITALL) != 0;
  // Linux's sock_rcvlowat(): the bytes a blocking read waits for.
  std::size_t target =
      waitall ? len
              : std::min<std::size_t>(
                    static_cast<std::size_t>(opts_.rcvlowat.load(std::memory_order_relaxed)), len);
  if (target == 0) {
    target = 1;
  }
  Timeout timeout = socket_timeout(opts_.rcvtimeo.load(std::memory_order_relaxed));
  const bool dont_wait = flags.dont_wait() || timeout.is_zero();
  auto* out = static_cast<unsigned char*>(buf);
  UnixPair& p = *pair_;
  std::size_t copied = 0;

  // One pass: copy what is there; returns a final result, or nothing to wait for more.
  auto step = [&]() noexcept -> std::optional<Result<size_t>> {
    Chunk* freed = nullptr;
    UnixStream* writer = nullptr;
    std::optional<Result<size_t>> result;
    {
      SpinGuard guard(p.lock);
      UnixPair::End& me = p.end[me_];
      UnixPair::End& other = p.end[1 - me_];
      copied += me.rx.copy_out(out + copied, len - copied, peek ? copied : 0, !peek, &freed);
      const bool more = peek ? me.rx.bytes() > copied : !me.rx.empty();
      if (copied >= target || (copied == len && more)) {
        result = copied;
      } else if (me.err != 0) {
        // Linux consumes the error here even when it returns the bytes already copied.
        int err = std::exchange(me.err, 0);
        result = copied > 0 ? Result<size_t>(copied) : Result<size_t>(Error{err});
      } else if ((me.shutdown & kRcvShutdown) != 0) {
        result = copied;
      }
      if (freed != nullptr && other.sock != nullptr &&
          poll_out_allowed(me.rx.charge(), other.sndbuf) && other.sock->try_get()) {
        writer = other.sock;
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

Result<size_t> UnixStream::send(const void* buf, size_t len, IoFlags flags) noexcept {
  if ((flags.msg_flags & MSG_OOB) != 0) {
    return Error{EOPNOTSUPP};  // out-of-band data is not modelled (docs/deviations.md)
  }
  const bool nosignal = (flags.msg_flags & MSG_NOSIGNAL) != 0;
  UnixPair& p = *pair_;
  auto pipe_error = [&](std::size_t sent) noexcept -> Result<size_t> {
    if (sent > 0) {
      return sent;
    }
    if (!nosignal) {
      raise_sigpipe();
    }
    return Error{EPIPE};
  };
  bool shut;
  {
    SpinGuard guard(p.lock);
    shut = (p.end[me_].shutdown & kSendShutdown) != 0;
  }
  if (shut) {
    return pipe_error(0);  // checked before anything else, even for a zero-length write
  }
  if (len == 0) {
    return size_t{0};
  }
  Timeout timeout = socket_timeout(opts_.sndtimeo.load(std::memory_order_relaxed));
  const bool dont_wait = flags.dont_wait() || timeout.is_zero();
  const auto* in = static_cast<const unsigned char*>(buf);
  std::size_t sent = 0;
  Chunk* chunk = nullptr;  // the next skb, filled outside the lock
  enum class Step { kQueued, kFull, kPipe, kError };

  // Queues `chunk` if the send buffer allows (Linux's order: pending error, our shutdown, the
  // peer gone or shut for reading, then the buffer).
  auto step = [&](int& err) noexcept -> Step {
    UnixStream* reader = nullptr;
    Step s;
    {
      SpinGuard guard(p.lock);
      UnixPair::End& me = p.end[me_];
      UnixPair::End& other = p.end[1 - me_];
      if (me.err != 0) {
        err = std::exchange(me.err, 0);
        s = Step::kError;
      } else if ((me.shutdown & kSendShutdown) != 0 || other.sock == nullptr ||
                 (other.shutdown & kRcvShutdown) != 0) {
        s = Step::kPipe;
      } else if (other.rx.charge() >= static_cast<std::size_t>(me.sndbuf)) {
        s = Step::kFull;
      } else {
        sent += chunk->size();
        other.rx.push(std::exchange(chunk, nullptr));
        s = Step::kQueued;
        if (other.sock->try_get()) {
          reader = other.sock;
        }
      }
    }
    wake_and_put(reader, kDataReadyKey);
    return s;
  };
  auto fail = [&](Step s, int err) noexcept -> Result<size_t> {
    Chunk::destroy(std::exchange(chunk, nullptr));
    if (s == Step::kPipe) {
      return pipe_error(sent);
    }
    return sent > 0 ? Result<size_t>(sent) : Result<size_t>(Error{err});
  };

  // Queues as much as fits; bytes queued are reported whatever ends the call.
  auto attempt = [&]() noexcept -> std::optional<Result<size_t>> {
    while (sent < len) {
      if (chunk == nullptr) {
        int sndbuf;
        {
          SpinGuard guard(p.lock);
          sndbuf = p.end[me_].sndbuf;
        }
        std::size_t n = std::min(len - sent, max_skb_payload(sndbuf));
        chunk = Chunk::create(n);
        if (chunk == nullptr) {
          return sent > 0 ? Result<size_t>(sent) : Result<size_t>(Error{ENOBUFS});
        }
        std::memcpy(chunk->data(), in + sent, n);
        chunk->end = static_cast<std::uint32_t>(n);
        chunk->charge = static_cast<std::uint32_t>(skb_truesize(n));
      }
      int err = 0;
      Step s = step(err);
      if (s == Step::kFull) {
        return std::nullopt;  // wait for the reader to free space
      }
      if (s != Step::kQueued) {
        return fail(s, err);
      }
    }
    return Result<size_t>(sent);
  };
  return block_on<size_t>(queue_, dont_wait, timeout, attempt, [&](int error) noexcept {
    return fail(Step::kError, error == ETIMEDOUT ? EAGAIN : error);
  });
}

}  // namespace

Result<FilePair> make_unix_stream_pair(int flags) noexcept {
  auto* pair = detail::try_new<UnixPair>();
  if (pair == nullptr) {
    return Error{ENOMEM};
  }
  auto* a = detail::try_new<UnixStream>(pair, 0, flags);
  auto* b = detail::try_new<UnixStream>(pair, 1, flags);
  if (a == nullptr || b == nullptr) {
    // Neither end was published: drop them as if each had been closed (the pair is freed by the
    // last one; with no end at all it is freed here).
    pair->refs.store((a != nullptr ? 1 : 0) + (b != nullptr ? 1 : 0), std::memory_order_relaxed);
    if (a != nullptr) {
      a->put();
    }
    if (b != nullptr) {
      b->put();
    }
    if (a == nullptr && b == nullptr) {
      delete pair;
    }
    return Error{ENOMEM};
  }
  {
    SpinGuard guard(pair->lock);
    for (int i = 0; i < 2; ++i) {
      pair->end[i].sndbuf = wmem_default();
    }
    pair->end[0].sock = a;
    pair->end[1].sock = b;
  }
  return FilePair{Ref<File>::adopt(a), Ref<File>::adopt(b)};
}

}  // namespace uepoll
