// In-process AF_INET / AF_INET6 stream sockets (src/objects/inet/*.cpp): TCP's socket-level
// behaviour over a private loopback address space (one per process, shared by every Process
// object).
//
// Address space. The local addresses are 127.0.0.0/8, ::1 and the wildcards; anything else is
// EADDRNOTAVAIL for bind and ENETUNREACH for connect. Ports live in a fixed table of 65536
// slots, each with its own lock and two lists: listening bindings and all other bindings (bound
// sockets, connect()'s automatic bindings, which share a port as long as their 4-tuples differ,
// and accepted sockets whose listener stopped: they hold its port as on Linux, on the
// listener's queue until then). bind() and listen() apply Linux's conflict rules (overlapping
// addresses conflict unless both sockets set SO_REUSEADDR and the existing one is not
// listening, or both set SO_REUSEPORT); port 0 picks an ephemeral port from
// net.ipv4.ip_local_port_range (odd ports first for bind, even first for connect, like Linux).
// There is no global lock: connect() finds the listener without a lock (ports.hpp) and locks
// only its own automatic port's slot.
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
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <climits>
#include <cstddef>
#include <cstdint>

#include "objects/inet/address.hpp"
#include "objects/inet/listener.hpp"
#include "objects/inet/ports.hpp"
#include "objects/socket_common.hpp"
#include "objects/stream.hpp"
#include "sync/sys.hpp"
#include "uepoll/blocking.hpp"
#include "uepoll/file.hpp"
#include "uepoll/objects.hpp"
#include "uepoll/sync.hpp"
#include "uepoll/wait_queue.hpp"

namespace uepoll::inet {

using namespace stream;  // the byte streams this family shares with AF_UNIX

constexpr std::size_t kStreamLimit = 3932160;    // unread bytes one direction may hold
constexpr std::size_t kWritableLimit = 2621440;  // EPOLLOUT while at most this many are unread
constexpr int kConnectedSndbuf = 3939840;        // SO_SNDBUF of a connected loopback socket
constexpr int kUnconnectedMss = 536;
constexpr int kLoopbackMss = 32768;       // TCP_MAXSEG of a loopback connection...
constexpr int kFirstLoopbackMss = 32741;  // ...as the connecting side reports it until it sends

// ---------------------------------------------------------------------------------------------
// Connections

/// Both directions of one connection (stream.hpp). Side 0 is the connecting socket, side 1 the
/// accepted one.
struct InetConn : stream::Conn {
  InetConn() noexcept : Conn(stream::kTcpRules) {}
  InetConn* retired_next = nullptr;  // the owning socket's list of replaced connections

  void put() noexcept {
    if (drop_ref()) {
      delete this;
    }
  }
};

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

// net.ipv4.tcp_wmem and tcp_rmem hold min, default and max: the default, read once.
inline int read_tcp_default(const char* path, int fallback) noexcept {
  long v[3] = {};
  return sys::read_numbers(path, v, 3) == 3 && v[1] > 0 && v[1] <= INT_MAX ? static_cast<int>(v[1])
                                                                           : fallback;
}
inline int tcp_sndbuf_default() noexcept {
  static const int v = read_tcp_default("/proc/sys/net/ipv4/tcp_wmem", 16384);
  return v;
}
inline int tcp_rcvbuf_default() noexcept {
  static const int v = read_tcp_default("/proc/sys/net/ipv4/tcp_rmem", 131072);
  return v;
}

class InetSocket final : public stream::Socket {
 public:
  InetSocket(int family, int flags) noexcept : Socket(flags), family_(family) {
    opts_.sndbuf.store(tcp_sndbuf_default(), std::memory_order_relaxed);
    opts_.rcvbuf.store(tcp_rcvbuf_default(), std::memory_order_relaxed);
    local_.addr = family == AF_INET ? mapped(0) : IpAddr{};
    bind_.owner = this;
  }

  int family() const noexcept { return family_; }

  PollMask poll(PollTable* table) noexcept override;
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
  // --- the handshake's side of a socket: only Listener calls these, under its lock
  // (listener.hpp, docs/locking.md §8) ---
  friend class Listener;

  /// A client offered to `l`: connected through `conn`, or parked on `l` when `conn` is null;
  /// kCancelled once the client left kSynSent.
  Handshake admit(Listener* l, InetConn* conn, const Endpoint& dst) noexcept;
  /// An accepted socket being queued: it inherits `listener`'s options (and the connection's
  /// limits follow them) and owns its end of `conn`; the queue then holds its port (as on
  /// Linux, for bind conflicts: Listener::hold_port).
  void accepted_from(const InetSocket& listener, InetConn* conn) noexcept;
  /// A connection was queued: one blocked accept() and the pollers wake.
  void wake_acceptors() noexcept;

  QueueLink queue_link_;  // guarded by the lock of the Listener the socket sits on

  enum class Ss { kUnconnected, kConnecting, kConnected, kDisconnecting };  // sock->state
  enum class Mode { kClosed, kListen, kSynSent, kConn };

  // --- helpers ---
  InetConn* conn(int* side) const noexcept {
    std::uintptr_t bits = conn_bits_.load(std::memory_order_acquire);
    *side = static_cast<int>(bits & 1);
    return reinterpret_cast<InetConn*>(bits & ~std::uintptr_t{1});
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
  Result<void> listen_on_bound_port(Listener* l) noexcept;

  static void tune(InetConn& c) noexcept UEPOLL_REQUIRES(c.lock);
  void retune() noexcept;
  void prepare_accepted(const Endpoint& local, const Endpoint& remote) noexcept;
  static Handshake establish(InetSocket* client, Listener* l, const Endpoint& dst) noexcept;
  void promote_pending(Listener* l) noexcept;
  void stop_listening(bool releasing) noexcept;
  void unbind_listener(bool releasing) noexcept;
  bool cancel_pending() noexcept;
  void refuse(Listener* l) noexcept;
  Result<void> disconnect() noexcept;
  Result<void> start_connect(const sockaddr* addr, socklen_t len, bool dont_wait) noexcept;
  bool disconnect_conn(bool abort) noexcept;
  bool shut_connection(InetConn* c, int s, unsigned mode) noexcept;
  Result<void> wait_connect(bool dont_wait, int already_error) noexcept;
  void forget_autobind() noexcept;
  Result<void> connect_error() noexcept;

  Result<size_t> send_unconnected(bool nosignal, bool dont_wait, Timeout& timeout) noexcept;
  Result<size_t> recv_unconnected(bool dont_wait, Timeout& timeout) noexcept;
  Result<void> get_socket_option(int name, void* val, socklen_t* len) noexcept;
  Result<void> get_tcp_option(int name, void* val, socklen_t* len) noexcept;
  Result<void> get_ip_option(int level, int name, void* val, socklen_t* len) noexcept;
  Result<void> set_tcp_option(int name, int v) noexcept;
  Result<void> set_ip_option(int level, int name, int v) noexcept;

  const int family_;
  WaitQueue accept_wait_;  // blocked accept() callers only (exclusive waiters)
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
  Listener* listener_ UEPOLL_GUARDED_BY(lock_) = nullptr;   // while listening
  Listener* parked_on_ UEPOLL_GUARDED_BY(lock_) = nullptr;  // while parked (holds a ref)
  InetConn* retired_ UEPOLL_GUARDED_BY(lock_) = nullptr;

  std::atomic<std::uintptr_t> conn_bits_{0};  // InetConn* | side; set under lock_
  std::atomic<bool> abort_on_release_{false};
  std::atomic<bool> sent_data_{false};  // for TCP_MAXSEG

  // --- op_mu_ ---
  Binding bind_;
  bool bound_explicitly_ = false;  // bind() (Linux's SOCK_BINDPORT_LOCK)
};

}  // namespace uepoll::inet
