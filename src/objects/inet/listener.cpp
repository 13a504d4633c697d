// Listening sockets: listen, accept, the parked clients and the end of listening.
#include <cerrno>
#include <cstring>
#include <optional>

#include "objects/inet/socket.hpp"
#include "sync/fault_injection.hpp"

namespace uepoll::inet {

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

  AcceptQueue* aq = nullptr;
  auto attempt = [&]() noexcept -> std::optional<Result<InetSocket*>> {
    if (Result<InetSocket*> r = try_accept(&aq); r || r.error() != EAGAIN) {
      return r;
    }
    return std::nullopt;
  };
  auto stopped = [&](int error) noexcept -> Result<InetSocket*> {
    if (error != EAGAIN) {
      // An interrupted sleep: a wake-up meant for this waiter must not be lost with it.
      bool queued;
      {
        SpinGuard guard(lock_);
        queued = aq_ != nullptr && aq_->count.load(std::memory_order_acquire) > 0;
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

}  // namespace uepoll::inet
