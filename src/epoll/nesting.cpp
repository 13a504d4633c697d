// The checks that keep epoll-in-epoll graphs finite and cheap to wake: no cycles, at most
// kMaxNests epoll-to-epoll links on any chain (ELOOP), and bounded numbers of wake-up paths from
// any file to the top (EINVAL). They are the one place uepoll takes a process-wide mutex, as
// Linux does: two concurrent ADDs (A into B, B into A) could otherwise each miss the other.
#include <algorithm>
#include <cerrno>
#include <new>

#include "core/counters.hpp"
#include "core/file_access.hpp"
#include "epoll/instance.hpp"

namespace uepoll::detail {
namespace {

// Spins before it parks, as the kernel's epmutex did: LockMode::kLegacy takes it on every close
// of a watched file, and the seed's figures come from that lock's behaviour.
Mutex g_nesting_mutex{LockLevel::kNesting, Mutex::Contended::kSpinThenPark};
// Stamps the instances a check has visited; bumped at both ends of every check, so a stamp
// equal to the current value means "visited by the check in flight". Written under
// g_nesting_mutex, read without it by the fast-path test.
std::atomic<std::uint64_t> g_check_gen{1};  // never 0, the stamp of a fresh instance
std::atomic<std::uint64_t> g_nesting_acquisitions{0};

// Most wake-up paths allowed from a file, by the number of instances above the first one.
// Paths of length 1 (a file watched directly) are unlimited.
constexpr int kPathLimits[kMaxNests + 1] = {0, 500, 100, 50, 10};

}  // namespace

bool check_in_flight_visited(const Instance* ep) noexcept {
  return ep->check_gen_.load(std::memory_order_acquire) ==
         g_check_gen.load(std::memory_order_acquire);
}

std::uint64_t global_mutex_acquisitions() noexcept {
  return g_nesting_acquisitions.load(std::memory_order_relaxed);
}

GlobalMutexLock::GlobalMutexLock() noexcept UEPOLL_NO_THREAD_SAFETY_ANALYSIS {
  g_nesting_mutex.lock();
  g_nesting_acquisitions.fetch_add(1, std::memory_order_relaxed);
  if (timing()) {
    acquired_ns_ = now_ns();
  }
}

GlobalMutexLock::~GlobalMutexLock() UEPOLL_NO_THREAD_SAFETY_ANALYSIS {
  if (acquired_ns_ != 0) {
    g_global_hold_ns.fetch_add(now_ns() - acquired_ns_, std::memory_order_relaxed);
  }
  g_nesting_mutex.unlock();
}

NestingCheck::NestingCheck() noexcept { g_check_gen.fetch_add(1, std::memory_order_acq_rel); }

NestingCheck::~NestingCheck() {
  g_check_gen.fetch_add(1, std::memory_order_acq_rel);
  lock_.reset();
  // The pins are dropped after the mutex: a pin may be a file's last reference, and its release
  // takes the mutex in LockMode::kLegacy.
  for (File* f : files_) {
    f->put();
  }
}

void NestingCheck::add_file(File* file) noexcept {
  // Room first, pin second: this may run under a descendant's ctl_mutex_, where dropping a pin
  // that turned out to be the last reference would take that mutex again (path C).
  if (files_.size() == files_.capacity()) {
    try {
      if (allocation_should_fail()) {
        throw std::bad_alloc();
      }
      files_.reserve(files_.empty() ? 8 : 2 * files_.size());
    } catch (const std::bad_alloc&) {
      out_of_memory_ = true;
      return;
    }
  }
  if (file->try_get()) {
    files_.push_back(file);  // no allocation: capacity reserved above
  }                          // else being released: it will have no wake-up paths left
}

Result<void> NestingCheck::check_loop(Instance* into, Instance* target) noexcept {
  inserting_into_ = into;
  int below = depth_below(target, 0);
  if (below > kMaxNests) {
    return Error{ELOOP};
  }
  int above;
  {
    rcu::ReadGuard rcu;
    above = depth_above(into);
  }
  if (below + 1 + above > kMaxNests) {
    return Error{ELOOP};
  }
  return {};
}

// Depth of the instance tree below `ep` (0 for an instance watching no instance); more than
// kMaxNests when the tree reaches the inserting instance (a cycle) or is too deep. Remembers
// the non-epoll files it meets for the path check.
int NestingCheck::depth_below(Instance* ep, int depth) noexcept {
  const std::uint64_t gen = g_check_gen.load(std::memory_order_relaxed);
  if (ep->check_gen_.load(std::memory_order_relaxed) == gen) {
    return ep->check_depth_;
  }
  ep->check_gen_.store(gen, std::memory_order_release);
  int result = 0;
  {
    MutexLock lock(ep->ctl_mutex_);
    ep->for_each_watch_locked([&](Watch* w) {
      if (result > kMaxNests) {
        return;
      }
      if (w->file->is_epoll()) {
        Instance* child = Instance::from(w->file);
        if (child == inserting_into_ || depth > kMaxNests) {
          result = kMaxNests + 1;
        } else {
          result = std::max(result, depth_below(child, depth + 1) + 1);
        }
      } else {
        add_file(w->file);
      }
    });
  }
  ep->check_depth_ = result;
  return result;
}

// Height of the instance tree above `ep`, walking watcher lists under RCU: the items and
// instances met may be removed concurrently, but their memory outlives this walk.
int NestingCheck::depth_above(Instance* ep) noexcept {
  const std::uint64_t gen = g_check_gen.load(std::memory_order_relaxed);
  if (ep->check_gen_.load(std::memory_order_relaxed) == gen) {
    return ep->check_depth_;
  }
  int result = 0;
  for (Watch* w = FileAccess::watchers(*ep).load(std::memory_order_acquire); w != nullptr;
       w = w->file_next.load(std::memory_order_acquire)) {
    result = std::max(result, depth_above(w->instance) + 1);
  }
  ep->check_gen_.store(gen, std::memory_order_release);
  ep->check_depth_ = result;
  return result;
}

// Counts the wake-up paths from the instances watching through `first` upwards; false when a
// limit is exceeded.
bool NestingCheck::count_paths(File* file, int depth, int* path_count) noexcept {
  if (depth > kMaxNests) {
    return false;
  }
  for (Watch* w = FileAccess::watchers(*file).load(std::memory_order_acquire); w != nullptr;
       w = w->file_next.load(std::memory_order_acquire)) {
    Instance* parent = w->instance;
    if (FileAccess::watchers(*parent).load(std::memory_order_acquire) == nullptr) {
      if (depth > 0 && ++path_count[depth] > kPathLimits[depth]) {
        return false;
      }
    } else if (!count_paths(parent, depth + 1, path_count)) {
      return false;
    }
  }
  return true;
}

Result<void> NestingCheck::check_paths() noexcept {
  if (out_of_memory_) {
    return Error{ENOMEM};
  }
  std::sort(files_.begin(), files_.end());
  rcu::ReadGuard rcu;
  for (std::size_t i = 0; i < files_.size(); ++i) {
    if (i > 0 && files_[i] == files_[i - 1]) {
      continue;
    }
    int path_count[kMaxNests + 1] = {};
    if (!count_paths(files_[i], 0, path_count)) {
      return Error{EINVAL};
    }
  }
  return {};
}

}  // namespace uepoll::detail
