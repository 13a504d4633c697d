// Per-thread caches of small memory blocks, for the objects that come and go with every
// connection (items, files, stream connections), most of which RCU frees in batches.
//
// Freed one by one, such an object would go to glibc's per-thread cache, which keeps seven
// blocks of a size; after a grace period a whole batch (up to rcu::kMaxPendingPerThread) is
// freed at once, overflows it into malloc's shared bins, and the next thousand allocations come
// back out of them (a third of the instructions of an epoll_ctl ADD + DEL pair). Here the thread
// that frees a block keeps it, up to kBlocksCachedPerClass blocks of each size class (128 and
// 256 bytes), and allocates from them first; larger sizes go to malloc.
//
// Memory held: at most 1024 x 384 bytes per thread, given back when the thread exits.
// Under AddressSanitizer a cached block is poisoned but for its first 8 bytes (the cache's link;
// a File's vtable pointer), so a use after free still reports, unless it is a virtual call.
#pragma once

#include <cstddef>
#include <new>

namespace uepoll::detail {

/// The most blocks of one size class a thread keeps: as many as one grace period frees at
/// most (rcu::kMaxPendingPerThread).
inline constexpr int kBlocksCachedPerClass = 1024;

/// A block of at least `size` bytes: the calling thread's latest cached one of its size class,
/// else malloc's; null when out of memory. Callers check allocation_should_fail() first, as
/// for any allocation.
void* block_alloc(std::size_t size) noexcept;

/// Gives back a block from block_alloc(size): to the calling thread's cache while it has room.
void block_free(void* block, std::size_t size) noexcept;

/// Blocks of `size`'s class the calling thread keeps cached (tests).
int blocks_cached(std::size_t size) noexcept;

/// Base of a class whose objects come from the block cache (allocated with new (std::nothrow);
/// a class with a virtual destructor frees with its dynamic size, as the cache needs). Not for
/// objects holding a pthread mutex: ThreadSanitizer forgets a mutex's lock order only when its
/// memory is freed, and a recycled one would carry its predecessor's (an instance's ctl mutex,
/// reused thousands of times, makes its deadlock detector crawl).
struct BlockCached {
  static void* operator new(std::size_t size, const std::nothrow_t& /*tag*/) noexcept {
    return block_alloc(size);
  }
  static void operator delete(void* block, std::size_t size) noexcept { block_free(block, size); }
};

}  // namespace uepoll::detail
