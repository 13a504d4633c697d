#include "sync/rcu.hpp"

#include <urcu-bp.h>

#include <cstddef>

#if defined(UEPOLL_TSAN)
// liburcu is not instrumented, so ThreadSanitizer cannot see the grace period that orders a
// reader's accesses before the free. Model it: every read-side exit releases a token that every
// deferred free acquires first.
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
namespace {
char g_grace_period_token;
}
#define UEPOLL_GRACE_RELEASE() __tsan_release(&g_grace_period_token)
#define UEPOLL_GRACE_ACQUIRE() __tsan_acquire(&g_grace_period_token)
// The hand-over of a retired object to liburcu's callback thread goes through its own queue.
#define UEPOLL_HANDOVER_RELEASE(p) __tsan_release(p)
#define UEPOLL_HANDOVER_ACQUIRE(p) __tsan_acquire(p)
#else
#define UEPOLL_GRACE_RELEASE() ((void)0)
#define UEPOLL_GRACE_ACQUIRE() ((void)0)
#define UEPOLL_HANDOVER_RELEASE(p) ((void)(p))
#define UEPOLL_HANDOVER_ACQUIRE(p) ((void)(p))
#endif

namespace uepoll::rcu {

static_assert(offsetof(Head, opaque) == 0 && sizeof(Head::opaque) >= sizeof(struct rcu_head));

namespace {

void run_free(struct rcu_head* h) {
  UEPOLL_GRACE_ACQUIRE();
  UEPOLL_HANDOVER_ACQUIRE(h);
  Head* head = reinterpret_cast<Head*>(h);  // rcu_head is Head's first member
  head->free_fn(head->object);
}

}  // namespace

ReadGuard::ReadGuard() noexcept { urcu_bp_read_lock(); }

ReadGuard::~ReadGuard() {
  UEPOLL_GRACE_RELEASE();
  urcu_bp_read_unlock();
}

void retire(Head* head, FreeFn free_fn, void* object) noexcept {
  head->free_fn = free_fn;
  head->object = object;
  UEPOLL_HANDOVER_RELEASE(head);
  urcu_bp_call_rcu(reinterpret_cast<struct rcu_head*>(head), run_free);
}

void barrier() noexcept { urcu_bp_barrier(); }

}  // namespace uepoll::rcu
