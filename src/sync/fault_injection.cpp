#include "sync/fault_injection.hpp"

#include "uepoll/sync.hpp"

namespace uepoll {

#if defined(UEPOLL_FAULT_INJECTION)
namespace {
thread_local long t_countdown = 0;  // 0: disarmed; n: the n-th allocation from now fails
}  // namespace

bool testing::fail_nth_allocation(long n) noexcept {
  t_countdown = n > 0 ? n : 0;
  return true;
}

bool testing::allocation_failure_pending() noexcept { return t_countdown > 0; }

bool detail::allocation_should_fail() noexcept {
  detail::lockdep_assert_may_block("allocation under a spinlock");
  return t_countdown > 0 && --t_countdown == 0;
}
#else
bool testing::fail_nth_allocation(long) noexcept { return false; }
bool testing::allocation_failure_pending() noexcept { return false; }
bool detail::allocation_should_fail() noexcept {
  detail::lockdep_assert_may_block("allocation under a spinlock");
  return false;
}
#endif

}  // namespace uepoll
