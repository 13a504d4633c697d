#include "uepoll/file.hpp"

#include <cerrno>

#include "core/counters.hpp"
#include "core/file_access.hpp"
#include "sync/rcu.hpp"

namespace uepoll {

File::File(int access_mode, int status_flags) noexcept
    : access_mode_(access_mode), status_flags_(status_flags & O_NONBLOCK) {
  detail::count_up(detail::Counter::kFiles);
}

File::File(EpollTag, int status_flags) noexcept
    : access_mode_(O_RDWR), status_flags_(status_flags & O_NONBLOCK), is_epoll_(true) {
  detail::count_up(detail::Counter::kFiles);
}

File::~File() { detail::count_down(detail::Counter::kFiles); }

bool File::try_get() noexcept {
  long refs = refs_.load(std::memory_order_relaxed);
  do {
    if (refs == 0) {
      return false;
    }
  } while (!refs_.compare_exchange_weak(refs, refs + 1, std::memory_order_acquire,
                                        std::memory_order_relaxed));
  return true;
}

void File::put() noexcept {
  // Any put may be the last, whose removal path takes instance mutexes (and, in legacy mode, the
  // nesting mutex): dropping a reference while holding one could deadlock (docs/locking.md).
  detail::lockdep_assert_not_held(LockLevel::kInstance,
                                  "file reference dropped under an instance mutex");
  detail::lockdep_assert_not_held(LockLevel::kNesting,
                                  "file reference dropped under the nesting mutex");
  // acq_rel: the last put must see every write made under earlier references, in particular
  // every change to the watcher list (pairs with the release half of the other puts).
  const long before = refs_.fetch_sub(1, std::memory_order_acq_rel);
  UEPOLL_DEBUG_CHECK(before > 0, "File::put() without a reference");
  if (before == 1) {
    last_put();
  }
}

void File::last_put() noexcept {
  if (watchers_.load(std::memory_order_acquire) != nullptr) {
    if (detail::timing()) {
      const std::uint64_t start = detail::now_ns();
      detail::epoll_release_file(*this);
      detail::g_release_ns.fetch_add(detail::now_ns() - start, std::memory_order_relaxed);
      detail::g_release_calls.fetch_add(1, std::memory_order_relaxed);
    } else {
      detail::epoll_release_file(*this);
    }
  }
  release();
  destroy();
}

void File::destroy() noexcept {
  rcu::retire([](void* object) { delete static_cast<File*>(object); }, this);
}

Result<void> File::hand_over(const KernelTwin&) noexcept { return Error{EOPNOTSUPP}; }
Result<size_t> File::read(void*, size_t, IoFlags) noexcept { return Error{EINVAL}; }
Result<size_t> File::write(const void*, size_t, IoFlags) noexcept { return Error{EINVAL}; }
Result<void> File::bind(const sockaddr*, socklen_t) noexcept { return Error{ENOTSOCK}; }
Result<void> File::listen(int) noexcept { return Error{ENOTSOCK}; }
Result<Ref<File>> File::accept(sockaddr*, socklen_t*, int, IoFlags) noexcept {
  return Error{ENOTSOCK};
}
Result<void> File::connect(const sockaddr*, socklen_t, IoFlags) noexcept { return Error{ENOTSOCK}; }
Result<void> File::getsockopt(int, int, void*, socklen_t*) noexcept { return Error{ENOTSOCK}; }
Result<void> File::setsockopt(int, int, const void*, socklen_t) noexcept { return Error{ENOTSOCK}; }
Result<void> File::getsockname(sockaddr*, socklen_t*) noexcept { return Error{ENOTSOCK}; }
Result<void> File::getpeername(sockaddr*, socklen_t*) noexcept { return Error{ENOTSOCK}; }
Result<size_t> File::readable_bytes() noexcept { return Error{ENOTTY}; }
Result<void> File::shutdown(int) noexcept { return Error{ENOTSOCK}; }
Result<size_t> File::recv(void*, size_t, IoFlags) noexcept { return Error{ENOTSOCK}; }
Result<size_t> File::send(const void*, size_t, IoFlags) noexcept { return Error{ENOTSOCK}; }

}  // namespace uepoll
