// One bit mixer for uepoll's hashing: the interest set's buckets and SO_REUSEPORT's choice of a
// listener. A shift, a multiply and a shift carry every input bit into the low bits that a
// power-of-two table masks (a File pointer's low bits are all zero, a port's high bits too).
#pragma once

#include <cstdint>

namespace uepoll {

inline std::uint64_t mix_bits(std::uint64_t x) noexcept {
  x ^= x >> 17;
  x *= 0xed5ad4bbU;
  x ^= x >> 11;
  return x;
}

}  // namespace uepoll
