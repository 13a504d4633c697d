// The parts of File that only uepoll's own layers touch: the watcher list that epoll items hang
// on, and the hook for the release path (Linux's eventpoll_release_file), which the epoll layer
// implements.
#pragma once

#include "uepoll/file.hpp"

namespace uepoll::detail {

struct FileAccess {
  static SpinLock& watchers_lock(File& f) UEPOLL_RETURN_CAPABILITY(f.watchers_lock_) {
    return f.watchers_lock_;
  }
  static std::atomic<Watch*>& watchers(File& f) { return f.watchers_; }
};

/// Removes every epoll item watching `file`, whose last reference just went (removal path C).
/// Defined by the epoll layer; takes no process-wide lock in the default mode.
void epoll_release_file(File& file) noexcept;

}  // namespace uepoll::detail
