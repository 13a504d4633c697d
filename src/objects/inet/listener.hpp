// A listening socket's accept queue (Linux's icsk_accept_queue) as a class of its own: the
// established connections not yet accepted, and the clients parked while the backlog is full.
// It lives apart from the listening socket so that a client can always reach its lock, even
// after the listener is gone: the listening socket, each connect() in flight towards it and
// each client parked on it hold a reference.
//
// The handshake's narrow interface (docs/locking.md §8): a connecting client is offered to the
// queue (offer), which asks the client, under the queue's lock, to become connected or to park
// (InetSocket::admit) and then publishes the accepted socket (InetSocket::accepted_from); the
// listening socket pops connections, takes parked clients back while there is room, and stops.
// Sockets sit on the queue through their QueueLink, which only this class touches.
//
// The queue also holds the port of every socket accepted from it (their Bindings, ports.hpp)
// while it listens, and moves them into the port's slot when it stops.
#pragma once

#include <atomic>

#include "objects/inet/address.hpp"
#include "objects/inet/ports.hpp"
#include "uepoll/result.hpp"
#include "uepoll/sync.hpp"

namespace uepoll::inet {

class InetSocket;
struct InetConn;

/// What became of a connect offered to a listener.
enum class Handshake {
  kEstablished,  // connected, the accepted socket queued
  kPending,      // the backlog is full: the client is parked on the queue
  kRefused,      // the listener stopped
  kCancelled,    // the client gave up (closed, shut down, disconnected) while parked
  kNoMemory,
};

/// A socket's place on a Listener's lists, guarded by that Listener's lock.
struct QueueLink {
  InetSocket* next = nullptr;
  bool parked = false;  // on the parked list (a client), not the accept queue
};

class Listener {
 public:
  Listener(InetSocket* owner, int family, int backlog) noexcept
      : owner_(owner), backlog_(backlog), family_(family) {}
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  void get() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void put() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      delete this;
    }
  }

  // --- the connecting side ---

  /// The listening socket's family.
  int family() const noexcept { return family_; }
  /// Whether the queue stopped: every later offer is refused (a hint without the lock).
  bool stopped() const noexcept { return stopped_.load(std::memory_order_acquire); }
  /// Connects `client` (kSynSent) through `child`, the accepted socket, and `conn`, or parks the
  /// client while the queue is full. The caller holds references on the client and the queue.
  Handshake offer(InetSocket& client, InetSocket& child, InetConn* conn,
                  const Endpoint& dst) noexcept;
  /// Takes a client that gave up off the parked list (nothing if it is no longer there).
  void unpark(InetSocket& client) noexcept;

  // --- the listening side ---

  void set_backlog(int backlog) noexcept;
  /// Whether a connection waits to be accepted (poll, and accept's lost-wake-up check).
  bool has_connections() const noexcept { return count_.load(std::memory_order_acquire) > 0; }
  /// The oldest connection with the queue's reference on it; EAGAIN when there is none, EINVAL
  /// once stopped.
  Result<InetSocket*> pop() noexcept;
  /// The longest-parked client while the queue has room, with a reference; else null.
  InetSocket* unpark_next() noexcept;
  /// What stopping leaves behind: the queued connections (the queue's references) and the
  /// parked clients (a reference each), linked through their QueueLink.
  struct Leftovers {
    InetSocket* connections = nullptr;
    InetSocket* parked = nullptr;
  };
  /// Stops listening (every later offer is refused), moves the ports its accepted sockets hold
  /// into the slot and hands over what was queued.
  Leftovers stop() noexcept;

  // --- the accepted sockets ---

  /// The port binding of an accepted socket leaves the queue (or the slot, where stop() moved
  /// it); drops the binding's reference on the queue.
  void release_port(Binding& b) noexcept;
  /// An accepted socket's binding becomes the slot's own (before it changes role: listen()
  /// after a disconnect); drops the binding's reference on the queue.
  void return_port(Binding& b) noexcept;

 private:
  void hold_port(Binding& b) noexcept UEPOLL_REQUIRES(lock_);
  void append(InetSocket*& head, InetSocket*& tail, InetSocket* s) noexcept UEPOLL_REQUIRES(lock_);
  static InetSocket* take_front(InetSocket*& head, InetSocket*& tail) noexcept;

  SpinLock lock_;
  InetSocket* owner_ UEPOLL_GUARDED_BY(lock_);           // null once stopped
  int backlog_ UEPOLL_GUARDED_BY(lock_);                 // Linux's sk_max_ack_backlog
  InetSocket* head_ UEPOLL_GUARDED_BY(lock_) = nullptr;  // established, not yet accepted
  InetSocket* tail_ UEPOLL_GUARDED_BY(lock_) = nullptr;
  InetSocket* parked_head_ UEPOLL_GUARDED_BY(lock_) = nullptr;  // clients waiting for room
  InetSocket* parked_tail_ UEPOLL_GUARDED_BY(lock_) = nullptr;
  Binding* accepted_ UEPOLL_GUARDED_BY(lock_) = nullptr;  // the ports it holds (Binding::held)
  const int family_;
  std::atomic<bool> stopped_{false};  // written under lock_
  std::atomic<int> count_{0};         // queued connections: written under lock_, read by poll
  std::atomic<int> refs_{1};
};

}  // namespace uepoll::inet
