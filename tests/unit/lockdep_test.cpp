// The debug checks of docs/locking.md's rules (UEPOLL_LOCKDEP builds): each broken rule aborts
// with a message that names it. The whole test suite runs with these checks in the debug
// presets; these tests show that each check fires.
#include <gtest/gtest.h>

#include "uepoll/blocking.hpp"
#include "uepoll/file.hpp"
#include "uepoll/sync.hpp"
#include "uepoll/wait_queue.hpp"

namespace {

using uepoll::LockLevel;
using uepoll::Mutex;
using uepoll::MutexLock;
using uepoll::SpinGuard;
using uepoll::SpinLock;

class Plain final : public uepoll::File {
 public:
  Plain() noexcept : File(O_RDWR) {}
  uepoll::PollMask poll(uepoll::PollTable*) noexcept override { return 0; }
};

TEST(LockdepDeathTest, OuterLockUnderAnInnerOneAborts) {
  Mutex instance(LockLevel::kInstance);
  Mutex nesting(LockLevel::kNesting);
  EXPECT_DEATH(
      {
        MutexLock inner(instance);
        MutexLock outer(nesting);
      },
      "lock order violated");
}

TEST(LockdepDeathTest, SameLevelThatDoesNotNestAborts) {
  SpinLock a(LockLevel::kReady);
  SpinLock b(LockLevel::kReady);
  EXPECT_DEATH(
      {
        SpinGuard first(a);
        SpinGuard second(b);
      },
      "lock order violated");
}

// Clang's analysis rejects this at compile time; the run-time check catches what it cannot see.
void lock_twice(Mutex& m) UEPOLL_NO_THREAD_SAFETY_ANALYSIS {
  MutexLock first(m);
  MutexLock second(m);
}

TEST(LockdepDeathTest, RecursiveAcquisitionAborts) {
  Mutex m(LockLevel::kTable);
  EXPECT_DEATH(lock_twice(m), "recursive acquisition");
}

TEST(LockdepDeathTest, AllocationUnderASpinLockAborts) {
  SpinLock lock;
  EXPECT_DEATH(
      {
        SpinGuard guard(lock);
        auto f = uepoll::make_ref<Plain>();
      },
      "allocation under a spinlock");
}

TEST(LockdepDeathTest, ReferenceDroppedUnderAnInstanceMutexAborts) {
  auto f = uepoll::make_ref<Plain>();
  f->get();
  Mutex instance(LockLevel::kInstance);
  EXPECT_DEATH(
      {
        MutexLock guard(instance);
        f->put();
      },
      "file reference dropped under an instance mutex");
  f->put();
}

// The reference rules: a new reference only from one already held (lookups use try_get), and
// no put without a reference. The released file is retired, not freed yet, when it is touched.
TEST(LockdepDeathTest, GetOfAReleasedFileAborts) {
  EXPECT_DEATH(
      {
        auto* f = new Plain;  // one reference
        f->put();             // the last: released
        f->get();
      },
      "of a file whose last reference is gone");
}

TEST(LockdepDeathTest, PutWithoutAReferenceAborts) {
  EXPECT_DEATH(
      {
        auto* f = new Plain;
        f->put();
        f->put();
      },
      "without a reference");
}

TEST(LockdepDeathTest, SleepUnderASpinLockAborts) {
  SpinLock lock;
  EXPECT_DEATH(
      {
        uepoll::Waiter waiter;
        uepoll::WaitQueue queue;
        waiter.arm(queue);
        SpinGuard guard(lock);
        const timespec now = uepoll::deadline_after(timespec{});
        (void)waiter.sleep(&now);
      },
      "sleep under a spinlock");
}

TEST(LockdepDeathTest, QueueDestroyedWithAHookedEntryAborts) {
  EXPECT_DEATH(
      {
        uepoll::Waiter waiter;
        auto* queue = new uepoll::WaitQueue;
        waiter.arm(*queue);
        delete queue;
      },
      "wait queue destroyed with entries still hooked");
}

TEST(Lockdep, DocumentedNestingIsAllowed) {
  Mutex parent(LockLevel::kInstance);
  Mutex child(LockLevel::kInstance);
  SpinLock source(LockLevel::kWaitQueue);
  SpinLock upper(LockLevel::kWaitQueue);
  SpinLock ready(LockLevel::kReady);
  {
    MutexLock a(parent);
    MutexLock b(child);
    SpinGuard c(source);
    SpinGuard d(upper);
    SpinGuard e(ready);
  }
  EXPECT_EQ(uepoll::detail::lockdep_spinlocks_held(), 0);
}

}  // namespace
