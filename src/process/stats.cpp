#include "uepoll/stats.hpp"

#include "core/counters.hpp"
#include "epoll/epoll.hpp"
#include "sync/rcu.hpp"

namespace uepoll::stats {

bool enabled() noexcept {
#if defined(UEPOLL_STATS)
  return true;
#else
  return false;
#endif
}

Snapshot quiesce_and_read() noexcept {
  // Frees may queue further frees (an item's free never does, an instance's never does), so
  // one barrier suffices; a second one is cheap insurance against a free queued during the first.
  rcu::barrier();
  rcu::barrier();
  Snapshot s;
#if defined(UEPOLL_STATS)
  using detail::Counter;
  using detail::g_live;
  s.files = g_live[static_cast<int>(Counter::kFiles)].load(std::memory_order_relaxed);
  s.instances = g_live[static_cast<int>(Counter::kInstances)].load(std::memory_order_relaxed);
  s.watches = g_live[static_cast<int>(Counter::kWatches)].load(std::memory_order_relaxed);
#endif
  s.user_watches = detail::user_watches();
  s.global_mutex = detail::global_mutex_acquisitions();
  s.global_mutex_hold_ns = detail::g_global_hold_ns.load(std::memory_order_relaxed);
  s.release_path_ns = detail::g_release_ns.load(std::memory_order_relaxed);
  s.release_path_calls = detail::g_release_calls.load(std::memory_order_relaxed);
  return s;
}

void set_timing(bool on) noexcept { detail::g_timing.store(on, std::memory_order_relaxed); }

}  // namespace uepoll::stats
