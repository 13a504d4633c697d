// FdTable: a descriptor table, the user-space counterpart of a process's file table. It maps
// small integers ("ufds") to File references, hands out the lowest free number like Linux, and
// keeps each descriptor's close-on-exec flag.
//
// Thread safety: thread-safe. Lookups take no lock (an RCU read-side section and an
//   increment-unless-zero on the file), nor does close (a compare-and-swap on the slot); what
//   fills a slot (install, dup) takes the table's mutex, which belongs to this table alone.
// Lifetime: the destructor closes every descriptor still open.
// Errors: EBADF, EMFILE at the table's limit, EINVAL as Linux's dup family and F_DUPFD.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>

#include "uepoll/file.hpp"
#include "uepoll/ref.hpp"
#include "uepoll/result.hpp"
#include "uepoll/sync.hpp"

namespace uepoll {

class FdTable {
 public:
  /// The default limit: the process's RLIMIT_NOFILE soft limit, capped at kMaxLimit.
  static int default_limit() noexcept;
  static constexpr int kMaxLimit = 1 << 20;

  explicit FdTable(int limit = default_limit()) noexcept;
  ~FdTable();
  FdTable(const FdTable&) = delete;
  FdTable& operator=(const FdTable&) = delete;

  /// The number of descriptors this table can hold (EMFILE beyond it).
  int limit() const noexcept { return limit_; }

  /// The file behind `fd` with a new reference, or null (EBADF).
  Ref<File> get(int fd) const noexcept UEPOLL_EXCLUDES(mu_);
  /// Installs `file` at the lowest free number >= `min_fd`; EMFILE when none is left.
  Result<int> install(Ref<File> file, bool cloexec, int min_fd = 0) noexcept UEPOLL_EXCLUDES(mu_);
  /// Installs two files at the two lowest free numbers, or neither (pipe, socketpair).
  Result<void> install_pair(Ref<File> a, Ref<File> b, bool cloexec, int fds[2]) noexcept
      UEPOLL_EXCLUDES(mu_);
  /// close(): EBADF if `fd` is not open. Takes no lock.
  Result<void> close(int fd) noexcept UEPOLL_EXCLUDES(mu_);
  /// dup3() semantics without the oldfd == newfd case (the caller handles it): closes whatever
  /// `newfd` held.
  Result<int> dup_to(int oldfd, int newfd, bool cloexec) noexcept UEPOLL_EXCLUDES(mu_);
  /// Puts `file` at exactly `fd`, dropping whatever was there: the interposer's table, where
  /// the kernel chose the number (EBADF when `fd` is outside the table).
  Result<void> place(int fd, Ref<File> file, bool cloexec) noexcept UEPOLL_EXCLUDES(mu_);
  /// Takes the file out of `fd` and hands its reference to the caller (null: nothing there).
  Ref<File> take(int fd) noexcept UEPOLL_EXCLUDES(mu_);
  /// True when `fd` holds a file (no reference taken; a hint that can be stale at once).
  bool occupied(int fd) const noexcept {
    std::atomic<File*>* s = slot(fd);
    return s != nullptr && s->load(std::memory_order_relaxed) != nullptr;
  }
  /// Calls `fn(fd, ref)` for every open descriptor, lowest first (a snapshot: no lock is held
  /// while `fn` runs, and descriptors may change meanwhile).
  template <class Fn>
  void for_each(Fn&& fn) const noexcept {
    const int chunks = (limit_ + kChunkSize - 1) / kChunkSize;
    for (int c = 0; chunks_ && c < chunks; ++c) {
      if (chunks_[c].load(std::memory_order_acquire) == nullptr) {
        continue;
      }
      for (int i = 0; i < kChunkSize; ++i) {
        const int fd = c * kChunkSize + i;
        if (Ref<File> f = get(fd)) {
          fn(fd, std::move(f));
        }
      }
    }
  }
  /// The lowest descriptor that holds `file` (compared by address, no reference taken), or -1.
  int find_number(const File* file) const noexcept {
    const int chunks = (limit_ + kChunkSize - 1) / kChunkSize;
    for (int c = 0; chunks_ && c < chunks; ++c) {
      const Chunk* chunk = chunks_[c].load(std::memory_order_acquire);
      for (int i = 0; chunk != nullptr && i < kChunkSize; ++i) {
        if (chunk->files[i].load(std::memory_order_relaxed) == file) {
          return c * kChunkSize + i;
        }
      }
    }
    return -1;
  }
  /// F_GETFD / F_SETFD.
  Result<bool> cloexec(int fd) const noexcept UEPOLL_EXCLUDES(mu_);
  Result<void> set_cloexec(int fd, bool cloexec) noexcept UEPOLL_EXCLUDES(mu_);

 private:
  static constexpr int kChunkBits = 8;
  static constexpr int kChunkSize = 1 << kChunkBits;
  struct Chunk {
    std::atomic<File*> files[kChunkSize] = {};
    bool cloexec[kChunkSize] = {};
  };

  std::atomic<File*>* slot(int fd) const noexcept;
  Chunk* chunk_for_install(int fd) noexcept UEPOLL_REQUIRES(mu_);
  int find_free(int from) noexcept UEPOLL_REQUIRES(mu_);
  void set_slot(int fd, File* file, bool cloexec) noexcept UEPOLL_REQUIRES(mu_);
  File* replace_slot(int fd, File* file, bool cloexec) noexcept UEPOLL_REQUIRES(mu_);
  void lower_free_hint(int fd) noexcept;
  void raise_free_hint(int seen, int past) noexcept UEPOLL_REQUIRES(mu_);

  const int limit_;
  // Held for a few dozen instructions by every open: spinning while its owner runs beats a
  // futex sleep when threads share the table (Linux's file_lock is a spinlock).
  mutable Mutex mu_{LockLevel::kTable, Mutex::Contended::kSpinThenPark};
  // Chunks are allocated on first use and never moved or freed before the table dies, so a
  // lookup can read a slot without the mutex.
  std::unique_ptr<std::atomic<Chunk*>[]> chunks_;
  // No free slot below this number. Raised under mu_ by what fills slots, lowered by closes
  // without it; both compare-and-swap, so a lower value always wins.
  std::atomic<int> next_free_{0};
};

}  // namespace uepoll
