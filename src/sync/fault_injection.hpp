// Allocation-failure injection, for tests: make the N-th memory allocation uepoll performs on
// the calling thread fail, and check that the call returns ENOMEM with every counter, reference,
// watcher list and ready list as it was before the call.
//
// Active only in builds configured with UEPOLL_FAULT_INJECTION=ON (the debug and sanitizer
// presets); elsewhere fail_nth_allocation() returns false and nothing ever fails on purpose.
#pragma once

#include <cstddef>
#include <new>

namespace uepoll::testing {

/// Arms the calling thread: its n-th allocation from now on fails (n >= 1); n = 0 disarms.
/// Returns false if this build has no fault injection.
bool fail_nth_allocation(long n) noexcept;

/// True while an armed failure has not happened yet (the call made fewer than n allocations).
bool allocation_failure_pending() noexcept;

}  // namespace uepoll::testing

namespace uepoll::detail {

/// Every allocation site of uepoll asks this first; true means "behave as if out of memory".
bool allocation_should_fail() noexcept;

/// new (std::nothrow) T(args...), or null when the allocation fails (or is made to fail).
template <class T, class... Args>
T* try_new(Args&&... args) noexcept {
  if (allocation_should_fail()) {
    return nullptr;
  }
  return new (std::nothrow) T(static_cast<Args&&>(args)...);
}

/// new (std::nothrow) T[n]() (value-initialised), or null when the allocation fails.
template <class T>
T* try_new_array(std::size_t n) noexcept {
  if (allocation_should_fail()) {
    return nullptr;
  }
  return new (std::nothrow) T[n]();
}

}  // namespace uepoll::detail
