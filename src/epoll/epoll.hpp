// The epoll layer's face: what the layers above it (process, the statistics, the interposer)
// may use of an epoll instance. The instance itself (instance.hpp) is private to src/epoll.
//
// Every `File& ep` below must be an epoll instance (File::is_epoll()); the caller checks.
#pragma once

#include <signal.h>
#include <sys/epoll.h>

#include <cstdint>

#include "uepoll/blocking.hpp"
#include "uepoll/file.hpp"
#include "uepoll/lock_mode.hpp"
#include "uepoll/ref.hpp"
#include "uepoll/result.hpp"

namespace uepoll::detail {

/// The only bits allowed together with EPOLLEXCLUSIVE.
constexpr std::uint32_t kExclusiveOkBits =
    EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE;

/// A new instance; `mode` decides whether its close paths take the process-wide mutex.
Result<Ref<File>> create_instance(int status_flags, LockMode mode) noexcept;

/// epoll_ctl after the descriptor checks: `event` is already copied and checked.
Result<void> instance_ctl(File& ep, int op, Ref<File> target, int fd,
                          const epoll_event& event) noexcept;
/// epoll_ctl of a kernel descriptor (uepoll_epoll_ctl_kernel) after the uepoll-side checks;
/// `event` is a valid copy, or null for DEL.
Result<void> instance_ctl_kernel(File& ep, int op, int kfd, const epoll_event* event) noexcept;
/// epoll_wait after the argument checks.
Result<int> instance_wait(File& ep, epoll_event* events, int maxevents, Timeout timeout,
                          const sigset_t* sigmask) noexcept;
/// The kernel descriptor that polls readable while the instance has events; the instance owns it.
Result<int> instance_kernel_fd(File& ep) noexcept;

/// Where the interposer hands a file over to the kernel (fork, exec): the descriptor of the
/// kernel object standing in for the file at `item_fd`, or -1 to leave that item as it is.
class KernelStandIn {
 public:
  virtual int kernel_fd_for(int item_fd) noexcept = 0;

 protected:
  ~KernelStandIn() = default;
};
/// Every epoll item watching `file` becomes a kernel member of its instance, with the same
/// events and data.
void hand_over_watches(File& file, KernelStandIn& stand_in) noexcept;

/// Global watch accounting (Linux's per-user epoll_watches against max_user_watches).
long max_user_watches() noexcept;
void set_max_user_watches(long limit) noexcept;
long user_watches() noexcept;

/// Number of times the process-wide epoll mutex was taken (zero on the close paths in kFine mode).
std::uint64_t global_mutex_acquisitions() noexcept;

}  // namespace uepoll::detail
