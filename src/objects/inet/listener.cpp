// Listening: the accept queue (Listener), listen, accept, the parked clients and the end of
// listening.
#include "objects/inet/listener.hpp"

#include <cerrno>
#include <cstring>
#include <optional>

#include "objects/inet/socket.hpp"
#include "sync/fault_injection.hpp"

namespace uepoll::inet {

// ---------------------------------------------------------------------------------------------
// The accept queue

void Listener::append(InetSocket*& head, InetSocket*& tail, InetSocket* s) noexcept {
  s->queue_link_.next = nullptr;
  (tail == nullptr ? head : tail->queue_link_.next) = s;
  tail = s;
}

InetSocket* Listener::take_front(InetSocket*& head, InetSocket*& tail) noexcept {
  InetSocket* s = head;
  head = s->queue_link_.next;
  if (head == nullptr) {
    tail = nullptr;
  }
  s->queue_link_.next = nullptr;
  return s;
}

Handshake Listener::offer(InetSocket& client, InetSocket& child, InetConn* conn,
                          const Endpoint& dst) noexcept {
  InetSocket* owner;
  {
    SpinGuard guard(lock_);
    if (owner_ == nullptr) {
      return Handshake::kRefused;
    }
    const bool room = count_.load(std::memory_order_relaxed) <= backlog_;
    const Handshake h = client.admit(this, room ? conn : nullptr, dst);
    if (h == Handshake::kPending && !client.queue_link_.parked) {
      client.queue_link_.parked = true;
      append(parked_head_, parked_tail_, &client);
    }
    if (h != Handshake::kEstablished) {
      return h;
    }
    child.accepted_from(*owner_, conn);
    hold_port(child.bind_);
    append(head_, tail_, &child);
    count_.fetch_add(1, std::memory_order_release);
    owner = grab(owner_);
  }
  if (owner != nullptr) {
    owner->wake_acceptors();
    owner->put();
  }
  return Handshake::kEstablished;
}

void Listener::unpark(InetSocket& client) noexcept {
  SpinGuard guard(lock_);
  if (!client.queue_link_.parked) {
    return;
  }
  InetSocket* prev = nullptr;
  for (InetSocket* c = parked_head_; c != nullptr; prev = c, c = c->queue_link_.next) {
    if (c == &client) {
      (prev == nullptr ? parked_head_ : prev->queue_link_.next) = c->queue_link_.next;
      if (parked_tail_ == c) {
        parked_tail_ = prev;
      }
      break;
    }
  }
  client.queue_link_ = QueueLink{};
}

void Listener::set_backlog(int backlog) noexcept {
  SpinGuard guard(lock_);
  backlog_ = backlog;
}

Result<InetSocket*> Listener::pop() noexcept {
  SpinGuard guard(lock_);
  if (owner_ == nullptr) {
    return Error{EINVAL};
  }
  if (head_ == nullptr) {
    return Error{EAGAIN};
  }
  count_.fetch_sub(1, std::memory_order_release);
  return take_front(head_, tail_);
}

InetSocket* Listener::unpark_next() noexcept {
  SpinGuard guard(lock_);
  if (owner_ == nullptr || count_.load(std::memory_order_relaxed) > backlog_) {
    return nullptr;
  }
  while (parked_head_ != nullptr) {
    InetSocket* client = take_front(parked_head_, parked_tail_);
    client->queue_link_.parked = false;
    if (grab(client) != nullptr) {
      return client;
    }
    // A client being released cancels itself; it is off the list already.
  }
  return nullptr;
}

// An accepted socket's port stays on the queue while the listening binding decides every
// conflict it could be part of. It covers the socket's address, and, listening, it never has
// SO_REUSEADDR's exemption: what conflicts with the accepted socket conflicts with it, unless
// their SO_REUSEPORT bits differ (a setsockopt on the listener after listen() changes the bit
// its sockets inherit, not its binding's). Such a socket goes to the slot at once.
void Listener::hold_port(Binding& b) noexcept {
  const Binding& mine = owner_->bind_;
  get();
  b.holder = this;
  b.in_table = true;
  if (b.reuseport == mine.reuseport) {
    b.held = true;
    list_add(accepted_, &b);
    return;
  }
  PortSlot& slot = g_ports[b.port];
  SpinGuard guard(slot.lock);
  list_add(slot.bound, &b);
}

void Listener::release_port(Binding& b) noexcept {
  bool held;
  {
    SpinGuard guard(lock_);
    held = std::exchange(b.held, false);
    if (held) {
      list_del(accepted_, &b);
    }
  }
  if (!held) {
    PortSlot& slot = g_ports[b.port];
    SpinGuard guard(slot.lock);
    list_del(slot.bound, &b);
  }
  b.holder = nullptr;
  b.in_table = false;
  put();
}

void Listener::return_port(Binding& b) noexcept {
  {
    SpinGuard guard(lock_);
    if (std::exchange(b.held, false)) {
      list_del(accepted_, &b);
      PortSlot& slot = g_ports[b.port];
      SpinGuard slot_guard(slot.lock);
      list_add(slot.bound, &b);
    }
  }
  b.holder = nullptr;
  put();
}

Listener::Leftovers Listener::stop() noexcept {
  SpinGuard guard(lock_);
  owner_ = nullptr;
  stopped_.store(true, std::memory_order_release);
  if (accepted_ != nullptr) {
    // Before the listening binding leaves the slot, so that no bind slips in between.
    PortSlot& slot = g_ports[accepted_->port];
    SpinGuard slot_guard(slot.lock);
    while (Binding* b = accepted_) {
      list_del(accepted_, b);
      b->held = false;
      list_add(slot.bound, b);
    }
  }
  Leftovers left{std::exchange(head_, nullptr), nullptr};
  tail_ = nullptr;
  count_.store(0, std::memory_order_release);
  while (parked_head_ != nullptr) {
    InetSocket* client = take_front(parked_head_, parked_tail_);
    client->queue_link_.parked = false;
    if (grab(client) != nullptr) {
      client->queue_link_.next = left.parked;
      left.parked = client;
    }
  }
  return left;
}

// ---------------------------------------------------------------------------------------------
// The listening socket

Result<void> InetSocket::listen(int backlog) noexcept {
  // Linux clamps to somaxconn, comparing as unsigned (a negative backlog means somaxconn).
  const int max_backlog =
      static_cast<unsigned>(backlog) > static_cast<unsigned>(somaxconn()) ? somaxconn() : backlog;
  MutexLock op(op_mu_);
  Listener* existing;
  {
    SpinGuard guard(lock_);
    if (ss_ != Ss::kUnconnected || (mode_ != Mode::kClosed && mode_ != Mode::kListen) ||
        conn_bits_.load(std::memory_order_relaxed) != 0) {
      return Error{EINVAL};
    }
    existing = mode_ == Mode::kListen ? listener_ : nullptr;
  }
  if (existing != nullptr) {
    existing->set_backlog(max_backlog);
    promote_pending(existing);
    return {};
  }
  auto* l = detail::try_new<Listener>(this, family_, max_backlog);
  if (l == nullptr) {
    return Error{ENOMEM};
  }
  Result<void> bound;
  if (!bind_.in_table) {
    fill_binding(family_ == AF_INET ? mapped(0) : IpAddr{});
    bind_.listener = l;
    bound = insert_binding(0, true);
  } else {
    bound = listen_on_bound_port(l);
  }
  if (!bound) {
    delete l;
    return bound;
  }
  SpinGuard guard(lock_);
  local_.addr = bind_.addr;
  local_.port = bind_.port;
  listener_ = l;
  mode_ = Mode::kListen;
  return {};
}

// A bound socket starts listening with `l` (op_mu_ held). Linux re-checks the port now: two
// SO_REUSEADDR sockets may share a port while neither listens, not once one does.
Result<void> InetSocket::listen_on_bound_port(Listener* l) noexcept {
  if (bind_.holder != nullptr) {
    bind_.holder->return_port(bind_);  // a socket once accepted: its port is the slot's now
  }
  PortSlot& slot = g_ports[bind_.port];
  Result<bool> moved = edit_listening(slot, 1, [&]() noexcept {
    slot.lock.assert_held();
    bind_.reuseaddr = opts_.reuseaddr.load(std::memory_order_relaxed) != 0;
    bind_.reuseport = opts_.reuseport.load(std::memory_order_relaxed) != 0;
    bind_.listening = true;
    if (conflicts_in_slot(slot, bind_)) {
      bind_.listening = false;
      return false;
    }
    list_del(slot.bound, &bind_);
    bind_.listener = l;
    list_add(slot.listeners, &bind_);
    return true;
  });
  if (!moved) {
    return Error{moved.error()};
  }
  return *moved ? Result<void>{} : Result<void>(Error{EADDRINUSE});
}

void InetSocket::wake_acceptors() noexcept {
  accept_wait_.wake(EPOLLIN);
  queue_.wake(kDataReadyKey);
}

Result<Ref<File>> InetSocket::accept(sockaddr* addr, socklen_t* len, int new_status_flags,
                                     IoFlags flags) noexcept {
  Timeout timeout = socket_timeout(rcvtimeo());
  const bool dont_wait = flags.dont_wait() || timeout.is_zero();
  Listener* from = nullptr;  // the queue the connection came from, with a reference
  auto attempt = [&]() noexcept -> std::optional<Result<InetSocket*>> {
    {
      SpinGuard guard(lock_);
      if (mode_ != Mode::kListen || listener_ == nullptr) {
        return Result<InetSocket*>(Error{EINVAL});
      }
      from = listener_;
      from->get();
    }
    Result<InetSocket*> r = from->pop();
    if (!r) {
      std::exchange(from, nullptr)->put();
    }
    return r || r.error() != EAGAIN ? std::optional(r) : std::nullopt;
  };
  auto stopped = [&](int error) noexcept -> Result<InetSocket*> {
    if (error != EAGAIN) {
      // An interrupted sleep: a wake-up meant for this waiter must not be lost with it.
      bool queued;
      {
        SpinGuard guard(lock_);
        queued = listener_ != nullptr && listener_->has_connections();
      }
      if (queued) {
        accept_wait_.wake(EPOLLIN);
      }
    }
    return Error{error == ETIMEDOUT ? EAGAIN : error};
  };
  Result<InetSocket*> r = block_on<InetSocket*>(accept_wait_, dont_wait, timeout, attempt, stopped,
                                                Waiting::kExclusive);
  if (!r) {
    return Error{r.error()};
  }
  promote_pending(from);  // a slot was freed: a parked client may now complete
  from->put();
  InetSocket* child = r.value();
  Ref<File> result = Ref<File>::adopt(child);
  child->set_status_flags(new_status_flags);
  if (addr == nullptr) {
    return result;
  }
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
  return result;
}

// Completes parked clients while the accept queue has room.
void InetSocket::promote_pending(Listener* l) noexcept {
  while (InetSocket* client = l->unpark_next()) {
    Endpoint dst;
    {
      SpinGuard guard(client->lock_);
      dst = client->remote_;
    }
    const Handshake h = establish(client, l, dst);
    if (h == Handshake::kRefused || h == Handshake::kNoMemory) {
      client->refuse(l);
    }
    client->put();
    if (h == Handshake::kPending) {
      return;
    }
  }
}

// The port of a socket that stops listening: given back if listen() picked it or the socket
// is being released, else kept as a plain binding (op_mu_ held).
void InetSocket::unbind_listener(bool releasing) noexcept {
  if (releasing || !bound_explicitly_) {
    remove_binding();
    if (!releasing) {
      SpinGuard guard(lock_);
      local_.port = 0;
      local_.addr = family_ == AF_INET ? mapped(0) : IpAddr{};
    }
    return;
  }
  PortSlot& slot = g_ports[bind_.port];
  // A shorter list never fails (ports.hpp): without memory the old copy stays published.
  (void)edit_listening(slot, -1, [&]() noexcept {
    slot.lock.assert_held();
    list_del(slot.listeners, &bind_);
    bind_.listening = false;
    bind_.listener = nullptr;
    list_add(slot.bound, &bind_);
    return true;
  });
}

// Stops listening: the port stops accepting, queued connections are reset, parked clients
// refused.
void InetSocket::stop_listening(bool releasing) noexcept {
  Listener* l;
  {
    SpinGuard guard(lock_);
    l = std::exchange(listener_, nullptr);
    if (mode_ == Mode::kListen) {
      mode_ = Mode::kClosed;
    }
  }
  if (l == nullptr) {
    return;
  }
  Listener::Leftovers left = l->stop();  // first: find_listener skips it from now on
  unbind_listener(releasing);
  while (InetSocket* child = left.connections) {
    left.connections = std::exchange(child->queue_link_.next, nullptr);
    child->abort_on_release_.store(true, std::memory_order_relaxed);
    child->put();
  }
  while (InetSocket* client = left.parked) {
    left.parked = std::exchange(client->queue_link_.next, nullptr);
    client->refuse(l);
    client->put();
  }
  l->put();
  // Blocked accept() callers must all see EINVAL: wake the exclusive waiters one by one.
  while (accept_wait_.has_entries()) {
    accept_wait_.wake_all(0);
  }
  queue_.wake_all(0);
}

}  // namespace uepoll::inet
