#include "epoll/kernel_side.hpp"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <new>
#include <utility>
#include <vector>

#include "core/file_access.hpp"
#include "epoll/instance.hpp"
#include "sync/fault_injection.hpp"
#include "sync/sys.hpp"

namespace uepoll::detail {
namespace {

struct Tags {
  std::uint64_t bell;
  std::uint64_t mirror;
};

Tags draw_tags() noexcept {
  Tags t{};
  if (getrandom(&t, sizeof t, 0) != static_cast<ssize_t>(sizeof t)) {
    // No entropy source: still unpredictable enough for a caller that does not aim at it.
    auto now =
        static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    t.bell = now * 0x9e3779b97f4a7c15u ^ reinterpret_cast<std::uintptr_t>(&t);
    t.mirror = ~t.bell * 0xbf58476d1ce4e5b9u;
  }
  if (t.bell == t.mirror) {
    t.mirror = ~t.bell;
  }
  return t;
}

// Drawn while the library loads: no guard to test on every harvest.
const Tags g_tags = draw_tags();

}  // namespace

std::uint64_t kernel_bell_tag() noexcept { return g_tags.bell; }
std::uint64_t kernel_mirror_tag() noexcept { return g_tags.mirror; }

KernelSide::KernelSide(Instance* owner) noexcept { bell_.owner = owner; }

KernelSide* KernelSide::create(Instance* owner) noexcept {
  auto* ks = try_new<KernelSide>(owner);
  if (ks == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  // Under the interposer the program's descriptor for the instance is a kernel epoll already:
  // the same one, so that kernel loops watching that descriptor see the instance's events.
  ks->ep_ = sys::calls.kernel_twin_of != nullptr ? sys::calls.kernel_twin_of(owner) : -1;
  if (ks->ep_ < 0) {
    ks->ep_ = sys::own_kernel_fd(sys::calls.epoll_create1(EPOLL_CLOEXEC));
  }
  const int bell = sys::own_kernel_fd(sys::calls.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  {
    MutexLock lock(ks->bell_.mu);
    ks->bell_.fd = bell;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kernel_bell_tag();
  if (ks->ep_ < 0 || bell < 0 || sys::calls.epoll_ctl(ks->ep_, EPOLL_CTL_ADD, bell, &ev) != 0) {
    const int err = errno;
    delete ks;
    errno = err;
    return nullptr;
  }
  return ks;
}

KernelSide::~KernelSide() { close_fds(); }

void KernelSide::close_fds() noexcept {
  if (ep_ >= 0) {
    sys::close_own_kernel_fd(std::exchange(ep_, -1));
  }
  MutexLock lock(bell_.mu);
  if (bell_.fd >= 0) {
    sys::close_own_kernel_fd(std::exchange(bell_.fd, -1));
  }
}

void KernelSide::ring() noexcept {
  bell_.owner->get_instance();  // the write may happen after the caller lets go of the owner
  if (!bell_.request()) {
    bell_.owner->put_instance();  // a write is pending already; never the last reference
  }
}

void KernelSide::Bell::kick() noexcept {
  {
    MutexLock lock(mu);
    if (fd >= 0) {
      const std::uint64_t one = 1;
      // EAGAIN only at a count of 2^64-2, which means it is readable: all a ring needs.
      [[maybe_unused]] ssize_t n = sys::calls.write(fd, &one, sizeof one);
    }
  }
  owner->put_instance();
}

void KernelSide::silence() noexcept {
  MutexLock lock(bell_.mu);
  std::uint64_t count;
  [[maybe_unused]] ssize_t n = sys::calls.read(bell_.fd, &count, sizeof count);
}

// ---------------------------------------------------------------------------------------------
// The instance's side of it

namespace {

// The (parent, fd) pairs of the items that watch `ep`, each parent pinned.
struct Parents {
  std::vector<std::pair<Instance*, int>> list;
  ~Parents() {
    for (auto& [parent, fd] : list) {
      parent->put_instance();
    }
  }
};

}  // namespace

Result<void> Instance::make_kernel_side() noexcept {
  if (live_kernel_side() != nullptr) {
    return {};
  }
  Parents parents;
  try {
    if (allocation_should_fail()) {
      throw std::bad_alloc();
    }
    rcu::ReadGuard rcu;  // the watcher list and its items' instances outlive this walk
    for (Watch* w = FileAccess::watchers(*this).load(std::memory_order_acquire); w != nullptr;
         w = w->file_next.load(std::memory_order_acquire)) {
      if (w->instance->try_get_instance()) {
        parents.list.emplace_back(w->instance, w->fd);
      }
    }
  } catch (const std::bad_alloc&) {
    return Error{ENOMEM};
  }
  // Every instance above first, so that each link below is checked against the whole chain.
  for (auto& [parent, fd] : parents.list) {
    if (Result<void> made = parent->make_kernel_side(); !made) {
      return made;
    }
  }
  KernelSide* ks = kernel_.load(std::memory_order_acquire);
  if (ks == nullptr) {
    ks = KernelSide::create(this);
    if (ks == nullptr) {
      return Error{errno == EMFILE || errno == ENFILE ? ENOMEM : errno};
    }
    // Published before the links: a removal of a parent's item from now on unlinks it.
    kernel_.store(ks, std::memory_order_release);
  }
  for (auto& [parent, fd] : parents.list) {
    MutexLock lock(parent->ctl_mutex_);
    if (Watch* w = parent->find(this, fd)) {
      if (Result<void> linked_in = parent->link_mirror(w); !linked_in) {
        return linked_in;  // not live: the next attempt links what is missing
      }
    }
  }
  ks->set_live();
  // Threads already asleep in the uepoll way would not hear the kernel side: wake them to
  // sleep again on it.
  WakeBatch wakes;
  SpinGuard guard(ready_lock_);
  wake_all_sleepers();
  return {};
}

Result<void> Instance::link_mirror(Watch* w) noexcept {
  KernelSide* mine = live_kernel_side();
  KernelSide* child = from(w->file)->kernel_.load(std::memory_order_acquire);
  if (mine == nullptr || child == nullptr) {
    UEPOLL_DEBUG_CHECK(false, "a mirror linked without both kernel sides");
    return {};
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = kernel_mirror_tag();
  if (sys::calls.epoll_ctl(mine->ep(), EPOLL_CTL_ADD, child->ep(), &ev) != 0) {
    if (errno != EEXIST) {  // EEXIST: another item on the same instance (a dup) linked it
      return Error{errno};
    }
  } else {
    ++mine->mirrors;
  }
  return {};
}

void Instance::unlink_mirror(Watch* w) noexcept {
  if (!w->file->is_epoll()) {
    return;
  }
  KernelSide* child = from(w->file)->kernel_.load(std::memory_order_acquire);
  KernelSide* mine = kernel_.load(std::memory_order_acquire);
  if (child == nullptr || mine == nullptr) {
    return;
  }
  bool still_watched = false;  // through another descriptor of the same instance
  for_each_watch_locked(
      [&](Watch* other) { still_watched |= other != w && other->file == w->file; });
  if (!still_watched &&
      sys::calls.epoll_ctl(mine->ep(), EPOLL_CTL_DEL, child->ep(), nullptr) == 0) {
    --mine->mirrors;
  }
}

void Instance::queue_mirrored_children() noexcept {
  for_each_watch_locked([&](Watch* w) {
    if (w->file->is_epoll() && from(w->file)->live_kernel_side() != nullptr) {
      queue_if_ready(w, EPOLLIN);  // the harvest polls it, kernel side included
    }
  });
}

bool Instance::kernel_side_ready(KernelSide& ks) noexcept {
  resync_bell(ks);
  pollfd p{ks.ep(), POLLIN, 0};
  const timespec zero{0, 0};
  return sys::calls.ppoll(&p, 1, &zero, nullptr) > 0;
}

void Instance::ring_if_heard() noexcept {
  KernelSide* ks = kernel_.load(std::memory_order_acquire);
  if (ks != nullptr && ks->live() && (ks->sleepers > 0 || ks->exported())) {
    ks->ring();
  }
}

void Instance::resync_bell(KernelSide& ks) noexcept {
  ks.silence();
  WakeBatch wakes;
  SpinGuard guard(ready_lock_);
  if (events_available()) {
    ring_if_heard();
  }
}

Result<void> Instance::ctl_kernel(int op, int kfd, const epoll_event* event) noexcept {
  KernelSide* ks = live_kernel_side();
  if (ks == nullptr) {
    GlobalMutexLock topology;  // the instances above stay put while they get kernel sides
    if (Result<void> made = make_kernel_side(); !made) {
      return made;
    }
    ks = live_kernel_side();
  }
  epoll_event ev{};
  if (event != nullptr) {
    ev = *event;
  }
  if (sys::calls.epoll_ctl(ks->ep(), op, kfd, op == EPOLL_CTL_DEL ? nullptr : &ev) != 0) {
    return Error{errno};
  }
  return {};
}

Result<int> Instance::kernel_fd() noexcept {
  KernelSide* ks = live_kernel_side();
  if (ks == nullptr) {
    GlobalMutexLock topology;
    if (Result<void> made = make_kernel_side(); !made) {
      return Error{made.error()};
    }
    ks = live_kernel_side();
  }
  if (!ks->exported()) {
    ks->set_exported();
    WakeBatch wakes;
    SpinGuard guard(ready_lock_);
    if (events_available()) {
      ks->ring();
    }
  }
  return ks->ep();
}

int Instance::filter_kernel_events(KernelSide& ks, epoll_event* events, int n,
                                   bool* mirrored_out) noexcept {
  const std::uint64_t bell = kernel_bell_tag();
  const std::uint64_t mirror = kernel_mirror_tag();
  bool rang = false;
  bool mirrored = false;
  int kept = 0;
  for (int i = 0; i < n; ++i) {
    if (events[i].data.u64 == bell) {
      rang = true;
    } else if (events[i].data.u64 == mirror) {
      mirrored = true;
    } else {
      events[kept++] = events[i];
    }
  }
  if (mirrored) {
    MutexLock lock(ctl_mutex_);
    queue_mirrored_children();
  }
  if (mirrored_out != nullptr) {
    *mirrored_out = mirrored;
  }
  if (rang) {
    resync_bell(ks);
  }
  return kept;
}

Result<int> Instance::harvest_kernel(KernelSide& ks, epoll_event* events, int maxevents,
                                     bool* mirrored) noexcept {
  const int n = sys::calls.epoll_wait(ks.ep(), events, maxevents, 0);
  if (n < 0) {
    return Error{errno};  // EFAULT: the caller's buffer
  }
  return filter_kernel_events(ks, events, n, mirrored);
}

Result<int> Instance::harvest_both(KernelSide& ks, epoll_event* events, int maxevents) noexcept {
  const bool kernel_first = !ks.kernel_first.load(std::memory_order_relaxed);
  ks.kernel_first.store(kernel_first, std::memory_order_relaxed);
  auto uepoll_side = [&](epoll_event* out, int room) -> Result<int> {
    {
      SpinGuard guard(ready_lock_);
      if (!events_available()) {
        return 0;  // no harvest (and its mutex) for an empty ready list
      }
    }
    return send_events(out, room);
  };
  bool mirrored = false;  // an inner instance's kernel event queued its item just now
  auto first = [&](epoll_event* out, int room) {
    return kernel_first ? harvest_kernel(ks, out, room, &mirrored) : uepoll_side(out, room);
  };
  auto second = [&](epoll_event* out, int room) {
    return kernel_first ? uepoll_side(out, room) : harvest_kernel(ks, out, room, &mirrored);
  };
  Result<int> got = first(events, maxevents);
  if (!got) {
    return got;
  }
  int n = *got;
  const int uepoll_first = kernel_first ? 0 : n;
  if (n < maxevents) {
    Result<int> more = second(events == nullptr ? nullptr : events + n, maxevents - n);
    if (!more) {
      return n > 0 ? Result<int>(n) : more;
    }
    n += *more;
  }
  if (mirrored && !kernel_first && uepoll_first == 0 && n < maxevents) {
    // The uepoll side went first, before the items the kernel side queued, and found nothing:
    // once more. (Had it delivered an item, a second pass could deliver a level-triggered one
    // twice; the queued items then wait for the next call.)
    Result<int> more = uepoll_side(events == nullptr ? nullptr : events + n, maxevents - n);
    if (more) {
      n += *more;
    } else if (n == 0) {
      return more;
    }
  }
  if (ks.exported()) {
    resync_bell(ks);  // the uepoll side may be empty now: readable exactly while it has events
  }
  return n;
}

Result<int> Instance::wait_with_kernel(KernelSide& ks, epoll_event* events, int maxevents,
                                       Timeout& timeout, bool timed_out,
                                       const sigset_t* sigmask) noexcept {
  for (;;) {
    Result<int> got = harvest_both(ks, events, maxevents);
    if (!got || *got > 0 || timed_out) {
      return got;
    }
    {
      SpinGuard guard(ready_lock_);
      if (events_available()) {
        continue;
      }
      ++ks.sleepers;  // from now on a uepoll event rings the bell
    }
    const timespec* deadline = timeout.deadline();
    timespec left{};
    if (deadline != nullptr) {
      left = time_left(*deadline);
    }
    // The kernel's own wait: its wake-one order, signal mask and EINTR.
    int n = sys::calls.epoll_pwait2(ks.ep(), events, maxevents,
                                    deadline != nullptr ? &left : nullptr, sigmask);
    const int err = errno;
    {
      SpinGuard guard(ready_lock_);
      --ks.sleepers;
    }
    if (n < 0) {
      if (err != EINTR) {
        return Error{err};  // EFAULT: an unreadable signal mask
      }
      got = harvest_both(ks, events, maxevents);
      return !got || *got > 0 ? got : Result<int>(Error{EINTR});
    }
    if (n == 0) {
      timed_out = true;  // one last look, then 0
      continue;
    }
    n = filter_kernel_events(ks, events, n, nullptr);
    if (n > 0) {
      if (n < maxevents) {
        Result<int> more = send_events(events + n, maxevents - n);
        n += more ? *more : 0;
      }
      return n;
    }
  }
}

}  // namespace uepoll::detail
