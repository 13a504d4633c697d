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
  for (int fd = std::max(from, next_free_); fd < limit_; ++fd) {
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

File* FdTable::clear_slot(std::atomic<File*>& s) noexcept {
  // Every writer holds mu_, so a load and a store do (no read-modify-write); lookups only load,
  // and one that still finds the file pins it under RCU or fails, as after any close.
  File* file = s.load(std::memory_order_relaxed);
  s.store(nullptr, std::memory_order_relaxed);
  return file;
}

Result<int> FdTable::install(Ref<File> file, bool cloexec, int min_fd) noexcept {
  if (!chunks_) {
    return Error{ENOMEM};
  }
  MutexLock lock(mu_);
  int fd = find_free(min_fd);
  if (fd < 0) {
    return Error{EMFILE};
  }
  if (chunk_for_install(fd) == nullptr) {
    return Error{ENOMEM};
  }
  set_slot(fd, file.release(), cloexec);
  if (min_fd <= next_free_) {
    next_free_ = fd + 1;
  }
  return fd;
}

Result<void> FdTable::install_pair(Ref<File> a, Ref<File> b, bool cloexec, int fds[2]) noexcept {
  if (!chunks_) {
    return Error{ENOMEM};
  }
  MutexLock lock(mu_);
  int first = find_free(0);
  int second = first < 0 ? -1 : find_free(first + 1);
  if (second < 0) {
    return Error{EMFILE};
  }
  if (chunk_for_install(first) == nullptr || chunk_for_install(second) == nullptr) {
    return Error{ENOMEM};
  }
  set_slot(first, a.release(), cloexec);
  set_slot(second, b.release(), cloexec);
  next_free_ = second + 1;
  fds[0] = first;
  fds[1] = second;
  return {};
}

Result<void> FdTable::close(int fd) noexcept {
  File* file = nullptr;
  {
    MutexLock lock(mu_);
    std::atomic<File*>* s = slot(fd);
    if (s == nullptr || (file = clear_slot(*s)) == nullptr) {
      return Error{EBADF};
    }
    next_free_ = std::min(next_free_, fd);
  }
  file->put();  // may run the release path; never under the table's lock
  return {};
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
    replaced = clear_slot(*slot(fd));
    set_slot(fd, file.release(), cloexec);
  }
  if (replaced != nullptr) {
    replaced->put();
  }
  return {};
}

Ref<File> FdTable::take(int fd) noexcept {
  MutexLock lock(mu_);
  std::atomic<File*>* s = slot(fd);
  File* file = s != nullptr ? clear_slot(*s) : nullptr;
  if (file != nullptr) {
    next_free_ = std::min(next_free_, fd);
  }
  return Ref<File>::adopt(file);
}

Result<int> FdTable::dup_to(int oldfd, int newfd, bool cloexec) noexcept {
  File* replaced = nullptr;
  {
    MutexLock lock(mu_);
    std::atomic<File*>* from = slot(oldfd);
    File* file = from != nullptr ? from->load(std::memory_order_relaxed) : nullptr;
    if (file == nullptr) {
      return Error{EBADF};
    }
    if (chunk_for_install(newfd) == nullptr) {
      return Error{ENOMEM};
    }
    file->get();
    replaced = clear_slot(*slot(newfd));
    set_slot(newfd, file, cloexec);
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
