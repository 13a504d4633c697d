// An epoll instance's kernel side: what lets one instance watch kernel descriptors
// (uepoll_epoll_ctl_kernel), be watched by kernel event loops (uepoll_epoll_kernel_fd), and
// let its waiters sleep in the kernel for both kinds of events at once.
//
// It is one kernel epoll, `ep`, holding
//   - the caller's kernel descriptors, with the caller's events and data exactly as given, so
//     that Linux answers for them: errno, ET/LT/ONESHOT/EXCLUSIVE/RDHUP, the (file, fd) key,
//     removal at the description's last close, the wake-one order of its waiters;
//   - the `ep` of every watched instance that has one (a mirror: edge-triggered, tagged
//     kMirrorTag), so that the kernel sees the epoll graph above every kernel descriptor as Linux
//     would (its loop, depth and path checks answer for the combined graph) and a waiter wakes
//     for an inner instance's kernel event;
//   - the bell, an eventfd (level-triggered, tagged kBellTag), readable exactly while the uepoll
//     side of the instance has events and someone listens: a thread asleep on `ep`, or a kernel
//     event loop watching the exported `ep`.
// Threads waiting on an instance with a kernel side sleep in epoll_pwait2() on `ep`.
//
// The tags are random 64-bit values drawn once per process, so no caller can choose data that a
// tag would swallow (a collision has probability 2^-64 per value; docs/deviations.md).
//
// Lifetime: created on first need under g_nesting_mutex, never removed before the instance
// itself is destroyed (~Instance closes `ep` and the bell).
#pragma once

#include <atomic>
#include <cstdint>

#include "uepoll/blocking.hpp"
#include "uepoll/sync.hpp"

namespace uepoll::detail {

class Instance;

std::uint64_t kernel_bell_tag() noexcept;
std::uint64_t kernel_mirror_tag() noexcept;

class KernelSide {
 public:
  /// Creates the kernel epoll and the bell; null when the kernel refuses (errno set).
  static KernelSide* create(Instance* owner) noexcept;
  ~KernelSide();
  KernelSide(const KernelSide&) = delete;
  KernelSide& operator=(const KernelSide&) = delete;

  int ep() const noexcept { return ep_; }
  /// Set once every instance above has its mirror of this one: from then on waiters sleep on
  /// `ep` and the bell is rung.
  bool live() const noexcept { return live_.load(std::memory_order_acquire); }
  void set_live() noexcept { live_.store(true, std::memory_order_release); }

  /// True while a kernel event loop may watch `ep` (uepoll_epoll_kernel_fd was called).
  bool exported() const noexcept { return exported_.load(std::memory_order_acquire); }
  void set_exported() noexcept { exported_.store(true, std::memory_order_release); }

  /// Makes the bell readable soon (after the caller's WakeBatch). The owner stays alive until
  /// the write is done.
  void ring() noexcept;
  /// Makes the bell unreadable (the uepoll side was found empty).
  void silence() noexcept;
  /// Closes the kernel epoll and the bell at the instance's last close, so that no descriptor
  /// of the instance outlives it; a bell write still pending afterwards does nothing.
  void close_fds() noexcept;

  // --- guarded by the owner's ready lock ---
  int sleepers = 0;  // threads in epoll_pwait2 on `ep`

  // --- guarded by the owner's ctl_mutex_ ---
  int mirrors = 0;  // items of the owner whose instance has a kernel side in `ep`

  /// Which side the next harvest serves first (they alternate, so neither starves the other).
  std::atomic<bool> kernel_first{false};

  explicit KernelSide(Instance* owner) noexcept;  // create() is the way to make one

 private:
  class Bell final : public Kickable {
   public:
    Instance* owner = nullptr;
    Mutex mu{LockLevel::kLeaf};  // a write against close_fds(): never to a closed number
    int fd UEPOLL_GUARDED_BY(mu) = -1;
    bool request() noexcept { return kick_soon(); }
    void kick() noexcept override;  // writes the eventfd, then drops the owner reference
  };

  int ep_ = -1;
  Bell bell_;
  std::atomic<bool> live_{false};
  std::atomic<bool> exported_{false};
};

}  // namespace uepoll::detail
