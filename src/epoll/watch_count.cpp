#include "epoll/watch_count.hpp"

#include <atomic>

#include "uepoll/sync.hpp"

namespace uepoll::detail {
namespace {

constexpr long kBatch = 32;

struct ThreadDelta;

Mutex g_mutex;  // the registry of thread deltas
ThreadDelta* g_threads UEPOLL_GUARDED_BY(g_mutex) = nullptr;
std::atomic<long> g_thread_count{0};
std::atomic<long> g_total{0};

struct ThreadDelta {
  std::atomic<long> delta{0};  // written by its thread only; read by exact sums
  ThreadDelta* prev = nullptr;
  ThreadDelta* next = nullptr;

  ThreadDelta() noexcept {
    MutexLock guard(g_mutex);
    next = g_threads;
    if (next != nullptr) {
      next->prev = this;
    }
    g_threads = this;
    g_thread_count.fetch_add(1, std::memory_order_relaxed);
  }
  ~ThreadDelta() {
    MutexLock guard(g_mutex);
    g_total.fetch_add(delta.exchange(0, std::memory_order_relaxed), std::memory_order_relaxed);
    if (prev != nullptr) {
      prev->next = next;
    } else {
      g_threads = next;
    }
    if (next != nullptr) {
      next->prev = prev;
    }
    g_thread_count.fetch_sub(1, std::memory_order_relaxed);
  }

  void add(long n) noexcept {
    long d = delta.load(std::memory_order_relaxed) + n;
    if (d >= kBatch || d <= -kBatch) {
      g_total.fetch_add(d, std::memory_order_relaxed);
      d = 0;
    }
    delta.store(d, std::memory_order_relaxed);
  }
};

thread_local ThreadDelta t_delta;

long exact_locked() UEPOLL_REQUIRES(g_mutex) {
  long sum = g_total.load(std::memory_order_relaxed);
  for (ThreadDelta* t = g_threads; t != nullptr; t = t->next) {
    sum += t->delta.load(std::memory_order_relaxed);
  }
  return sum;
}

}  // namespace

bool watch_count_try_add(long limit) noexcept {
  ThreadDelta& me = t_delta;
  const long slack = kBatch * g_thread_count.load(std::memory_order_relaxed);
  if (g_total.load(std::memory_order_relaxed) + slack < limit) {
    me.add(1);  // far from the limit: no thread's delta can matter
    return true;
  }
  // Near the limit: decide on the exact count, serialised so that two threads cannot both take
  // the last slot.
  MutexLock guard(g_mutex);
  if (exact_locked() >= limit) {
    return false;
  }
  me.add(1);
  return true;
}

void watch_count_sub() noexcept { t_delta.add(-1); }

long watch_count_exact() noexcept {
  MutexLock guard(g_mutex);
  return exact_locked();
}

}  // namespace uepoll::detail
