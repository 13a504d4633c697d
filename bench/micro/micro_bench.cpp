// Micro benchmarks: each operation on the host kernel and on uepoll, in one binary, so every
// uepoll number has its kernel twin measured minutes apart on the same machine.
//
//   BM_<Op>/kernel          the host's epoll and eventfd system calls
//   BM_<Op>/uepoll          one uepoll::Process, LockMode::kFine (the default)
//   BM_<Op>/uepoll_legacy   the same in LockMode::kLegacy, for the close paths (the only ones
//                           the mode changes)
//
// Every benchmark reports real time per operation (UseRealTime: the caller's CPU time alone
// would flatter anything that defers work to another thread). After the usual
// table, a summary prints kernel time / uepoll time per operation (medians when run with
// --benchmark_repetitions).
//
// Quick run:  micro_bench --benchmark_min_time=0.01
// Measuring:  micro_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "backend.hpp"
#include "epoll/instance.hpp"

namespace {

using uepoll_bench::KernelBackend;
using uepoll_bench::UepollBackend;

// The registration (Linux's epitem). The target is at most 128 bytes; the size is
// printed (and flagged when over) rather than asserted, so a miss does not break the build.
constexpr std::size_t kWatchBytes = sizeof(uepoll::detail::Watch);
constexpr std::size_t kWatchTargetBytes = 128;

/// Aborts with the failing call's name and errno: a benchmark that silently measures failing
/// calls is worse than none.
int must(long rc, const char* what) {
  if (rc < 0) {
    std::fprintf(stderr, "micro_bench: %s failed: %s\n", what, std::strerror(errno));
    std::abort();
  }
  return static_cast<int>(rc);
}

enum class Side { kKernel, kFine, kLegacy };

const char* side_name(Side side) {
  switch (side) {
    case Side::kKernel: return "kernel";
    case Side::kFine: return "uepoll";
    case Side::kLegacy: return "uepoll_legacy";
  }
  return "?";
}

/// Runs `Op::run(state, backend)` on a fresh backend of `side` (a fresh Process for uepoll).
template <class Op>
void run_on(benchmark::State& state, Side side) {
  if (side == Side::kKernel) {
    KernelBackend kernel;
    Op::run(state, kernel);
  } else {
    UepollBackend process(side == Side::kFine ? uepoll::LockMode::kFine
                                              : uepoll::LockMode::kLegacy);
    Op::run(state, process);
  }
}

template <class B>
int new_instance(B& b) {
  return must(b.epoll_create1(EPOLL_CLOEXEC), "epoll_create1");
}

template <class B>
int new_eventfd(B& b, unsigned value) {
  return must(b.eventfd(value, EFD_NONBLOCK | EFD_CLOEXEC), "eventfd");
}

template <class B>
void add(B& b, int ep, int fd, std::uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  must(b.epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), "EPOLL_CTL_ADD");
}

// ---------------------------------------------------------------------------------------------
// epoll_ctl

/// EPOLL_CTL_ADD then EPOLL_CTL_DEL of one eventfd; one iteration is the pair.
struct CtlAddDel {
  template <class B>
  static void run(benchmark::State& state, B& b) {
    const int ep = new_instance(b);
    const int fd = new_eventfd(b, 0);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    for (auto _ : state) {
      must(b.epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), "EPOLL_CTL_ADD");
      must(b.epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr), "EPOLL_CTL_DEL");
    }
    state.SetItemsProcessed(state.iterations());
    b.close(fd);
    b.close(ep);
  }
};

/// EPOLL_CTL_MOD of a watched eventfd that stays not ready (the mask toggles EPOLLET and the
/// data changes, so every call rewrites the item and re-polls the file without queueing it).
struct CtlMod {
  template <class B>
  static void run(benchmark::State& state, B& b) {
    const int ep = new_instance(b);
    const int fd = new_eventfd(b, 0);
    add(b, ep, fd, EPOLLIN);
    epoll_event ev[2]{};
    ev[0].events = EPOLLIN | EPOLLET;
    ev[0].data.u64 = 1;
    ev[1].events = EPOLLIN;
    ev[1].data.u64 = 2;
    std::size_t i = 0;
    for (auto _ : state) {
      must(b.epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev[i]), "EPOLL_CTL_MOD");
      i ^= 1;
    }
    state.SetItemsProcessed(state.iterations());
    b.close(fd);
    b.close(ep);
  }
};

/// EPOLL_CTL_ADD of an epoll instance into another (the nesting checks run under the process-wide
/// mutex, in both lock modes, as on Linux), then EPOLL_CTL_DEL. The inner instance watches one
/// eventfd so the path check has a file to count.
struct NestedAddDel {
  template <class B>
  static void run(benchmark::State& state, B& b) {
    const int outer = new_instance(b);
    const int inner = new_instance(b);
    const int fd = new_eventfd(b, 0);
    add(b, inner, fd, EPOLLIN);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = inner;
    for (auto _ : state) {
      must(b.epoll_ctl(outer, EPOLL_CTL_ADD, inner, &ev), "EPOLL_CTL_ADD (nested)");
      must(b.epoll_ctl(outer, EPOLL_CTL_DEL, inner, nullptr), "EPOLL_CTL_DEL (nested)");
    }
    state.SetItemsProcessed(state.iterations());
    b.close(fd);
    b.close(inner);
    b.close(outer);
  }
};

// ---------------------------------------------------------------------------------------------
// epoll_wait

/// epoll_wait(timeout 0) on an instance watching 64 level-triggered eventfds of which
/// state.range(0) are readable; every call returns exactly that many.
struct WaitReady {
  static constexpr int kWatched = 64;

  template <class B>
  static void run(benchmark::State& state, B& b) {
    const int ready = static_cast<int>(state.range(0));
    const int ep = new_instance(b);
    std::vector<int> fds;
    for (int i = 0; i < kWatched; ++i) {
      fds.push_back(new_eventfd(b, i < ready ? 1 : 0));
      add(b, ep, fds.back(), EPOLLIN);
    }
    epoll_event events[kWatched];
    for (auto _ : state) {
      const int n = must(b.epoll_wait(ep, events, kWatched, 0), "epoll_wait");
      if (n != ready) {
        state.SkipWithError("epoll_wait returned an unexpected count");
        break;
      }
      benchmark::DoNotOptimize(events[0]);
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["events_per_wait"] = ready;
    for (const int fd : fds) {
      b.close(fd);
    }
    b.close(ep);
  }
};

/// epoll_wait(timeout 0) on an instance watching 32 of the backend's eventfds and 32 kernel
/// eventfds (on the kernel backend all 64 are the kernel's), `arg` of each kind ready: the cost of
/// one wait that serves both kinds, against the kernel's own epoll with as many members.
struct WaitMixed {
  static constexpr int kEach = 32;

  template <class B>
  static void run(benchmark::State& state, B& b) {
    const int ready = static_cast<int>(state.range(0));
    const int ep = new_instance(b);
    std::vector<int> own;
    std::vector<int> kernel;
    for (int i = 0; i < kEach; ++i) {
      own.push_back(new_eventfd(b, i < ready ? 1 : 0));
      add(b, ep, own.back(), EPOLLIN);
      kernel.push_back(must(::eventfd(i < ready ? 1 : 0, EFD_NONBLOCK | EFD_CLOEXEC), "eventfd"));
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = kernel.back();
      must(b.epoll_ctl_kernel(ep, EPOLL_CTL_ADD, kernel.back(), &ev), "epoll_ctl_kernel");
    }
    epoll_event events[2 * kEach];
    for (auto _ : state) {
      const int n = must(b.epoll_wait(ep, events, 2 * kEach, 0), "epoll_wait");
      if (n != 2 * ready) {
        state.SkipWithError("epoll_wait returned an unexpected count");
        break;
      }
      benchmark::DoNotOptimize(events[0]);
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["events_per_wait"] = 2 * ready;
    for (int i = 0; i < kEach; ++i) {
      b.close(own[i]);
      ::close(kernel[i]);
    }
    b.close(ep);
  }
};

/// Aborts the process if the guarded loop makes no progress for 10 s (a lost wake-up would
/// otherwise hang the run: the ping-pong waits with timeout -1, as asked).
class Watchdog {
 public:
  explicit Watchdog(const char* what) : what_(what), thread_([this] { watch(); }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  void tick() { progress_.fetch_add(1, std::memory_order_relaxed); }

 private:
  void watch() {
    std::unique_lock<std::mutex> lock(mutex_);
    std::uint64_t seen = progress_.load(std::memory_order_relaxed);
    int idle_seconds = 0;
    while (!cv_.wait_for(lock, std::chrono::seconds(1), [this] { return done_; })) {
      const std::uint64_t now = progress_.load(std::memory_order_relaxed);
      idle_seconds = now == seen ? idle_seconds + 1 : 0;
      seen = now;
      if (idle_seconds >= 10) {
        std::fprintf(stderr, "micro_bench: %s made no progress for 10 s (lost wake-up?)\n", what_);
        std::abort();
      }
    }
  }

  const char* what_;
  std::atomic<std::uint64_t> progress_{0};
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;  // last: starts after the members it reads
};

/// Wake-to-return latency: this thread writes the peer's eventfd and sleeps in
/// epoll_wait(-1) on its own instance; the peer, asleep in epoll_wait(-1) on its instance, reads
/// and writes back. One iteration is one round trip (two wake-ups). Also reports the round
/// trip's median, 99th percentile and maximum.
struct WakePingPong {
  template <class B>
  static void run(benchmark::State& state, B& b) {
    const int ep_main = new_instance(b);
    const int ep_peer = new_instance(b);
    const int to_main = new_eventfd(b, 0);
    const int to_peer = new_eventfd(b, 0);
    add(b, ep_main, to_main, EPOLLIN);
    add(b, ep_peer, to_peer, EPOLLIN);

    std::atomic<bool> stop{false};
    std::thread peer([&] {
      epoll_event ev{};
      std::uint64_t value = 0;
      const std::uint64_t one = 1;
      for (;;) {
        const int n = b.epoll_wait(ep_peer, &ev, 1, -1);
        if (n < 0 && errno == EINTR) {
          continue;
        }
        must(n, "epoll_wait (peer)");
        must(b.read(to_peer, &value, sizeof value), "read (peer)");
        if (stop.load(std::memory_order_acquire)) {
          return;
        }
        must(b.write(to_main, &one, sizeof one), "write (peer)");
      }
    });

    std::vector<std::uint32_t> samples;  // round trips in ns
    samples.reserve(static_cast<std::size_t>(
        std::min<benchmark::IterationCount>(state.max_iterations, 1 << 20)));
    Watchdog watchdog("BM_WakePingPong");
    epoll_event ev{};
    std::uint64_t value = 0;
    const std::uint64_t one = 1;
    for (auto _ : state) {
      const auto start = std::chrono::steady_clock::now();
      must(b.write(to_peer, &one, sizeof one), "write");
      int n;
      do {
        n = b.epoll_wait(ep_main, &ev, 1, -1);
      } while (n < 0 && errno == EINTR);
      must(n, "epoll_wait");
      must(b.read(to_main, &value, sizeof value), "read");
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now() - start)
                          .count();
      samples.push_back(static_cast<std::uint32_t>(std::min<long long>(ns, UINT32_MAX)));
      watchdog.tick();
    }
    stop.store(true, std::memory_order_release);
    must(b.write(to_peer, &one, sizeof one), "write (stop)");
    peer.join();

    state.SetItemsProcessed(state.iterations());
    if (!samples.empty()) {
      std::sort(samples.begin(), samples.end());
      auto at = [&](double q) {
        return samples[std::min(samples.size() - 1,
                                static_cast<std::size_t>(q * static_cast<double>(samples.size())))];
      };
      state.counters["p50_us"] = at(0.50) / 1e3;
      state.counters["p99_us"] = at(0.99) / 1e3;
      state.counters["max_us"] = samples.back() / 1e3;
    }
    b.close(to_peer);
    b.close(to_main);
    b.close(ep_peer);
    b.close(ep_main);
  }
};

// ---------------------------------------------------------------------------------------------
// Close paths. Setup (create + ADD) runs outside the timed region in batches, so the pause and
// resume of the timers (two clock reads each) is paid once per batch, not once per close.

/// close() of the only descriptor of an eventfd watched by state.range(0) instances: the file's
/// release path (Linux's eventpoll_release_file; the seed's bottleneck).
struct CloseWatched {
  static constexpr std::size_t kBatch = 256;

  template <class B>
  static void run(benchmark::State& state, B& b) {
    const int watchers = static_cast<int>(state.range(0));
    std::vector<int> eps;
    for (int i = 0; i < watchers; ++i) {
      eps.push_back(new_instance(b));
    }
    std::vector<int> pool;
    pool.reserve(kBatch);
    auto refill = [&] {
      for (std::size_t i = 0; i < kBatch; ++i) {
        const int fd = new_eventfd(b, 0);
        for (const int ep : eps) {
          add(b, ep, fd, EPOLLIN);
        }
        pool.push_back(fd);
      }
    };
    refill();
    for (auto _ : state) {
      if (pool.empty()) {
        state.PauseTiming();
        refill();
        state.ResumeTiming();
      }
      must(b.close(pool.back()), "close");
      pool.pop_back();
    }
    state.SetItemsProcessed(state.iterations());
    for (const int fd : pool) {
      b.close(fd);
    }
    for (const int ep : eps) {
      b.close(ep);
    }
  }
};

/// close() of the only descriptor of an epoll instance watching state.range(0) eventfds: the
/// instance's release path (Linux's ep_free). The watched eventfds stay open.
struct CloseInstance {
  template <class B>
  static void run(benchmark::State& state, B& b) {
    const int watched = static_cast<int>(state.range(0));
    const std::size_t batch = watched >= 100 ? 16 : 256;
    std::vector<int> fds;
    for (int i = 0; i < watched; ++i) {
      fds.push_back(new_eventfd(b, 0));
    }
    std::vector<int> pool;
    pool.reserve(batch);
    auto refill = [&] {
      for (std::size_t i = 0; i < batch; ++i) {
        const int ep = new_instance(b);
        for (const int fd : fds) {
          add(b, ep, fd, EPOLLIN);
        }
        pool.push_back(ep);
      }
    };
    refill();
    for (auto _ : state) {
      if (pool.empty()) {
        state.PauseTiming();
        refill();
        state.ResumeTiming();
      }
      must(b.close(pool.back()), "close");
      pool.pop_back();
    }
    state.SetItemsProcessed(state.iterations());
    for (const int ep : pool) {
      b.close(ep);
    }
    for (const int fd : fds) {
      b.close(fd);
    }
  }
};

// ---------------------------------------------------------------------------------------------
// Registration and the kernel/uepoll summary

template <class Op>
benchmark::internal::Benchmark* twin(const std::string& op, Side side) {
  return benchmark::RegisterBenchmark((op + "/" + side_name(side)).c_str(),
                                      [side](benchmark::State& state) { run_on<Op>(state, side); })
      ->UseRealTime();
}

void register_all() {
  for (const Side side : {Side::kKernel, Side::kFine}) {
    twin<CtlAddDel>("BM_CtlAddDel", side);
    twin<CtlMod>("BM_CtlMod", side);
    twin<WaitReady>("BM_WaitReady", side)->Arg(0)->Arg(1)->Arg(64);
    twin<WaitMixed>("BM_WaitMixed", side)->Arg(0)->Arg(1)->Arg(32);
    twin<WakePingPong>("BM_WakePingPong", side);
    twin<NestedAddDel>("BM_NestedAddDel", side);
  }
  for (const Side side : {Side::kKernel, Side::kFine, Side::kLegacy}) {
    twin<CloseWatched>("BM_CloseWatched", side)->Arg(1)->Arg(8);
    twin<CloseInstance>("BM_CloseInstance", side)->Arg(1)->Arg(1000);
  }
}

/// The console table, then one line per operation: kernel time / uepoll time (how many times
/// faster uepoll is), from medians when repetitions were asked for.
class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  explicit SummaryReporter(OutputOptions options) : ConsoleReporter(options) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.error_occurred) {
        continue;
      }
      const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
      if (run.run_type == Run::RT_Aggregate && !median) {
        continue;
      }
      // function_name is "BM_Op/side"; args ("64") come separately.
      const std::string& function = run.run_name.function_name;
      const std::size_t slash = function.rfind('/');
      if (slash == std::string::npos) {
        continue;
      }
      std::string key = function.substr(0, slash);
      if (!run.run_name.args.empty()) {
        key += "/" + run.run_name.args;
      }
      Entry& entry = entries_[key][function.substr(slash + 1)];
      if (median || !entry.from_median) {
        const double to_ns = run.time_unit == benchmark::kNanosecond    ? 1.0
                             : run.time_unit == benchmark::kMicrosecond ? 1e3
                             : run.time_unit == benchmark::kMillisecond ? 1e6
                                                                        : 1e9;
        entry.ns = run.GetAdjustedRealTime() * to_ns;
        entry.cpu_ns = run.GetAdjustedCPUTime() * to_ns;
        entry.from_median = median;
      }
    }
  }

  void Finalize() override {
    ConsoleReporter::Finalize();
    // Real time is what the caller waits; the calling thread's CPU time is the steadier number
    // on a loaded machine (it leaves out time preempted).
    std::printf(
        "\nkernel time / uepoll time (x = uepoll is that many times faster; real time, and the\n"
        "calling thread's CPU time in the last column)\n");
    std::printf("%-24s %12s %12s %12s %9s %9s %9s\n", "operation", "kernel ns", "uepoll ns",
                "legacy ns", "fine", "legacy", "fine cpu");
    for (const auto& [op, sides] : entries_) {
      auto ns = [&](const char* side, bool cpu = false) {
        auto it = sides.find(side);
        return it == sides.end() ? 0.0 : cpu ? it->second.cpu_ns : it->second.ns;
      };
      const double kernel = ns("kernel");
      const double fine = ns("uepoll");
      const double legacy = ns("uepoll_legacy");
      char legacy_ns[16] = "-";
      if (legacy > 0) {
        std::snprintf(legacy_ns, sizeof legacy_ns, "%.1f", legacy);
      }
      std::printf("%-24s %12.1f %12.1f %12s %9s %9s %9s\n", op.c_str(), kernel, fine, legacy_ns,
                  ratio(kernel, fine).c_str(), ratio(kernel, legacy).c_str(),
                  ratio(ns("kernel", true), ns("uepoll", true)).c_str());
    }
    std::fflush(stdout);
  }

 private:
  static std::string ratio(double kernel, double mine) {
    if (kernel <= 0 || mine <= 0) {
      return "-";
    }
    char out[32];
    std::snprintf(out, sizeof out, "%.1fx", kernel / mine);
    return out;
  }

  struct Entry {
    double ns = 0;
    double cpu_ns = 0;
    bool from_median = false;
  };
  std::map<std::string, std::map<std::string, Entry>> entries_;
};

}  // namespace

/// The console options --benchmark_color asks for (the library keeps its flag to itself once a
/// reporter is passed in): colour for "true"/"yes"/"1", none for "false"/"no"/"0", else colour
/// on a terminal.
benchmark::ConsoleReporter::OutputOptions console_options(int argc, char** argv) {
  bool color = isatty(STDOUT_FILENO) != 0;
  const std::string flag = "--benchmark_color=";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind(flag, 0) == 0) {
      const std::string value = arg.substr(flag.size());
      if (value == "true" || value == "yes" || value == "1") {
        color = true;
      } else if (value == "false" || value == "no" || value == "0") {
        color = false;
      }
    }
  }
  return color ? benchmark::ConsoleReporter::OO_ColorTabular
               : benchmark::ConsoleReporter::OO_Tabular;
}

int main(int argc, char** argv) {
  const benchmark::ConsoleReporter::OutputOptions options = console_options(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 1;
  }
  benchmark::AddCustomContext("sizeof(Watch)",
                              std::to_string(kWatchBytes) +
                                  " bytes (target <= " + std::to_string(kWatchTargetBytes) + ": " +
                                  (kWatchBytes <= kWatchTargetBytes ? "met)" : "NOT MET)"));
  benchmark::AddCustomContext("sizeof(WatchHook)",
                              std::to_string(sizeof(uepoll::detail::WatchHook)) +
                                  " bytes (extra hooks only, for files with several queues)");
  register_all();
  SummaryReporter reporter(options);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
