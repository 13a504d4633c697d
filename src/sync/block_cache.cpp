#include "sync/block_cache.hpp"

#include <cstdlib>

#include "sync/thread_exit.hpp"

#if defined(__SANITIZE_ADDRESS__)
// All of a cached block but its link: LeakSanitizer does not follow pointers kept in poisoned
// memory, and would report every cached block as lost.
#include <sanitizer/asan_interface.h>
#define UEPOLL_POISON(p, n) \
  ASAN_POISON_MEMORY_REGION(static_cast<Block*>(p) + 1, (n) - sizeof(Block))
#define UEPOLL_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define UEPOLL_POISON(p, n) ((void)(p), (void)(n))
#define UEPOLL_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace uepoll::detail {
namespace {

constexpr std::size_t kClassSizes[] = {128, 256};
constexpr int kClasses = 2;

struct Block {
  Block* next;
};

// One thread's cached blocks. Plain thread-local data (no destructor), cleaned up by ThreadExit
// after the thread's thread_local destructors, whose frees may still land here.
struct Cache {
  Block* head[kClasses] = {};
  int count[kClasses] = {};
  bool armed = false;
  bool exited = false;  // the cleanup ran (or cannot run): free to malloc from now on
};

UEPOLL_HOT_TLS constinit thread_local Cache t_cache;

// The class of `size`, or -1 for malloc's.
int class_of(std::size_t size) noexcept {
  return size <= kClassSizes[0] ? 0 : size <= kClassSizes[1] ? 1 : -1;
}

void on_thread_exit(void*) noexcept {
  Cache& c = t_cache;
  c.exited = true;
  for (int k = 0; k < kClasses; ++k) {
    while (Block* b = c.head[k]) {
      UEPOLL_UNPOISON(b, kClassSizes[k]);
      c.head[k] = b->next;
      std::free(b);
    }
    c.count[k] = 0;
  }
}

bool arm(Cache& c) noexcept {
  static ThreadExit hook(&on_thread_exit);
  c.armed = hook.arm();
  c.exited = !c.armed;  // no cleanup would run at exit: never cache anything
  return c.armed;
}

}  // namespace

void* block_alloc(std::size_t size) noexcept {
  const int k = class_of(size);
  if (k < 0) {
    return std::malloc(size);
  }
  Cache& c = t_cache;
  Block* b = c.head[k];
  if (b == nullptr) {
    return std::malloc(kClassSizes[k]);
  }
  UEPOLL_UNPOISON(b, kClassSizes[k]);
  c.head[k] = b->next;
  --c.count[k];
  return b;
}

void block_free(void* block, std::size_t size) noexcept {
  const int k = class_of(size);
  Cache& c = t_cache;
  if (block == nullptr) {
    return;
  }
  if (k < 0 || c.count[k] == kBlocksCachedPerClass || c.exited || (!c.armed && !arm(c))) {
    std::free(block);
    return;
  }
  auto* b = static_cast<Block*>(block);
  b->next = c.head[k];
  c.head[k] = b;
  ++c.count[k];
  UEPOLL_POISON(b, kClassSizes[k]);
}

int blocks_cached(std::size_t size) noexcept {
  const int k = class_of(size);
  return k < 0 ? 0 : t_cache.count[k];
}

}  // namespace uepoll::detail
