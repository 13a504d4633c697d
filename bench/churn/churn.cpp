// Connection churn: the pattern of the 2017 epmutex series (nginx with keepalive_requests = 1:
// every request opens, watches, serves and closes a connection) without HTTP.
//
// T worker threads, each with its own descriptor table and epoll instance (its own
// UepollBackend, i.e. its own uepoll::Process, like nginx's worker processes), loop:
//
//   socketpair -> EPOLL_CTL_ADD one end (EPOLLIN | EPOLLET) -> write 1 byte on the other end
//   -> epoll_wait -> read -> close both ends (no EPOLL_CTL_DEL: the close removes the item,
//   which is the file release path the seed measured)
//
// Modes: uepoll LockMode::kFine, uepoll LockMode::kLegacy (every close of a watched file takes
// the process-wide mutex, Linux's old epmutex), the identical loop on the host kernel, each
// kernel worker with its own descriptor table (unshare(CLONE_FILES)), and the floor: the same
// loop on the bare user-space work of a cycle (floor_backend.hpp), a reference for uepoll's cost,
// and capi: the loop on uepoll's C API (uepoll.h), all workers in its one process-wide descriptor
// table as a C program's threads are, in the lock mode UEPOLL_LOCK_MODE names (the row is named
// capi-fine or capi-legacy; one mode per process). scripts/main.sh runs it from a build against
// the installed libuepoll.so (bench/capi).
//
// Each point (mode, T) runs --repeat times for --seconds / --repeat seconds each; repetitions
// are interleaved across modes and thread counts so drift on a noisy machine hits every mode
// alike, and the table reports medians. A separate timing pass (uepoll::stats::set_timing) runs
// the uepoll modes once more to measure the global mutex's hold time and the release path's
// time; the throughput pass never reads those clocks.
//
//   churn [--threads=1,2,4,8,16,64] [--modes=fine,legacy,kernel,floor,capi] [--seconds=1]
//         [--repeat=3]
//         [--object=auto|socketpair|pipe] [--no-timing] [--json=FILE]
#include <sched.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "backend.hpp"
#include "floor_backend.hpp"
#include "uepoll/stats.hpp"

namespace {

using uepoll_bench::CapiBackend;
using uepoll_bench::FloorBackend;
using uepoll_bench::KernelBackend;
using uepoll_bench::UepollBackend;
using Clock = std::chrono::steady_clock;

enum class Mode { kFine, kLegacy, kKernel, kFloor, kCapi };

bool is_uepoll(Mode mode) {
  return mode == Mode::kFine || mode == Mode::kLegacy || mode == Mode::kCapi;
}

const char* mode_name(Mode mode) {
  switch (mode) {
    case Mode::kFine: return "fine";
    case Mode::kLegacy: return "legacy";
    case Mode::kKernel: return "kernel";
    case Mode::kFloor: return "floor";
    case Mode::kCapi:
      return std::string_view(CapiBackend::lock_mode()) == "legacy" ? "capi-legacy" : "capi-fine";
  }
  return "?";
}

/// What one loop iteration creates: a connected AF_UNIX stream pair, or a pipe until uepoll's
/// socketpair exists.
enum class Object { kSocketpair, kPipe };

struct Options {
  std::vector<int> threads = {1, 2, 4, 8, 16, 64};
  std::vector<Mode> modes = {Mode::kFine, Mode::kLegacy, Mode::kKernel, Mode::kFloor};
  double seconds = 1.0;
  int repeat = 3;
  std::optional<Object> object;  // unset: socketpair where uepoll has it, else pipe
  bool timing = true;
  std::string json;
};

/// An epoll_wait that finds nothing within this long means a lost event: the point fails
/// instead of hanging.
constexpr int kWaitTimeoutMs = 2000;

// ---------------------------------------------------------------------------------------------
// One worker

struct alignas(64) WorkerResult {
  std::uint64_t ops = 0;
  std::uint64_t cpu_ns = 0;           // the worker's CPU time inside the measured loop
  std::uint64_t switches = 0;         // the worker's voluntary context switches (it blocked) there
  const char* failed_call = nullptr;  // non-null: the worker stopped on this call's failure
  int failed_errno = 0;
};

struct Shared {
  std::atomic<int> ready{0};  // workers set up and waiting for `go`
  std::atomic<bool> go{false};
  std::atomic<bool> stop{false};
};

std::uint64_t cpu_ns(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}
std::uint64_t thread_cpu_ns() { return cpu_ns(CLOCK_THREAD_CPUTIME_ID); }
std::uint64_t process_cpu_ns() { return cpu_ns(CLOCK_PROCESS_CPUTIME_ID); }
/// Voluntary context switches of the calling thread (RUSAGE_THREAD) or of the whole process,
/// threads that have exited included (RUSAGE_SELF).
std::uint64_t voluntary_switches(int who) {
  rusage usage{};
  getrusage(who, &usage);
  return static_cast<std::uint64_t>(usage.ru_nvcsw);
}

template <class B>
int open_object(B& b, Object object, int fds[2]) {
  if (object == Object::kSocketpair) {
    return b.socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds);
  }
  return b.pipe2(fds, O_NONBLOCK | O_CLOEXEC);
}

/// The loop. fds[0] is the end the "server" watches and reads, fds[1] the "client" end.
template <class B>
void churn_loop(B& b, Object object, Shared& shared, WorkerResult& result) {
  auto fail = [&](const char* call) {
    result.failed_call = call;
    result.failed_errno = errno;
  };
  const int ep = b.epoll_create1(EPOLL_CLOEXEC);
  shared.ready.fetch_add(1, std::memory_order_release);
  shared.ready.notify_all();
  if (ep < 0) {
    fail("epoll_create1");
    return;
  }
  shared.go.wait(false, std::memory_order_acquire);
  const std::uint64_t cpu_start = thread_cpu_ns();
  const std::uint64_t switches_start = voluntary_switches(RUSAGE_THREAD);

  std::uint64_t ops = 0;
  epoll_event events[8];
  const char byte = 'x';
  char buf[8];
  while (!shared.stop.load(std::memory_order_relaxed)) {
    int fds[2];
    if (open_object(b, object, fds) < 0) {
      fail(object == Object::kSocketpair ? "socketpair" : "pipe2");
      break;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLET;
    ev.data.fd = fds[0];
    if (b.epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], &ev) < 0) {
      fail("epoll_ctl(ADD)");
      break;
    }
    if (b.write(fds[1], &byte, 1) != 1) {
      fail("write");
      break;
    }
    int n;
    do {
      n = b.epoll_wait(ep, events, 8, kWaitTimeoutMs);
    } while (n < 0 && errno == EINTR);
    if (n != 1 || events[0].data.fd != fds[0]) {
      if (n >= 0) {
        errno = n == 0 ? ETIMEDOUT : EPROTO;
      }
      fail("epoll_wait");
      break;
    }
    if (b.read(fds[0], buf, sizeof buf) != 1) {
      fail("read");
      break;
    }
    if (b.close(fds[0]) < 0 || b.close(fds[1]) < 0) {
      fail("close");
      break;
    }
    ++ops;
  }
  result.ops = ops;
  result.cpu_ns = thread_cpu_ns() - cpu_start;
  result.switches = voluntary_switches(RUSAGE_THREAD) - switches_start;
  b.close(ep);
}

void run_worker(Mode mode, Object object, Shared& shared, WorkerResult& result) {
  if (mode == Mode::kKernel) {
    // Its own descriptor table too, as nginx's worker processes have: a table shared by all
    // workers would make the kernel's descriptor allocation and close contend on one lock
    // that uepoll's per-worker tables never see.
    if (unshare(CLONE_FILES) != 0) {
      std::perror("churn: unshare(CLONE_FILES)");
      std::abort();
    }
    KernelBackend kernel;
    churn_loop(kernel, object, shared, result);
  } else if (mode == Mode::kFloor) {
    FloorBackend floor;
    churn_loop(floor, object, shared, result);
  } else if (mode == Mode::kCapi) {
    // The C API's one table, shared by every worker: what a C program's threads get.
    CapiBackend capi;
    churn_loop(capi, object, shared, result);
  } else {
    // Own descriptor table: each worker is a process of its own, as nginx's workers are.
    UepollBackend process(mode == Mode::kFine ? uepoll::LockMode::kFine
                                              : uepoll::LockMode::kLegacy);
    churn_loop(process, object, shared, result);
  }
}

// ---------------------------------------------------------------------------------------------
// One run of one point

struct Sample {
  double ops_per_s = 0;
  double seconds = 0;
  std::uint64_t ops = 0;
  double worker_cpu_s = 0;             // the workers' CPU time (user + system) in their loops
  double process_cpu_s = 0;            // the whole process over the window: the workers, any
                                       // helper thread, the idle main thread
  std::uint64_t worker_switches = 0;   // voluntary context switches of the workers
  std::uint64_t process_switches = 0;  // of the whole process over the window
  uepoll::stats::Snapshot delta;       // counters over the run (uepoll modes)
};

uepoll::stats::Snapshot minus(const uepoll::stats::Snapshot& a, const uepoll::stats::Snapshot& b) {
  uepoll::stats::Snapshot d;
  d.global_mutex = a.global_mutex - b.global_mutex;
  d.global_mutex_hold_ns = a.global_mutex_hold_ns - b.global_mutex_hold_ns;
  d.release_path_ns = a.release_path_ns - b.release_path_ns;
  d.release_path_calls = a.release_path_calls - b.release_path_calls;
  return d;
}

/// Runs T workers for `seconds`; nullopt (after a message) when a worker failed.
std::optional<Sample> run_once(Mode mode, Object object, int threads, double seconds) {
  Shared shared;
  std::vector<WorkerResult> results(static_cast<std::size_t>(threads));
  std::vector<std::thread> workers;
  workers.reserve(results.size());
  for (auto& result : results) {
    workers.emplace_back(
        [mode, object, &shared, &result] { run_worker(mode, object, shared, result); });
  }
  for (int r = shared.ready.load(std::memory_order_acquire); r < threads;
       r = shared.ready.load(std::memory_order_acquire)) {
    shared.ready.wait(r, std::memory_order_acquire);
  }
  // Drains the deferred frees of earlier runs so they do not run inside this one.
  const uepoll::stats::Snapshot before = uepoll::stats::quiesce_and_read();

  const std::uint64_t process_cpu_start = process_cpu_ns();
  const std::uint64_t process_switches_start = voluntary_switches(RUSAGE_SELF);
  const Clock::time_point start = Clock::now();
  shared.go.store(true, std::memory_order_release);
  shared.go.notify_all();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  shared.stop.store(true, std::memory_order_relaxed);
  const Clock::time_point end = Clock::now();
  for (auto& worker : workers) {
    worker.join();
  }
  const std::uint64_t process_cpu_end = process_cpu_ns();
  const std::uint64_t process_switches_end = voluntary_switches(RUSAGE_SELF);
  // The barrier also drains this run's deferred frees (outside every measured window).
  const uepoll::stats::Snapshot after = uepoll::stats::quiesce_and_read();

  Sample sample;
  for (const auto& result : results) {
    if (result.failed_call != nullptr) {
      std::fprintf(stderr, "churn: %s T=%d: %s failed: %s\n", mode_name(mode), threads,
                   result.failed_call, std::strerror(result.failed_errno));
      return std::nullopt;
    }
    sample.ops += result.ops;
    sample.worker_cpu_s += static_cast<double>(result.cpu_ns) * 1e-9;
    sample.worker_switches += result.switches;
  }
  sample.process_switches = process_switches_end - process_switches_start;
  sample.process_cpu_s = static_cast<double>(process_cpu_end - process_cpu_start) * 1e-9;
  // Workers finish their current iteration after `stop`; count it against the measured window
  // (at most one iteration per worker, negligible against a window of many thousands).
  sample.seconds = std::chrono::duration<double>(end - start).count();
  sample.ops_per_s = static_cast<double>(sample.ops) / sample.seconds;
  sample.delta = minus(after, before);
  return sample;
}

// ---------------------------------------------------------------------------------------------
// Points, statistics, output

struct Point {
  Mode mode;
  int threads;
  std::vector<Sample> samples;   // throughput pass
  std::optional<Sample> timing;  // timing pass (uepoll modes)
  bool failed = false;

  /// Median over the throughput pass of f(sample).
  template <class F>
  double median(F f) const {
    std::vector<double> v;
    for (const Sample& sample : samples) {
      v.push_back(f(sample));
    }
    if (v.empty()) {
      return 0;
    }
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  }
  double median_ops() const {
    return median([](const Sample& x) { return x.ops_per_s; });
  }
  /// Loop iterations per second of worker CPU time: the cost of one iteration, whatever else
  /// the machine runs.
  double median_ops_per_cpu_s() const {
    return median([](const Sample& x) {
      return x.worker_cpu_s > 0 ? static_cast<double>(x.ops) / x.worker_cpu_s : 0.0;
    });
  }
  /// Loop iterations per second of the whole process's CPU time (every thread: the workers, any
  /// helper thread, the idle main thread): the cost a user pays, the figure ratios compare.
  double median_ops_per_process_cpu_s() const {
    return median([](const Sample& x) {
      return x.process_cpu_s > 0 ? static_cast<double>(x.ops) / x.process_cpu_s : 0.0;
    });
  }
  /// Cores the workers kept busy (worker CPU time / wall time).
  double median_cores_busy() const {
    return median([](const Sample& x) { return x.worker_cpu_s / x.seconds; });
  }
  /// CPU time outside the workers (any helper thread; none since reclamation is per thread) per
  /// worker CPU time.
  double median_background_share() const {
    return median([](const Sample& x) {
      return x.worker_cpu_s > 0 ? (x.process_cpu_s - x.worker_cpu_s) / x.worker_cpu_s : 0.0;
    });
  }
  /// Voluntary context switches per 1000 iterations: of the workers (they blocked), and of the
  /// rest of the process.
  double median_worker_switches_per_kop() const {
    return median([](const Sample& x) {
      return x.ops > 0 ? 1e3 * static_cast<double>(x.worker_switches) / static_cast<double>(x.ops)
                       : 0.0;
    });
  }
  double median_background_switches_per_kop() const {
    return median([](const Sample& x) {
      const double other =
          static_cast<double>(x.process_switches) - static_cast<double>(x.worker_switches);
      return x.ops > 0 ? 1e3 * std::max(other, 0.0) / static_cast<double>(x.ops) : 0.0;
    });
  }
  /// Process-wide mutex acquisitions per second.
  double median_mutex_rate() const {
    return median(
        [](const Sample& x) { return static_cast<double>(x.delta.global_mutex) / x.seconds; });
  }
  double hold_ns() const {
    if (!timing || timing->delta.global_mutex == 0) {
      return 0;
    }
    return static_cast<double>(timing->delta.global_mutex_hold_ns) /
           static_cast<double>(timing->delta.global_mutex);
  }
  double release_ns() const {
    if (!timing || timing->delta.release_path_calls == 0) {
      return 0;
    }
    return static_cast<double>(timing->delta.release_path_ns) /
           static_cast<double>(timing->delta.release_path_calls);
  }
};

int online_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    return std::max(1, CPU_COUNT(&set));
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

const Point* find(const std::vector<Point>& points, Mode mode, int threads) {
  for (const Point& p : points) {
    if (p.mode == mode && p.threads == threads && !p.failed) {
      return &p;
    }
  }
  return nullptr;
}

/// num / den of a per-point statistic, as text ("-" when either point is missing).
template <class F>
std::string ratio_text(const Point* num, const Point* den, F stat) {
  if (num == nullptr || den == nullptr || stat(*den) <= 0) {
    return "-";
  }
  char out[32];
  std::snprintf(out, sizeof out, "%.2f", stat(*num) / stat(*den));
  return out;
}
double ops_of(const Point& p) { return p.median_ops(); }
double ops_per_process_cpu_of(const Point& p) { return p.median_ops_per_process_cpu_s(); }

void print_table(const std::vector<Point>& points, int cpus) {
  // ops/s: loop iterations per second of wall time (all threads); ops/s/thr: per thread.
  // ops/cpu-s: iterations per second of worker CPU time (noise-proof per-iteration cost);
  // cores: cores the workers kept busy; bg: CPU outside the workers (helper threads)
  // per worker CPU; w-sw, bg-sw: voluntary context switches per 1000 iterations, of the
  // workers and of the rest of the process. Ratios compare medians of this run, same T:
  // fine/leg and uep/kern on ops/s, cpu u/k on iterations per CPU-second of every thread of the
  // process (bg included: the cost a user pays).
  std::printf("\n%-11s %4s %11s %11s %11s %5s %5s %6s %6s %8s %8s %8s\n", "mode", "T", "ops/s",
              "ops/s/thr", "ops/cpu-s", "cores", "bg", "w-sw", "bg-sw", "fine/leg", "uep/kern",
              "cpu u/k");
  for (const Point& p : points) {
    if (p.failed) {
      std::printf("%-11s %4d %12s\n", mode_name(p.mode), p.threads, "FAILED");
      continue;
    }
    const double ops = p.median_ops();
    std::string fine_legacy = "-";
    std::string uepoll_kernel = "-";
    std::string cpu_uepoll_kernel = "-";
    if (p.mode == Mode::kFine) {
      fine_legacy = ratio_text(&p, find(points, Mode::kLegacy, p.threads), ops_of);
    }
    if (is_uepoll(p.mode)) {
      const Point* kernel = find(points, Mode::kKernel, p.threads);
      uepoll_kernel = ratio_text(&p, kernel, ops_of);
      cpu_uepoll_kernel = ratio_text(&p, kernel, ops_per_process_cpu_of);
    }
    char background[16];
    std::snprintf(background, sizeof background, "%.0f%%", 100 * p.median_background_share());
    std::printf("%-11s %4d %11.0f %11.0f %11.0f %5.2f %5s %6.1f %6.1f %8s %8s %8s\n",
                mode_name(p.mode), p.threads, ops, ops / p.threads, p.median_ops_per_cpu_s(),
                p.median_cores_busy(), background, p.median_worker_switches_per_kop(),
                p.median_background_switches_per_kop(), fine_legacy.c_str(), uepoll_kernel.c_str(),
                cpu_uepoll_kernel.c_str());
  }

  // The floor: what one iteration costs uepoll in CPU time (every thread), in multiples of the
  // bare user-space cycle (floor_backend.hpp), same run, same T.
  for (const Point& p : points) {
    const Point* floor = find(points, Mode::kFloor, p.threads);
    if (is_uepoll(p.mode) && !p.failed && floor != nullptr &&
        p.median_ops_per_process_cpu_s() > 0) {
      std::printf("%-11s T=%-3d costs %.1fx the floor per iteration (CPU time, all threads)\n",
                  mode_name(p.mode), p.threads,
                  floor->median_ops_per_process_cpu_s() / p.median_ops_per_process_cpu_s());
    }
  }
  // Scaling 1 -> 2 threads, where both points exist.
  for (const Mode mode : {Mode::kFine, Mode::kLegacy, Mode::kKernel, Mode::kCapi}) {
    const Point* one = find(points, mode, 1);
    const Point* two = find(points, mode, 2);
    if (one != nullptr && two != nullptr && one->median_ops() > 0) {
      std::printf("scaling 1->2 threads, %-6s: %.2fx\n", mode_name(mode),
                  two->median_ops() / one->median_ops());
    }
  }

  bool any_timing = false;
  for (const Point& p : points) {
    any_timing = any_timing || p.timing.has_value();
  }
  if (!any_timing) {
    return;
  }
  // The process-wide mutex. rate: acquisitions/s in the throughput pass. hold: ns per
  // acquisition in the timing pass. util = rate x hold (share of time the mutex is held).
  // Per-core rate = rate / cores used (the cores the workers kept busy, measured; at most
  // min(T, cpus)); the mutex saturates (util 1) at 1 / (per-core rate x hold) busy cores.
  // Hold times at T > cpus include preemptions of the holder. release: ns per removal-path-C call
  // (the last close of a watched file), timing pass.
  std::printf("\nprocess-wide mutex (%d CPUs here; hold and release times from the timing pass)\n",
              cpus);
  std::printf("%-11s %4s %12s %6s %10s %8s %14s %12s\n", "mode", "T", "acq/s", "cores", "hold ns",
              "util", "saturates at", "release ns");
  for (const Point& p : points) {
    if (p.failed || !is_uepoll(p.mode)) {
      continue;
    }
    const double rate = p.median_mutex_rate();
    const double hold = p.hold_ns();
    char util[32] = "-";
    char cores[32] = "-";
    if (rate > 0 && hold > 0) {
      const double used = std::min(
          {p.median_cores_busy(), static_cast<double>(p.threads), static_cast<double>(cpus)});
      const double per_core = rate / std::max(used, 0.01);
      std::snprintf(util, sizeof util, "%.3f", rate * hold * 1e-9);
      std::snprintf(cores, sizeof cores, "%.1f cores", 1.0 / (per_core * hold * 1e-9));
    }
    char hold_text[32] = "-";
    if (hold > 0) {
      std::snprintf(hold_text, sizeof hold_text, "%.0f", hold);
    }
    char release_text[32] = "-";
    if (p.release_ns() > 0) {
      std::snprintf(release_text, sizeof release_text, "%.0f", p.release_ns());
    }
    std::printf("%-11s %4d %12.0f %6.2f %10s %8s %14s %12s\n", mode_name(p.mode), p.threads, rate,
                p.median_cores_busy(), hold_text, util, cores, release_text);
  }
}

bool write_json(const std::string& path, const std::vector<Point>& points, const Options& opt,
                Object object, int cpus) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    std::fprintf(stderr, "churn: cannot write %s: %s\n", path.c_str(), std::strerror(errno));
    return false;
  }
  std::fprintf(f, "{\n  \"object\": \"%s\",\n  \"cpus\": %d,\n  \"seconds\": %g,\n",
               object == Object::kSocketpair ? "socketpair" : "pipe", cpus, opt.seconds);
  std::fprintf(f, "  \"repeat\": %d,\n  \"points\": [", opt.repeat);
  bool first = true;
  for (const Point& p : points) {
    std::fprintf(f, "%s\n    {\"mode\": \"%s\", \"threads\": %d, \"failed\": %s", first ? "" : ",",
                 mode_name(p.mode), p.threads, p.failed ? "true" : "false");
    first = false;
    if (!p.failed) {
      std::fprintf(f, ", \"ops_per_s\": %.1f, \"ops_per_s_per_thread\": %.1f,", p.median_ops(),
                   p.median_ops() / p.threads);
      std::fprintf(f, " \"ops_per_cpu_s\": %.1f, \"cores_busy\": %.3f,", p.median_ops_per_cpu_s(),
                   p.median_cores_busy());
      std::fprintf(f, " \"ops_per_process_cpu_s\": %.1f,", p.median_ops_per_process_cpu_s());
      std::fprintf(f, " \"background_cpu_share\": %.3f,", p.median_background_share());
      std::fprintf(f, " \"worker_switches_per_kop\": %.2f, \"background_switches_per_kop\": %.2f,",
                   p.median_worker_switches_per_kop(), p.median_background_switches_per_kop());
      std::fprintf(f, " \"samples_ops_per_s\": [");
      for (std::size_t i = 0; i < p.samples.size(); ++i) {
        std::fprintf(f, "%s%.1f", i == 0 ? "" : ", ", p.samples[i].ops_per_s);
      }
      std::fprintf(f, "]");
      if (is_uepoll(p.mode)) {
        std::fprintf(f, ", \"global_mutex_per_s\": %.1f", p.median_mutex_rate());
        if (p.timing) {
          std::fprintf(f, ", \"global_mutex_hold_ns\": %.1f, \"release_path_ns\": %.1f",
                       p.hold_ns(), p.release_ns());
        }
        if (p.mode == Mode::kFine) {
          if (const Point* legacy = find(points, Mode::kLegacy, p.threads)) {
            std::fprintf(f, ", \"fine_over_legacy\": %.3f", p.median_ops() / legacy->median_ops());
          }
        }
        if (const Point* kernel = find(points, Mode::kKernel, p.threads)) {
          std::fprintf(f, ", \"uepoll_over_kernel\": %.3f", p.median_ops() / kernel->median_ops());
        }
        if (const Point* floor = find(points, Mode::kFloor, p.threads)) {
          // Worker CPU (as before), and every thread's CPU.
          std::fprintf(f, ", \"cpu_times_floor\": %.3f, \"process_cpu_times_floor\": %.3f",
                       floor->median_ops_per_cpu_s() / p.median_ops_per_cpu_s(),
                       floor->median_ops_per_process_cpu_s() / p.median_ops_per_process_cpu_s());
        }
      }
    }
    std::fprintf(f, "}");
  }
  std::fprintf(f, "\n  ]\n}\n");
  return std::fclose(f) == 0;
}

// ---------------------------------------------------------------------------------------------
// Flags

[[noreturn]] void usage(const char* bad) {
  if (bad != nullptr) {
    std::fprintf(stderr, "churn: bad argument: %s\n", bad);
  }
  std::fprintf(stderr,
               "usage: churn [--threads=1,2,4,8,16,64] [--modes=fine,legacy,kernel,floor,capi] "
               "[--seconds=1] [--repeat=3]\n"
               "             [--object=auto|socketpair|pipe] [--no-timing] [--json=FILE]\n"
               "  --seconds: duration of one point, split over its --repeat runs\n"
               "  capi: the C API's one table, lock mode from UEPOLL_LOCK_MODE=fine|legacy\n");
  std::exit(bad != nullptr ? 2 : 0);
}

std::vector<std::string_view> split(std::string_view list) {
  std::vector<std::string_view> out;
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    out.push_back(list.substr(0, comma));
    if (comma == std::string_view::npos) {
      break;
    }
    list.remove_prefix(comma + 1);
  }
  return out;
}

Options parse(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value_of = [&](std::string_view flag) -> std::optional<std::string_view> {
      if (arg.size() > flag.size() && arg.substr(0, flag.size()) == flag &&
          arg[flag.size()] == '=') {
        return arg.substr(flag.size() + 1);
      }
      return std::nullopt;
    };
    if (arg == "--help" || arg == "-h") {
      usage(nullptr);
    } else if (arg == "--no-timing") {
      opt.timing = false;
    } else if (auto list = value_of("--threads")) {
      opt.threads.clear();
      for (std::string_view t : split(*list)) {
        const int n = std::atoi(std::string(t).c_str());
        if (n < 1 || n > 4096) {
          usage(argv[i]);
        }
        opt.threads.push_back(n);
      }
    } else if (auto names = value_of("--modes")) {
      opt.modes.clear();
      for (std::string_view m : split(*names)) {
        if (m == "fine") {
          opt.modes.push_back(Mode::kFine);
        } else if (m == "legacy") {
          opt.modes.push_back(Mode::kLegacy);
        } else if (m == "kernel") {
          opt.modes.push_back(Mode::kKernel);
        } else if (m == "floor") {
          opt.modes.push_back(Mode::kFloor);
        } else if (m == "capi") {
          opt.modes.push_back(Mode::kCapi);
        } else {
          usage(argv[i]);
        }
      }
    } else if (auto secs = value_of("--seconds")) {
      opt.seconds = std::atof(std::string(*secs).c_str());
      if (!(opt.seconds > 0 && opt.seconds <= 3600)) {
        usage(argv[i]);
      }
    } else if (auto reps = value_of("--repeat")) {
      opt.repeat = std::atoi(std::string(*reps).c_str());
      if (opt.repeat < 1 || opt.repeat > 1000) {
        usage(argv[i]);
      }
    } else if (auto kind = value_of("--object")) {
      if (*kind == "socketpair") {
        opt.object = Object::kSocketpair;
      } else if (*kind == "pipe") {
        opt.object = Object::kPipe;
      } else if (*kind != "auto") {
        usage(argv[i]);
      }
    } else if (auto file = value_of("--json")) {
      opt.json = std::string(*file);
    } else {
      usage(argv[i]);
    }
  }
  if (opt.threads.empty() || opt.modes.empty()) {
    usage("empty --threads or --modes");
  }
  return opt;
}

/// socketpair where uepoll has it (AF_UNIX), else pipes: the same loop on both backends.
Object detect_object() {
  UepollBackend probe(uepoll::LockMode::kFine);
  int fds[2];
  if (probe.socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0) {
    probe.close(fds[0]);
    probe.close(fds[1]);
    return Object::kSocketpair;
  }
  std::fprintf(stderr, "churn: uepoll socketpair unavailable (%s); using pipes on every backend\n",
               std::strerror(errno));
  return Object::kPipe;
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  const Object object = opt.object ? *opt.object : detect_object();
  const int cpus = online_cpus();
  const double run_seconds = opt.seconds / opt.repeat;

  std::vector<Point> points;
  for (const int t : opt.threads) {
    for (const Mode m : opt.modes) {
      points.push_back(Point{m, t, {}, std::nullopt, false});
    }
  }
  std::printf("churn: object=%s cpus=%d point=%gs (%d x %gs) threads=",
              object == Object::kSocketpair ? "socketpair" : "pipe", cpus, opt.seconds, opt.repeat,
              run_seconds);
  for (std::size_t i = 0; i < opt.threads.size(); ++i) {
    std::printf("%s%d", i == 0 ? "" : ",", opt.threads[i]);
  }
  std::printf("\n");
  std::fflush(stdout);

  // Throughput pass: repetitions outermost, so every mode sees the same drift.
  uepoll::stats::set_timing(false);
  for (int rep = 0; rep < opt.repeat; ++rep) {
    for (Point& p : points) {
      if (p.failed) {
        continue;
      }
      if (auto sample = run_once(p.mode, object, p.threads, run_seconds)) {
        p.samples.push_back(*sample);
      } else {
        p.failed = true;
      }
    }
  }

  // Timing pass: uepoll modes only, one run each, clocks on.
  if (opt.timing) {
    uepoll::stats::set_timing(true);
    for (Point& p : points) {
      if (p.failed || !is_uepoll(p.mode)) {
        continue;
      }
      p.timing = run_once(p.mode, object, p.threads, run_seconds);
    }
    uepoll::stats::set_timing(false);
  }

  print_table(points, cpus);
  if (!opt.json.empty() && !write_json(opt.json, points, opt, object, cpus)) {
    return 1;
  }
  for (const Point& p : points) {
    if (p.failed) {
      return 1;
    }
  }
  return 0;
}
