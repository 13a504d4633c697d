// Running a call that must block, then poking it awake: the blocking tests of
// tests/conformance (both backends) and tests/unit.
#pragma once

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <thread>

namespace uepoll_test {

// Whether thread `tid` of this process is asleep (state S in /proc), i.e. blocked in the kernel:
// in the call under test (kernel, or uepoll's ppoll/futex) once it has got that far.
inline bool thread_sleeps(pid_t tid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/stat", static_cast<int>(tid));
  std::FILE* f = std::fopen(path, "r");
  if (f == nullptr) {
    return false;
  }
  char line[512] = {};
  const bool got = std::fgets(line, sizeof line, f) != nullptr;
  std::fclose(f);
  // "tid (comm) S ...": the state follows the last ')'.
  const char* close = got ? std::strrchr(line, ')') : nullptr;
  return close != nullptr && close[1] == ' ' && close[2] == 'S';
}

// Runs `call` in a thread, waits until that thread sleeps (a loaded machine may take long to
// get there, so no fixed delay decides it), pokes it, and returns the call's result with its
// errno in errno. A call that returns before the poke, or is not woken within 5 s, fails.
template <class F>
long run_blocked(F call, const std::function<void()>& poke) {
  std::atomic<pid_t> tid{0};
  std::atomic<bool> done{false};
  long result = 0;
  int err = 0;
  std::thread t([&] {
    tid = static_cast<pid_t>(syscall(SYS_gettid));
    errno = 0;
    result = call();
    err = errno;
    done = true;
  });
  for (int i = 0; i < 5000 && !done && (tid == 0 || !thread_sleeps(tid)); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(done.load()) << "the call did not block";
  poke();
  for (int i = 0; i < 500 && !done; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(done.load()) << "the call was not woken";
  while (!done) {
    pthread_kill(t.native_handle(), SIGUSR1);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  t.join();
  errno = err;
  return result;
}

}  // namespace uepoll_test
