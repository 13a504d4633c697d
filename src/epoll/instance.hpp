// The epoll instance (Linux's struct eventpoll) and the item (struct epitem, here Watch).
//
// LOCKING (outermost first; see docs/locking.md for the full rules and the removal paths; the
// levels are uepoll::LockLevel, checked at run time in UEPOLL_LOCKDEP builds)
//   L1 g_nesting_mutex        process-wide; EPOLL_CTL_ADD with loop/path checks, and in
//                             LockMode::kLegacy also the close paths (Linux's old epmutex)
//   L2 Instance::ctl_mutex_   interest set, harvests, item removal; several may be held along
//                             a nesting chain, always parent before child
//      (objects' own locks, taken in poll())
//   L3 File::watchers_lock_   a watched file's list of items
//   L4 WaitQueue lock         a source's waiters; wake-up callbacks run under it
//   L5 Instance::ready_lock_  ready list, overflow list, threads in epoll_wait
// A callback holds its source's L4 and takes L5; after dropping L5 it may wake the instance's
// own poll queue (another L4, one nesting level up). Nothing takes L4 while holding L5. Threads
// woken under L4/L5 are kicked when the outermost WakeBatch ends, after every lock is dropped.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <optional>
#include <vector>

#include "core/file_access.hpp"
#include "epoll/epoll.hpp"
#include "epoll/kernel_side.hpp"
#include "sync/block_cache.hpp"
#include "sync/rcu.hpp"
#include "uepoll/blocking.hpp"
#include "uepoll/file.hpp"
#include "uepoll/lock_mode.hpp"
#include "uepoll/sync.hpp"

namespace uepoll {
namespace detail {

class Instance;

/// Bits of an item's mask that are not poll bits.
constexpr std::uint32_t kPrivateBits = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE;
/// At most this many epoll-to-epoll links on a chain (5 instances), as Linux's EP_MAX_NESTS.
constexpr int kMaxNests = 4;

/// Node of the ready list (circular, with a sentinel). Linked iff next != nullptr.
struct ReadyNode {
  ReadyNode* prev = nullptr;
  ReadyNode* next = nullptr;
};

/// A wait-queue hook of a Watch. The first one is embedded; objects that hook more than one
/// queue get extra hooks allocated at ADD time.
struct WatchHook : WaitEntry {
  Watch* watch = nullptr;
  WatchHook* next_hook = nullptr;
};

/// One registration: (file, fd) in one instance (Linux's epitem).
///
/// LIFETIME: created by ADD; removed by exactly one of the three removal paths (DEL, the
/// instance's release, the file's release), which all hold the instance's ctl_mutex_; freed
/// after an RCU grace period because the nesting checks walk watcher lists without locks. A Watch
/// holds a reference on its instance (not on its file).
struct Watch : ReadyNode, BlockCached {
  // --- immutable after ADD ---
  File* file = nullptr;
  Instance* instance = nullptr;
  int fd = -1;

  /// The interest mask with private bits. Written under ctl_mutex_; read by wake-up callbacks
  /// without it (release/acquire).
  std::atomic<std::uint32_t> events{0};
  std::uint64_t data = 0;  // guarded by the instance's ctl_mutex_

  // --- guarded by the instance's ctl_mutex_ ---
  Watch* hash_next = nullptr;

  // --- guarded by the instance's ready_lock_ ---
  Watch* overflow_next = nullptr;  // chain of items signalled during a harvest

  // --- guarded by file->watchers_lock_ (after the file's last put, by path C alone, without
  // it); also read under RCU ---
  std::atomic<Watch*> file_next{nullptr};

  WatchHook hook;  // hooks guarded by the instance's ctl_mutex_ (hooking and unhooking)
};
// Linux bounds its epitem at 128 bytes on 64-bit machines; so does uepoll.
static_assert(sizeof(Watch) <= 128, "a registration must fit in 128 bytes");

class NestingCheck;

class Instance final : public File {
 public:
  /// A new instance; `mode` decides whether its close paths take the process-wide mutex.
  static Result<Ref<File>> create(int status_flags, LockMode mode) noexcept;

  static Instance* from(File* f) noexcept { return static_cast<Instance*>(f); }

  PollMask poll(PollTable* table) noexcept override { return poll_nested(table, 0); }
  /// FIONREAD: an epoll's ioctl (Linux 6.9 and later) knows only the busy-poll parameters.
  Result<size_t> readable_bytes() noexcept override { return Error{EINVAL}; }

  /// epoll_ctl after the descriptor checks: `event` is already copied and checked.
  Result<void> ctl(int op, Ref<File> target, int fd, const epoll_event& event) noexcept
      UEPOLL_EXCLUDES(ctl_mutex_);
  /// epoll_wait after the argument checks.
  Result<int> wait(epoll_event* events, int maxevents, Timeout timeout,
                   const sigset_t* sigmask) noexcept UEPOLL_EXCLUDES(ctl_mutex_, ready_lock_);

  /// epoll_ctl of a kernel descriptor (uepoll_epoll_ctl_kernel) after the uepoll-side checks:
  /// the kernel answers for the descriptor. `event` is a valid copy, or null for DEL.
  Result<void> ctl_kernel(int op, int kfd, const epoll_event* event) noexcept
      UEPOLL_EXCLUDES(ctl_mutex_, ready_lock_);
  /// The kernel descriptor that polls readable while this instance has events
  /// (uepoll_epoll_kernel_fd); the instance owns it.
  Result<int> kernel_fd() noexcept UEPOLL_EXCLUDES(ctl_mutex_, ready_lock_);
  /// The kernel side, once waiters and parents use it (null: the instance has none).
  KernelSide* live_kernel_side() const noexcept {
    KernelSide* ks = kernel_.load(std::memory_order_acquire);
    return ks != nullptr && ks->live() ? ks : nullptr;
  }

  /// hand_over_watches (epoll.hpp).
  static void hand_over_watches(File& file, KernelStandIn& stand_in) noexcept;

  /// Removal path C for `w`, the head of its file's watcher list: the file's last reference
  /// went. Returns the next head.
  static Watch* release_watch(Watch* w) noexcept;
  /// LockMode::kLegacy: the close paths take the global mutex.
  bool legacy() const noexcept { return legacy_; }

  void get_instance() noexcept { instance_refs_.fetch_add(1, std::memory_order_relaxed); }
  /// get_instance() unless the count already reached zero (the instance is being retired).
  [[nodiscard]] bool try_get_instance() noexcept;
  void put_instance() noexcept;

  // Nesting checks (nesting.cpp) need these.
  Mutex ctl_mutex_{LockLevel::kInstance};
  std::atomic<std::uint64_t> check_gen_{0};  // written under g_nesting_mutex
  int check_depth_ = 0;                      // guarded by g_nesting_mutex

  template <class Fn>
  void for_each_watch_locked(Fn&& fn) UEPOLL_REQUIRES(ctl_mutex_) {
    for (std::size_t b = 0; b < bucket_count_; ++b) {
      for (Watch* w = buckets_[b]; w != nullptr; w = w->hash_next) {
        fn(w);
      }
    }
  }

 private:
  Instance(int status_flags, LockMode mode) noexcept;
  ~Instance() override;
  void release() noexcept override;
  void destroy() noexcept override;

  PollMask poll_nested(PollTable* table, int depth) noexcept UEPOLL_EXCLUDES(ctl_mutex_);
  /// True when the kernel side has events: kernel descriptors, inner instances' kernel events.
  /// First brings the bell in line with the uepoll side (found empty by the caller).
  bool kernel_side_ready(KernelSide& ks) noexcept UEPOLL_REQUIRES(ctl_mutex_);

  // The kernel side (kernel_side.hpp). make_kernel_side needs g_nesting_mutex: it walks up
  // the instances that watch this one and gives each a kernel side first.
  Result<void> make_kernel_side() noexcept UEPOLL_EXCLUDES(ctl_mutex_);
  /// Puts the kernel side of `w`'s instance into ours (a mirror); the caller made ours live.
  Result<void> link_mirror(Watch* w) noexcept UEPOLL_REQUIRES(ctl_mutex_);
  /// Takes it out again when `w` was the last item on that instance.
  void unlink_mirror(Watch* w) noexcept UEPOLL_REQUIRES(ctl_mutex_);
  /// Queues every item on an instance with a kernel side: a mirror reported an edge.
  void queue_mirrored_children() noexcept UEPOLL_REQUIRES(ctl_mutex_);
  Result<int> wait_with_kernel(KernelSide& ks, epoll_event* events, int maxevents, Timeout& timeout,
                               bool timed_out, const sigset_t* sigmask) noexcept
      UEPOLL_EXCLUDES(ctl_mutex_, ready_lock_);
  /// One harvest of both sides (uepoll items and kernel descriptors), each served first in turn.
  Result<int> harvest_both(KernelSide& ks, epoll_event* events, int maxevents) noexcept
      UEPOLL_EXCLUDES(ctl_mutex_, ready_lock_);
  Result<int> harvest_kernel(KernelSide& ks, epoll_event* events, int maxevents,
                             bool* mirrored) noexcept UEPOLL_EXCLUDES(ctl_mutex_, ready_lock_);
  /// Removes the bell and mirror events from what the kernel returned, acting on them;
  /// `mirrored` (if not null) says whether inner instances' items were queued.
  int filter_kernel_events(KernelSide& ks, epoll_event* events, int n, bool* mirrored) noexcept
      UEPOLL_EXCLUDES(ctl_mutex_, ready_lock_);
  /// Silences the bell, then rings it again if the uepoll side has events for a listener.
  void resync_bell(KernelSide& ks) noexcept UEPOLL_EXCLUDES(ready_lock_);
  /// Rings the bell if a thread sleeps on it or a kernel loop watches it.
  void ring_if_heard() noexcept UEPOLL_REQUIRES(ready_lock_);
  static PollMask poll_item(Watch* w, PollTable* table, int depth) noexcept;

  // Interest set: a hash of (file, fd) chained through Watch::hash_next.
  Watch* find(File* file, int fd) noexcept UEPOLL_REQUIRES(ctl_mutex_);
  /// Grows the table for one more item if needed; false only when there is no table at all
  /// and none could be allocated (a full table just gets longer chains).
  bool make_room() noexcept UEPOLL_REQUIRES(ctl_mutex_);
  void hash_insert(Watch* w) noexcept UEPOLL_REQUIRES(ctl_mutex_);
  void hash_erase(Watch* w) noexcept UEPOLL_REQUIRES(ctl_mutex_);

  Result<void> ctl_locked(int op, File* target, int fd, const epoll_event& event,
                          NestingCheck* check, bool* removed) noexcept UEPOLL_REQUIRES(ctl_mutex_);
  Result<void> insert(const epoll_event& event, File* target, int fd, NestingCheck* check) noexcept
      UEPOLL_REQUIRES(ctl_mutex_);
  void modify(Watch* w, const epoll_event& event) noexcept UEPOLL_REQUIRES(ctl_mutex_);
  /// Unhooks, detaches from the file and the instance, and retires `w`. The caller drops the
  /// instance reference `w` held, after unlocking ctl_mutex_.
  void remove(Watch* w) noexcept UEPOLL_REQUIRES(ctl_mutex_);
  /// remove() for path C, where `w` heads a watcher list that no one else may change.
  void remove_released(Watch* w) noexcept UEPOLL_REQUIRES(ctl_mutex_);
  /// The common tail of the removals: out of the table and the ready list, then retired.
  void forget(Watch* w) noexcept UEPOLL_REQUIRES(ctl_mutex_) UEPOLL_EXCLUDES(ready_lock_);
  static void unhook(Watch* w) noexcept;
  void queue_if_ready(Watch* w, PollMask revents) noexcept UEPOLL_EXCLUDES(ready_lock_);

  // Harvest (Linux's ep_start_scan / ep_done_scan / ep_send_events).
  void start_scan(ReadyNode& batch) noexcept UEPOLL_REQUIRES(ctl_mutex_)
      UEPOLL_EXCLUDES(ready_lock_);
  /// Ends a harvest: `requeue` (level-triggered items it delivered) goes back at the tail.
  void done_scan(ReadyNode& batch, ReadyNode* requeue = nullptr) noexcept
      UEPOLL_REQUIRES(ctl_mutex_) UEPOLL_EXCLUDES(ready_lock_);
  void done_scan_locked(ReadyNode& batch) noexcept UEPOLL_REQUIRES(ready_lock_);
  Result<int> send_events(epoll_event* events, int maxevents) noexcept UEPOLL_EXCLUDES(ctl_mutex_);
  bool events_available() noexcept UEPOLL_REQUIRES(ready_lock_);

  static bool on_wake(WaitEntry& entry, PollMask key) noexcept;
  static void hook_proc(PollTable& table, WaitQueue& queue) noexcept;

  // A thread blocked in epoll_wait. Newest first and woken one at a time, as Linux's exclusive
  // waiters on ep->wq: the thread that went to sleep last is woken first.
  struct Sleeper {
    Sleeper* next = nullptr;
    Sleeper** pprev = nullptr;
    Parker* parker = nullptr;  // null: the sleeper naps and re-checks `woken`
    bool woken = false;
  };
  void add_sleeper(Sleeper& s) noexcept UEPOLL_REQUIRES(ready_lock_);
  /// Wakes every thread asleep in the uepoll way (the instance just got a kernel side).
  void wake_all_sleepers() noexcept UEPOLL_REQUIRES(ready_lock_);
  void unlink_sleeper(Sleeper& s) noexcept UEPOLL_REQUIRES(ready_lock_);
  /// Dequeues and unparks the newest sleeper, if any; the caller holds a WakeBatch open, so the
  /// system call (if one is needed) comes after the ready lock is dropped.
  void wake_one_sleeper() noexcept UEPOLL_REQUIRES(ready_lock_);

  // --- guarded by ctl_mutex_ ---
  Watch** buckets_ UEPOLL_GUARDED_BY(ctl_mutex_) = nullptr;
  std::size_t bucket_count_ = 0;
  std::size_t watch_count_ UEPOLL_GUARDED_BY(ctl_mutex_) = 0;

  // --- guarded by ready_lock_ ---
  SpinLock ready_lock_ UEPOLL_ACQUIRED_AFTER(ctl_mutex_){LockLevel::kReady};
  ReadyNode ready_ UEPOLL_GUARDED_BY(ready_lock_);
  Watch* overflow_ UEPOLL_GUARDED_BY(ready_lock_);
  Sleeper* sleepers_ UEPOLL_GUARDED_BY(ready_lock_) = nullptr;

  /// Parents watching this instance and poll() callers.
  WaitQueue poll_wait_;

  /// Set once (under g_nesting_mutex), freed by ~Instance.
  std::atomic<KernelSide*> kernel_{nullptr};

#if defined(UEPOLL_WITHOUT_LEGACY_MODE)
  // Built without the legacy mode, to measure what the mode's branch costs on the fine path.
  static constexpr bool legacy_ = false;
#else
  const bool legacy_;  // LockMode::kLegacy
#endif

  /// One for the instance's file, one per Watch; the last put frees the memory (after RCU).
  std::atomic<long> instance_refs_{1};
};

/// Holds the process-wide epoll mutex (g_nesting_mutex) for a scope, counting acquisitions.
class GlobalMutexLock {
 public:
  GlobalMutexLock() noexcept;
  ~GlobalMutexLock();
  GlobalMutexLock(const GlobalMutexLock&) = delete;
  GlobalMutexLock& operator=(const GlobalMutexLock&) = delete;

 private:
  std::uint64_t acquired_ns_ = 0;  // when timing is on
};

/// The loop and path checks for an ADD that needs them (nesting.cpp). Holds g_nesting_mutex
/// from the constructor to the destructor.
class NestingCheck {
 public:
  NestingCheck() noexcept;
  ~NestingCheck();
  /// ELOOP if adding `target` into `into` would close a cycle or make a chain too long.
  Result<void> check_loop(Instance* into, Instance* target) noexcept;
  /// Remembers a non-epoll file whose wake-up paths must be counted after the insert.
  void add_file(File* file) noexcept;
  /// EINVAL if a remembered file now has too many wake-up paths (Linux's reverse_path_check).
  Result<void> check_paths() noexcept;

 private:
  int depth_below(Instance* ep, int depth) noexcept;
  int depth_above(Instance* ep) noexcept;
  bool count_paths(File* file, int depth, int* path_count) noexcept;

  std::optional<GlobalMutexLock> lock_{std::in_place};
  Instance* inserting_into_ = nullptr;
  std::vector<File*> files_;  // pinned (one reference each) until the destructor
  bool out_of_memory_ = false;
};

/// True while some nesting check is in flight and has visited `ep` (Linux's gen == loop_check_gen
/// test, which closes the race of a fast-path ADD with a concurrent check).
bool check_in_flight_visited(const Instance* ep) noexcept;

}  // namespace detail
}  // namespace uepoll
