#include "core/fd_table.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <new>

#include "sync/fault_injection.hpp"
#include "sync/rcu.hpp"

namespace uepoll {

int FdTable::default_limit() noexcept {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) {
    return kMaxLimit;
  }
  return static_cast<int>(std::min<rlim_t>(rl.rlim_cur, kMaxLimit));
}

FdTable::FdTable(int limit) noexcept
    : limit_(std::clamp(limit, 0, kMaxLimit)),
      chunks_(new (std::nothrow) std::atomic<Chunk*>[(limit_ + kChunkSize - 1) / kChunkSize]()) {}

FdTable::~FdTable() {
  if (!chunks_) {
    return;
  }
  for (int c = 0; c < (limit_ + kChunkSize - 1) / kChunkSize; ++c) {
    Chunk* chunk = chunks_[c].load(std::memory_order_relaxed);
    if (chunk == nullptr) {
      continue;
    }
    for (auto& f : chunk->files) {
      if (File* file = f.exchange(nullptr, std::memory_order_relaxed)) {
        file->put();
      }
    }
    delete chunk;
  }
}

std::atomic<File*>* FdTable::slot(int fd) const noexcept {
  if (fd < 0 || fd >= limit_ || !chunks_) {
    return nullptr;
  }
  Chunk* chunk = chunks_[fd >> kChunkBits].load(std::memory_order_acquire);
  return chunk != nullptr ? &chunk->files[fd & (kChunkSize - 1)] : nullptr;
}

Ref<File> FdTable::get(int fd) const noexcept {
  std::atomic<File*>* s = slot(fd);
  if (s == nullptr || s->load(std::memory_order_relaxed) == nullptr) {
    return nullptr;  // an empty slot needs no read-side section (the interposer's kernel fds)
  }
  // The file's memory outlives this read-side section even if another thread closes `fd` and
  // drops the last reference meanwhile; try_get then fails, as Linux's lookup does.
  rcu::ReadGuard rcu;
  File* file = s->load(std::memory_order_acquire);
  if (file == nullptr || !file->try_get()) {
    return nullptr;
  }
  return Ref<File>::adopt(file);
}

FdTable::Chunk* FdTable::chunk_for_install(int fd) noexcept {
  auto& c = chunks_[fd >> kChunkBits];
  Chunk* chunk = c.load(std::memory_order_relaxed);
  if (chunk == nullptr) {
    chunk = detail::try_new<Chunk>();
    // Publishes the zeroed slots; pairs with the acquire load in slot().
    c.store(chunk, std::memory_order_release);
  }
  return chunk;
}

int FdTable::find_free(int from) noexcept {
  for (int fd = from; fd < limit_; ++fd) {
    Chunk* chunk = chunks_[fd >> kChunkBits].load(std::memory_order_relaxed);
    if (chunk == nullptr ||
        chunk->files[fd & (kChunkSize - 1)].load(std::memory_order_relaxed) == nullptr) {
      return fd;
    }
  }
  return -1;
}

void FdTable::set_slot(int fd, File* file, bool cloexec) noexcept {
  Chunk* chunk = chunks_[fd >> kChunkBits].load(std::memory_order_relaxed);
  chunk->cloexec[fd & (kChunkSize - 1)] = cloexec;
  // Publishes the file to lock-free lookups; pairs with the acquire load in get().
  chunk->files[fd & (kChunkSize - 1)].store(file, std::memory_order_release);
}

File* FdTable::replace_slot(int fd, File* file, bool cloexec) noexcept {
  Chunk* chunk = chunks_[fd >> kChunkBits].load(std::memory_order_relaxed);
  chunk->cloexec[fd & (kChunkSize - 1)] = cloexec;
  // One exchange, as Linux's dup2 replaces: a concurrent close or lookup of `fd` finds the old
  // file or the new one, never an empty slot. Releases the new file, acquires the old.
  return chunk->files[fd & (kChunkSize - 1)].exchange(file, std::memory_order_acq_rel);
}

Result<int> FdTable::install(Ref<File> file, bool cloexec, int min_fd) noexcept {
  if (!chunks_) {
    return Error{ENOMEM};
  }
  MutexLock lock(mu_);
  const int hint = next_free_.load(std::memory_order_relaxed);
  int fd = find_free(std::max(min_fd, hint));
  if (fd < 0) {
    return Error{EMFILE};
  }
  if (chunk_for_install(fd) == nullptr) {
    return Error{ENOMEM};
  }
  set_slot(fd, file.release(), cloexec);
  if (min_fd <= hint) {
    raise_free_hint(hint, fd + 1);
  }
  return fd;
}

Result<void> FdTable::install_pair(Ref<File> a, Ref<File> b, bool cloexec, int fds[2]) noexcept {
  if (!chunks_) {
    return Error{ENOMEM};
  }
  MutexLock lock(mu_);
  const int hint = next_free_.load(std::memory_order_relaxed);
  int first = find_free(hint);
  int second = first < 0 ? -1 : find_free(first + 1);
  if (second < 0) {
    return Error{EMFILE};
  }
  if (chunk_for_install(first) == nullptr || chunk_for_install(second) == nullptr) {
    return Error{ENOMEM};
  }
  set_slot(first, a.release(), cloexec);
  set_slot(second, b.release(), cloexec);
  raise_free_hint(hint, second + 1);
  fds[0] = first;
  fds[1] = second;
  return {};
}

Result<void> FdTable::close(int fd) noexcept {
  // No mutex: emptying a slot is one compare-and-swap, which tells a close from a concurrent
  // close or replacement of the same number. Only filling a slot needs the mutex, to choose the
  // number. (seq_cst, and an acquire of the reference a release store published: see
  // raise_free_hint.)
  std::atomic<File*>* s = slot(fd);
  File* file = s != nullptr ? s->load(std::memory_order_relaxed) : nullptr;
  do {
    if (file == nullptr) {
      return Error{EBADF};
    }
  } while (!s->compare_exchange_weak(file, nullptr, std::memory_order_seq_cst,
                                     std::memory_order_relaxed));
  lower_free_hint(fd);
  file->put();  // may run the release path
  return {};
}

void FdTable::lower_free_hint(int fd) noexcept {
  int hint = next_free_.load(std::memory_order_seq_cst);
  while (fd < hint && !next_free_.compare_exchange_weak(hint, fd, std::memory_order_seq_cst)) {
  }
}

void FdTable::raise_free_hint(int seen, int past) noexcept {
  // Only from the value the search started at: a close that lowered it meanwhile wins.
  if (!next_free_.compare_exchange_strong(seen, past, std::memory_order_seq_cst)) {
    return;
  }
  // A close in [seen, past) after the search passed its slot may have read the hint before this
  // raise and left it alone. Either its emptying comes first in the seq_cst order, and this scan
  // sees the empty slot, or it reads the raised hint and lowers it itself.
  for (int fd = seen; fd < past; ++fd) {
    std::atomic<File*>* s = slot(fd);
    if (s != nullptr && s->load(std::memory_order_seq_cst) == nullptr) {
      lower_free_hint(fd);
      return;
    }
  }
}

Result<void> FdTable::place(int fd, Ref<File> file, bool cloexec) noexcept {
  if (!chunks_ || fd < 0 || fd >= limit_) {
    return Error{EBADF};
  }
  File* replaced = nullptr;
  {
    MutexLock lock(mu_);
    if (chunk_for_install(fd) == nullptr) {
      return Error{ENOMEM};
    }
    replaced = replace_slot(fd, file.release(), cloexec);
  }
  if (replaced != nullptr) {
    replaced->put();
  }
  return {};
}

Ref<File> FdTable::take(int fd) noexcept {
  MutexLock lock(mu_);
  std::atomic<File*>* s = slot(fd);
  File* file = s != nullptr ? s->exchange(nullptr, std::memory_order_seq_cst) : nullptr;
  if (file != nullptr) {
    lower_free_hint(fd);
  }
  return Ref<File>::adopt(file);
}

Result<int> FdTable::dup_to(int oldfd, int newfd, bool cloexec) noexcept {
  // A reference of its own, taken as a lookup takes it: close() holds no lock, so oldfd's own
  // reference may go at any moment (and with it the file, if it was the last).
  Ref<File> file = get(oldfd);
  if (!file) {
    return Error{EBADF};
  }
  File* replaced = nullptr;
  {
    MutexLock lock(mu_);
    if (chunk_for_install(newfd) == nullptr) {
      return Error{ENOMEM};
    }
    replaced = replace_slot(newfd, file.release(), cloexec);
  }
  if (replaced != nullptr) {
    replaced->put();
  }
  return newfd;
}

Result<bool> FdTable::cloexec(int fd) const noexcept {
  MutexLock lock(mu_);
  std::atomic<File*>* s = slot(fd);
  if (s == nullptr || s->load(std::memory_order_relaxed) == nullptr) {
    return Error{EBADF};
  }
  return chunks_[fd >> kChunkBits].load(std::memory_order_relaxed)->cloexec[fd & (kChunkSize - 1)];
}

Result<void> FdTable::set_cloexec(int fd, bool cloexec) noexcept {
  MutexLock lock(mu_);
  std::atomic<File*>* s = slot(fd);
  if (s == nullptr || s->load(std::memory_order_relaxed) == nullptr) {
    return Error{EBADF};
  }
  chunks_[fd >> kChunkBits].load(std::memory_order_relaxed)->cloexec[fd & (kChunkSize - 1)] =
      cloexec;
  return {};
}

}  // namespace uepoll
