// In-process AF_INET / AF_INET6 stream sockets: TCP's socket-level behaviour over a private
// loopback address space (one per process, shared by every Process object).
//
// Address space. The local addresses are 127.0.0.0/8, ::1 and the wildcards; anything else is
// EADDRNOTAVAIL for bind and ENETUNREACH for connect. Ports live in a fixed table of 65536
// slots, each with its own lock and two lists: listening bindings and all other bindings (bound
// sockets, accepted sockets, which hold their listener's port as on Linux, and connect()'s
// automatic bindings, which share a port as long as their 4-tuples differ). bind() and listen()
// apply Linux's conflict rules (overlapping addresses conflict unless both sockets set
// SO_REUSEADDR and the existing one is not listening, or both set SO_REUSEPORT); port 0 picks an
// ephemeral port from net.ipv4.ip_local_port_range (odd ports first for bind, even first for
// connect, like Linux). There is no global lock: connect() locks only the destination port's
// slot to find the listener, and its own automatic port's slot.
//
// Connections. connect() finds the best listener (an exact address beats a wildcard; AF_INET
// beats AF_INET6 for IPv4; a SO_REUSEPORT group is chosen from by a hash of the client's address
// and port), creates the server-side socket and queues it on the listener's accept queue, all
// inside the call: a blocking connect returns 0, a non-blocking one EINPROGRESS with the socket
// already writable (and an EPOLLOUT wake-up), like loopback TCP. No listener: ECONNREFUSED (a
// non-blocking connect reports it through SO_ERROR and EPOLLERR, as Linux does).
// Full backlog: the accept queue holds backlog+1 connections, as on Linux. Linux then drops the
// SYN and the client retries after 1 s, 3 s, ...; uepoll instead parks the connecting socket on
// the listener (SYN_SENT: poll mask 0, connect blocks or returns EINPROGRESS/EALREADY) and
// completes it as soon as accept() makes room, or refuses it when the listener closes
// (docs/deviations.md).
//
// Readiness (tcp_poll): a fresh socket is EPOLLOUT|EPOLLHUP; connected, EPOLLOUT while writable
// and EPOLLIN with data; the peer's FIN gives EPOLLIN|EPOLLRDHUP (no EPOLLHUP); EPOLLHUP once
// both directions are shut; a reset adds EPOLLERR (SO_ERROR ECONNRESET, or EPIPE in CLOSE_WAIT).
// A listener is EPOLLIN while its accept queue is not empty.
//
// Buffers. Each direction holds at most kStreamLimit unread bytes and is writable while it holds
// at most kWritableLimit. Measured on Linux 6.18 loopback with a reader that never reads: the
// send buffer autotunes to 3939840 bytes at once, EPOLLOUT drops after 2622000 bytes of
// 1000-byte writes (2/3 of the send buffer) and writes fail with EAGAIN after 3.91..4.0 MB
// depending on the write size. The limits below reproduce the drop point and approximate the
// EAGAIN point; EPOLLOUT comes back when the reader has brought the backlog under kWritableLimit
// again (Linux's point depends on its window updates: usually a few hundred KB earlier).
// A writer that found no room is woken with EPOLLOUT when space comes back (SOCK_NOSPACE).
// A program that sets SO_SNDBUF or SO_RCVBUF turns autotuning off, as on Linux: a direction
// then holds at most the writer's send buffer plus the reader's receive buffer (the values
// getsockopt reports), and is writable while at most two thirds of that are unread.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>

#include "objects/unix_inet_common.hpp"
#include "sync/fault_injection.hpp"
#include "sync/mix.hpp"
#include "sync/sys.hpp"
#include "uepoll/blocking.hpp"
#include "uepoll/objects.hpp"

namespace uepoll {
namespace {

using namespace sockcommon;

constexpr std::size_t kStreamLimit = 3932160;    // unread bytes one direction may hold
constexpr std::size_t kWritableLimit = 2621440;  // EPOLLOUT while at most this many are unread
constexpr std::size_t kMinChunk = 512 - sizeof(Chunk);  // small: malloc's per-thread cache
constexpr std::size_t kMaxChunk = 65536;
constexpr std::size_t kCoalesceMax = 1024;  // small writes copy into the last chunk's spare room
constexpr int kConnectedSndbuf = 3939840;   // SO_SNDBUF of a connected loopback socket
constexpr int kUnconnectedMss = 536;
constexpr int kLoopbackMss = 32768;       // TCP_MAXSEG of a loopback connection...
constexpr int kFirstLoopbackMss = 32741;  // ...as the connecting side reports it until it sends

// How much one direction of a connection may hold (Side::limit).
struct StreamLimit {
  std::size_t hold = kStreamLimit;        // unread bytes at most
  std::size_t writable = kWritableLimit;  // EPOLLOUT while at most this many are unread

  bool writable_with(std::size_t unread) const noexcept { return unread <= writable; }
};

// ---------------------------------------------------------------------------------------------
// Addresses: IPv4 is kept as an IPv4-mapped IPv6 address.

struct IpAddr {
  std::uint8_t b[16];
  bool operator==(const IpAddr& o) const noexcept { return std::memcmp(b, o.b, 16) == 0; }
};

IpAddr mapped(std::uint32_t v4_be) noexcept {
  IpAddr a{};
  a.b[10] = 0xff;
  a.b[11] = 0xff;
  std::memcpy(a.b + 12, &v4_be, 4);
  return a;
}
IpAddr from_in6(const in6_addr& a6) noexcept {
  IpAddr a;
  std::memcpy(a.b, &a6, 16);
  return a;
}
bool is_mapped(const IpAddr& a) noexcept {
  static const std::uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a.b, prefix, 12) == 0;
}
std::uint32_t v4_of(const IpAddr& a) noexcept {  // network order
  std::uint32_t v;
  std::memcpy(&v, a.b + 12, 4);
  return v;
}
bool is_any6(const IpAddr& a) noexcept {
  static const IpAddr zero{};
  return a == zero;
}
bool is_any4(const IpAddr& a) noexcept { return is_mapped(a) && v4_of(a) == 0; }
bool is_loopback4(std::uint32_t v4_be) noexcept { return (ntohl(v4_be) >> 24) == 127; }
bool is_loopback6(const IpAddr& a) noexcept {
  static const IpAddr one = [] {
    IpAddr x{};
    x.b[15] = 1;
    return x;
  }();
  return a == one;
}
const IpAddr kLoopback4 = mapped(htonl(INADDR_LOOPBACK));
const IpAddr kLoopback6 = [] {
  IpAddr x{};
  x.b[15] = 1;
  return x;
}();

struct Endpoint {
  IpAddr addr{};
  std::uint16_t port = 0;  // host order
};

/// The sockaddr a socket of `family` reports for `e` (AF_INET sockets hold mapped addresses).
socklen_t to_sockaddr(int family, const Endpoint& e, sockaddr_storage* out) noexcept {
  std::memset(out, 0, sizeof *out);
  if (family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(out);
    in->sin_family = AF_INET;
    in->sin_port = htons(e.port);
    in->sin_addr.s_addr = v4_of(e.addr);
    return sizeof(sockaddr_in);
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(out);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(e.port);
  std::memcpy(&in6->sin6_addr, e.addr.b, 16);
  return sizeof(sockaddr_in6);
}

std::uint32_t random32() noexcept {
  thread_local std::uint64_t state = [] {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    std::uint64_t seed = static_cast<std::uint64_t>(ts.tv_nsec) ^
                         (static_cast<std::uint64_t>(ts.tv_sec) << 32) ^
                         reinterpret_cast<std::uintptr_t>(&ts);
    return seed | 1;
  }();
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return static_cast<std::uint32_t>(state >> 16);
}

// ---------------------------------------------------------------------------------------------
// The port table

class InetSocket;
struct AcceptQueue;

struct Binding {
  // --- guarded by the slot's lock ---
  Binding* prev = nullptr;
  Binding* next = nullptr;
  IpAddr addr{};
  bool listening = false;
  bool reuseaddr = false;
  bool reuseport = false;
  AcceptQueue* aq = nullptr;  // while listening
  // --- fixed while in the table ---
  InetSocket* owner = nullptr;
  std::uint16_t port = 0;
  int family = AF_INET;
  bool v6only = false;
  bool autobound = false;  // connect()'s automatic binding: shares the port by 4-tuple
  IpAddr raddr{};          // for autobound: the remote end
  std::uint16_t rport = 0;
  // --- the owner's ---
  bool in_table = false;
};

struct PortSlot {
  SpinLock lock;
  Binding* listeners UEPOLL_GUARDED_BY(lock) = nullptr;
  Binding* bound UEPOLL_GUARDED_BY(lock) = nullptr;
};

PortSlot g_ports[65536];

void list_add(Binding*& head, Binding* b) noexcept {
  b->prev = nullptr;
  b->next = head;
  if (head != nullptr) {
    head->prev = b;
  }
  head = b;
}

void list_del(Binding*& head, Binding* b) noexcept {
  if (b->prev != nullptr) {
    b->prev->next = b->next;
  } else {
    head = b->next;
  }
  if (b->next != nullptr) {
    b->next->prev = b->prev;
  }
  b->prev = nullptr;
  b->next = nullptr;
}

// The IPv4 and IPv6 addresses a binding answers for.
struct Coverage {
  bool v4 = false;
  bool v4_any = false;
  bool v6 = false;
  bool v6_any = false;
};

Coverage coverage(const Binding& b) noexcept {
  Coverage c;
  if (b.family == AF_INET || is_mapped(b.addr)) {
    c.v4 = true;
    c.v4_any = is_any4(b.addr);
  } else if (is_any6(b.addr)) {
    c.v6 = true;
    c.v6_any = true;
    c.v4 = !b.v6only;
    c.v4_any = !b.v6only;
  } else {
    c.v6 = true;
  }
  return c;
}

bool addresses_overlap(const Binding& a, const Binding& b) noexcept {
  Coverage ca = coverage(a);
  Coverage cb = coverage(b);
  if (ca.v4 && cb.v4 && (ca.v4_any || cb.v4_any || a.addr == b.addr)) {
    return true;
  }
  return ca.v6 && cb.v6 && (ca.v6_any || cb.v6_any || a.addr == b.addr);
}

// Linux's bind conflict rule for a new binding `b` (listening or not) against an existing `e`.
bool conflicts(const Binding& b, const Binding& e) noexcept {
  if (&b == &e || !addresses_overlap(b, e)) {
    return false;
  }
  if (b.reuseaddr && e.reuseaddr && !e.listening) {
    return false;
  }
  return !(b.reuseport && e.reuseport);
}

bool conflicts_in_slot(const PortSlot& slot, const Binding& b) noexcept UEPOLL_REQUIRES(slot.lock) {
  for (const Binding* e = slot.listeners; e != nullptr; e = e->next) {
    if (conflicts(b, *e)) {
      return true;
    }
  }
  for (const Binding* e = slot.bound; e != nullptr; e = e->next) {
    if (conflicts(b, *e)) {
      return true;
    }
  }
  return false;
}

/// Scans the ephemeral range, `first_parity` ports first, until `try_port` accepts one; returns
/// it, or 0. Each thread starts at a random point and then goes on from its last pick, so that
/// its successive connections touch neighbouring (cached) slots of the port table.
template <class Try>
std::uint16_t scan_ephemeral(int first_parity, Try&& try_port) noexcept {
  thread_local std::uint32_t cursor = random32();
  int low;
  int high;
  local_port_range(&low, &high);
  const std::uint32_t n = static_cast<std::uint32_t>(high - low + 1);
  const std::uint32_t start = cursor;
  for (int pass = 0; pass < 2; ++pass) {
    const int parity = pass == 0 ? first_parity : 1 - first_parity;
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::uint32_t offset = (start + i) % n;
      const int port = low + static_cast<int>(offset);
      if ((port & 1) == parity && try_port(static_cast<std::uint16_t>(port))) {
        cursor = offset + 1;
        return static_cast<std::uint16_t>(port);
      }
    }
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Accept queues and connections

/// A listener's accept queue. Reference counted: the listener, each connect() in flight towards
/// it and each client parked on it hold one, so a client can always reach the queue's lock.
struct AcceptQueue {
  AcceptQueue(InetSocket* listener, int max_backlog) noexcept
      : owner(listener), backlog(max_backlog) {}

  SpinLock lock;
  bool listening UEPOLL_GUARDED_BY(lock) = true;
  InetSocket* owner UEPOLL_GUARDED_BY(lock) = nullptr;  // null once the listener stopped
  InetSocket* head UEPOLL_GUARDED_BY(lock) = nullptr;   // established, not yet accepted
  InetSocket* tail UEPOLL_GUARDED_BY(lock) = nullptr;
  int backlog UEPOLL_GUARDED_BY(lock) = 0;                  // Linux's sk_max_ack_backlog
  InetSocket* pend_head UEPOLL_GUARDED_BY(lock) = nullptr;  // clients waiting for room
  InetSocket* pend_tail UEPOLL_GUARDED_BY(lock) = nullptr;
  std::atomic<int> count{0};  // queued connections (written under lock, read by poll)
  std::atomic<int> refs{1};

  void get() noexcept { refs.fetch_add(1, std::memory_order_relaxed); }
  void put() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      delete this;
    }
  }
};

/// Both directions of one connection. Side 0 is the connecting socket, side 1 the accepted one.
struct InetConn {
  struct Side {
    InetSocket* sock = nullptr;  // null once that socket is released (an orphan)
    ByteQueue rx;                // bytes for this side to read
    unsigned shut = 0;           // sk_shutdown
    int err = 0;                 // sk_err
    bool done = false;           // the peer's FIN arrived (SOCK_DONE)
    bool closed = false;         // TCP_CLOSE: reset, or both FINs exchanged
    bool nospace = false;        // this side's writer found no room (SOCK_NOSPACE)
    StreamLimit limit;           // how much `rx` may hold
  };
  SpinLock lock;
  Side side[2] UEPOLL_GUARDED_BY(lock);
  std::atomic<int> refs{2};
  InetConn* retired_next = nullptr;  // the owning socket's list of replaced connections

  void put() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      delete this;
    }
  }
};

// Linux's tcp_reset() as seen by `s`: the error depends on the state.
void reset_side(InetConn::Side& s) noexcept {
  if (s.closed) {
    return;
  }
  s.err = (s.done && (s.shut & kSendShutdown) == 0) ? EPIPE : ECONNRESET;
  s.closed = true;
  s.shut = kShutdownMask;
}

struct TcpOptions {
  std::atomic<int> nodelay{0};
  std::atomic<int> cork{0};
  std::atomic<int> keepidle{7200};
  std::atomic<int> keepintvl{75};
  std::atomic<int> keepcnt{9};
  std::atomic<int> syncnt{6};
  std::atomic<int> defer_accept{0};
  std::atomic<int> quickack{1};
  std::atomic<int> user_timeout{0};
  std::atomic<int> notsent_lowat{0};
  std::atomic<int> fastopen{0};
  std::atomic<int> maxseg{0};
  std::atomic<int> linger2{60};
  std::atomic<int> window_clamp{0};
  std::atomic<int> tos{0};
  std::atomic<int> ttl{-1};
  std::atomic<int> v6only{0};
  std::atomic<int> unicast_hops{-1};
  std::atomic<int> tclass{0};

  void copy_from(const TcpOptions& o) noexcept {
    std::atomic<int> TcpOptions::*const fields[] = {
        &TcpOptions::nodelay,       &TcpOptions::cork,         &TcpOptions::keepidle,
        &TcpOptions::keepintvl,     &TcpOptions::keepcnt,      &TcpOptions::syncnt,
        &TcpOptions::defer_accept,  &TcpOptions::quickack,     &TcpOptions::user_timeout,
        &TcpOptions::notsent_lowat, &TcpOptions::fastopen,     &TcpOptions::maxseg,
        &TcpOptions::linger2,       &TcpOptions::window_clamp, &TcpOptions::tos,
        &TcpOptions::ttl,           &TcpOptions::v6only,       &TcpOptions::unicast_hops,
        &TcpOptions::tclass};
    for (auto field : fields) {
      (this->*field).store((o.*field).load(std::memory_order_relaxed), std::memory_order_relaxed);
    }
  }
};

// net.ipv4.tcp_wmem / tcp_rmem defaults (the middle value), read once.
// tcp_wmem and tcp_rmem hold min, default and max: the default.
int read_tcp_default(const char* path, int fallback) noexcept {
  long v[3] = {};
  return sys::read_numbers(path, v, 3) == 3 && v[1] > 0 && v[1] <= INT_MAX ? static_cast<int>(v[1])
                                                                           : fallback;
}
int tcp_sndbuf_default() noexcept {
  static const int v = read_tcp_default("/proc/sys/net/ipv4/tcp_wmem", 16384);
  return v;
}
int tcp_rcvbuf_default() noexcept {
  static const int v = read_tcp_default("/proc/sys/net/ipv4/tcp_rmem", 131072);
  return v;
}

// ---------------------------------------------------------------------------------------------
// The socket

class InetSocket final : public File {
 public:
  InetSocket(int family, int flags) noexcept : File(O_RDWR, flags), family_(family) {
    opts_.sndbuf.store(tcp_sndbuf_default(), std::memory_order_relaxed);
    opts_.rcvbuf.store(tcp_rcvbuf_default(), std::memory_order_relaxed);
    local_.addr = family == AF_INET ? mapped(0) : IpAddr{};
    bind_.owner = this;
  }

  PollMask poll(PollTable* table) noexcept override;
  Result<size_t> read(void* buf, size_t count, IoFlags flags) noexcept override {
    if (count == 0) {
      return size_t{0};  // the socket layer answers a zero-length read() itself
    }
    return recv(buf, count, flags);
  }
  Result<size_t> write(const void* buf, size_t count, IoFlags flags) noexcept override {
    return send(buf, count, flags);
  }
  Result<void> bind(const sockaddr* addr, socklen_t len) noexcept override;
  Result<void> listen(int backlog) noexcept override;
  Result<Ref<File>> accept(sockaddr* addr, socklen_t* len, int new_status_flags,
                           IoFlags flags) noexcept override;
  Result<void> connect(const sockaddr* addr, socklen_t len, IoFlags flags) noexcept override;
  Result<void> getsockopt(int level, int name, void* val, socklen_t* len) noexcept override;
  Result<void> setsockopt(int level, int name, const void* val, socklen_t len) noexcept override;
  Result<void> getsockname(sockaddr* addr, socklen_t* len) noexcept override;
  Result<void> getpeername(sockaddr* addr, socklen_t* len) noexcept override;
  Result<size_t> readable_bytes() noexcept override;
  Result<void> shutdown(int how) noexcept override;
  Result<size_t> recv(void* buf, size_t len, IoFlags flags) noexcept override;
  Result<size_t> send(const void* buf, size_t len, IoFlags flags) noexcept override;

 protected:
  void release() noexcept override;

 private:
  enum class Ss { kUnconnected, kConnecting, kConnected, kDisconnecting };  // sock->state
  enum class Mode { kClosed, kListen, kSynSent, kConn };
  enum class Outcome { kEstablished, kPending, kRefused, kCancelled, kNoMemory };

  // --- helpers ---
  InetConn* conn(int* side) const noexcept {
    std::uintptr_t bits = conn_bits_.load(std::memory_order_acquire);
    *side = static_cast<int>(bits & 1);
    return reinterpret_cast<InetConn*>(bits & ~std::uintptr_t{1});
  }
  static void wake_and_put(InetSocket* s, PollMask key) noexcept {
    if (s != nullptr) {
      if (key == 0) {
        s->queue_.wake_all(0);  // a state change: every waiter must see it
      } else {
        s->queue_.wake(key);
      }
      s->put();
    }
  }
  static InetSocket* grab(InetSocket* s) noexcept {
    return s != nullptr && s->try_get() ? s : nullptr;
  }
  TimeoutUs rcvtimeo() const noexcept { return opts_.rcvtimeo.load(std::memory_order_relaxed); }
  TimeoutUs sndtimeo() const noexcept { return opts_.sndtimeo.load(std::memory_order_relaxed); }
  bool abortive_close() const noexcept {
    return opts_.linger_onoff.load(std::memory_order_relaxed) != 0 &&
           opts_.linger_secs.load(std::memory_order_relaxed) == 0;
  }

  Result<Endpoint> parse_bind_address(const sockaddr* addr, socklen_t len) const noexcept;
  Result<Endpoint> parse_connect_address(const sockaddr* addr, socklen_t len) const noexcept;

  // Port table operations (op_mu_ held).
  void fill_binding(const IpAddr& addr) noexcept;
  Result<void> insert_binding(std::uint16_t port, bool listening) noexcept;
  void remove_binding() noexcept;
  Result<void> autobind_for_connect(const Endpoint& dst, Endpoint* local) noexcept;

  static AcceptQueue* lookup_listener(const Endpoint& dst, const Endpoint& src) noexcept;
  static void tune(InetConn& c) noexcept UEPOLL_REQUIRES(c.lock);
  void retune() noexcept;
  friend bool uepoll::inet_listener_at(const sockaddr* addr, socklen_t len) noexcept;
  static Outcome establish(InetSocket* client, AcceptQueue* aq, const Endpoint& dst) noexcept;
  void promote_pending(AcceptQueue* aq) noexcept;
  void stop_listening(bool releasing) noexcept;
  bool cancel_pending() noexcept;
  void refuse(AcceptQueue* aq) noexcept;
  bool disconnect_conn(bool abort) noexcept;
  Result<void> wait_connect(bool dont_wait, int already_error) noexcept;
  void forget_autobind() noexcept;
  Result<void> connect_error() noexcept;

  Result<size_t> send_unconnected(bool nosignal, bool dont_wait, Timeout& timeout) noexcept;
  Result<size_t> recv_unconnected(bool dont_wait, Timeout& timeout) noexcept;
  Result<void> get_socket_option(int name, void* val, socklen_t* len) noexcept;

  const int family_;
  WaitQueue queue_;        // what poll() hooks: every state change and data wake-up
  WaitQueue accept_wait_;  // blocked accept() callers only (exclusive waiters)
  SockOptions opts_;
  TcpOptions tcp_;
  Mutex op_mu_{
      LockLevel::kOperation};  // serialises bind/listen/connect/shutdown/close on this socket

  SpinLock lock_;
  Ss ss_ UEPOLL_GUARDED_BY(lock_) = Ss::kUnconnected;
  Mode mode_ UEPOLL_GUARDED_BY(lock_) = Mode::kClosed;
  unsigned shut_ UEPOLL_GUARDED_BY(lock_) = 0;  // sk_shutdown while not connected
  int err_ UEPOLL_GUARDED_BY(lock_) = 0;        // sk_err while not connected
  Endpoint local_ UEPOLL_GUARDED_BY(lock_);
  Endpoint remote_ UEPOLL_GUARDED_BY(lock_);
  AcceptQueue* aq_ UEPOLL_GUARDED_BY(lock_) = nullptr;          // while listening
  AcceptQueue* pending_aq_ UEPOLL_GUARDED_BY(lock_) = nullptr;  // while parked (holds a ref)
  InetConn* retired_ UEPOLL_GUARDED_BY(lock_) = nullptr;

  std::atomic<std::uintptr_t> conn_bits_{0};  // InetConn* | side; set under lock_
  std::atomic<bool> abort_on_release_{false};
  std::atomic<bool> sent_data_{false};  // for TCP_MAXSEG

  // --- guarded by the lock of the accept queue the socket sits on ---
  InetSocket* aq_next_ = nullptr;  // accepted-queue link (server side) or pending link (client)
  bool on_pending_ = false;

  // --- op_mu_ ---
  Binding bind_;
  bool bound_explicitly_ = false;  // bind() (Linux's SOCK_BINDPORT_LOCK)
};

// ---------------------------------------------------------------------------------------------
// poll

PollMask InetSocket::poll(PollTable* table) noexcept {
  poll_wait(table, queue_);
  int s;
  if (InetConn* c = conn(&s); c != nullptr) {
    const int lowat = std::max(opts_.rcvlowat.load(std::memory_order_relaxed), 1);
    SpinGuard guard(c->lock);
    InetConn::Side& me = c->side[s];
    const InetConn::Side& other = c->side[1 - s];
    PollMask mask = 0;
    if (me.shut == kShutdownMask || me.closed) {
      mask |= EPOLLHUP;
    }
    if ((me.shut & kRcvShutdown) != 0) {
      mask |= EPOLLIN | EPOLLRDNORM | EPOLLRDHUP;
    }
    if (me.rx.bytes() >= static_cast<std::size_t>(lowat)) {
      mask |= EPOLLIN | EPOLLRDNORM;
    }
    if ((me.shut & kSendShutdown) != 0 || other.limit.writable_with(other.rx.bytes())) {
      mask |= EPOLLOUT | EPOLLWRNORM;
    } else {
      me.nospace = true;
    }
    if (me.err != 0) {
      mask |= EPOLLERR;
    }
    return mask;
  }
  SpinGuard guard(lock_);
  switch (mode_) {
    case Mode::kListen:
      return aq_ != nullptr && aq_->count.load(std::memory_order_acquire) > 0
                 ? PollMask{EPOLLIN | EPOLLRDNORM}
                 : PollMask{0};
    case Mode::kSynSent: return err_ != 0 ? PollMask{EPOLLERR} : PollMask{0};
    case Mode::kClosed:
    case Mode::kConn: {  // kConn without a connection: being set up or torn down
      PollMask mask = EPOLLHUP | EPOLLOUT | EPOLLWRNORM;
      if ((shut_ & kRcvShutdown) != 0) {
        mask |= EPOLLIN | EPOLLRDNORM | EPOLLRDHUP;
      }
      if (err_ != 0) {
        mask |= EPOLLERR;
      }
      return mask;
    }
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Addresses and binding

Result<Endpoint> InetSocket::parse_bind_address(const sockaddr* addr,
                                                socklen_t len) const noexcept {
  Endpoint e;
  if (family_ == AF_INET) {
    if (len < sizeof(sockaddr_in)) {
      return Error{EINVAL};
    }
    sockaddr_in in;
    std::memcpy(&in, addr, sizeof in);
    if (in.sin_family != AF_INET &&
        !(in.sin_family == AF_UNSPEC && in.sin_addr.s_addr == htonl(INADDR_ANY))) {
      return Error{EAFNOSUPPORT};
    }
    if (in.sin_addr.s_addr != htonl(INADDR_ANY) && !is_loopback4(in.sin_addr.s_addr)) {
      return Error{EADDRNOTAVAIL};
    }
    e.addr = mapped(in.sin_addr.s_addr);
    e.port = ntohs(in.sin_port);
    return e;
  }
  if (len < 24) {  // SIN6_LEN_RFC2133: a sockaddr_in6 without sin6_scope_id
    return Error{EINVAL};
  }
  sockaddr_in6 in6{};
  std::memcpy(&in6, addr, std::min<std::size_t>(len, sizeof in6));
  if (in6.sin6_family != AF_INET6) {
    return Error{EAFNOSUPPORT};
  }
  e.addr = from_in6(in6.sin6_addr);
  e.port = ntohs(in6.sin6_port);
  if (is_mapped(e.addr)) {
    if (tcp_.v6only.load(std::memory_order_relaxed) != 0) {
      return Error{EINVAL};
    }
    if (!is_any4(e.addr) && !is_loopback4(v4_of(e.addr))) {
      return Error{EADDRNOTAVAIL};
    }
    return e;
  }
  if (e.addr.b[0] == 0xff) {
    return Error{EINVAL};  // multicast
  }
  if (!is_any6(e.addr) && !is_loopback6(e.addr)) {
    return Error{EADDRNOTAVAIL};
  }
  return e;
}

void InetSocket::fill_binding(const IpAddr& addr) noexcept {
  bind_.addr = addr;
  bind_.family = family_;
  bind_.v6only = family_ == AF_INET6 && tcp_.v6only.load(std::memory_order_relaxed) != 0;
  bind_.reuseaddr = opts_.reuseaddr.load(std::memory_order_relaxed) != 0;
  bind_.reuseport = opts_.reuseport.load(std::memory_order_relaxed) != 0;
  bind_.listening = false;
  bind_.autobound = false;
  bind_.aq = nullptr;
}

// Puts bind_ (filled) in `port`'s slot unless it conflicts; port 0 scans the ephemeral range.
Result<void> InetSocket::insert_binding(std::uint16_t port, bool listening) noexcept {
  auto try_port = [&](std::uint16_t p) noexcept {
    PortSlot& slot = g_ports[p];
    SpinGuard guard(slot.lock);
    bind_.listening = listening;
    if (conflicts_in_slot(slot, bind_)) {
      bind_.listening = false;
      return false;
    }
    bind_.port = p;
    list_add(listening ? slot.listeners : slot.bound, &bind_);
    return true;
  };
  if (port != 0) {
    if (!try_port(port)) {
      return Error{EADDRINUSE};
    }
  } else if (scan_ephemeral(1, try_port) == 0) {
    return Error{EADDRINUSE};
  }
  bind_.in_table = true;
  return {};
}

void InetSocket::remove_binding() noexcept {
  if (!bind_.in_table) {
    return;
  }
  PortSlot& slot = g_ports[bind_.port];
  {
    SpinGuard guard(slot.lock);
    list_del(bind_.listening ? slot.listeners : slot.bound, &bind_);
    bind_.listening = false;
    bind_.aq = nullptr;
  }
  bind_.in_table = false;
}

Result<void> InetSocket::bind(const sockaddr* addr, socklen_t len) noexcept {
  if (Result<void> r = check_sockaddr_in(addr, len); !r) {
    return r;
  }
  Result<Endpoint> e = parse_bind_address(addr, len);
  if (!e) {
    return Error{e.error()};
  }
  if (e->port != 0 && e->port < 1024 && geteuid() != 0) {
    return Error{EACCES};
  }
  MutexLock op(op_mu_);
  {
    SpinGuard guard(lock_);
    if (mode_ != Mode::kClosed || conn_bits_.load(std::memory_order_relaxed) != 0 ||
        bind_.in_table) {
      return Error{EINVAL};
    }
  }
  fill_binding(e->addr);
  if (Result<void> r = insert_binding(e->port, false); !r) {
    return r;
  }
  bound_explicitly_ = true;
  SpinGuard guard(lock_);
  local_.addr = e->addr;
  local_.port = bind_.port;
  return {};
}

Result<void> InetSocket::getsockname(sockaddr* addr, socklen_t* len) noexcept {
  Endpoint e;
  {
    SpinGuard guard(lock_);
    e = local_;
  }
  sockaddr_storage ss;
  socklen_t size = to_sockaddr(family_, e, &ss);
  return put_sockaddr(addr, len, &ss, size);
}

// Linux answers ENOTCONN unless a connection exists and has not reached TCP_CLOSE.
Result<void> InetSocket::getpeername(sockaddr* addr, socklen_t* len) noexcept {
  Endpoint e;
  {
    SpinGuard guard(lock_);
    int s;
    InetConn* c = conn(&s);
    if (c == nullptr) {
      return Error{ENOTCONN};
    }
    SpinGuard conn_guard(c->lock);
    if (c->side[s].closed) {
      return Error{ENOTCONN};
    }
    e = remote_;
  }
  sockaddr_storage ss;
  socklen_t size = to_sockaddr(family_, e, &ss);
  return put_sockaddr(addr, len, &ss, size);
}

// SIOCINQ: EINVAL on a listener, else the unread bytes (none before a connection exists).
Result<size_t> InetSocket::readable_bytes() noexcept {
  int s;
  if (InetConn* c = conn(&s); c != nullptr) {
    SpinGuard guard(c->lock);
    return c->side[s].rx.bytes();
  }
  SpinGuard guard(lock_);
  return mode_ == Mode::kListen ? Result<size_t>(Error{EINVAL}) : Result<size_t>(size_t{0});
}

// ---------------------------------------------------------------------------------------------
// listen / accept

Result<void> InetSocket::listen(int backlog) noexcept {
  // Linux clamps to somaxconn, comparing as unsigned (a negative backlog means somaxconn).
  const int max_backlog =
      static_cast<unsigned>(backlog) > static_cast<unsigned>(somaxconn()) ? somaxconn() : backlog;
  MutexLock op(op_mu_);
  AcceptQueue* existing;
  {
    SpinGuard guard(lock_);
    if (ss_ != Ss::kUnconnected || (mode_ != Mode::kClosed && mode_ != Mode::kListen) ||
        conn_bits_.load(std::memory_order_relaxed) != 0) {
      return Error{EINVAL};
    }
    existing = mode_ == Mode::kListen ? aq_ : nullptr;
  }
  if (existing != nullptr) {
    {
      SpinGuard guard(existing->lock);
      existing->backlog = max_backlog;
    }
    promote_pending(existing);
    return {};
  }
  auto* aq = detail::try_new<AcceptQueue>(this, max_backlog);
  if (aq == nullptr) {
    return Error{ENOMEM};
  }
  if (!bind_.in_table) {
    fill_binding(family_ == AF_INET ? mapped(0) : IpAddr{});
    bind_.aq = aq;
    if (Result<void> r = insert_binding(0, true); !r) {
      delete aq;
      return r;
    }
  } else {
    // Linux re-checks the port now that the socket listens: two SO_REUSEADDR sockets may share
    // a port while neither listens, not once one does.
    PortSlot& slot = g_ports[bind_.port];
    SpinGuard guard(slot.lock);
    bind_.reuseaddr = opts_.reuseaddr.load(std::memory_order_relaxed) != 0;
    bind_.reuseport = opts_.reuseport.load(std::memory_order_relaxed) != 0;
    bind_.listening = true;
    if (conflicts_in_slot(slot, bind_)) {
      bind_.listening = false;
      delete aq;
      return Error{EADDRINUSE};
    }
    list_del(slot.bound, &bind_);
    bind_.aq = aq;
    list_add(slot.listeners, &bind_);
  }
  SpinGuard guard(lock_);
  local_.addr = bind_.addr;
  local_.port = bind_.port;
  aq_ = aq;
  mode_ = Mode::kListen;
  return {};
}

Result<Ref<File>> InetSocket::accept(sockaddr* addr, socklen_t* len, int new_status_flags,
                                     IoFlags flags) noexcept {
  Timeout timeout = socket_timeout(rcvtimeo());
  const bool dont_wait = flags.dont_wait() || timeout.is_zero();
  // Returns the next connection, EINVAL when not listening, EAGAIN when the queue is empty.
  auto try_accept = [&](AcceptQueue** aq_out) noexcept -> Result<InetSocket*> {
    AcceptQueue* aq;
    {
      SpinGuard guard(lock_);
      if (mode_ != Mode::kListen || aq_ == nullptr) {
        return Error{EINVAL};
      }
      aq = aq_;
      aq->get();
    }
    InetSocket* child = nullptr;
    bool stopped;
    {
      SpinGuard guard(aq->lock);
      stopped = !aq->listening;
      if (!stopped && aq->head != nullptr) {
        child = aq->head;
        aq->head = child->aq_next_;
        if (aq->head == nullptr) {
          aq->tail = nullptr;
        }
        child->aq_next_ = nullptr;
        aq->count.fetch_sub(1, std::memory_order_release);
      }
    }
    if (stopped) {
      aq->put();
      return Error{EINVAL};
    }
    if (child == nullptr) {
      aq->put();
      return Error{EAGAIN};
    }
    *aq_out = aq;
    return child;
  };

  for (Waiter waiter(true);;) {
    AcceptQueue* aq = nullptr;
    Result<InetSocket*> r = try_accept(&aq);
    if (!r && r.error() == EAGAIN && !dont_wait) {
      waiter.arm(accept_wait_);
      r = try_accept(&aq);
      if (!r && r.error() == EAGAIN) {
        if (Result<void> slept = waiter.sleep(timeout.deadline()); !slept) {
          // A wake-up meant for us must not be lost with the interrupted call.
          bool queued;
          {
            SpinGuard guard(lock_);
            queued = aq_ != nullptr && aq_->count.load(std::memory_order_acquire) > 0;
          }
          if (queued) {
            accept_wait_.wake(EPOLLIN);
          }
          return Error{slept.error() == ETIMEDOUT ? EAGAIN : slept.error()};
        }
        continue;
      }
    }
    if (!r) {
      return Error{r.error()};
    }
    InetSocket* child = r.value();
    promote_pending(aq);  // a slot was freed: a parked client may now complete
    aq->put();
    Ref<File> result = Ref<File>::adopt(child);
    child->set_status_flags(new_status_flags);
    if (addr != nullptr) {
      Endpoint peer;
      {
        SpinGuard guard(child->lock_);
        peer = child->remote_;
      }
      sockaddr_storage ss;
      socklen_t size = to_sockaddr(child->family_, peer, &ss);
      if (Result<void> put = put_sockaddr(addr, len, &ss, size); !put) {
        return Error{put.error()};  // as on Linux, the connection is lost with the error
      }
    }
    return result;
  }
}

// Completes parked clients while the accept queue has room.
void InetSocket::promote_pending(AcceptQueue* aq) noexcept {
  for (;;) {
    InetSocket* client = nullptr;
    Endpoint dst;
    {
      SpinGuard guard(aq->lock);
      if (!aq->listening || aq->count.load(std::memory_order_relaxed) > aq->backlog) {
        return;
      }
      while (aq->pend_head != nullptr && client == nullptr) {
        InetSocket* c = aq->pend_head;
        aq->pend_head = c->aq_next_;
        if (aq->pend_head == nullptr) {
          aq->pend_tail = nullptr;
        }
        c->aq_next_ = nullptr;
        c->on_pending_ = false;
        client = grab(c);  // a client being released cancels itself
      }
    }
    if (client == nullptr) {
      return;
    }
    {
      SpinGuard guard(client->lock_);
      dst = client->remote_;
    }
    Outcome o = establish(client, aq, dst);
    if (o == Outcome::kRefused || o == Outcome::kNoMemory) {
      client->refuse(aq);
    }
    client->put();
    if (o == Outcome::kPending) {
      return;
    }
  }
}

// Stops listening: the port stops accepting, queued connections are reset, parked clients
// refused.
void InetSocket::stop_listening(bool releasing) noexcept {
  AcceptQueue* aq;
  {
    SpinGuard guard(lock_);
    aq = std::exchange(aq_, nullptr);
    if (mode_ == Mode::kListen) {
      mode_ = Mode::kClosed;
    }
  }
  if (aq == nullptr) {
    return;
  }
  if (releasing || !bound_explicitly_) {
    remove_binding();  // Linux gives back a port that listen() picked when listening stops
    if (!releasing) {
      SpinGuard guard(lock_);
      local_.port = 0;
      local_.addr = family_ == AF_INET ? mapped(0) : IpAddr{};
    }
  } else {
    PortSlot& slot = g_ports[bind_.port];
    SpinGuard guard(slot.lock);
    list_del(slot.listeners, &bind_);
    bind_.listening = false;
    bind_.aq = nullptr;
    list_add(slot.bound, &bind_);
  }
  InetSocket* children;
  InetSocket* parked;
  {
    SpinGuard guard(aq->lock);
    aq->listening = false;
    aq->owner = nullptr;
    children = std::exchange(aq->head, nullptr);
    aq->tail = nullptr;
    aq->count.store(0, std::memory_order_release);
    parked = nullptr;
    InetSocket* c = std::exchange(aq->pend_head, nullptr);
    aq->pend_tail = nullptr;
    while (c != nullptr) {
      InetSocket* next = c->aq_next_;
      c->on_pending_ = false;
      c->aq_next_ = nullptr;
      if (grab(c) != nullptr) {
        c->aq_next_ = parked;
        parked = c;
      }
      c = next;
    }
  }
  while (children != nullptr) {
    InetSocket* next = std::exchange(children->aq_next_, nullptr);
    children->abort_on_release_.store(true, std::memory_order_relaxed);
    children->put();
    children = next;
  }
  while (parked != nullptr) {
    InetSocket* next = std::exchange(parked->aq_next_, nullptr);
    parked->refuse(aq);
    parked->put();
    parked = next;
  }
  aq->put();
  // Blocked accept() callers must all see EINVAL: wake the exclusive waiters one by one.
  while (accept_wait_.has_entries()) {
    accept_wait_.wake_all(0);
  }
  queue_.wake_all(0);
}

// ---------------------------------------------------------------------------------------------
// connect

Result<Endpoint> InetSocket::parse_connect_address(const sockaddr* addr,
                                                   socklen_t len) const noexcept {
  Endpoint e;
  if (family_ == AF_INET) {
    if (len < sizeof(sockaddr_in)) {
      return Error{EINVAL};
    }
    sockaddr_in in;
    std::memcpy(&in, addr, sizeof in);
    if (in.sin_family != AF_INET) {
      return Error{EAFNOSUPPORT};
    }
    std::uint32_t v4 = in.sin_addr.s_addr;
    if (v4 == htonl(INADDR_ANY)) {
      v4 = htonl(INADDR_LOOPBACK);  // Linux sends a connect to 0.0.0.0 to the local host
    }
    if (!is_loopback4(v4)) {
      return Error{ENETUNREACH};  // only the loopback network exists here
    }
    e.addr = mapped(v4);
    e.port = ntohs(in.sin_port);
    return e;
  }
  if (len < 24) {
    return Error{EINVAL};
  }
  sockaddr_in6 in6{};
  std::memcpy(&in6, addr, std::min<std::size_t>(len, sizeof in6));
  if (in6.sin6_family != AF_INET6) {
    return Error{EAFNOSUPPORT};
  }
  e.addr = from_in6(in6.sin6_addr);
  e.port = ntohs(in6.sin6_port);
  if (is_any6(e.addr)) {
    e.addr = is_mapped(bind_.addr) && bind_.in_table ? kLoopback4 : kLoopback6;
  }
  if (is_mapped(e.addr)) {
    if (tcp_.v6only.load(std::memory_order_relaxed) != 0) {
      return Error{ENETUNREACH};
    }
    std::uint32_t v4 = v4_of(e.addr);
    if (v4 == htonl(INADDR_ANY)) {
      e.addr = kLoopback4;
    } else if (!is_loopback4(v4)) {
      return Error{ENETUNREACH};
    }
    return e;
  }
  if (!is_loopback6(e.addr)) {
    return Error{ENETUNREACH};
  }
  return e;
}

Result<void> InetSocket::autobind_for_connect(const Endpoint& dst, Endpoint* local) noexcept {
  const IpAddr src = is_mapped(dst.addr) ? kLoopback4 : kLoopback6;
  if (bind_.in_table) {
    // Bound by bind(): a wildcard address becomes the source address.
    if (is_any4(bind_.addr) || is_any6(bind_.addr)) {
      PortSlot& slot = g_ports[bind_.port];
      SpinGuard guard(slot.lock);
      bind_.addr = src;
    }
    local->addr = bind_.addr;
    local->port = bind_.port;
    return {};
  }
  fill_binding(src);
  bind_.autobound = true;
  bind_.raddr = dst.addr;
  bind_.rport = dst.port;
  std::uint16_t port = scan_ephemeral(0, [&](std::uint16_t p) noexcept {
    PortSlot& slot = g_ports[p];
    SpinGuard guard(slot.lock);
    if (slot.listeners != nullptr) {
      return false;
    }
    for (const Binding* e = slot.bound; e != nullptr; e = e->next) {
      if (!e->autobound || (e->addr == src && e->raddr == dst.addr && e->rport == dst.port)) {
        return false;
      }
    }
    bind_.port = p;
    list_add(slot.bound, &bind_);
    return true;
  });
  if (port == 0) {
    return Error{EADDRNOTAVAIL};
  }
  bind_.in_table = true;
  local->addr = src;
  local->port = port;
  return {};
}

// Finds the listener for `dst` (Linux's two-stage lookup: exact address, then wildcard; a
// SO_REUSEPORT group spreads by a hash of the client's end). Returns its queue with a reference.
AcceptQueue* InetSocket::lookup_listener(const Endpoint& dst, const Endpoint& src) noexcept {
  PortSlot& slot = g_ports[dst.port];
  const bool v4 = is_mapped(dst.addr);
  SpinGuard guard(slot.lock);
  const Binding* best = nullptr;
  int best_score = 0;
  for (const Binding* b = slot.listeners; b != nullptr; b = b->next) {
    int score = 0;
    if (v4) {
      if (b->addr == dst.addr) {
        score = 10;
      } else if (is_any4(b->addr) || (b->family == AF_INET6 && is_any6(b->addr) && !b->v6only)) {
        score = 1;
      } else {
        continue;
      }
      score += b->family == AF_INET ? 2 : 1;
    } else {
      if (b->family != AF_INET6) {
        continue;
      }
      if (b->addr == dst.addr) {
        score = 10;
      } else if (is_any6(b->addr)) {
        score = 1;
      } else {
        continue;
      }
    }
    if (score > best_score) {
      best = b;
      best_score = score;
    }
  }
  if (best == nullptr) {
    return nullptr;
  }
  if (best->reuseport) {
    auto same_group = [best](const Binding* b) {
      return b->reuseport && b->family == best->family && b->v6only == best->v6only &&
             b->addr == best->addr;
    };
    std::uint32_t members = 0;
    for (const Binding* b = slot.listeners; b != nullptr; b = b->next) {
      members += same_group(b) ? 1 : 0;
    }
    const std::uint64_t h = mix_bits(src.port * 0x9e3779b9U ^ v4_of(src.addr) ^ dst.port);
    std::uint64_t pick = h % members;
    for (const Binding* b = slot.listeners; b != nullptr; b = b->next) {
      if (same_group(b) && pick-- == 0) {
        best = b;
        break;
      }
    }
  }
  AcceptQueue* aq = best->aq;
  aq->get();
  return aq;
}

// Each direction's limit (see "Buffers" at the top): autotuned unless the writer's send buffer
// or the reader's receive buffer was set; then the two buffers, the other one at its default.
void InetSocket::tune(InetConn& c) noexcept {
  for (int k = 0; k < 2; ++k) {
    const InetSocket* reader = c.side[k].sock;
    const InetSocket* writer = c.side[1 - k].sock;
    const int snd = writer != nullptr ? writer->opts_.sndbuf.load(std::memory_order_relaxed)
                                      : tcp_sndbuf_default();
    const int rcv = reader != nullptr ? reader->opts_.rcvbuf.load(std::memory_order_relaxed)
                                      : tcp_rcvbuf_default();
    StreamLimit limit;
    if (snd != tcp_sndbuf_default() || rcv != tcp_rcvbuf_default()) {
      limit.hold = std::min(kStreamLimit, static_cast<std::size_t>(snd) + rcv);
      limit.writable = limit.hold * 2 / 3;
    }
    c.side[k].limit = limit;
  }
}

void InetSocket::retune() noexcept {
  int s;
  if (InetConn* c = conn(&s); c != nullptr) {
    SpinGuard guard(c->lock);
    tune(*c);
  }
}

// Creates the server side of a connection from `client` and queues it on `aq`, or parks the
// client when the queue is full. The caller holds references on the client and on `aq`.
InetSocket::Outcome InetSocket::establish(InetSocket* client, AcceptQueue* aq,
                                          const Endpoint& dst) noexcept {
  int family;
  {
    SpinGuard guard(aq->lock);
    if (!aq->listening || aq->owner == nullptr) {
      return Outcome::kRefused;
    }
    family = aq->owner->family_;
  }
  auto* conn = detail::try_new<InetConn>();
  InetSocket* child = conn != nullptr ? detail::try_new<InetSocket>(family, 0) : nullptr;
  if (child == nullptr) {
    delete conn;
    return Outcome::kNoMemory;
  }
  Endpoint client_end;
  {
    SpinGuard guard(client->lock_);
    client_end = client->local_;
  }
  // The accepted socket: its local end is the address the client reached (an AF_INET6 listener
  // sees IPv4 peers as mapped addresses, which is how both are stored already).
  {
    SpinGuard guard(child->lock_);
    child->local_ = dst;
    child->remote_ = client_end;
    child->ss_ = Ss::kConnected;
    child->mode_ = Mode::kConn;
  }
  {
    SpinGuard guard(conn->lock);
    conn->side[0].sock = client;
    conn->side[1].sock = child;
    tune(*conn);
  }
  Binding& cb = child->bind_;
  cb.addr = dst.addr;
  cb.family = family;
  cb.port = dst.port;
  child->bound_explicitly_ = true;

  Outcome outcome;
  InetSocket* listener = nullptr;
  {
    SpinGuard guard(aq->lock);
    InetSocket* owner = aq->owner;
    SpinGuard client_guard(client->lock_);
    if (!aq->listening || owner == nullptr) {
      outcome = Outcome::kRefused;
    } else if (client->mode_ != Mode::kSynSent) {
      outcome = Outcome::kCancelled;  // the client gave up while it was parked
    } else if (aq->count.load(std::memory_order_relaxed) > aq->backlog) {
      outcome = Outcome::kPending;
      if (!client->on_pending_) {
        client->on_pending_ = true;
        client->aq_next_ = nullptr;
        if (aq->pend_tail == nullptr) {
          aq->pend_head = client;
        } else {
          aq->pend_tail->aq_next_ = client;
        }
        aq->pend_tail = client;
      }
      if (client->pending_aq_ != aq) {
        aq->get();
        client->pending_aq_ = aq;
      }
    } else {
      outcome = Outcome::kEstablished;
      // Options are inherited from the listener (Linux clones the listening socket).
      child->opts_.copy_from(owner->opts_);
      child->tcp_.copy_from(owner->tcp_);
      cb.v6only = family == AF_INET6 && child->tcp_.v6only.load(std::memory_order_relaxed) != 0;
      cb.reuseaddr = child->opts_.reuseaddr.load(std::memory_order_relaxed) != 0;
      cb.reuseport = child->opts_.reuseport.load(std::memory_order_relaxed) != 0;
      {
        // The accepted socket holds the listener's port, as on Linux (bind conflicts). It is in
        // the table before anyone can reach (and close) it.
        PortSlot& slot = g_ports[dst.port];
        SpinGuard slot_guard(slot.lock);
        list_add(slot.bound, &cb);
        cb.in_table = true;
      }
      child->conn_bits_.store(reinterpret_cast<std::uintptr_t>(conn) | 1,
                              std::memory_order_release);
      if (aq->tail == nullptr) {
        aq->head = child;
      } else {
        aq->tail->aq_next_ = child;
      }
      aq->tail = child;
      aq->count.fetch_add(1, std::memory_order_release);
      client->mode_ = Mode::kConn;
      client->remote_ = dst;
      client->conn_bits_.store(reinterpret_cast<std::uintptr_t>(conn), std::memory_order_release);
      if (client->pending_aq_ == aq) {
        client->pending_aq_ = nullptr;
        aq->refs.fetch_sub(1, std::memory_order_relaxed);  // the caller still holds one
      }
      listener = grab(owner);
    }
  }
  if (outcome != Outcome::kEstablished) {
    // Nothing was published: the child and the connection go away quietly.
    {
      SpinGuard guard(child->lock_);
      child->mode_ = Mode::kClosed;
    }
    delete conn;
    child->put();
    return outcome;
  }
  if (listener != nullptr) {
    listener->accept_wait_.wake(EPOLLIN);
    wake_and_put(listener, kDataReadyKey);
  }
  client->queue_.wake_all(0);
  return outcome;
}

// A parked or connecting client whose listener went away: ECONNREFUSED, as Linux's RST gives.
void InetSocket::refuse(AcceptQueue* aq) noexcept {
  bool drop_ref = false;
  {
    SpinGuard guard(lock_);
    if (pending_aq_ == aq) {
      pending_aq_ = nullptr;
      drop_ref = true;
    }
    if (mode_ == Mode::kSynSent) {
      mode_ = Mode::kClosed;
      err_ = ECONNREFUSED;
      shut_ = kShutdownMask;
    }
  }
  if (drop_ref) {
    aq->put();
  }
  queue_.wake_all(0);
}

// Gives up a parked connect (close, shutdown, AF_UNSPEC). Returns whether a connect was in
// progress (it may have completed just before: then the socket is connected).
bool InetSocket::cancel_pending() noexcept {
  AcceptQueue* aq;
  bool cancelled = false;
  {
    SpinGuard guard(lock_);
    aq = std::exchange(pending_aq_, nullptr);
    if (mode_ == Mode::kSynSent) {
      mode_ = Mode::kClosed;
      cancelled = true;
    }
  }
  if (aq == nullptr) {
    return cancelled;
  }
  {
    SpinGuard guard(aq->lock);
    if (on_pending_) {
      InetSocket* prev = nullptr;
      for (InetSocket* c = aq->pend_head; c != nullptr; prev = c, c = c->aq_next_) {
        if (c == this) {
          (prev == nullptr ? aq->pend_head : prev->aq_next_) = aq_next_;
          if (aq->pend_tail == this) {
            aq->pend_tail = prev;
          }
          break;
        }
      }
      on_pending_ = false;
      aq_next_ = nullptr;
    }
  }
  aq->put();
  return cancelled;
}

// Detaches the socket from its connection (connect(AF_UNSPEC), or a failed connect being
// cleaned up): `abort` resets the peer. The connection object is kept until release() because
// lock-free readers may still hold it. Returns whether the connection was still open.
bool InetSocket::disconnect_conn(bool abort) noexcept {
  InetConn* c;
  int s;
  {
    SpinGuard guard(lock_);
    std::uintptr_t bits = conn_bits_.exchange(0, std::memory_order_acq_rel);
    c = reinterpret_cast<InetConn*>(bits & ~std::uintptr_t{1});
    s = static_cast<int>(bits & 1);
    if (c != nullptr) {
      c->retired_next = retired_;
      retired_ = c;
    }
    mode_ = Mode::kClosed;
    shut_ = 0;
    err_ = 0;
  }
  if (c == nullptr) {
    return false;
  }
  InetSocket* peer = nullptr;
  Chunk* purged;
  bool was_open;
  {
    SpinGuard guard(c->lock);
    InetConn::Side& me = c->side[s];
    InetConn::Side& other = c->side[1 - s];
    me.sock = nullptr;
    purged = me.rx.take_all();
    was_open = !me.closed;
    if (abort && !me.closed && other.sock != nullptr) {
      reset_side(other);
      peer = grab(other.sock);
    }
    me.closed = true;
  }
  Chunk::destroy_list(purged);
  wake_and_put(peer, 0);
  return was_open;
}

// Drops connect()'s automatic binding (op_mu_ held): the socket is unbound again.
void InetSocket::forget_autobind() noexcept {
  if (bound_explicitly_ || !bind_.in_table) {
    return;
  }
  remove_binding();
  SpinGuard guard(lock_);
  local_ = Endpoint{};
  local_.addr = family_ == AF_INET ? mapped(0) : IpAddr{};
}

// The sock_error path of Linux's connect: report the error (or ECONNABORTED) and go back to a
// fresh unconnected socket.
Result<void> InetSocket::connect_error() noexcept {
  int err = 0;
  int s;
  if (InetConn* c = conn(&s); c != nullptr) {
    SpinGuard guard(c->lock);
    err = std::exchange(c->side[s].err, 0);
  }
  {
    SpinGuard guard(lock_);
    if (err == 0) {
      err = std::exchange(err_, 0);
    }
    ss_ = Ss::kUnconnected;
  }
  disconnect_conn(false);
  forget_autobind();
  return Error{err != 0 ? err : ECONNABORTED};
}

// Waits for a connect in progress (Linux's inet_wait_for_connect and what follows it).
// `already_error` is what a non-blocking call returns while the handshake is still going.
Result<void> InetSocket::wait_connect(bool dont_wait, int already_error) noexcept {
  Timeout timeout = socket_timeout(sndtimeo());
  dont_wait = dont_wait || timeout.is_zero();
  enum class State { kWaiting, kDone, kFailed };
  auto state = [&]() noexcept {
    SpinGuard guard(lock_);
    if (mode_ == Mode::kSynSent) {
      return State::kWaiting;
    }
    int s;
    InetConn* c = conn(&s);
    if (c == nullptr) {
      return State::kFailed;  // refused
    }
    SpinGuard conn_guard(c->lock);
    if (c->side[s].closed) {
      return State::kFailed;  // reset before the caller saw the connection
    }
    ss_ = Ss::kConnected;
    return State::kDone;
  };
  for (Waiter waiter;;) {
    State st = state();
    if (st == State::kWaiting) {
      if (dont_wait) {
        return Error{already_error};
      }
      waiter.arm(queue_);
      st = state();
      if (st == State::kWaiting) {
        if (Result<void> slept = waiter.sleep(timeout.deadline()); !slept) {
          return Error{slept.error() == ETIMEDOUT ? EINPROGRESS : slept.error()};
        }
        continue;
      }
    }
    if (st == State::kDone) {
      return {};
    }
    MutexLock op(op_mu_);
    return connect_error();
  }
}

Result<void> InetSocket::connect(const sockaddr* addr, socklen_t len, IoFlags flags) noexcept {
  if (Result<void> r = check_sockaddr_in(addr, len); !r) {
    return r;
  }
  if (len < sizeof(sa_family_t)) {
    return Error{EINVAL};
  }
  const bool dont_wait = flags.dont_wait();
  Endpoint dst;
  Endpoint src;
  AcceptQueue* aq = nullptr;
  bool first = false;
  {
    MutexLock op(op_mu_);
    if (addr->sa_family == AF_UNSPEC) {
      // Linux's disconnect: a listener stops, a pending connect is dropped, a connection is
      // reset; the socket can then connect again.
      // Aborting a connection or a handshake leaves ECONNRESET in SO_ERROR, as on Linux.
      stop_listening(false);
      const bool was_connecting = cancel_pending();
      const bool was_open = disconnect_conn(true);
      forget_autobind();
      {
        SpinGuard guard(lock_);
        ss_ = Ss::kUnconnected;
        mode_ = Mode::kClosed;
        shut_ = 0;
        err_ = was_connecting || was_open ? ECONNRESET : 0;
      }
      queue_.wake_all(0);
      return {};
    }
    Ss ss;
    {
      SpinGuard guard(lock_);
      ss = ss_;
      if (ss == Ss::kUnconnected && (mode_ != Mode::kClosed || conn_bits_.load() != 0)) {
        return Error{EISCONN};  // a listener
      }
    }
    switch (ss) {
      case Ss::kConnected: return Error{EISCONN};
      case Ss::kDisconnecting: return Error{EINVAL};
      case Ss::kConnecting: break;
      case Ss::kUnconnected: {
        Result<Endpoint> d = parse_connect_address(addr, len);
        if (!d) {
          return Error{d.error()};
        }
        dst = d.value();
        first = true;
        if (Result<void> r = autobind_for_connect(dst, &src); !r) {
          return r;
        }
        {
          SpinGuard guard(lock_);
          local_ = src;
          remote_ = dst;
          ss_ = Ss::kConnecting;
          mode_ = Mode::kSynSent;
          shut_ = 0;
          err_ = 0;
        }
        aq = lookup_listener(dst, src);
        Outcome o = aq != nullptr ? establish(this, aq, dst) : Outcome::kRefused;
        if (aq != nullptr) {
          aq->put();
        }
        if (o == Outcome::kNoMemory || o == Outcome::kRefused) {
          // Linux gives back the automatic port when a connect fails.
          forget_autobind();
          SpinGuard guard(lock_);
          mode_ = Mode::kClosed;
          if (o == Outcome::kNoMemory || !dont_wait) {
            // A blocking connect reports the refusal and leaves a fresh socket.
            ss_ = Ss::kUnconnected;
            return Error{o == Outcome::kNoMemory ? ENOBUFS : ECONNREFUSED};
          }
          err_ = ECONNREFUSED;  // a non-blocking one reports it through SO_ERROR / EPOLLERR
          shut_ = kShutdownMask;
        }
        if (o == Outcome::kRefused) {
          queue_.wake_all(0);
        }
        if (dont_wait) {
          return Error{EINPROGRESS};
        }
        break;
      }
    }
  }
  // A connect in progress (a blocking first call, or a second connect() on one).
  return wait_connect(dont_wait, first ? EINPROGRESS : EALREADY);
}

// ---------------------------------------------------------------------------------------------
// shutdown and close

Result<void> InetSocket::shutdown(int how) noexcept {
  if (how < SHUT_RD || how > SHUT_RDWR) {
    return Error{EINVAL};
  }
  const unsigned mode = static_cast<unsigned>(how) + 1;
  MutexLock op(op_mu_);
  Mode m;
  {
    SpinGuard guard(lock_);
    m = mode_;
  }
  Result<void> result;
  if (m == Mode::kListen) {
    if ((mode & kRcvShutdown) != 0) {
      stop_listening(false);
    }
    queue_.wake_all(0);
    return result;
  }
  if (m == Mode::kSynSent && cancel_pending()) {
    // Linux disconnects a handshake in progress, leaving ECONNRESET behind.
    forget_autobind();
    {
      SpinGuard guard(lock_);
      mode_ = Mode::kClosed;
      ss_ = Ss::kUnconnected;
      shut_ = 0;
      err_ = ECONNRESET;
    }
    queue_.wake_all(0);
    return result;
  }
  int s;
  InetConn* c = conn(&s);
  bool closed = true;
  InetSocket* peer = nullptr;
  if (c != nullptr) {
    SpinGuard guard(c->lock);
    InetConn::Side& me = c->side[s];
    InetConn::Side& other = c->side[1 - s];
    closed = me.closed;
    const bool fin = !me.closed && (mode & kSendShutdown) != 0 && (me.shut & kSendShutdown) == 0;
    me.shut |= mode;
    if (fin) {
      if (other.sock != nullptr && !other.closed) {
        other.shut |= kRcvShutdown;
        other.done = true;
        if ((other.shut & kSendShutdown) != 0) {
          // Both FINs exchanged: each side ends in TCP_CLOSE.
          other.closed = true;
          other.shut = kShutdownMask;
          me.closed = true;
          me.shut = kShutdownMask;
        }
        peer = grab(other.sock);
      } else if (other.sock == nullptr && me.done) {
        me.closed = true;  // the peer is gone and had sent its FIN: nothing left to wait for
        me.shut = kShutdownMask;
      }
    }
  }
  {
    SpinGuard guard(lock_);
    if (ss_ == Ss::kConnecting) {
      ss_ = closed ? Ss::kDisconnecting : Ss::kConnected;
    }
    if (c == nullptr) {
      shut_ |= mode;
    }
  }
  if (closed) {
    result = Error{ENOTCONN};  // Linux sets the bits anyway
  }
  queue_.wake_all(0);
  wake_and_put(peer, 0);
  return result;
}

void InetSocket::release() noexcept {
  MutexLock op(op_mu_);
  stop_listening(true);
  cancel_pending();
  int s;
  InetConn* c = conn(&s);
  if (c != nullptr) {
    const bool abort = abortive_close() || abort_on_release_.load(std::memory_order_relaxed);
    InetSocket* peer = nullptr;
    Chunk* purged;
    {
      SpinGuard guard(c->lock);
      InetConn::Side& me = c->side[s];
      InetConn::Side& other = c->side[1 - s];
      me.sock = nullptr;
      const bool unread = !me.rx.empty();
      purged = me.rx.take_all();
      if (!me.closed && other.sock != nullptr) {
        if (unread || abort) {
          reset_side(other);  // Linux sends a RST when unread data is discarded
        } else if ((me.shut & kSendShutdown) == 0) {
          other.shut |= kRcvShutdown;  // FIN
          other.done = true;
          if ((other.shut & kSendShutdown) != 0) {
            other.closed = true;
            other.shut = kShutdownMask;
          }
        }
        peer = grab(other.sock);
      }
      me.closed = true;
    }
    Chunk::destroy_list(purged);
    wake_and_put(peer, 0);
    c->put();
  }
  InetConn* retired;
  {
    SpinGuard guard(lock_);
    retired = std::exchange(retired_, nullptr);
  }
  while (retired != nullptr) {
    InetConn* next = retired->retired_next;
    retired->put();
    retired = next;
  }
  remove_binding();
}

// ---------------------------------------------------------------------------------------------
// Data

Result<size_t> InetSocket::send_unconnected(bool nosignal, bool dont_wait,
                                            Timeout& timeout) noexcept {
  for (Waiter waiter;;) {
    int err = 0;
    bool connecting;
    {
      SpinGuard guard(lock_);
      if (conn_bits_.load(std::memory_order_acquire) != 0) {
        return Error{EAGAIN};  // connected meanwhile: the caller retries on the connection
      }
      connecting = mode_ == Mode::kSynSent;
      if (err_ != 0) {
        err = std::exchange(err_, 0);
        connecting = false;
      }
    }
    if (!connecting) {
      if (err == 0 || err == EPIPE) {
        if (!nosignal) {
          raise_sigpipe();
        }
        return Error{EPIPE};
      }
      return Error{err};
    }
    if (dont_wait) {
      return Error{EWOULDBLOCK};
    }
    waiter.arm(queue_);
    {
      SpinGuard guard(lock_);
      if (mode_ != Mode::kSynSent) {
        continue;
      }
    }
    if (Result<void> slept = waiter.sleep(timeout.deadline()); !slept) {
      return Error{slept.error() == ETIMEDOUT ? EAGAIN : slept.error()};
    }
  }
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
  for (Waiter waiter; sent < len;) {
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
    if (st == Step::kFailed) {
      if (sent > 0) {
        return sent;
      }
      if (err == EPIPE && !nosignal) {
        raise_sigpipe();
      }
      return Error{err};
    }
    // Full.
    if (dont_wait) {
      return sent > 0 ? Result<size_t>(sent) : Result<size_t>(Error{EAGAIN});
    }
    waiter.arm(queue_);
    bool still_full;
    {
      SpinGuard guard(c->lock);
      const InetConn::Side& me = c->side[s];
      const InetConn::Side& other = c->side[1 - s];
      still_full = !me.closed && (me.shut & kSendShutdown) == 0 && me.err == 0 &&
                   other.sock != nullptr && other.rx.bytes() >= other.limit.hold;
    }
    if (still_full) {
      if (Result<void> slept = waiter.sleep(timeout.deadline()); !slept) {
        if (sent > 0) {
          return sent;
        }
        return Error{slept.error() == ETIMEDOUT ? EAGAIN : slept.error()};
      }
    }
  }
  return sent;
}

Result<size_t> InetSocket::recv_unconnected(bool dont_wait, Timeout& timeout) noexcept {
  for (Waiter waiter;;) {
    {
      SpinGuard guard(lock_);
      if (conn_bits_.load(std::memory_order_acquire) != 0) {
        return Error{EAGAIN};  // connected meanwhile: the caller retries on the connection
      }
      switch (mode_) {
        case Mode::kListen: return Error{ENOTCONN};
        case Mode::kSynSent: break;
        case Mode::kClosed:
        case Mode::kConn:
          if (err_ != 0) {
            return Error{std::exchange(err_, 0)};
          }
          if ((shut_ & kRcvShutdown) != 0) {
            return size_t{0};
          }
          return Error{ENOTCONN};
      }
    }
    if (dont_wait) {
      return Error{EAGAIN};
    }
    waiter.arm(queue_);
    {
      SpinGuard guard(lock_);
      if (mode_ != Mode::kSynSent) {
        continue;
      }
    }
    if (Result<void> slept = waiter.sleep(timeout.deadline()); !slept) {
      return Error{slept.error() == ETIMEDOUT ? EAGAIN : slept.error()};
    }
  }
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
  return block_on<size_t>(queue_, dont_wait, timeout.deadline(), step, [&](int error) noexcept {
    return copied > 0 ? Result<size_t>(copied)
                      : Result<size_t>(Error{error == ETIMEDOUT ? EAGAIN : error});
  });
}

// ---------------------------------------------------------------------------------------------
// Options

Result<void> InetSocket::get_socket_option(int name, void* val, socklen_t* len) noexcept {
  switch (name) {
    case SO_ERROR: {
      int err;
      int s;
      if (InetConn* c = conn(&s); c != nullptr) {
        SpinGuard guard(c->lock);
        err = std::exchange(c->side[s].err, 0);
      } else {
        SpinGuard guard(lock_);
        err = std::exchange(err_, 0);
      }
      return put_int_option(val, len, err);
    }
    case SO_SNDBUF: {
      int s;
      const bool user_set = opts_.sndbuf.load(std::memory_order_relaxed) != tcp_sndbuf_default();
      if (conn(&s) != nullptr && !user_set) {
        return put_int_option(val, len, kConnectedSndbuf);  // loopback autotuning
      }
      return put_int_option(val, len, opts_.sndbuf.load(std::memory_order_relaxed));
    }
    default: {
      bool listening;
      {
        SpinGuard guard(lock_);
        listening = mode_ == Mode::kListen;
      }
      return get_common_option(opts_, SockIdentity{family_, IPPROTO_TCP, listening}, name, val,
                               len);
    }
  }
}

Result<void> InetSocket::getsockopt(int level, int name, void* val, socklen_t* len) noexcept {
  if (level == SOL_SOCKET) {
    return get_socket_option(name, val, len);
  }
  auto load = [](const std::atomic<int>& a) { return a.load(std::memory_order_relaxed); };
  if (level == IPPROTO_TCP) {
    if (len == nullptr) {
      return Error{EFAULT};
    }
    if (static_cast<int>(*len) < 0) {
      return Error{EINVAL};
    }
    int v;
    switch (name) {
      case TCP_NODELAY: v = load(tcp_.nodelay); break;
      case TCP_CORK: v = load(tcp_.cork); break;
      case TCP_KEEPIDLE: v = load(tcp_.keepidle); break;
      case TCP_KEEPINTVL: v = load(tcp_.keepintvl); break;
      case TCP_KEEPCNT: v = load(tcp_.keepcnt); break;
      case TCP_SYNCNT: v = load(tcp_.syncnt); break;
      case TCP_DEFER_ACCEPT: v = load(tcp_.defer_accept); break;
      case TCP_QUICKACK: v = load(tcp_.quickack); break;
      case TCP_USER_TIMEOUT: v = load(tcp_.user_timeout); break;
      case TCP_NOTSENT_LOWAT: v = load(tcp_.notsent_lowat); break;
      case TCP_FASTOPEN: v = load(tcp_.fastopen); break;
      case TCP_LINGER2: v = load(tcp_.linger2); break;
      case TCP_WINDOW_CLAMP: v = load(tcp_.window_clamp); break;
      case TCP_MAXSEG: {
        int s;
        v = load(tcp_.maxseg);
        if (v == 0) {
          if (conn(&s) == nullptr) {
            v = kUnconnectedMss;
          } else {
            v = s == 0 && !sent_data_.load(std::memory_order_relaxed) ? kFirstLoopbackMss
                                                                      : kLoopbackMss;
          }
        }
        break;
      }
      default: return Error{ENOPROTOOPT};
    }
    return put_int_option(val, len, v);
  }
  if (level == IPPROTO_IP) {
    switch (name) {
      case IP_TOS: return put_int_option(val, len, load(tcp_.tos));
      case IP_TTL: {
        int ttl = load(tcp_.ttl);
        return put_int_option(val, len, ttl < 0 ? 64 : ttl);
      }
      default: return Error{ENOPROTOOPT};
    }
  }
  if (family_ == AF_INET6) {
    if (level != IPPROTO_IPV6) {
      return Error{ENOPROTOOPT};
    }
    switch (name) {
      case IPV6_V6ONLY: return put_int_option(val, len, load(tcp_.v6only));
      case IPV6_UNICAST_HOPS: {
        int hops = load(tcp_.unicast_hops);
        return put_int_option(val, len, hops < 0 ? 64 : hops);
      }
      case IPV6_TCLASS: return put_int_option(val, len, load(tcp_.tclass));
      default: return Error{ENOPROTOOPT};
    }
  }
  return Error{EOPNOTSUPP};
}

Result<void> InetSocket::setsockopt(int level, int name, const void* val, socklen_t len) noexcept {
  if (level == SOL_SOCKET) {
    Result<void> r = set_common_option(opts_, name, val, len);
    if (r && (name == SO_SNDBUF || name == SO_RCVBUF || name == SO_SNDBUFFORCE ||
              name == SO_RCVBUFFORCE)) {
      retune();
    }
    return r;
  }
  if (level != IPPROTO_TCP && level != IPPROTO_IP &&
      !(level == IPPROTO_IPV6 && family_ == AF_INET6)) {
    return Error{ENOPROTOOPT};
  }
  Result<int> iv = get_int_option(val, len);
  if (!iv) {
    return Error{iv.error()};
  }
  const int v = iv.value();
  auto store = [](std::atomic<int>& a, int x) -> Result<void> {
    a.store(x, std::memory_order_relaxed);
    return {};
  };
  if (level == IPPROTO_TCP) {
    switch (name) {
      case TCP_NODELAY: return store(tcp_.nodelay, v != 0);
      case TCP_CORK: return store(tcp_.cork, v != 0);
      case TCP_QUICKACK: return store(tcp_.quickack, v != 0);
      case TCP_KEEPIDLE:
      case TCP_KEEPINTVL:
        if (v < 1 || v > 32767) {
          return Error{EINVAL};
        }
        return store(name == TCP_KEEPIDLE ? tcp_.keepidle : tcp_.keepintvl, v);
      case TCP_KEEPCNT:
      case TCP_SYNCNT:
        if (v < 1 || v > 127) {
          return Error{EINVAL};
        }
        return store(name == TCP_KEEPCNT ? tcp_.keepcnt : tcp_.syncnt, v);
      case TCP_DEFER_ACCEPT: return store(tcp_.defer_accept, std::max(v, 0));
      case TCP_USER_TIMEOUT:
        if (v < 0) {
          return Error{EINVAL};
        }
        return store(tcp_.user_timeout, v);
      case TCP_NOTSENT_LOWAT: return store(tcp_.notsent_lowat, v);
      case TCP_FASTOPEN:
        if (v < 0) {
          return Error{EINVAL};
        }
        return store(tcp_.fastopen, v);
      case TCP_LINGER2: return store(tcp_.linger2, v);
      case TCP_WINDOW_CLAMP: return store(tcp_.window_clamp, std::max(v, 0));
      case TCP_MAXSEG:
        if (v != 0 && (v < 88 || v > 32767)) {
          return Error{EINVAL};
        }
        return store(tcp_.maxseg, v);
      default: return Error{ENOPROTOOPT};
    }
  }
  if (level == IPPROTO_IP) {
    switch (name) {
      case IP_TOS: return store(tcp_.tos, v & 0xff);
      case IP_TTL:
        if (v != -1 && (v < 1 || v > 255)) {
          return Error{EINVAL};
        }
        return store(tcp_.ttl, v);
      default: return Error{ENOPROTOOPT};
    }
  }
  switch (name) {
    case IPV6_V6ONLY: {
      MutexLock op(op_mu_);
      if (bind_.in_table) {
        return Error{EINVAL};
      }
      return store(tcp_.v6only, v != 0);
    }
    case IPV6_UNICAST_HOPS:
      if (v < -1 || v > 255) {
        return Error{EINVAL};
      }
      return store(tcp_.unicast_hops, v);
    case IPV6_TCLASS:
      if (v < -1 || v > 255) {
        return Error{EINVAL};
      }
      return store(tcp_.tclass, v < 0 ? 0 : v);
    default: return Error{ENOPROTOOPT};
  }
}

}  // namespace

bool inet_listener_at(const sockaddr* addr, socklen_t len) noexcept {
  if (addr == nullptr || len < sizeof(sa_family_t)) {
    return false;
  }
  Endpoint dst;
  sa_family_t family;
  std::memcpy(&family, addr, sizeof family);
  if (family == AF_INET && len >= sizeof(sockaddr_in)) {
    sockaddr_in in;
    std::memcpy(&in, addr, sizeof in);
    dst.addr = mapped(in.sin_addr.s_addr == htonl(INADDR_ANY) ? htonl(INADDR_LOOPBACK)
                                                              : in.sin_addr.s_addr);
    dst.port = ntohs(in.sin_port);
  } else if (family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    sockaddr_in6 in6;
    std::memcpy(&in6, addr, sizeof in6);
    dst.addr = is_any6(from_in6(in6.sin6_addr)) ? kLoopback6 : from_in6(in6.sin6_addr);
    dst.port = ntohs(in6.sin6_port);
  } else {
    return false;
  }
  const bool loopback =
      is_mapped(dst.addr) ? is_loopback4(v4_of(dst.addr)) : dst.addr == kLoopback6;
  if (!loopback) {
    return false;
  }
  AcceptQueue* aq = InetSocket::lookup_listener(dst, Endpoint{});
  if (aq == nullptr) {
    return false;
  }
  aq->put();
  return true;
}

Result<Ref<File>> make_inet_stream_socket(int domain, int flags) noexcept {
  if (domain != AF_INET && domain != AF_INET6) {
    return Error{EAFNOSUPPORT};
  }
  Ref<File> f = make_ref<InetSocket>(domain, flags);
  if (!f) {
    return Error{ENOMEM};
  }
  return f;
}

}  // namespace uepoll
