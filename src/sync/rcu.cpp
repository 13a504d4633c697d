#include "sync/rcu.hpp"
#include "uepoll/fault_injection.hpp"

#include <urcu-bp.h>

#include <cstddef>
#include <new>

#include "uepoll/sync.hpp"

#if defined(UEPOLL_TSAN)
// liburcu is not instrumented, so ThreadSanitizer cannot see the grace period that orders a
// reader's accesses before the free. Model it: every read-side exit releases a token that every
// deferred free acquires first; and a batch handed to liburcu's callback thread is released by
// the submitter and acquired by the callback.
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
namespace {
char g_grace_period_token;
}
#define UEPOLL_GRACE_RELEASE() __tsan_release(&g_grace_period_token)
#define UEPOLL_GRACE_ACQUIRE() __tsan_acquire(&g_grace_period_token)
#define UEPOLL_HANDOVER_RELEASE(p) __tsan_release(p)
#define UEPOLL_HANDOVER_ACQUIRE(p) __tsan_acquire(p)
#else
#define UEPOLL_GRACE_RELEASE() ((void)0)
#define UEPOLL_GRACE_ACQUIRE() ((void)0)
#define UEPOLL_HANDOVER_RELEASE(p) ((void)(p))
#define UEPOLL_HANDOVER_ACQUIRE(p) ((void)(p))
#endif

namespace uepoll::rcu {
namespace {

constexpr int kBatchSize = 64;

// Set once t_batch is destroyed at thread exit: a later retire() on this thread (from another
// thread-local's or a static object's destructor) must not touch it.
thread_local bool t_batch_gone = false;

struct Batch {
  struct rcu_head head;  // first: liburcu hands it back
  int count = 0;
  struct Item {
    FreeFn free_fn;
    void* object;
  } items[kBatchSize];
};

void free_batch(struct rcu_head* h) {
  UEPOLL_GRACE_ACQUIRE();
  UEPOLL_HANDOVER_ACQUIRE(h);
  Batch* batch = reinterpret_cast<Batch*>(h);
  for (int i = 0; i < batch->count; ++i) {
    batch->items[i].free_fn(batch->items[i].object);
  }
  delete batch;
}

void submit(Batch* batch) noexcept {
  UEPOLL_HANDOVER_RELEASE(&batch->head);
  urcu_bp_call_rcu(&batch->head, free_batch);
}

// A thread's partial batch. Registered so that barrier() can flush every thread's batch.
struct ThreadBatch {
  SpinLock lock;
  Batch* current UEPOLL_GUARDED_BY(lock) = nullptr;
  ThreadBatch* prev = nullptr;  // registry links, guarded by g_registry_mutex
  ThreadBatch* next = nullptr;

  ThreadBatch() noexcept;
  ~ThreadBatch();
  Batch* take() noexcept UEPOLL_EXCLUDES(lock) {
    SpinGuard guard(lock);
    Batch* b = current;
    current = nullptr;
    return b;
  }
};

Mutex g_registry_mutex;
ThreadBatch* g_registry UEPOLL_GUARDED_BY(g_registry_mutex) = nullptr;

ThreadBatch::ThreadBatch() noexcept {
  MutexLock guard(g_registry_mutex);
  next = g_registry;
  if (next != nullptr) {
    next->prev = this;
  }
  g_registry = this;
}

ThreadBatch::~ThreadBatch() {
  {
    MutexLock guard(g_registry_mutex);
    if (prev != nullptr) {
      prev->next = next;
    } else {
      g_registry = next;
    }
    if (next != nullptr) {
      next->prev = prev;
    }
  }
  if (Batch* b = take()) {
    submit(b);
  }
  t_batch_gone = true;
}

thread_local ThreadBatch t_batch;

}  // namespace

ReadGuard::ReadGuard() noexcept { urcu_bp_read_lock(); }

ReadGuard::~ReadGuard() {
  UEPOLL_GRACE_RELEASE();
  urcu_bp_read_unlock();
}

void retire(FreeFn free_fn, void* object) noexcept {
  if (t_batch_gone) {
    urcu_bp_synchronize_rcu();
    UEPOLL_GRACE_ACQUIRE();
    free_fn(object);
    return;
  }
  ThreadBatch& t = t_batch;
  Batch* full = nullptr;
  {
    SpinGuard guard(t.lock);
    if (t.current == nullptr) {
      t.current = detail::try_new<Batch>();
    }
    if (Batch* b = t.current) {
      b->items[b->count++] = {free_fn, object};
      if (b->count == kBatchSize) {
        full = b;
        t.current = nullptr;
      }
      object = nullptr;
    }
  }
  if (full != nullptr) {
    submit(full);
  }
  if (object != nullptr) {
    // No memory for a batch: wait out a grace period here instead.
    urcu_bp_synchronize_rcu();
    UEPOLL_GRACE_ACQUIRE();
    free_fn(object);
  }
}

void barrier() noexcept {
  {
    MutexLock guard(g_registry_mutex);
    for (ThreadBatch* t = g_registry; t != nullptr; t = t->next) {
      if (Batch* b = t->take()) {
        submit(b);
      }
    }
  }
  urcu_bp_barrier();
}

}  // namespace uepoll::rcu
