#include <sched.h>

#include "uepoll/sync.hpp"

namespace uepoll {

void SpinLock::wait_until_free() noexcept {
  // Spin briefly (the holder is usually running on another core), then yield: on a 2-core
  // machine the holder may well be preempted, and spinning would only delay it.
  for (int spins = 0; locked_.load(std::memory_order_relaxed); ++spins) {
    if (spins < 64) {
      __builtin_ia32_pause();
    } else {
      sched_yield();
    }
  }
}

}  // namespace uepoll
