// The epoll instance: interest set, ready list, harvest, wake-up callback and the three removal
// paths. The lock hierarchy is at the top of instance.hpp and, with the reasoning behind it, in
// docs/locking.md.
#include "epoll/instance.hpp"

#include <atomic>
#include <cerrno>
#include <new>
#include <optional>
#include <utility>

#include "core/counters.hpp"
#include "core/file_access.hpp"
#include "epoll/watch_count.hpp"
#include "sync/fault_injection.hpp"
#include "sync/mix.hpp"
#include "sync/sys.hpp"

namespace uepoll::detail {
namespace {

// Instance::overflow_ while no harvest runs (a harvest sets it to null: "running, none yet").
Watch* no_scan() noexcept { return reinterpret_cast<Watch*>(~std::uintptr_t{0}); }
// Watch::overflow_next while the item is not on the overflow chain.
Watch* not_chained() noexcept { return reinterpret_cast<Watch*>(~std::uintptr_t{0}); }

// --- the ready list: circular, doubly linked, with a sentinel ---
void list_init(ReadyNode& head) noexcept { head.prev = head.next = &head; }
bool list_empty(const ReadyNode& head) noexcept { return head.next == &head; }
bool linked(const ReadyNode& n) noexcept { return n.next != nullptr; }
// linked() without the ready lock, for an unhooked item under ctl_mutex_: then nothing links or
// unlinks it, and the only write to its `next` left is a wake-up appending behind it, which
// changes one non-null value for another (both sides atomic, as the memory model wants).
bool linked_unhooked(ReadyNode& n) noexcept {
  return std::atomic_ref(n.next).load(std::memory_order_relaxed) != nullptr;
}
void list_append(ReadyNode& head, ReadyNode* n) noexcept {
  n->prev = head.prev;
  n->next = &head;
  std::atomic_ref(head.prev->next).store(n, std::memory_order_relaxed);  // see linked_unhooked
  head.prev = n;
}
void list_prepend(ReadyNode& head, ReadyNode* n) noexcept {
  n->next = head.next;
  n->prev = &head;
  head.next->prev = n;
  head.next = n;
}
void list_unlink(ReadyNode* n) noexcept {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->prev = n->next = nullptr;
}
// Moves every node of `from` to the front of `to`, leaving `from` empty.
void list_splice_front(ReadyNode& from, ReadyNode& to) noexcept {
  if (list_empty(from)) {
    return;
  }
  ReadyNode* first = from.next;
  ReadyNode* last = from.prev;
  last->next = to.next;
  to.next->prev = last;
  to.next = first;
  first->prev = &to;
  list_init(from);
}

long host_max_user_watches() noexcept {
  long limit = 0;
  return sys::read_numbers("/proc/sys/fs/epoll/max_user_watches", &limit, 1) == 1 && limit > 0
             ? limit
             : 1L << 20;
}

std::atomic<long> g_max_user_watches{host_max_user_watches()};

}  // namespace

long max_user_watches() noexcept { return g_max_user_watches.load(std::memory_order_relaxed); }
void set_max_user_watches(long limit) noexcept {
  g_max_user_watches.store(limit, std::memory_order_relaxed);
}
long user_watches() noexcept { return watch_count_exact(); }

// ---------------------------------------------------------------------------------------------
// Life cycle

#if defined(UEPOLL_WITHOUT_LEGACY_MODE)
Instance::Instance(int status_flags, LockMode) noexcept : File(EpollTag{}, status_flags) {
#else
Instance::Instance(int status_flags, LockMode mode) noexcept
    : File(EpollTag{}, status_flags), legacy_(mode == LockMode::kLegacy) {
#endif
  count_up(Counter::kInstances);
  SpinGuard guard(ready_lock_);
  list_init(ready_);
  overflow_ = no_scan();
}

Instance::~Instance() {
  delete kernel_.load(std::memory_order_relaxed);
  delete[] buckets_;
  count_down(Counter::kInstances);
}

Result<Ref<File>> Instance::create(int status_flags, LockMode mode) noexcept {
  auto* ep = allocation_should_fail() ? nullptr : new (std::nothrow) Instance(status_flags, mode);
  if (ep == nullptr) {
    return Error{ENOMEM};
  }
  return Ref<File>::adopt(ep);
}

bool Instance::try_get_instance() noexcept {
  long refs = instance_refs_.load(std::memory_order_relaxed);
  do {
    if (refs == 0) {
      return false;
    }
  } while (!instance_refs_.compare_exchange_weak(refs, refs + 1, std::memory_order_acquire,
                                                 std::memory_order_relaxed));
  return true;
}

void Instance::put_instance() noexcept {
  if (instance_refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    rcu::retire([](void* object) { delete static_cast<Instance*>(object); }, this);
  }
}

void Instance::destroy() noexcept { put_instance(); }  // the file's share

// Removal path B: the instance's last reference went. Items whose file is itself being released
// (its pin fails) are left to that file's release (path C), which drops their references.
void Instance::release() noexcept {
  {
    MutexLock lock(ctl_mutex_);
    for_each_watch_locked([](Watch* w) { unhook(w); });
  }
  // Remove in batches, dropping the file pins only after unlocking: a pin may be the last
  // reference, and that file's release would take this instance's mutex again.
  constexpr int kBatch = 16;
  std::size_t bucket = 0;
  for (;;) {
    File* pinned[kBatch];
    int n = 0;
    {
      std::optional<GlobalMutexLock> legacy;
      if (legacy_) {
        legacy.emplace();
      }
      MutexLock lock(ctl_mutex_);
      while (bucket < bucket_count_ && n < kBatch) {
        Watch* w = buckets_[bucket];
        while (w != nullptr && n < kBatch) {
          Watch* next = w->hash_next;
          if (w->file->try_get()) {
            pinned[n++] = w->file;
            remove(w);
          }
          w = next;
        }
        if (w == nullptr) {
          ++bucket;
        }
      }
    }
    for (int i = 0; i < n; ++i) {
      pinned[i]->put();
      put_instance();  // never the last: the file's share is dropped by destroy()
    }
    if (n < kBatch) {
      break;
    }
  }
  // The kernel descriptors go with the last close, as the instance's own would on Linux (the
  // memory waits for RCU).
  if (KernelSide* ks = kernel_.load(std::memory_order_acquire)) {
    ks->close_fds();
  }
}

// Removal path C: `file` lost its last reference. Nothing else can change its watcher list now
// (ADD needs a reference, DEL and path B a pin, which fails), so the list needs no lock, and each
// item keeps its instance alive until it is removed.
void epoll_release_file(File& file) noexcept {
  std::optional<GlobalMutexLock> legacy;  // the pre-6.4 design: once per watched file released
  // Acquire: pairs with the insert that published the head (the last put ordered the rest).
  Watch* w = FileAccess::watchers(file).load(std::memory_order_acquire);
  while (w != nullptr) {
    if (w->instance->legacy() && !legacy) {
      legacy.emplace();
    }
    w = Instance::release_watch(w);
  }
}

Watch* Instance::release_watch(Watch* w) noexcept {
  Instance* ep = w->instance;
  Watch* next = w->file_next.load(std::memory_order_relaxed);
  {
    MutexLock lock(ep->ctl_mutex_);
    ep->remove_released(w);
  }
  ep->put_instance();  // after unlocking: the mutex lives inside the instance
  return next;
}

// ---------------------------------------------------------------------------------------------
// Interest set

namespace {
std::size_t hash_key(const File* file, int fd) noexcept {
  return mix_bits(reinterpret_cast<std::uintptr_t>(file) ^ (static_cast<std::uintptr_t>(fd) << 4));
}
}  // namespace

Watch* Instance::find(File* file, int fd) noexcept {
  if (bucket_count_ == 0) {
    return nullptr;
  }
  for (Watch* w = buckets_[hash_key(file, fd) & (bucket_count_ - 1)]; w != nullptr;
       w = w->hash_next) {
    if (w->file == file && w->fd == fd) {
      return w;
    }
  }
  return nullptr;
}

bool Instance::make_room() noexcept {
  if (watch_count_ < bucket_count_) {
    return true;
  }
  const std::size_t count = bucket_count_ == 0 ? 8 : bucket_count_ * 2;
  Watch** fresh = try_new_array<Watch*>(count);
  if (fresh == nullptr) {
    return bucket_count_ > 0;
  }
  for (std::size_t b = 0; b < bucket_count_; ++b) {
    for (Watch* x = buckets_[b]; x != nullptr;) {
      Watch* next = x->hash_next;
      Watch*& slot = fresh[hash_key(x->file, x->fd) & (count - 1)];
      x->hash_next = slot;
      slot = x;
      x = next;
    }
  }
  delete[] buckets_;
  buckets_ = fresh;
  bucket_count_ = count;
  return true;
}

void Instance::hash_insert(Watch* w) noexcept {
  Watch*& slot = buckets_[hash_key(w->file, w->fd) & (bucket_count_ - 1)];
  w->hash_next = slot;
  slot = w;
  ++watch_count_;
}

void Instance::hash_erase(Watch* w) noexcept {
  for (Watch** p = &buckets_[hash_key(w->file, w->fd) & (bucket_count_ - 1)]; *p != nullptr;
       p = &(*p)->hash_next) {
    if (*p == w) {
      *p = w->hash_next;
      --watch_count_;
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// epoll_ctl

Result<void> Instance::ctl(int op, Ref<File> target, int fd, const epoll_event& event) noexcept {
  bool removed = false;
  bool full_check = false;
  Result<void> result;
  {
    MutexLock lock(ctl_mutex_);
    // The loop and path checks are needed when this instance is itself watched, when a check in
    // flight has visited it, or when the target is an instance (Linux's rule).
    full_check = op == EPOLL_CTL_ADD &&
                 (FileAccess::watchers(*this).load(std::memory_order_acquire) != nullptr ||
                  check_in_flight_visited(this) || target->is_epoll());
    if (!full_check) {
      result = ctl_locked(op, target.get(), fd, event, nullptr, &removed);
    }
  }
  if (!full_check) {
    if (removed) {
      put_instance();  // after unlocking: the mutex lives inside the instance
    }
    return result;
  }
  // Slow path: the process-wide nesting mutex first, then this instance's mutex again.
  NestingCheck check;
  if (target->is_epoll()) {
    if (auto loop = check.check_loop(this, from(target.get())); !loop) {
      return loop;
    }
    // To watch an instance with a kernel side, this one needs one to mirror it in.
    if (from(target.get())->live_kernel_side() != nullptr) {
      if (auto made = make_kernel_side(); !made) {
        return made;
      }
    }
  } else {
    check.add_file(target.get());
  }
  MutexLock lock(ctl_mutex_);
  return ctl_locked(op, target.get(), fd, event, &check, &removed);  // ADD removes nothing
}

Result<void> Instance::ctl_locked(int op, File* target, int fd, const epoll_event& event,
                                  NestingCheck* check, bool* removed) noexcept {
  Watch* w = find(target, fd);
  epoll_event ev = event;
  switch (op) {
    case EPOLL_CTL_ADD:
      if (w != nullptr) {
        return Error{EEXIST};
      }
      ev.events |= EPOLLERR | EPOLLHUP;
      return insert(ev, target, fd, check);
    case EPOLL_CTL_DEL:
      if (w == nullptr) {
        return Error{ENOENT};
      }
      remove(w);
      *removed = true;
      return {};
    case EPOLL_CTL_MOD:
      if (w == nullptr) {
        return Error{ENOENT};
      }
      if ((w->events.load(std::memory_order_relaxed) & EPOLLEXCLUSIVE) != 0) {
        return Error{EINVAL};
      }
      ev.events |= EPOLLERR | EPOLLHUP;
      modify(w, ev);
      return {};
    default: return Error{EINVAL};
  }
}

namespace {

// The poll table of an ADD: hooks the new item on every queue the target's poll() names.
struct InsertTable : PollTable {
  explicit InsertTable(Watch* watch) noexcept : PollTable(&hook), w(watch) {}
  static void hook(PollTable& table, WaitQueue& queue) noexcept;
  Watch* w;
  int hooks = 0;
  bool out_of_memory = false;
};

}  // namespace

void InsertTable::hook(PollTable& table, WaitQueue& queue) noexcept {
  auto& t = static_cast<InsertTable&>(table);
  WatchHook* h = &t.w->hook;
  if (t.hooks++ > 0) {
    h = try_new<WatchHook>();
    if (h == nullptr) {
      t.out_of_memory = true;
      return;
    }
    h->on_wake = t.w->hook.on_wake;
    h->exclusive = t.w->hook.exclusive;
    h->watch = t.w;
    h->next_hook = t.w->hook.next_hook;
    t.w->hook.next_hook = h;
  }
  queue.add(*h);
}

Result<void> Instance::insert(const epoll_event& ev, File* target, int fd,
                              NestingCheck* check) noexcept {
  if (!watch_count_try_add(max_user_watches())) {
    return Error{ENOSPC};
  }
  auto* w = make_room() ? try_new<Watch>() : nullptr;
  if (w == nullptr) {
    watch_count_sub();
    return Error{ENOMEM};
  }
  count_up(Counter::kWatches);
  w->file = target;
  w->instance = this;
  w->fd = fd;
  w->events.store(ev.events, std::memory_order_relaxed);
  w->data = ev.data.u64;
  w->overflow_next = not_chained();
  w->hook.on_wake = &Instance::on_wake;
  w->hook.exclusive = (ev.events & EPOLLEXCLUSIVE) != 0;
  w->hook.watch = w;

  {
    // The caller holds a reference on `target`, so the target's last put (path C) sees this.
    SpinGuard guard(FileAccess::watchers_lock(*target));
    auto& head = FileAccess::watchers(*target);
    Watch* first = head.load(std::memory_order_relaxed);
    w->file_next.store(first, std::memory_order_relaxed);
    head.store(w, std::memory_order_release);  // publishes w to RCU walkers
  }
  hash_insert(w);
  get_instance();

  // From here on a failure unwinds with remove(); the instance reference cannot be the last,
  // because the caller holds the instance's file.
  if (check != nullptr) {
    if (Result<void> paths = check->check_paths(); !paths) {
      remove(w);
      instance_refs_.fetch_sub(1, std::memory_order_relaxed);
      return paths;
    }
  }
  InsertTable table(w);
  PollMask revents = poll_item(w, &table, 1);
  if (table.out_of_memory) {
    remove(w);
    instance_refs_.fetch_sub(1, std::memory_order_relaxed);
    return Error{ENOMEM};
  }
  if (target->is_epoll() && from(target)->live_kernel_side() != nullptr) {
    if (Result<void> linked_in = link_mirror(w); !linked_in) {  // the kernel's own checks
      remove(w);
      instance_refs_.fetch_sub(1, std::memory_order_relaxed);
      return linked_in;
    }
  }
  queue_if_ready(w, revents);
  return {};
}

void Instance::modify(Watch* w, const epoll_event& ev) noexcept {
  w->data = ev.data.u64;
  // seq_cst orders the new mask before the poll below, against callbacks that read the mask
  // without ctl_mutex_: either a callback sees the new mask, or the poll sees its state change.
  w->events.store(ev.events, std::memory_order_seq_cst);
  queue_if_ready(w, poll_item(w, nullptr, 1));
}

void Instance::queue_if_ready(Watch* w, PollMask revents) noexcept {
  if (revents == 0) {
    return;
  }
  bool wake_pollers = false;
  WakeBatch wakes;
  {
    SpinGuard guard(ready_lock_);
    if (!linked(*w)) {
      list_append(ready_, w);
      wake_one_sleeper();
      ring_if_heard();
      wake_pollers = poll_wait_.has_entries();
    }
  }
  if (wake_pollers) {
    poll_wait_.wake(EPOLLIN);
  }
}

void Instance::unhook(Watch* w) noexcept {
  WaitQueue::remove(w->hook);
  for (WatchHook* h = w->hook.next_hook; h != nullptr;) {
    WatchHook* next = h->next_hook;
    WaitQueue::remove(*h);
    delete h;
    h = next;
  }
  w->hook.next_hook = nullptr;
}

void Instance::remove(Watch* w) noexcept {
  unhook(w);  // no callback runs on w after this
  unlink_mirror(w);
  {
    // Singly linked (a file rarely has more than a few watchers, and it keeps a Watch within
    // 128 bytes): find the link that points at w. w->file_next stays intact, so an RCU walker
    // standing on w can still move on.
    SpinGuard guard(FileAccess::watchers_lock(*w->file));
    std::atomic<Watch*>* link = &FileAccess::watchers(*w->file);
    while (link->load(std::memory_order_relaxed) != w) {
      link = &link->load(std::memory_order_relaxed)->file_next;
    }
    link->store(w->file_next.load(std::memory_order_relaxed), std::memory_order_release);
  }
  forget(w);
}

void Instance::remove_released(Watch* w) noexcept {
  unhook(w);
  unlink_mirror(w);
  // w is the head of a list that only path C writes now (epoll_release_file).
  FileAccess::watchers(*w->file).store(w->file_next.load(std::memory_order_relaxed),
                                       std::memory_order_release);
  forget(w);
}

void Instance::forget(Watch* w) noexcept {
  hash_erase(w);
  if (linked_unhooked(*w)) {  // most items are not queued: skip the ready lock
    SpinGuard guard(ready_lock_);
    list_unlink(w);
  }
  watch_count_sub();
  rcu::retire(
      [](void* object) {
        delete static_cast<Watch*>(object);
        count_down(Counter::kWatches);
      },
      w);
}

// ---------------------------------------------------------------------------------------------
// Wake-ups

bool Instance::on_wake(WaitEntry& entry, PollMask key) noexcept {
  Watch* w = static_cast<WatchHook&>(entry).watch;
  Instance* ep = w->instance;
  const std::uint32_t events = w->events.load(std::memory_order_acquire);
  const bool exclusive = (events & EPOLLEXCLUSIVE) != 0;
  bool consumed = !exclusive;
  bool wake_pollers = false;
  {
    SpinGuard guard(ep->ready_lock_);
    // A fired EPOLLONESHOT item keeps only private bits and ignores everything; otherwise the
    // wake-up must carry a bit of interest (key 0: unknown, take it).
    if ((events & ~kPrivateBits) == 0 || (key != 0 && (key & events) == 0)) {
      return consumed;  // filtered out: not consumed if exclusive
    }
    if (ep->overflow_ != no_scan()) {
      // A harvest is running: park the item on the overflow chain once; done_scan requeues it.
      if (w->overflow_next == not_chained()) {
        w->overflow_next = ep->overflow_;
        ep->overflow_ = w;
      }
    } else if (!linked(*w)) {
      list_append(ep->ready_, w);
    }
    KernelSide* ks = ep->kernel_.load(std::memory_order_acquire);
    const bool kernel_sleepers = ks != nullptr && ks->live() && ks->sleepers > 0;
    if (ep->sleepers_ != nullptr || kernel_sleepers) {
      if (exclusive) {
        // An exclusive wake-up is consumed only by an instance with a thread to wake, and only
        // for the direction that thread is interested in.
        switch (key & (EPOLLIN | EPOLLOUT)) {
          case EPOLLIN: consumed = (events & EPOLLIN) != 0; break;
          case EPOLLOUT: consumed = (events & EPOLLOUT) != 0; break;
          case 0: consumed = true; break;
          default: break;
        }
      }
      ep->wake_one_sleeper();  // kicked at the end of the source's wake-up (WakeBatch)
    }
    ep->ring_if_heard();
    wake_pollers = ep->poll_wait_.has_entries();
  }
  if (wake_pollers) {
    ep->poll_wait_.wake(EPOLLIN);  // parents and poll() callers, outside the ready lock
  }
  return consumed;
}

void Instance::add_sleeper(Sleeper& s) noexcept {
  s.next = sleepers_;
  if (s.next != nullptr) {
    s.next->pprev = &s.next;
  }
  s.pprev = &sleepers_;
  sleepers_ = &s;
}

void Instance::unlink_sleeper(Sleeper& s) noexcept {
  *s.pprev = s.next;
  if (s.next != nullptr) {
    s.next->pprev = s.pprev;
  }
  s.next = nullptr;
  s.pprev = nullptr;
}

void Instance::wake_all_sleepers() noexcept {
  while (sleepers_ != nullptr) {
    wake_one_sleeper();
  }
}

void Instance::wake_one_sleeper() noexcept {
  Sleeper* s = sleepers_;
  if (s == nullptr) {
    return;
  }
  unlink_sleeper(*s);
  s->woken = true;
  // The kick may come after the sleeper has returned, even after its thread has exited:
  // parkers are never freed (blocking.hpp), so the worst case is a stale wake-up for the
  // parker's next owner, which every sleeper tolerates.
  if (s->parker != nullptr) {
    s->parker->unpark();
  }
}

// ---------------------------------------------------------------------------------------------
// Harvest

bool Instance::events_available() noexcept { return !list_empty(ready_) || overflow_ != no_scan(); }

void Instance::start_scan(ReadyNode& batch) noexcept {
  list_init(batch);
  SpinGuard guard(ready_lock_);
  list_splice_front(ready_, batch);
  overflow_ = nullptr;  // callbacks now chain items on the overflow list
}

void Instance::done_scan(ReadyNode& batch, ReadyNode* requeue) noexcept {
  WakeBatch wakes;
  SpinGuard guard(ready_lock_);
  if (requeue != nullptr) {
    list_splice_front(*requeue, ready_);  // ready_ is empty during a scan: this appends
  }
  done_scan_locked(batch);
}

void Instance::done_scan_locked(ReadyNode& batch) noexcept {
  // The overflow chain is newest first; inserting each at the front restores arrival order.
  for (Watch* w = overflow_; w != nullptr;) {
    Watch* next = w->overflow_next;
    w->overflow_next = not_chained();
    if (!linked(*w)) {
      list_prepend(ready_, w);
    }
    w = next;
  }
  overflow_ = no_scan();
  list_splice_front(batch, ready_);  // items not reached go first next time
  if (!list_empty(ready_)) {
    wake_one_sleeper();  // chain the wake-up: another waiter can take what is left
    ring_if_heard();
  }
}

PollMask Instance::poll_item(Watch* w, PollTable* table, int depth) noexcept {
  // A file whose last reference is gone reports nothing (Linux's failed pin); its release waits
  // for our ctl_mutex_ before tearing the object down, so polling it is still safe.
  if (w->file->released()) {
    return 0;
  }
  PollMask mask =
      w->file->is_epoll() ? from(w->file)->poll_nested(table, depth) : w->file->poll(table);
  return mask & w->events.load(std::memory_order_relaxed);
}

PollMask Instance::poll_nested(PollTable* table, int depth) noexcept {
  poll_wait(table, poll_wait_);
  KernelSide* ks = live_kernel_side();
  if (ks != nullptr) {
    poll_wait_kernel(table, ks->ep());
  }
  MutexLock lock(ctl_mutex_);  // nesting order: our parent's mutex (if any) is already held
  ReadyNode batch;
  start_scan(batch);
  PollMask result = 0;
  for (ReadyNode* n = batch.next; n != &batch;) {
    ReadyNode* next = n->next;
    if (poll_item(static_cast<Watch*>(n), nullptr, depth + 1) != 0) {
      result = EPOLLIN | EPOLLRDNORM;
      break;
    }
    list_unlink(n);  // queued by a wake-up that turned out not to matter: drop it
    n = next;
  }
  done_scan(batch);
  if (result == 0 && ks != nullptr && kernel_side_ready(*ks)) {
    result = EPOLLIN | EPOLLRDNORM;
  }
  return result;
}

Result<int> Instance::send_events(epoll_event* events, int maxevents) noexcept {
  MutexLock lock(ctl_mutex_);
  ReadyNode batch;
  start_scan(batch);
  // Level-triggered items delivered by this scan, in order. During a scan only the harvester
  // (holding ctl_mutex_) links or unlinks items, so this needs no lock; done_scan puts it back.
  ReadyNode requeue;
  list_init(requeue);
  int delivered = 0;
  int error = 0;
  for (ReadyNode* n = batch.next; n != &batch && delivered < maxevents;) {
    ReadyNode* next = n->next;
    auto* w = static_cast<Watch*>(n);
    list_unlink(w);
    n = next;
    PollMask revents = poll_item(w, nullptr, 1);
    if (revents == 0) {
      continue;
    }
    if (events == nullptr) {
      // The copy-out faults (Linux's EFAULT): the item goes back for the next harvest.
      list_prepend(batch, w);
      if (delivered == 0) {
        error = EFAULT;
      }
      break;
    }
    events[delivered].events = revents;
    events[delivered].data.u64 = w->data;
    ++delivered;
    const std::uint32_t mask = w->events.load(std::memory_order_relaxed);
    if ((mask & EPOLLONESHOT) != 0) {
      w->events.store(mask & kPrivateBits, std::memory_order_release);
    } else if ((mask & EPOLLET) == 0) {
      list_append(requeue, w);  // back to the tail, re-polled next time: the round-robin
    }
  }
  done_scan(batch, &requeue);
  if (error != 0) {
    return Error{error};
  }
  return delivered;
}

// ---------------------------------------------------------------------------------------------
// epoll_wait

// Long, but one loop whose exits are epoll_wait's contract (events, timeout, signal), with each
// sleeper's hook and unhook paired inside it.
// NOLINTNEXTLINE(readability-function-size)
Result<int> Instance::wait(epoll_event* events, int maxevents, Timeout timeout,
                           const sigset_t* sigmask) noexcept {
  bool timed_out = timeout.is_zero();
  if (KernelSide* ks = live_kernel_side()) {
    return wait_with_kernel(*ks, events, maxevents, timeout, timed_out, sigmask);
  }
  bool available;
  {
    SpinGuard guard(ready_lock_);
    available = events_available();
  }
  ParkerLease lease;  // taken only when the thread has to sleep
  for (;;) {
    if (available) {
      Result<int> r = send_events(events, maxevents);
      if (!r.has_value() || r.value() > 0) {
        return r;
      }
    }
    if (timed_out) {
      return 0;
    }
    Sleeper me;
    me.parker = lease.acquire();
    KernelSide* ks;
    {
      SpinGuard guard(ready_lock_);
      available = events_available();
      // Under the lock that make_kernel_side's wake-up of the sleepers takes: a kernel side
      // that went live after our first look is seen here, or wakes us.
      ks = live_kernel_side();
      if (!available && ks == nullptr) {
        add_sleeper(me);
      }
    }
    if (ks != nullptr) {
      return wait_with_kernel(*ks, events, maxevents, timeout, timed_out, sigmask);
    }
    if (available) {
      continue;
    }
    Result<void> slept =
        lease.sleep(SleepSpec{timeout.deadline(), sigmask, /*restart_after_handler=*/false});
    bool woken;
    {
      SpinGuard guard(ready_lock_);
      woken = me.woken;
      if (!woken) {
        unlink_sleeper(me);
      }
    }
    if (slept.has_value()) {
      available = woken;  // else a stale or spurious wake-up: check again, then sleep again
      continue;
    }
    switch (slept.error()) {
      case ETIMEDOUT:
        timed_out = true;
        available = woken;  // a waiter woken just before its timeout still harvests
        break;
      case EINTR: {
        // A signal handler ran: deliver what is ready, else report the interruption. Linux
        // never restarts epoll_wait, SA_RESTART or not.
        {
          SpinGuard guard(ready_lock_);
          available = events_available();
        }
        if (available) {
          Result<int> r = send_events(events, maxevents);
          if (!r.has_value() || r.value() > 0) {
            return r;
          }
        }
        return Error{EINTR};
      }
      default: return Error{slept.error()};  // EFAULT: the signal mask could not be read
    }
  }
}

}  // namespace uepoll::detail
