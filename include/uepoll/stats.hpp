// Introspection for tests and benchmarks: how many objects are alive, and how often the
// process-wide mutexes were taken.
//
// Live-object counts exist only in builds configured with UEPOLL_STATS=ON (the debug and
// sanitizer presets); a release build keeps no shared counters on its hot paths.
#pragma once

#include <cstdint>

namespace uepoll::stats {

struct Snapshot {
  long files = 0;         // File objects not yet freed (epoll instances included)
  long instances = 0;     // epoll instances not yet freed
  long watches = 0;       // epoll items (registrations) not yet freed
  long user_watches = 0;  // items counted against max_user_watches
  /// Acquisitions of the process-wide epoll mutex: EPOLL_CTL_ADD with loop/path checks, and the
  /// close paths of LockMode::kLegacy instances.
  std::uint64_t global_mutex = 0;

  // Kept only while timing is on (set_timing): nanoseconds the process-wide mutex was held, and
  // time spent in removal path C (the last close of a watched file, Linux's
  // eventpoll_release_file) with the number of such closes.
  std::uint64_t global_mutex_hold_ns = 0;
  std::uint64_t release_path_ns = 0;
  std::uint64_t release_path_calls = 0;
};

/// Turns the timing counters on or off (off by default: each timed section reads the clock).
void set_timing(bool on) noexcept;

/// True when the live-object counts are kept (UEPOLL_STATS builds).
bool enabled() noexcept;

/// Waits for every deferred (RCU) free queued so far, then reads the counters.
Snapshot quiesce_and_read() noexcept;

}  // namespace uepoll::stats
