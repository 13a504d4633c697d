// Per-thread cleanup that runs after every C++ thread_local destructor of the exiting thread.
//
// uepoll keeps per-thread state (an RCU retire list, a watch-count delta, a parker) in plain
// thread-local data without destructors, and cleans it up from a pthread key destructor: glibc
// runs those after the thread's thread_local destructors, so a user's thread_local whose
// destructor closes a file, waits or allocates still finds the state intact. A component whose
// cleanup has run marks its state "exited" and from then on serves that thread without per-thread
// state (the key destructor would not be called a second time).
//
// Thread safety: arm() affects the calling thread only.
#pragma once

#include <pthread.h>

// Thread-locals on hot paths: a fixed offset from the thread pointer instead of a
// __tls_get_addr call per access in the shared library. They are small (well within the static
// TLS that glibc keeps for libraries loaded later, such as a dlopen()ed libuepoll.so).
#define UEPOLL_HOT_TLS [[gnu::tls_model("initial-exec")]]

namespace uepoll::detail {

class ThreadExit {
 public:
  /// `on_exit` runs on each armed thread as it exits (its argument is not meaningful).
  explicit ThreadExit(void (*on_exit)(void*)) noexcept
      : ok_(pthread_key_create(&key_, on_exit) == 0) {}
  ThreadExit(const ThreadExit&) = delete;
  ThreadExit& operator=(const ThreadExit&) = delete;

  /// Makes the cleanup run when the calling thread exits. False when no key could be had (the
  /// process ran out of pthread keys): the caller then has no cleanup to count on.
  bool arm() noexcept {
    // Keys below PTHREAD_KEY_2NDLEVEL_SIZE live in the thread descriptor: no allocation.
    return ok_ && pthread_setspecific(key_, reinterpret_cast<void*>(1)) == 0;
  }

 private:
  pthread_key_t key_{};
  const bool ok_;
};

}  // namespace uepoll::detail
