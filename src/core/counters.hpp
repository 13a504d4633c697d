// Live-object counters behind uepoll/stats.hpp; no-ops unless built with UEPOLL_STATS.
#pragma once

#include <time.h>

#include <atomic>
#include <cstdint>

namespace uepoll::detail {

// --- timing (stats::set_timing) ---
inline std::atomic<bool> g_timing{false};
inline std::atomic<std::uint64_t> g_global_hold_ns{0};
inline std::atomic<std::uint64_t> g_release_ns{0};
inline std::atomic<std::uint64_t> g_release_calls{0};

inline bool timing() noexcept { return g_timing.load(std::memory_order_relaxed); }
inline std::uint64_t now_ns() noexcept {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<std::uint64_t>(t.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(t.tv_nsec);
}

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
