// How epoll instances serialise their close paths.
#pragma once

namespace uepoll {

enum class LockMode {
  /// The default: closing a watched file or an epoll instance takes only per-object locks.
  kFine,
  /// Linux before 6.4 (the design the 2017 epmutex series measured): closing a watched file
  /// and closing an epoll instance both take the one process-wide epoll mutex. Semantics are
  /// identical; only the locking differs. For reproducing the seed's experiment side by side.
  kLegacy,
};

/// The mode named by the environment variable UEPOLL_LOCK_MODE ("fine" or "legacy"; anything
/// else, or unset, is kFine). Read once, at the first call.
LockMode lock_mode_from_environment() noexcept;

}  // namespace uepoll
