// Rounds: how long a torture test runs. `ci_rounds` rounds capped at 700 ms of wall time by
// default; UEPOLL_TORTURE_SECONDS=N runs for N seconds; UEPOLL_STRESS_ITERATIONS=N runs N rounds
// with no time cap.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdlib>

namespace uepoll_torture {

using Clock = std::chrono::steady_clock;

class Rounds {
 public:
  explicit Rounds(int ci_rounds) : start_(Clock::now()) {
    if (const char* s = std::getenv("UEPOLL_TORTURE_SECONDS"); s != nullptr) {
      max_ = INT_MAX;
      limit_ =
          std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(std::atof(s)));
    } else if (const char* it = std::getenv("UEPOLL_STRESS_ITERATIONS"); it != nullptr) {
      max_ = std::max(1, std::atoi(it));
      limit_ = std::chrono::hours(24 * 365);
    } else {
      max_ = ci_rounds;
      limit_ = kCiCap;
    }
  }
  // Thread-safe: claims one more round, or false when the budget is spent.
  bool next() {
    if (Clock::now() - start_ >= limit_) {
      return false;
    }
    return done_.fetch_add(1) < max_;
  }
  int done() const { return std::min(done_.load(), max_); }

 private:
  static constexpr std::chrono::milliseconds kCiCap{700};
  Clock::time_point start_;
  Clock::duration limit_{};
  int max_ = 0;
  std::atomic<int> done_{0};
};

}  // namespace uepoll_torture
