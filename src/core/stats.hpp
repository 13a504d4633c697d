// Live-object counters behind uepoll/stats.hpp; no-ops unless built with UEPOLL_STATS.
#pragma once

#include <atomic>

namespace uepoll::detail {

enum class Counter { kFiles, kInstances, kWatches, kCount };

#if defined(UEPOLL_STATS)
inline std::atomic<long> g_live[static_cast<int>(Counter::kCount)];
inline void count_up(Counter c) noexcept {
  g_live[static_cast<int>(c)].fetch_add(1, std::memory_order_relaxed);
}
inline void count_down(Counter c) noexcept {
  g_live[static_cast<int>(c)].fetch_sub(1, std::memory_order_relaxed);
}
#else
inline void count_up(Counter) noexcept {}
inline void count_down(Counter) noexcept {}
#endif

}  // namespace uepoll::detail
