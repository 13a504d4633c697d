// The in-process socket: readiness, addresses, shutdown and close, and the factory.
#include "objects/inet/socket.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "sync/fault_injection.hpp"

namespace uepoll::inet {

PollMask InetSocket::poll(PollTable* table) noexcept {
  poll_wait(table, queue_);
  int s;
  if (InetConn* c = conn(&s); c != nullptr) {
    const int lowat = std::max(opts_.rcvlowat.load(std::memory_order_relaxed), 1);
    SpinGuard guard(c->lock);
    Side& me = c->side[s];
    const Side& other = c->side[1 - s];
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
    if ((me.shut & kSendShutdown) != 0 || c->writable(other)) {
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
      return listener_ != nullptr && listener_->has_connections() ? PollMask{EPOLLIN | EPOLLRDNORM}
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
  Result<Endpoint> in6 = read_sockaddr_in6(addr, len);
  if (!in6) {
    return in6;
  }
  e = *in6;
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
  bind_.listener = nullptr;
}

// Puts bind_ (filled) in `port`'s slot unless it conflicts; port 0 scans the ephemeral range.
// A listening binding is published to connect() with it (edit_listening); ENOMEM then.
Result<void> InetSocket::insert_binding(std::uint16_t port, bool listening) noexcept {
  int error = 0;
  auto try_port = [&](std::uint16_t p) noexcept {
    PortSlot& slot = g_ports[p];
    auto conflicts = [&]() noexcept {
      slot.lock.assert_held();
      bind_.listening = listening;
      const bool taken = conflicts_in_slot(slot, bind_);
      bind_.listening = false;
      return taken;
    };
    auto insert = [&]() noexcept {
      slot.lock.assert_held();
      if (conflicts()) {
        return false;
      }
      bind_.listening = listening;
      bind_.port = p;
      list_add(listening ? slot.listeners : slot.bound, &bind_);
      return true;
    };
    if (!listening) {
      SpinGuard guard(slot.lock);
      return insert();
    }
    {
      SpinGuard guard(slot.lock);
      if (conflicts()) {
        return false;  // no copy of the listening list made for a port the scan passes by
      }
    }
    Result<bool> inserted = edit_listening(slot, 1, insert);  // which checks again
    error = inserted ? 0 : inserted.error();
    return !inserted || *inserted;  // out of memory ends the scan
  };
  if (port != 0) {
    if (!try_port(port)) {
      return Error{EADDRINUSE};
    }
  } else if (scan_ephemeral(1, try_port) == 0) {
    return Error{EADDRINUSE};
  }
  if (error != 0) {
    return Error{error};
  }
  bind_.in_table = true;
  return {};
}

void InetSocket::remove_binding() noexcept {
  if (!bind_.in_table) {
    return;
  }
  if (bind_.holder != nullptr) {
    bind_.holder->release_port(bind_);  // an accepted socket (never listening: see listen())
    return;
  }
  PortSlot& slot = g_ports[bind_.port];
  auto remove = [&]() noexcept {
    slot.lock.assert_held();
    list_del(bind_.listening ? slot.listeners : slot.bound, &bind_);
    bind_.listening = false;
    bind_.listener = nullptr;
    return true;
  };
  if (bind_.listening) {
    (void)edit_listening(slot, -1, remove);  // never fails (ports.hpp)
  } else {
    SpinGuard guard(slot.lock);
    remove();
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
// shutdown and close

// shutdown() on a connection: our FIN goes to the peer when the sending side closes. Returns
// whether the connection was closed already (or there is none): ENOTCONN, bits set anyway.
bool InetSocket::shut_connection(InetConn* c, int s, unsigned mode) noexcept {
  if (c == nullptr) {
    return true;
  }
  Socket* peer = nullptr;
  bool closed;
  {
    SpinGuard guard(c->lock);
    Side& me = c->side[s];
    Side& other = c->side[1 - s];
    closed = me.closed;
    const bool fin = !me.closed && (mode & kSendShutdown) != 0 && (me.shut & kSendShutdown) == 0;
    me.shut |= mode;
    if (fin && other.sock != nullptr && !other.closed) {
      if (deliver_fin(other)) {
        me.closed = true;  // both FINs exchanged: each side ends in TCP_CLOSE
        me.shut = kShutdownMask;
      }
      peer = grab(other.sock);
    } else if (fin && other.sock == nullptr && me.done) {
      me.closed = true;  // the peer is gone and had sent its FIN: nothing left to wait for
      me.shut = kShutdownMask;
    }
  }
  wake_and_put(peer, 0);
  return closed;
}

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
  if (m == Mode::kListen) {
    if ((mode & kRcvShutdown) != 0) {
      stop_listening(false);
    }
    queue_.wake_all(0);
    return {};
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
    return {};
  }
  int s;
  InetConn* c = conn(&s);
  const bool closed = shut_connection(c, s, mode);
  {
    SpinGuard guard(lock_);
    if (ss_ == Ss::kConnecting) {
      ss_ = closed ? Ss::kDisconnecting : Ss::kConnected;
    }
    if (c == nullptr) {
      shut_ |= mode;
    }
  }
  queue_.wake_all(0);
  return closed ? Result<void>(Error{ENOTCONN}) : Result<void>{};
}

void InetSocket::release() noexcept {
  MutexLock op(op_mu_);
  stop_listening(true);
  cancel_pending();
  int s;
  InetConn* c = conn(&s);
  if (c != nullptr) {
    const bool abort = abortive_close() || abort_on_release_.load(std::memory_order_relaxed);
    Socket* peer = nullptr;
    Chunk* purged;
    {
      SpinGuard guard(c->lock);
      Side& me = c->side[s];
      Side& other = c->side[1 - s];
      me.sock = nullptr;
      const bool unread = !me.rx.empty();
      purged = me.rx.take_all();
      if (!me.closed && other.sock != nullptr) {
        if (unread || abort) {
          reset(other);  // Linux sends a RST when unread data is discarded
        } else if ((me.shut & kSendShutdown) == 0) {
          deliver_fin(other);
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

}  // namespace uepoll::inet

namespace uepoll {

using namespace inet;

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
  Listener* l = find_listener(dst, Endpoint{});
  if (l == nullptr) {
    return false;
  }
  l->put();
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
