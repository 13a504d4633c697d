// A log-linear latency histogram (nanoseconds): values below 64 are exact; each power of two
// above is split into 32 equal buckets, so a bucket is at most 1/32 (3.1%) of its values wide.
// One per load-generator thread, merged at the end; no allocation, no locks.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

namespace uepoll_bench::http {

class LatencyHistogram {
 public:
  static constexpr int kLinear = 64;      // 0..63 recorded exactly
  static constexpr int kSubBuckets = 32;  // per power of two from 64 up
  static constexpr int kBuckets = kLinear + (64 - 6) * kSubBuckets;

  static int index(std::uint64_t v) noexcept {
    if (v < kLinear) {
      return static_cast<int>(v);
    }
    const int e = 63 - __builtin_clzll(v);  // 2^e <= v < 2^(e+1), e >= 6
    return kLinear + (e - 6) * kSubBuckets + static_cast<int>((v >> (e - 5)) & (kSubBuckets - 1));
  }
  static std::uint64_t lower_bound(int i) noexcept {
    if (i < kLinear) {
      return static_cast<std::uint64_t>(i);
    }
    const int k = i - kLinear;
    const int e = k / kSubBuckets + 6;
    const auto m = static_cast<std::uint64_t>(k % kSubBuckets);
    return (kSubBuckets + m) << (e - 5);
  }
  static std::uint64_t upper_bound(int i) noexcept {  // inclusive
    if (i < kLinear) {
      return static_cast<std::uint64_t>(i);
    }
    const int e = (i - kLinear) / kSubBuckets + 6;
    return lower_bound(i) + ((std::uint64_t{1} << (e - 5)) - 1);
  }

  void record(std::uint64_t v) noexcept {
    ++counts_[static_cast<std::size_t>(index(v))];
    ++count_;
    sum_ += v;
    max_ = std::max(max_, v);
    min_ = std::min(min_, v);
  }

  void merge(const LatencyHistogram& o) noexcept {
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      counts_[i] += o.counts_[i];
    }
    count_ += o.count_;
    sum_ += o.sum_;
    max_ = std::max(max_, o.max_);
    min_ = std::min(min_, o.min_);
  }

  std::uint64_t count() const noexcept { return count_; }
  std::uint64_t max() const noexcept { return count_ == 0 ? 0 : max_; }
  std::uint64_t min() const noexcept { return count_ == 0 ? 0 : min_; }
  double mean() const noexcept {
    return count_ == 0 ? 0.0 : static_cast<double>(sum_) / static_cast<double>(count_);
  }

  /// The value at percentile `p` (0 < p <= 100): the middle of the bucket holding the
  /// ceil(p% * count)-th smallest value, clamped to the observed min and max; the exact
  /// maximum for the largest value. 0 when empty.
  std::uint64_t percentile(double p) const noexcept {
    if (count_ == 0) {
      return 0;
    }
    auto rank = static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_)));
    rank = std::clamp<std::uint64_t>(rank, 1, count_);
    if (rank == count_) {
      return max_;
    }
    std::uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += counts_[static_cast<std::size_t>(i)];
      if (seen >= rank) {
        const std::uint64_t lo = lower_bound(i);
        const std::uint64_t mid = lo + (upper_bound(i) - lo) / 2;
        return std::clamp(mid, min(), max());
      }
    }
    return max();
  }

 private:
  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t max_ = 0;
  std::uint64_t min_ = UINT64_MAX;
};

}  // namespace uepoll_bench::http
