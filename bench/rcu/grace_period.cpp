// The cost of one grace period, the input that decides fine mode's reclamation beyond a few
// dozen cores (docs/benchmarks.md, "Projections"): urcu_bp_synchronize_rcu() with R threads
// spinning in read-side sections, and one membarrier(PRIVATE_EXPEDITED), of which liburcu-bp
// issues two per grace period.
//   grace_period [READERS] [ITERATIONS]   (default 0 readers, 20000 iterations per run)
// Prints the median of five runs (and their range), in nanoseconds per call.
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <urcu-bp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// Five runs of `iterations` calls of `call`: nanoseconds per call, sorted.
template <class F>
std::array<double, 5> runs(int iterations, F call) {
  std::array<double, 5> ns{};
  for (double& run : ns) {
    const auto start = Clock::now();
    for (int i = 0; i < iterations; ++i) {
      call();
    }
    run = std::chrono::duration<double, std::nano>(Clock::now() - start).count() / iterations;
  }
  std::sort(ns.begin(), ns.end());
  return ns;
}

}  // namespace

int main(int argc, char** argv) {
  const int readers = argc > 1 ? std::atoi(argv[1]) : 0;
  const int iterations = argc > 2 ? std::max(std::atoi(argv[2]), 1) : 20000;
  std::atomic<bool> stop{false};
  std::vector<std::thread> spinning;
  for (int i = 0; i < readers; ++i) {
    spinning.emplace_back([&stop] {
      while (!stop.load(std::memory_order_relaxed)) {
        urcu_bp_read_lock();
        urcu_bp_read_unlock();
      }
    });
  }
  urcu_bp_register_thread();
  for (int i = 0; i < 1000; ++i) {
    urcu_bp_synchronize_rcu();  // warm-up: registration, the first membarrier registration
  }
  const auto grace = runs(iterations, [] { urcu_bp_synchronize_rcu(); });
  const auto barrier =
      runs(iterations, [] { syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0); });
  std::printf(
      "readers=%d synchronize_rcu median %.0f ns (%.0f - %.0f); membarrier median %.0f ns "
      "(%.0f - %.0f)\n",
      readers, grace[2], grace[0], grace[4], barrier[2], barrier[0], barrier[4]);
  stop.store(true, std::memory_order_relaxed);
  for (std::thread& t : spinning) {
    t.join();
  }
  return 0;
}
