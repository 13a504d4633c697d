#include "sync/rcu.hpp"

#include <dlfcn.h>
#include <pthread.h>
#include <urcu-bp.h>

#include "sync/fault_injection.hpp"
#include "sync/thread_exit.hpp"
#include "uepoll/sync.hpp"

#if defined(UEPOLL_TSAN)
// liburcu is not instrumented, so ThreadSanitizer cannot see the grace period that orders a
// reader's accesses before the free. Model it: every read-side exit releases a token that every
// free after a grace period acquires first.
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
namespace {
char g_grace_period_token;
}
#define UEPOLL_GRACE_RELEASE() __tsan_release(&g_grace_period_token)
#define UEPOLL_GRACE_ACQUIRE() __tsan_acquire(&g_grace_period_token)
#else
#define UEPOLL_GRACE_RELEASE() ((void)0)
#define UEPOLL_GRACE_ACQUIRE() ((void)0)
#endif

// Where this copy's liburcu-bp fork hook is, for other copies of uepoll to find (below).
extern "C" {
[[gnu::visibility("default")]] extern void (*const uepoll_urcu_bp_fork_hook_v1)();
void (*const uepoll_urcu_bp_fork_hook_v1)() = &urcu_bp_before_fork;
}

namespace uepoll::rcu {
namespace {

constexpr int kBatchSize = 64;

struct Batch {
  Batch* next = nullptr;
  int count = 0;
  struct Item {
    FreeFn free_fn;
    void* object;
  } items[kBatchSize];
};

// One thread's retired objects. Plain thread-local data (no destructor): it outlives every
// thread_local destructor of the thread, and ThreadExit cleans it up after them.
struct ThreadList {
  SpinLock lock{LockLevel::kLeaf};  // the owner vs barrier(), which empties every list
  Batch* batches UEPOLL_GUARDED_BY(lock) = nullptr;  // newest first; only the first is partial
  long pending UEPOLL_GUARDED_BY(lock) = 0;
  Batch* spare = nullptr;  // owner only: the next batch, allocated outside the lock
  bool registered = false;
  bool exited = false;
  ThreadList* prev = nullptr;  // the registry, under g_registry_mutex
  ThreadList* next = nullptr;
};

UEPOLL_HOT_TLS constinit thread_local ThreadList t_list;

Mutex g_registry_mutex{LockLevel::kTable};
ThreadList* g_registry UEPOLL_GUARDED_BY(g_registry_mutex) = nullptr;

constinit GraceSequence g_grace;

void wait_for_readers() noexcept {
  detail::lockdep_assert_may_block("RCU grace period under a spinlock");
  g_grace.wait([] { urcu_bp_synchronize_rcu(); });
  UEPOLL_GRACE_ACQUIRE();
}

// Frees every object of `list` (retired before the grace period the caller waited for) and
// returns one emptied batch for reuse; the others are deleted.
Batch* free_all(Batch* list) noexcept {
  Batch* keep = nullptr;
  while (list != nullptr) {
    Batch* b = list;
    list = b->next;
    for (int i = 0; i < b->count; ++i) {
      b->items[i].free_fn(b->items[i].object);
    }
    if (keep == nullptr) {
      b->next = nullptr;
      b->count = 0;
      keep = b;
    } else {
      delete b;
    }
  }
  return keep;
}

Batch* take_all(ThreadList& t) noexcept UEPOLL_EXCLUDES(t.lock) {
  SpinGuard guard(t.lock);
  Batch* list = t.batches;
  t.batches = nullptr;
  t.pending = 0;
  return list;
}

// The owner frees its whole list after one grace period.
void reclaim(ThreadList& t) noexcept {
  Batch* list = take_all(t);
  if (list == nullptr) {
    return;
  }
  wait_for_readers();
  Batch* emptied = free_all(list);
  if (t.spare == nullptr) {
    t.spare = emptied;
  } else {
    delete emptied;
  }
}

void on_thread_exit(void*) noexcept {
  ThreadList& t = t_list;
  {
    MutexLock guard(g_registry_mutex);
    (t.prev != nullptr ? t.prev->next : g_registry) = t.next;
    if (t.next != nullptr) {
      t.next->prev = t.prev;
    }
  }
  t.registered = false;
  t.exited = true;  // from now on this thread frees at once
  reclaim(t);
  delete t.spare;
  t.spare = nullptr;
}

detail::ThreadExit& thread_exit() noexcept {
  static detail::ThreadExit hook(&on_thread_exit);
  return hook;
}

void register_thread(ThreadList& t) noexcept {
  if (!thread_exit().arm()) {
    t.exited = true;  // no cleanup would run at exit: never keep anything pending
    return;
  }
  MutexLock guard(g_registry_mutex);
  t.next = g_registry;
  if (t.next != nullptr) {
    t.next->prev = &t;
  }
  g_registry = &t;
  t.registered = true;
}

void free_now(FreeFn free_fn, void* object) noexcept {
  wait_for_readers();
  free_fn(object);
}

// fork() copies the memory of every thread and keeps one: a lock another thread held at that
// moment would stay held in the child for good. The locks that run a grace period (ours, then
// liburcu-bp's, which asks its users to call its hooks around fork) and the registry are
// therefore taken before and released on both sides after. The child's registry keeps only
// the forking thread: the others do not exist there, and what they had retired stays unfreed.
//
// liburcu-bp's hooks must run once per fork for each copy of liburcu-bp (twice, the second
// blocks for good on a lock the first took). Two copies of uepoll may share one: the
// interposer and a libuepoll.so the program links, each with its own registry and sequence.
// Each shared copy exports where its liburcu-bp's hook is; a copy leaves the hooks to the
// first one the dynamic linker finds, if that one uses the same liburcu-bp. (A static copy
// normally carries its own liburcu-bp and so keeps its hooks.) A program that uses liburcu-bp
// itself must leave its fork hooks to uepoll (docs/deviations.md).
bool g_calls_urcu_fork_hooks = false;  // written once, before any fork could run the handlers

bool calls_urcu_fork_hooks() noexcept {
  using Hook = void (*const)();
  const auto* first = static_cast<Hook*>(dlsym(RTLD_DEFAULT, "uepoll_urcu_bp_fork_hook_v1"));
  if (first == nullptr || *first != &urcu_bp_before_fork) {
    return true;  // no other copy, or one with a liburcu-bp of its own
  }
  // The exported name binds every copy to the first one, this copy's own references included:
  // whether that one is this copy, the object holding it tells.
  Dl_info theirs{};
  Dl_info ours{};
  return dladdr(first, &theirs) != 0 && dladdr(&g_calls_urcu_fork_hooks, &ours) != 0 &&
         theirs.dli_fbase == ours.dli_fbase;
}

void before_fork() noexcept UEPOLL_NO_THREAD_SAFETY_ANALYSIS {
  g_registry_mutex.lock();
  g_grace.before_fork();
  if (g_calls_urcu_fork_hooks) {
    urcu_bp_before_fork();
  }
}

void after_fork_in_parent() noexcept UEPOLL_NO_THREAD_SAFETY_ANALYSIS {
  if (g_calls_urcu_fork_hooks) {
    urcu_bp_after_fork_parent();
  }
  g_grace.after_fork();
  g_registry_mutex.unlock();
}

void after_fork_in_child() noexcept UEPOLL_NO_THREAD_SAFETY_ANALYSIS {
  if (g_calls_urcu_fork_hooks) {
    urcu_bp_after_fork_child();
  }
  g_grace.after_fork();
  ThreadList& t = t_list;
  t.prev = nullptr;
  t.next = nullptr;
  g_registry = t.registered ? &t : nullptr;
  g_registry_mutex.unlock();
}

// Registered when the library is loaded (glibc drops the handlers again if it is unloaded).
[[maybe_unused]] const int g_fork_handlers = [] {
  g_calls_urcu_fork_hooks = calls_urcu_fork_hooks();
  return pthread_atfork(&before_fork, &after_fork_in_parent, &after_fork_in_child);
}();

}  // namespace

ReadGuard::ReadGuard() noexcept { urcu_bp_read_lock(); }

ReadGuard::~ReadGuard() {
  UEPOLL_GRACE_RELEASE();
  urcu_bp_read_unlock();
}

void retire(FreeFn free_fn, void* object) noexcept {
  detail::lockdep_assert_may_block("object retired under a spinlock");  // it may wait for readers
  ThreadList& t = t_list;
  if (!t.registered && !t.exited) {
    register_thread(t);
  }
  if (t.exited) {
    free_now(free_fn, object);
    return;
  }
  if (t.spare == nullptr) {
    t.spare = detail::try_new<Batch>();  // outside the spinlock
  }
  bool queued = false;
  bool full = false;
  {
    SpinGuard guard(t.lock);
    Batch* b = t.batches;
    if (b == nullptr || b->count == kBatchSize) {
      b = t.spare;
      if (b != nullptr) {
        t.spare = nullptr;
        b->next = t.batches;
        t.batches = b;
      }
    }
    if (b != nullptr) {
      b->items[b->count++] = {free_fn, object};
      queued = true;
      full = ++t.pending >= kMaxPendingPerThread;
    }
  }
  if (!queued) {
    free_now(free_fn, object);  // no memory to queue it: wait here instead
  } else if (full) {
    reclaim(t);  // back-pressure: this thread waits for its own frees
  }
}

void barrier() noexcept {
  Batch* all = nullptr;
  {
    MutexLock guard(g_registry_mutex);
    for (ThreadList* t = g_registry; t != nullptr; t = t->next) {
      Batch* list = take_all(*t);
      while (list != nullptr) {
        Batch* b = list;
        list = b->next;
        b->next = all;
        all = b;
      }
    }
  }
  if (all != nullptr) {
    wait_for_readers();
    delete free_all(all);
  }
}

void synchronize() noexcept { wait_for_readers(); }

GraceStats grace_stats() noexcept { return {g_grace.completed(), g_grace.waiting()}; }

long thread_pending() noexcept {
  ThreadList& t = t_list;
  SpinGuard guard(t.lock);
  return t.pending;
}

}  // namespace uepoll::rcu
