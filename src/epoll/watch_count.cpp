#include "epoll/watch_count.hpp"

#include <atomic>

#include "sync/thread_exit.hpp"
#include "uepoll/sync.hpp"

namespace uepoll::detail {
namespace {

constexpr long kBatch = 32;

// One thread's share of the count. Plain thread-local data (no destructor), so that a close in
// a thread_local destructor still counts; ThreadExit folds it into the total after them all.
struct ThreadDelta {
  std::atomic<long> delta{0};  // written by its thread only; read by exact sums
  bool registered = false;
  bool exited = false;          // folded at thread exit: later changes go to the total directly
  ThreadDelta* prev = nullptr;  // the registry, under g_mutex
  ThreadDelta* next = nullptr;
};

UEPOLL_HOT_TLS constinit thread_local ThreadDelta t_delta;

Mutex g_mutex{LockLevel::kLeaf};  // the registry of thread deltas
ThreadDelta* g_threads UEPOLL_GUARDED_BY(g_mutex) = nullptr;
std::atomic<long> g_thread_count{0};
std::atomic<long> g_total{0};

void fold_at_exit(void*) noexcept {
  ThreadDelta& t = t_delta;
  MutexLock guard(g_mutex);
  g_total.fetch_add(t.delta.exchange(0, std::memory_order_relaxed), std::memory_order_relaxed);
  (t.prev != nullptr ? t.prev->next : g_threads) = t.next;
  if (t.next != nullptr) {
    t.next->prev = t.prev;
  }
  g_thread_count.fetch_sub(1, std::memory_order_relaxed);
  t.registered = false;
  t.exited = true;
}

ThreadExit& thread_exit() noexcept {
  static ThreadExit hook(&fold_at_exit);
  return hook;
}

// The calling thread's delta, or null when changes must go to the total directly.
ThreadDelta* mine() noexcept {
  ThreadDelta& t = t_delta;
  if (t.registered) {
    return &t;
  }
  if (t.exited || !thread_exit().arm()) {
    t.exited = true;
    return nullptr;
  }
  MutexLock guard(g_mutex);
  t.next = g_threads;
  if (t.next != nullptr) {
    t.next->prev = &t;
  }
  g_threads = &t;
  g_thread_count.fetch_add(1, std::memory_order_relaxed);
  t.registered = true;
  return &t;
}

void add(ThreadDelta* t, long n) noexcept {
  if (t == nullptr) {
    g_total.fetch_add(n, std::memory_order_relaxed);
    return;
  }
  long d = t->delta.load(std::memory_order_relaxed) + n;
  if (d >= kBatch || d <= -kBatch) {
    g_total.fetch_add(d, std::memory_order_relaxed);
    d = 0;
  }
  t->delta.store(d, std::memory_order_relaxed);
}

long exact_locked() UEPOLL_REQUIRES(g_mutex) {
  long sum = g_total.load(std::memory_order_relaxed);
  for (ThreadDelta* t = g_threads; t != nullptr; t = t->next) {
    sum += t->delta.load(std::memory_order_relaxed);
  }
  return sum;
}

}  // namespace

bool watch_count_try_add(long limit) noexcept {
  ThreadDelta* me = mine();
  const long slack = kBatch * g_thread_count.load(std::memory_order_relaxed);
  if (g_total.load(std::memory_order_relaxed) + slack < limit) {
    add(me, 1);  // far from the limit: no thread's delta can matter
    return true;
  }
  // Near the limit: decide on the exact count, serialised so that two threads cannot both take
  // the last slot.
  MutexLock guard(g_mutex);
  if (exact_locked() >= limit) {
    return false;
  }
  add(me, 1);
  return true;
}

void watch_count_sub() noexcept { add(mine(), -1); }

long watch_count_exact() noexcept {
  MutexLock guard(g_mutex);
  return exact_locked();
}

}  // namespace uepoll::detail
