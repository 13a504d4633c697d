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

#include "objects/stream.hpp"
#include "sync/block_cache.hpp"
#include "sync/fault_injection.hpp"
#include "uepoll/blocking.hpp"
#include "uepoll/objects.hpp"

namespace uepoll {
namespace {

using namespace sockcommon;
using namespace stream;

// Both ends share one stream connection (stream.hpp, AF_UNIX's rules): side i is end i; each
// side's limit is the other end's send buffer, which its writes are charged against.
using UnixPair = Conn;

std::atomic<unsigned> g_autobind_counter{0};

class UnixStream final : public Socket, public detail::BlockCached {
 public:
  UnixStream(UnixPair* pair, int me, int flags) noexcept : Socket(flags), pair_(pair), me_(me) {
    opts_.sndbuf.store(wmem_default(), std::memory_order_relaxed);
    opts_.rcvbuf.store(rmem_default(), std::memory_order_relaxed);
  }

  PollMask poll(PollTable* table) noexcept override {
    poll_wait(table, queue_);
    UnixPair& p = *pair_;
    SpinGuard guard(p.lock);
    const Side& me = p.side[me_];
    const Side& peer = p.side[1 - me_];
    PollMask mask = 0;
    if (me.err != 0) {
      mask |= EPOLLERR;
    }
    if (me.shut == kShutdownMask) {
      mask |= EPOLLHUP;
    }
    if ((me.shut & kRcvShutdown) != 0) {
      mask |= EPOLLRDHUP | EPOLLIN | EPOLLRDNORM;
    }
    if (!me.rx.empty()) {
      mask |= EPOLLIN | EPOLLRDNORM;
    }
    if (p.writable(peer)) {
      mask |= EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND;
    }
    return mask;
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
    Socket* peer = nullptr;
    {
      UnixPair& p = *pair_;
      SpinGuard guard(p.lock);
      p.side[me_].shut |= mode;
      Side& other = p.side[1 - me_];
      if (other.sock != nullptr) {
        other.shut |= peer_mode;
        peer = grab(other.sock);
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
          err = std::exchange(pair_->side[me_].err, 0);
        }
        return put_int_option(val, len, err);
      }
      case SO_SNDBUF: {
        int sndbuf;
        {
          SpinGuard guard(pair_->lock);
          sndbuf = static_cast<int>(pair_->side[1 - me_].limit.hold);
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
        Side& other = pair_->side[1 - me_];
        other.limit = Limit::skb(opts_.sndbuf.load(std::memory_order_relaxed));
        now_writable = pair_->writable(other);
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
      if (const Socket* peer = pair_->side[1 - me_].sock; peer != nullptr) {
        id = static_cast<const UnixStream*>(peer)->autobind_.load(std::memory_order_acquire);
      }
    }
    return put_address(id, addr, len);
  }

  Result<size_t> readable_bytes() noexcept override {
    SpinGuard guard(pair_->lock);
    return pair_->side[me_].rx.bytes();
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
    Socket* peer = nullptr;
    Chunk* purged;
    {
      SpinGuard guard(p.lock);
      Side& me = p.side[me_];
      Side& other = p.side[1 - me_];
      me.sock = nullptr;
      me.shut = kShutdownMask;
      const bool unread = !me.rx.empty();
      purged = me.rx.take_all();  // frees the peer's send charge
      if (other.sock != nullptr) {
        other.shut = kShutdownMask;  // so the stream layer's send stops at our shutdown
        if (unread) {
          other.err = ECONNRESET;
        }
        peer = grab(other.sock);
      }
    }
    Chunk::destroy_list(purged);
    wake_and_put(peer, 0);
    if (p.drop_ref()) {
      delete &p;
    }
  }

  Ref<File> connected_peer() noexcept override {
    UnixPair& p = *pair_;
    SpinGuard guard(p.lock);
    Socket* peer = grab(p.side[1 - me_].sock);
    return peer != nullptr ? Ref<File>::adopt(peer) : nullptr;
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
      unread = p.side[me_].rx.take_all();
      shut = p.side[me_].shut;
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

  UnixPair* const pair_;
  const int me_;
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
  Timeout timeout = socket_timeout(opts_.rcvtimeo.load(std::memory_order_relaxed));
  const bool dont_wait = flags.dont_wait() || timeout.is_zero();
  return recv_on(*pair_, me_, buf, len, flags.msg_flags, dont_wait, timeout);
}

Result<size_t> UnixStream::send(const void* buf, size_t len, IoFlags flags) noexcept {
  if ((flags.msg_flags & MSG_OOB) != 0) {
    return Error{EOPNOTSUPP};  // out-of-band data is not modelled (docs/deviations.md)
  }
  const bool nosignal = (flags.msg_flags & MSG_NOSIGNAL) != 0;
  bool shut;
  {
    SpinGuard guard(pair_->lock);
    shut = (pair_->side[me_].shut & kSendShutdown) != 0;
  }
  if (shut) {
    return broken_pipe(nosignal);  // checked before anything else, even for a zero-length write
  }
  if (len == 0) {
    return size_t{0};
  }
  Timeout timeout = socket_timeout(opts_.sndtimeo.load(std::memory_order_relaxed));
  const bool dont_wait = flags.dont_wait() || timeout.is_zero();
  return send_on(*pair_, me_, buf, len, nosignal, dont_wait, timeout);
}

}  // namespace

Result<FilePair> make_unix_stream_pair(int flags) noexcept {
  auto* pair = detail::try_new<UnixPair>(kUnixRules);
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
    for (Side& side : pair->side) {
      side.limit = Limit::skb(wmem_default());
    }
    pair->side[0].sock = a;
    pair->side[1].sock = b;
  }
  return FilePair{Ref<File>::adopt(a), Ref<File>::adopt(b)};
}

}  // namespace uepoll
