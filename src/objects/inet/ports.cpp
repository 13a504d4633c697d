// The port table: its slots, the listening sets connect() reads without locks, and the lookup.
#include "objects/inet/ports.hpp"

#include <new>

#include "objects/inet/listener.hpp"
#include "sync/fault_injection.hpp"
#include "sync/mix.hpp"
#include "sync/rcu.hpp"

namespace uepoll::inet {

PortSlot g_ports[65536];

bool ListeningSet::allocate(std::uint32_t n, ListeningSet** out) noexcept {
  *out = nullptr;
  if (n == 0) {
    return true;
  }
  void* mem = detail::allocation_should_fail()
                  ? nullptr
                  : ::operator new(sizeof(ListeningSet) + n * sizeof(Entry), std::nothrow);
  if (mem == nullptr) {
    return false;
  }
  *out = new (mem) ListeningSet(n);
  return true;
}

void ListeningSet::fill(const Binding* list) noexcept {
  Entry* e = entries();
  for (const Binding* b = list; b != nullptr; b = b->next, ++e) {
    b->listener->get();
    *e = Entry{b->addr, b->family, b->v6only, b->reuseport, b->listener};
  }
}

void ListeningSet::discard(ListeningSet* set) noexcept { ::operator delete(set); }

void ListeningSet::free_now(void* p) noexcept {
  auto* set = static_cast<ListeningSet*>(p);
  for (const Entry& e : *set) {
    e.listener->put();
  }
  discard(set);
}

void ListeningSet::retire(ListeningSet* set) noexcept {
  if (set != nullptr) {
    rcu::retire(free_now, set);
  }
}

namespace {

// How well a listening entry matches a destination: an exact address beats a wildcard, and for
// IPv4 an AF_INET socket beats an AF_INET6 one; 0 when it does not match.
int match_score(const ListeningSet::Entry& e, const Endpoint& dst, bool v4) noexcept {
  if (!v4) {
    if (e.family != AF_INET6) {
      return 0;
    }
    return e.addr == dst.addr ? 10 : is_any6(e.addr) ? 1 : 0;
  }
  int score;
  if (e.addr == dst.addr) {
    score = 10;
  } else if (is_any4(e.addr) || (e.family == AF_INET6 && is_any6(e.addr) && !e.v6only)) {
    score = 1;
  } else {
    return 0;
  }
  return score + (e.family == AF_INET ? 2 : 1);
}

bool same_group(const ListeningSet::Entry& a, const ListeningSet::Entry& b) noexcept {
  return b.reuseport && b.family == a.family && b.v6only == a.v6only && b.addr == a.addr;
}

}  // namespace

Listener* find_listener(const Endpoint& dst, const Endpoint& src) noexcept {
  rcu::ReadGuard rcu;  // the set, and so each of its queues, lives until this section ends
  const ListeningSet* set = g_ports[dst.port].listening_set.load(std::memory_order_acquire);
  if (set == nullptr) {
    return nullptr;
  }
  const bool v4 = is_mapped(dst.addr);
  const ListeningSet::Entry* best = nullptr;
  int best_score = 0;
  for (const ListeningSet::Entry& e : *set) {
    const int score = match_score(e, dst, v4);
    if (score > best_score && !e.listener->stopped()) {
      best = &e;
      best_score = score;
    }
  }
  if (best == nullptr) {
    return nullptr;
  }
  if (best->reuseport) {
    std::uint32_t members = 0;
    for (const ListeningSet::Entry& e : *set) {
      members += same_group(*best, e) && !e.listener->stopped() ? 1 : 0;
    }
    if (members == 0) {
      return nullptr;  // the group stopped meanwhile
    }
    std::uint64_t pick = mix_bits(src.port * 0x9e3779b9U ^ v4_of(src.addr) ^ dst.port) % members;
    for (const ListeningSet::Entry& e : *set) {
      // A member that stops meanwhile leaves `best`, which the handshake then refuses.
      if (same_group(*best, e) && !e.listener->stopped() && pick-- == 0) {
        best = &e;
        break;
      }
    }
  }
  best->listener->get();
  return best->listener;
}

}  // namespace uepoll::inet
