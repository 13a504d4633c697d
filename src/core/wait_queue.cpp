#include "uepoll/wait_queue.hpp"

#include "uepoll/blocking.hpp"

namespace uepoll {

void WaitQueue::add(WaitEntry& entry) noexcept {
  link(entry);
  // Pairs with the fence in wake_common: the caller's look at the state after this cannot miss
  // a change whose wake-up did not see the entry.
  full_barrier();
}

void WaitQueue::link(WaitEntry& entry) noexcept {
  SpinGuard guard(lock_);
  entry.queue.store(this, std::memory_order_relaxed);
  WaitEntry* head = head_.load(std::memory_order_relaxed);
  if (head == nullptr) {
    entry.prev = nullptr;
    entry.next = nullptr;
    tail_ = &entry;
    head_.store(&entry, std::memory_order_release);
  } else if (!entry.exclusive) {
    entry.prev = nullptr;
    entry.next = head;
    head->prev = &entry;
    head_.store(&entry, std::memory_order_release);
  } else {
    entry.prev = tail_;
    entry.next = nullptr;
    tail_->next = &entry;
    tail_ = &entry;
  }
}

void WaitQueue::remove_locked(WaitEntry& entry) noexcept {
  if (entry.prev != nullptr) {
    entry.prev->next = entry.next;
  } else {
    head_.store(entry.next, std::memory_order_release);
  }
  if (entry.next != nullptr) {
    entry.next->prev = entry.prev;
  } else {
    tail_ = entry.prev;
  }
  entry.prev = nullptr;
  entry.next = nullptr;
  entry.queue.store(nullptr, std::memory_order_release);
}

void WaitQueue::remove(WaitEntry& entry) noexcept {
  // Only the entry's owner hooks it; a wake-up callback may unhook it concurrently, so the
  // pointer is re-checked under the lock.
  WaitQueue* queue = entry.queue.load(std::memory_order_acquire);
  if (queue == nullptr) {
    return;
  }
  SpinGuard guard(queue->lock_);
  if (entry.queue.load(std::memory_order_relaxed) == queue) {
    queue->remove_locked(entry);
  }
}

void WaitQueue::wake(PollMask key) noexcept { wake_common(key, /*all=*/false); }

void WaitQueue::wake_all(PollMask key) noexcept { wake_common(key, /*all=*/true); }

void WaitQueue::wake_common(PollMask key, bool all) noexcept {
  // Pairs with the fence in add: either this sees the new entry, or the hooker sees the state
  // change that preceded this wake-up.
  full_barrier();
  if (!has_entries()) {
    return;
  }
  WakeBatch wakes;  // threads woken by the callbacks are kicked after the lock is dropped
  SpinGuard guard(lock_);
  WaitEntry* entry = head_.load(std::memory_order_relaxed);
  while (entry != nullptr) {
    WaitEntry* next = entry->next;  // the callback may unhook its own entry
    bool exclusive = entry->exclusive;
    if (entry->on_wake(*entry, key) && exclusive && !all) {
      break;
    }
    entry = next;
  }
}

}  // namespace uepoll
