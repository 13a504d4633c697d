// One bit mixer for uepoll's hashing: the interest set's buckets and SO_REUSEPORT's choice of a
// listener. A shift, a multiply and a shift: cheap, and enough to move the bits in which keys
// differ (a File pointer's middle bits, a port's low ones) into the low bits that a power-of-two
// table masks. Not a full avalanche: no key here is chosen by an adversary against it.
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
