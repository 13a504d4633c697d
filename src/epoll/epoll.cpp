// The epoll layer's face (epoll.hpp): what the layers above may do with an instance.
#include "epoll/epoll.hpp"

#include <new>
#include <utility>
#include <vector>

#include "epoll/instance.hpp"

namespace uepoll::detail {

// Pins each instance watching `file` under RCU, then moves its item to the kernel side under the
// instance's ctl_mutex_.
void Instance::hand_over_watches(File& file, KernelStandIn& stand_in) noexcept {
  struct Item {
    Instance* instance;
    int fd;
  };
  std::vector<Item> items;
  try {
    rcu::ReadGuard rcu;  // the items and their instances outlive this walk
    for (Watch* w = FileAccess::watchers(file).load(std::memory_order_acquire); w != nullptr;
         w = w->file_next.load(std::memory_order_acquire)) {
      items.reserve(items.size() + 1);  // may throw: before the pin, which must not leak
      if (w->instance->try_get_instance()) {
        items.push_back(Item{w->instance, w->fd});
      }
    }
  } catch (const std::bad_alloc&) {
    // No memory for the list: the items stay uepoll's.
  }
  for (Item& item : items) {
    Instance* ep = item.instance;
    epoll_event ev{};
    bool found = false;
    {
      MutexLock lock(ep->ctl_mutex_);
      if (Watch* w = ep->find(&file, item.fd)) {
        ev.events = w->events.load(std::memory_order_relaxed);
        ev.data.u64 = w->data;
        found = true;
      }
    }
    const int kfd = found ? stand_in.kernel_fd_for(item.fd) : -1;
    // The kernel member first, then the uepoll item goes: no moment without either.
    if (kfd >= 0 && ep->ctl_kernel(EPOLL_CTL_ADD, kfd, &ev)) {
      (void)ep->ctl(EPOLL_CTL_DEL, Ref<File>::share(&file), item.fd, epoll_event{});
    }
    ep->put_instance();
  }
}

Result<Ref<File>> create_instance(int status_flags, LockMode mode) noexcept {
  return Instance::create(status_flags, mode);
}

Result<void> instance_ctl(File& ep, int op, Ref<File> target, int fd,
                          const epoll_event& event) noexcept {
  return Instance::from(&ep)->ctl(op, std::move(target), fd, event);
}

Result<void> instance_ctl_kernel(File& ep, int op, int kfd, const epoll_event* event) noexcept {
  return Instance::from(&ep)->ctl_kernel(op, kfd, event);
}

Result<int> instance_wait(File& ep, epoll_event* events, int maxevents, Timeout timeout,
                          const sigset_t* sigmask) noexcept {
  return Instance::from(&ep)->wait(events, maxevents, timeout, sigmask);
}

Result<int> instance_kernel_fd(File& ep) noexcept { return Instance::from(&ep)->kernel_fd(); }

void hand_over_watches(File& file, KernelStandIn& stand_in) noexcept {
  Instance::hand_over_watches(file, stand_in);
}

}  // namespace uepoll::detail
