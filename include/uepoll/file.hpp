// File: an open file description, the object every uepoll descriptor refers to.
//
// To plug an object into uepoll (a socket of a user-space TCP stack, a timer, a device queue),
// derive from File, implement poll(), and call WaitQueue::wake() on your queue(s) whenever the
// object's readiness changes: first change the state, then wake. That is the whole contract:
// uepoll's queues put full barriers between hooking and polling and between the caller's state
// change and the wake-up, so no wake-up is lost even when the state is a relaxed atomic
// (tests/torture/plugin_object_torture.cpp races exactly this example). Every built-in object
// (eventfd, pipes, socketpairs, in-process sockets) is written this way;
// examples/custom_object.cpp shows one end to end.
//
//   class Doorbell : public uepoll::File {
//    public:
//     Doorbell() : File(O_RDWR) {}
//     uepoll::PollMask poll(uepoll::PollTable* table) noexcept override {
//       uepoll::poll_wait(table, queue_);             // hook the caller (epoll, poll())
//       return rung_ ? EPOLLIN : 0;                    // report the current state
//     }
//     void ring() { rung_ = true; queue_.wake(EPOLLIN); }  // every change wakes with its bits
//    private:
//     uepoll::WaitQueue queue_;
//     std::atomic<bool> rung_{false};
//   };
//
// Thread safety: thread-safe; any method may run on any thread, concurrently with the others.
// Locking: poll() may be called with an epoll instance's mutex held and must not block; it may
//   take the object's own locks (LockLevel::kObject, the default of Mutex and SpinLock). wake()
//   may be called with them held: uepoll's callbacks take none of yours. Never drop a File
//   reference, allocate or block while holding a SpinLock (debug builds check, docs/locking.md).
// Lifetime: reference counted (get/put, or Ref<File>). Each descriptor holds one reference;
//   blocked calls, epoll harvests and in-flight operations hold their own. When the last
//   reference goes: (1) every epoll item watching the file is removed, without any process-wide
//   lock (Linux's eventpoll_release_file); (2) release() runs; (3) the memory is freed after an
//   RCU grace period, so lock-free readers that found the file may still read it.
// Errors: the operations return Linux errno values through Result.
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <atomic>
#include <cstddef>

#include "uepoll/ref.hpp"
#include "uepoll/result.hpp"
#include "uepoll/sync.hpp"
#include "uepoll/wait_queue.hpp"

namespace uepoll {

namespace detail {
struct Watch;
struct FileAccess;
}  // namespace detail

/// What a File::poll() caller passes when it wants to be woken: poll_wait() hooks it on a
/// queue. Null when the caller only wants the current mask.
class PollTable {
 public:
  using HookFn = void (*)(PollTable& self, WaitQueue& queue) noexcept;
  using KernelFn = void (*)(PollTable& self, int kernel_fd) noexcept;
  explicit PollTable(HookFn hook_fn, KernelFn kernel_fn = nullptr) noexcept
      : hook_(hook_fn), kernel_(kernel_fn) {}
  void hook(WaitQueue& queue) noexcept { hook_(*this, queue); }
  void hook_kernel(int kernel_fd) noexcept {
    if (kernel_ != nullptr) {
      kernel_(*this, kernel_fd);
    }
  }

 private:
  HookFn hook_;
  KernelFn kernel_;
};

/// Registers the poll caller (if any) on `queue`. Call it for each queue whose wake-ups can
/// change what poll() returns, before computing the mask.
inline void poll_wait(PollTable* table, WaitQueue& queue) noexcept {
  if (table != nullptr) {
    table->hook(queue);
  }
}

/// For an object whose readiness also depends on a kernel descriptor: a sleeping poll() caller
/// wakes when `kernel_fd` polls readable, too. (epoll items learn about it otherwise.)
inline void poll_wait_kernel(PollTable* table, int kernel_fd) noexcept {
  if (table != nullptr) {
    table->hook_kernel(kernel_fd);
  }
}

/// How an I/O call was made: the flags of the call itself (MSG_DONTWAIT, MSG_PEEK,
/// MSG_NOSIGNAL for recv/send; 0 for read/write) and whether the description is non-blocking.
struct IoFlags {
  int msg_flags = 0;
  bool nonblocking = false;
  bool dont_wait() const noexcept { return nonblocking || (msg_flags & MSG_DONTWAIT) != 0; }
};

class File {
 public:
  /// `access_mode` is O_RDONLY, O_WRONLY or O_RDWR; `status_flags` may hold O_NONBLOCK.
  explicit File(int access_mode, int status_flags = 0) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  // --- references ---
  /// Takes another reference; the caller holds one (a lookup without one uses try_get). Debug
  /// builds abort on a get of a released file.
  void get() noexcept {
    [[maybe_unused]] const long before = refs_.fetch_add(1, std::memory_order_relaxed);
    UEPOLL_DEBUG_CHECK(before > 0, "File::get() of a file whose last reference is gone");
  }
  /// Takes a reference unless the count already reached zero (the file is being released).
  /// Only valid while something (RCU, a lock) guarantees the memory still exists.
  [[nodiscard]] bool try_get() noexcept;
  /// Drops a reference; the last one removes the file from every epoll instance, runs
  /// release() and retires the memory. Never call it with an epoll instance's mutex held.
  void put() noexcept;
  /// True once the last reference is gone (release in progress).
  bool released() const noexcept { return refs_.load(std::memory_order_acquire) == 0; }

  // --- what an object implements ---
  /// The current EPOLL* readiness mask; hooks `table` (if non-null) on the object's queues.
  virtual PollMask poll(PollTable* table) noexcept = 0;
  /// False for objects epoll may not watch (epoll_ctl then fails with EPERM).
  virtual bool pollable() const noexcept { return true; }

  virtual Result<size_t> read(void* buf, size_t count, IoFlags flags) noexcept;
  virtual Result<size_t> write(const void* buf, size_t count, IoFlags flags) noexcept;
  /// ioctl FIONREAD (SIOCINQ): the bytes a read could take now. ENOTTY (the default) where
  /// Linux has no such ioctl (eventfd, epoll).
  virtual Result<size_t> readable_bytes() noexcept;

  // Socket operations; the defaults fail with ENOTSOCK like a non-socket descriptor.
  virtual Result<void> bind(const sockaddr* addr, socklen_t len) noexcept;
  virtual Result<void> listen(int backlog) noexcept;
  /// Returns the connected socket; `new_status_flags` holds O_NONBLOCK if it must be set.
  virtual Result<Ref<File>> accept(sockaddr* addr, socklen_t* len, int new_status_flags,
                                   IoFlags flags) noexcept;
  virtual Result<void> connect(const sockaddr* addr, socklen_t len, IoFlags flags) noexcept;
  virtual Result<void> getsockopt(int level, int name, void* val, socklen_t* len) noexcept;
  virtual Result<void> setsockopt(int level, int name, const void* val, socklen_t len) noexcept;
  virtual Result<void> getsockname(sockaddr* addr, socklen_t* len) noexcept;
  virtual Result<void> getpeername(sockaddr* addr, socklen_t* len) noexcept;
  virtual Result<void> shutdown(int how) noexcept;
  virtual Result<size_t> recv(void* buf, size_t len, IoFlags flags) noexcept;
  virtual Result<size_t> send(const void* buf, size_t len, IoFlags flags) noexcept;

  // --- handing an object over to the kernel (the interposer: fork, exec) ---
  /// Where an object's state goes: the kernel object of the same kind that stands behind its
  /// descriptor, and, for one end of a pair, the kernel object behind the other end (-1: none).
  struct KernelTwin {
    int fd = -1;
    int peer_fd = -1;
  };
  /// Moves what the object holds (unread data, a counter, shutdown states) into its kernel
  /// twin, so that the program goes on with the kernel object in its place. EOPNOTSUPP (the
  /// default): the object cannot be handed over.
  virtual Result<void> hand_over(const KernelTwin& twin) noexcept;
  /// The other end of a connected pair (socketpair), while it lives; null otherwise.
  virtual Ref<File> connected_peer() noexcept { return nullptr; }

  // --- status flags (fcntl F_GETFL/F_SETFL) ---
  int access_mode() const noexcept { return access_mode_; }
  bool readable() const noexcept { return access_mode_ != O_WRONLY; }
  bool writable() const noexcept { return access_mode_ != O_RDONLY; }
  int status_flags() const noexcept { return status_flags_.load(std::memory_order_relaxed); }
  void set_status_flags(int flags) noexcept {
    status_flags_.store(flags & O_NONBLOCK, std::memory_order_relaxed);
  }
  bool nonblocking() const noexcept { return (status_flags() & O_NONBLOCK) != 0; }

  /// True for epoll instances (the nesting rules treat them specially).
  bool is_epoll() const noexcept { return is_epoll_; }

 protected:
  virtual ~File();
  /// The object's own teardown at the last reference, after every epoll item watching it is
  /// gone: wake blocked peers, detach from shared state. Must not free `this`.
  virtual void release() noexcept {}
  /// Frees the memory; the default retires it through RCU. Epoll instances override it because
  /// their items keep them alive past the last descriptor.
  virtual void destroy() noexcept;
  /// For epoll instances only.
  struct EpollTag {};
  File(EpollTag, int status_flags) noexcept;

 private:
  friend struct detail::FileAccess;
  void last_put() noexcept;

  std::atomic<long> refs_{1};
  const int access_mode_;
  std::atomic<int> status_flags_;
  const bool is_epoll_ = false;

  // The epoll items watching this file (Linux's f_ep), a list linked through the items. Writers
  // hold watchers_lock_ and a reference on the file (or a pin), so that the last put sees every
  // change; after it, the last put's own removals (path C) are the only writer and take no
  // lock. Readers walk it under RCU.
  SpinLock watchers_lock_{LockLevel::kWatchers};
  std::atomic<detail::Watch*> watchers_{nullptr};
};

}  // namespace uepoll
