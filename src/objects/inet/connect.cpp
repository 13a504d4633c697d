// Connecting: the address, the automatic binding, finding the listener, the handshake
// (establish), waiting for it, and undoing a connection.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "objects/inet/socket.hpp"
#include "sync/fault_injection.hpp"
#include "sync/mix.hpp"

namespace uepoll::inet {

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
  Result<Endpoint> in6 = read_sockaddr_in6(addr, len);
  if (!in6) {
    return in6;
  }
  e = *in6;
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

// Each direction's limit (see "Buffers" at the top): autotuned unless the writer's send buffer
// or the reader's receive buffer was set; then the two buffers, the other one at its default.
void InetSocket::tune(InetConn& c) noexcept {
  for (int k = 0; k < 2; ++k) {
    const Socket* reader = c.side[k].sock;
    const Socket* writer = c.side[1 - k].sock;
    const int snd = writer != nullptr ? writer->options().sndbuf.load(std::memory_order_relaxed)
                                      : tcp_sndbuf_default();
    const int rcv = reader != nullptr ? reader->options().rcvbuf.load(std::memory_order_relaxed)
                                      : tcp_rcvbuf_default();
    Limit limit{kStreamLimit, kWritableLimit};
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

// The accepted socket before it is offered: its local end is the address the client reached
// (an AF_INET6 listener sees IPv4 peers as mapped addresses, which is how both are stored
// already). Unpublished, so no lock is contended; op_mu_ is not needed.
void InetSocket::prepare_accepted(const Endpoint& local, const Endpoint& remote) noexcept {
  {
    SpinGuard guard(lock_);
    local_ = local;
    remote_ = remote;
    ss_ = Ss::kConnected;
    mode_ = Mode::kConn;
  }
  bind_.addr = local.addr;
  bind_.family = family_;
  bind_.port = local.port;
  bound_explicitly_ = true;
}

void InetSocket::accepted_from(const InetSocket& listener, InetConn* conn) noexcept {
  // Options are inherited from the listener (Linux clones the listening socket).
  opts_.copy_from(listener.opts_);
  tcp_.copy_from(listener.tcp_);
  bind_.v6only = family_ == AF_INET6 && tcp_.v6only.load(std::memory_order_relaxed) != 0;
  bind_.reuseaddr = opts_.reuseaddr.load(std::memory_order_relaxed) != 0;
  bind_.reuseport = opts_.reuseport.load(std::memory_order_relaxed) != 0;
  {
    SpinGuard guard(conn->lock);
    tune(*conn);  // with the inherited buffer sizes
  }
  conn_bits_.store(reinterpret_cast<std::uintptr_t>(conn) | 1, std::memory_order_release);
}

Handshake InetSocket::admit(Listener* l, InetConn* conn, const Endpoint& dst) noexcept {
  SpinGuard guard(lock_);
  if (mode_ != Mode::kSynSent) {
    return Handshake::kCancelled;  // the client gave up while it was parked
  }
  if (conn == nullptr) {
    if (parked_on_ != l) {
      l->get();
      parked_on_ = l;
    }
    return Handshake::kPending;
  }
  mode_ = Mode::kConn;
  remote_ = dst;
  conn_bits_.store(reinterpret_cast<std::uintptr_t>(conn), std::memory_order_release);
  if (parked_on_ == l) {
    parked_on_ = nullptr;
    l->put();  // never the last: the caller of offer holds one
  }
  return Handshake::kEstablished;
}

// Creates the server side of a connection from `client` and offers it to `l`. The caller holds
// references on the client and on `l`.
Handshake InetSocket::establish(InetSocket* client, Listener* l, const Endpoint& dst) noexcept {
  if (l->stopped()) {
    return Handshake::kRefused;
  }
  const int family = l->family();
  auto* conn = detail::try_new<InetConn>();
  InetSocket* child = conn != nullptr ? detail::try_new<InetSocket>(family, 0) : nullptr;
  if (child == nullptr) {
    delete conn;
    return Handshake::kNoMemory;
  }
  Endpoint client_end;
  {
    SpinGuard guard(client->lock_);
    client_end = client->local_;
  }
  child->prepare_accepted(dst, client_end);
  {
    SpinGuard guard(conn->lock);
    conn->side[0].sock = client;
    conn->side[1].sock = child;
    tune(*conn);
  }
  const Handshake h = l->offer(*client, *child, conn, dst);
  if (h != Handshake::kEstablished) {
    // Nothing was published: the child and the connection go away quietly.
    {
      SpinGuard guard(child->lock_);
      child->mode_ = Mode::kClosed;
    }
    delete conn;
    child->put();
    return h;
  }
  client->queue_.wake_all(0);
  return h;
}

// A client parked on `l` whose listener went away or could not take it: ECONNREFUSED, as
// Linux's RST gives.
void InetSocket::refuse(Listener* l) noexcept {
  {
    SpinGuard guard(lock_);
    if (parked_on_ != l) {
      return;  // no longer parked there: cancelled, and perhaps connecting elsewhere now
    }
    parked_on_ = nullptr;
    if (mode_ == Mode::kSynSent) {
      mode_ = Mode::kClosed;
      err_ = ECONNREFUSED;
      shut_ = kShutdownMask;
    }
  }
  l->put();
  queue_.wake_all(0);
}

// Gives up a parked connect (close, shutdown, AF_UNSPEC). Returns whether a connect was in
// progress (it may have completed just before: then the socket is connected).
bool InetSocket::cancel_pending() noexcept {
  Listener* l;
  bool cancelled = false;
  {
    SpinGuard guard(lock_);
    l = std::exchange(parked_on_, nullptr);
    if (mode_ == Mode::kSynSent) {
      mode_ = Mode::kClosed;
      cancelled = true;
    }
  }
  if (l != nullptr) {
    l->unpark(*this);
    l->put();
  }
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
  Socket* peer = nullptr;
  Chunk* purged;
  bool was_open;
  {
    SpinGuard guard(c->lock);
    Side& me = c->side[s];
    Side& other = c->side[1 - s];
    me.sock = nullptr;
    purged = me.rx.take_all();
    was_open = !me.closed;
    if (abort && !me.closed && other.sock != nullptr) {
      reset(other);
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
  auto attempt = [&]() noexcept -> std::optional<Result<void>> {
    switch (state()) {
      case State::kWaiting: return std::nullopt;
      case State::kDone: return Result<void>{};
      case State::kFailed: break;
    }
    MutexLock op(op_mu_);
    return connect_error();
  };
  return block_on<void>(queue_, dont_wait, timeout, attempt, [&](int error) noexcept {
    // A non-blocking call, or a timed-out one: the handshake goes on without the caller.
    return Result<void>(Error{error == EAGAIN      ? already_error
                              : error == ETIMEDOUT ? EINPROGRESS
                                                   : error});
  });
}

// Linux's disconnect (connect with AF_UNSPEC, op_mu_ held): a listener stops, a pending connect
// is dropped, a connection is reset; the socket can then connect again. Aborting a connection or
// a handshake leaves ECONNRESET in SO_ERROR, as on Linux.
Result<void> InetSocket::disconnect() noexcept {
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

// The first connect() of an unconnected socket (op_mu_ held): binds, finds the listener and
// runs the handshake. A refusal is final for a blocking call; a non-blocking one reports it
// through SO_ERROR and EPOLLERR, and otherwise returns EINPROGRESS.
Result<void> InetSocket::start_connect(const sockaddr* addr, socklen_t len,
                                       bool dont_wait) noexcept {
  Result<Endpoint> d = parse_connect_address(addr, len);
  if (!d) {
    return Error{d.error()};
  }
  const Endpoint dst = d.value();
  Endpoint src;
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
  Listener* l = find_listener(dst, src);
  const Handshake h = l != nullptr ? establish(this, l, dst) : Handshake::kRefused;
  if (l != nullptr) {
    l->put();
  }
  if (h == Handshake::kNoMemory || h == Handshake::kRefused) {
    forget_autobind();  // Linux gives back the automatic port when a connect fails
    SpinGuard guard(lock_);
    mode_ = Mode::kClosed;
    if (h == Handshake::kNoMemory || !dont_wait) {
      ss_ = Ss::kUnconnected;  // a fresh socket again
      return Error{h == Handshake::kNoMemory ? ENOBUFS : ECONNREFUSED};
    }
    err_ = ECONNREFUSED;
    shut_ = kShutdownMask;
  }
  if (h == Handshake::kRefused) {
    queue_.wake_all(0);
  }
  return dont_wait ? Result<void>(Error{EINPROGRESS}) : Result<void>{};
}

Result<void> InetSocket::connect(const sockaddr* addr, socklen_t len, IoFlags flags) noexcept {
  if (Result<void> r = check_sockaddr_in(addr, len); !r) {
    return r;
  }
  if (len < sizeof(sa_family_t)) {
    return Error{EINVAL};
  }
  const bool dont_wait = flags.dont_wait();
  bool first = false;
  {
    MutexLock op(op_mu_);
    if (addr->sa_family == AF_UNSPEC) {
      return disconnect();
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
      case Ss::kUnconnected:
        if (Result<void> r = start_connect(addr, len, dont_wait); !r || dont_wait) {
          return r;
        }
        first = true;
        break;
    }
  }
  // A connect in progress (a blocking first call, or a second connect() on one).
  return wait_connect(dont_wait, first ? EINPROGRESS : EALREADY);
}

}  // namespace uepoll::inet
