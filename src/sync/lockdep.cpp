// The debug lock-order checker behind uepoll/sync.hpp (UEPOLL_LOCKDEP builds only): a small
// per-thread stack of the locks held, checked against docs/locking.md's levels on every
// acquisition. The record is plain thread-local data with no destructor, so it stays valid in
// every thread-exit destructor.
#include "uepoll/sync.hpp"

#if defined(UEPOLL_LOCKDEP)

#include <execinfo.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace uepoll::detail {
namespace {

constexpr int kMaxHeld = 32;  // 5 instances + 5 wait queues along a chain, and the rest

struct Held {
  const void* lock;
  LockLevel level;
  bool spins;
};

struct HeldLocks {
  Held held[kMaxHeld];
  int count;
  int spinning;  // how many of them are SpinLocks
};

constinit thread_local HeldLocks t_locks{};

// Levels whose locks may nest inside one another (docs/locking.md §1).
bool nests(LockLevel level) noexcept {
  return level == LockLevel::kOperation || level == LockLevel::kInstance ||
         level == LockLevel::kWaitQueue || level == LockLevel::kObject;
}

[[noreturn]] void die() noexcept {
  void* frames[32];
  backtrace_symbols_fd(frames, backtrace(frames, 32), STDERR_FILENO);
  std::abort();
}

[[noreturn]] void violation(const char* what, const void* lock, LockLevel level) noexcept {
  std::fprintf(stderr, "uepoll lockdep: %s: lock %p (level %d); held, oldest first:\n", what, lock,
               static_cast<int>(level));
  for (int i = 0; i < t_locks.count; ++i) {
    std::fprintf(stderr, "  %p level %d\n", t_locks.held[i].lock,
                 static_cast<int>(t_locks.held[i].level));
  }
  die();
}

}  // namespace

void lockdep_acquire(const void* lock, LockLevel level, bool spins) noexcept {
  HeldLocks& t = t_locks;
  for (int i = 0; i < t.count; ++i) {
    const Held& h = t.held[i];
    if (h.lock == lock) {
      violation("recursive acquisition", lock, level);
    }
    if (h.level > level || (h.level == level && !nests(level))) {
      violation("lock order violated", lock, level);
    }
  }
  if (t.count == kMaxHeld) {
    violation("too many locks held", lock, level);
  }
  t.held[t.count++] = Held{lock, level, spins};
  t.spinning += spins ? 1 : 0;
}

void lockdep_release(const void* lock) noexcept {
  HeldLocks& t = t_locks;
  for (int i = t.count - 1; i >= 0; --i) {
    if (t.held[i].lock == lock) {
      t.spinning -= t.held[i].spins ? 1 : 0;
      for (int j = i; j + 1 < t.count; ++j) {
        t.held[j] = t.held[j + 1];
      }
      --t.count;
      return;
    }
  }
  violation("release of a lock not held", lock, LockLevel::kLeaf);
}

void lockdep_assert_not_held(LockLevel level, const char* what) noexcept {
  const HeldLocks& t = t_locks;
  for (int i = 0; i < t.count; ++i) {
    if (t.held[i].level == level) {
      violation(what, t.held[i].lock, level);
    }
  }
}

void lockdep_assert_may_block(const char* what) noexcept {
  const HeldLocks& t = t_locks;
  for (int i = 0; i < t.count && t.spinning > 0; ++i) {
    if (t.held[i].spins) {
      violation(what, t.held[i].lock, t.held[i].level);
    }
  }
}

int lockdep_spinlocks_held() noexcept { return t_locks.spinning; }

void rule_violated(const char* what) noexcept {
  std::fprintf(stderr, "uepoll: %s\n", what);
  die();
}

}  // namespace uepoll::detail

#endif  // UEPOLL_LOCKDEP
