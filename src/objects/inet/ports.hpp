// The port table of the in-process AF_INET/AF_INET6 sockets: one slot per port, each with its
// listening and its other bindings, and Linux's rules for who may share a port.
//
// connect() reads a slot without its lock: each slot publishes an immutable copy of its listening
// bindings (ListeningSet), replaced under the lock whenever they change and freed after an RCU
// grace period. An accepted socket holds its port (as on Linux) on its listener's queue rather
// than in the slot, while the listening binding covers it: every bind that would conflict with
// it conflicts with its listener first, so the slot need not see it, and the port's lock stays
// off the accept and close path. The queue moves its sockets into the slot when it stops.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <utility>

#include "objects/inet/address.hpp"
#include "objects/socket_common.hpp"
#include "uepoll/sync.hpp"

namespace uepoll::inet {

using namespace sockcommon;  // the sockets' shared rules, this family's own

class InetSocket;
class Listener;

struct Binding {
  // --- guarded by the slot's lock (prev and next: by the holder's while `held`) ---
  Binding* prev = nullptr;
  Binding* next = nullptr;
  IpAddr addr{};
  bool listening = false;
  bool reuseaddr = false;
  bool reuseport = false;
  Listener* listener = nullptr;  // while listening
  // --- guarded by `holder`'s lock ---
  bool held = false;  // on the holder's list of accepted sockets, not in the slot
  // --- fixed while in the table ---
  InetSocket* owner = nullptr;
  std::uint16_t port = 0;
  int family = AF_INET;
  bool v6only = false;
  bool autobound = false;  // connect()'s automatic binding: shares the port by 4-tuple
  IpAddr raddr{};          // for autobound: the remote end
  std::uint16_t rport = 0;
  // --- the owner's (under its op_mu_) ---
  bool in_table = false;
  // An accepted socket's: the queue it was accepted from (a reference), set by that queue when
  // it queues the socket, cleared by release_port or return_port.
  Listener* holder = nullptr;
};

/// A slot's listening bindings as connect() reads them, in the list's order. Immutable once
/// published; each entry holds a reference on its Listener until the set is freed.
class ListeningSet {
 public:
  struct Entry {
    IpAddr addr;
    int family;
    bool v6only;
    bool reuseport;
    Listener* listener;
  };

  /// Room for `n` entries in `*out` (null for none); false when out of memory.
  static bool allocate(std::uint32_t n, ListeningSet** out) noexcept;
  /// Frees a set never published.
  static void discard(ListeningSet* set) noexcept;
  /// Frees a published set once no reader can hold it (after a grace period).
  static void retire(ListeningSet* set) noexcept;

  const Entry* begin() const noexcept { return reinterpret_cast<const Entry*>(this + 1); }
  const Entry* end() const noexcept { return begin() + size_; }
  /// Copies `list` in (it must have exactly the room allocated), with a reference on each queue.
  void fill(const Binding* list) noexcept;

 private:
  explicit ListeningSet(std::uint32_t n) noexcept : size_(n) {}
  Entry* entries() noexcept { return reinterpret_cast<Entry*>(this + 1); }
  static void free_now(void* set) noexcept;

  alignas(Entry) std::uint32_t size_;
};

struct PortSlot {
  SpinLock lock;
  Binding* listeners UEPOLL_GUARDED_BY(lock) = nullptr;
  Binding* bound UEPOLL_GUARDED_BY(lock) = nullptr;
  std::atomic<std::uint32_t> listening_count{0};      // written under lock
  std::atomic<ListeningSet*> listening_set{nullptr};  // written under lock, read under RCU
};

extern PortSlot g_ports[65536];  // one per port (ports.cpp)

/// The listener connect() reaches at `dst` from `src` (Linux's two-stage lookup: an exact
/// address, then a wildcard; a SO_REUSEPORT group spreads by a hash of the client's end), with
/// a reference; null when none listens. Takes no lock.
Listener* find_listener(const Endpoint& dst, const Endpoint& src) noexcept;

inline void list_add(Binding*& head, Binding* b) noexcept {
  b->prev = nullptr;
  b->next = head;
  if (head != nullptr) {
    head->prev = b;
  }
  head = b;
}

inline void list_del(Binding*& head, Binding* b) noexcept {
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

inline Coverage coverage(const Binding& b) noexcept {
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

inline bool addresses_overlap(const Binding& a, const Binding& b) noexcept {
  Coverage ca = coverage(a);
  Coverage cb = coverage(b);
  if (ca.v4 && cb.v4 && (ca.v4_any || cb.v4_any || a.addr == b.addr)) {
    return true;
  }
  return ca.v6 && cb.v6 && (ca.v6_any || cb.v6_any || a.addr == b.addr);
}

// Linux's bind conflict rule for a new binding `b` (listening or not) against an existing `e`.
inline bool conflicts(const Binding& b, const Binding& e) noexcept {
  if (&b == &e || !addresses_overlap(b, e)) {
    return false;
  }
  if (b.reuseaddr && e.reuseaddr && !e.listening) {
    return false;
  }
  return !(b.reuseport && e.reuseport);
}

inline bool conflicts_in_slot(const PortSlot& slot, const Binding& b) noexcept
    UEPOLL_REQUIRES(slot.lock) {
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

/// Runs `edit` on `slot` under its lock; when it returns true (it changed the listening list by
/// `delta` entries) the new list is published to connect() in the same critical section.
/// Returns what `edit` returned, or ENOMEM with nothing changed when a longer list cannot be
/// copied. A shorter list without memory for its copy leaves the old copy published: its extra
/// entries are queues that have stopped (a listener stops before it leaves the list), which
/// find_listener skips, and the next change replaces it.
template <class Edit>
Result<bool> edit_listening(PortSlot& slot, int delta, Edit&& edit) noexcept {
  for (;;) {
    const std::uint32_t before = slot.listening_count.load(std::memory_order_relaxed);
    ListeningSet* fresh = nullptr;
    const bool copied = ListeningSet::allocate(before + delta, &fresh);
    if (!copied && delta > 0) {
      return Error{ENOMEM};
    }
    ListeningSet* old = nullptr;
    bool raced = false;
    bool changed = false;
    {
      SpinGuard guard(slot.lock);
      raced = slot.listening_count.load(std::memory_order_relaxed) != before;
      changed = !raced && edit();
      if (changed) {
        slot.listening_count.store(before + delta, std::memory_order_relaxed);
        if (copied) {
          if (fresh != nullptr) {
            fresh->fill(slot.listeners);
          }
          old =
              slot.listening_set.exchange(std::exchange(fresh, nullptr), std::memory_order_acq_rel);
        }
      }
    }
    ListeningSet::discard(fresh);
    ListeningSet::retire(old);
    if (!raced) {  // else another change came first: size the copy again
      return changed;
    }
  }
}

}  // namespace uepoll::inet
