// What the interposer (libuepoll-preload.so) costs a program it runs, measured inside one:
//
//   BM_KernelRead/libc                 read() of an empty non-blocking kernel eventfd (EAGAIN),
//                                      called straight into libc
//   BM_KernelRead/interposed           the same read() through the interposer, which passes a
//                                      kernel descriptor through
//   BM_EventfdCreateClose/capi         uepoll_eventfd + uepoll_close: the C API, no system call
//   BM_EventfdCreateClose/reservation  libc's eventfd + close: the reservation's system calls
//   BM_EventfdCreateClose/interposed   eventfd + close through the interposer, which does both
//
// The targets: interposed read within 5 ns of libc; interposed create/close within the C API's
// cost plus the reservation's. The summary prints both differences (medians with repetitions).
//
//   LD_PRELOAD=build/release/src/libuepoll-preload.so build/release/bench/micro/preload_bench
//       --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "uepoll/uepoll.h"

namespace {

using ReadFn = ssize_t (*)(int, void*, size_t);
using EventfdFn = int (*)(unsigned, int);
using CloseFn = int (*)(int);

// libc's own definitions, past the interposer.
struct Libc {
  ReadFn read;
  EventfdFn eventfd;
  CloseFn close;
};

const Libc& libc() {
  static const Libc l = [] {
    void* so = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    if (so == nullptr) {
      std::fprintf(stderr, "preload_bench: libc.so.6 not loaded\n");
      std::exit(2);
    }
    return Libc{reinterpret_cast<ReadFn>(dlsym(so, "read")),
                reinterpret_cast<EventfdFn>(dlsym(so, "eventfd")),
                reinterpret_cast<CloseFn>(dlsym(so, "close"))};
  }();
  return l;
}

void BM_KernelRead(benchmark::State& state, bool interposed) {
  const int fd = libc().eventfd(0, EFD_NONBLOCK);
  const ReadFn call = interposed ? &::read : libc().read;
  std::uint64_t v = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(call(fd, &v, sizeof v));
  }
  libc().close(fd);
}
BENCHMARK_CAPTURE(BM_KernelRead, libc, false);
BENCHMARK_CAPTURE(BM_KernelRead, interposed, true);

enum class Via { kCapi, kReservation, kInterposed };

void BM_EventfdCreateClose(benchmark::State& state, Via via) {
  for (auto _ : state) {
    switch (via) {
      case Via::kCapi: uepoll_close(uepoll_eventfd(0, 0)); break;
      case Via::kReservation: libc().close(libc().eventfd(0, 0)); break;
      case Via::kInterposed: ::close(::eventfd(0, 0)); break;
    }
  }
}
BENCHMARK_CAPTURE(BM_EventfdCreateClose, capi, Via::kCapi);
BENCHMARK_CAPTURE(BM_EventfdCreateClose, reservation, Via::kReservation);
BENCHMARK_CAPTURE(BM_EventfdCreateClose, interposed, Via::kInterposed);

// Keeps each run's time per iteration (the median's, with repetitions) for the summary.
class Summary : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      const bool median = r.run_type == Run::RT_Aggregate && r.aggregate_name == "median";
      if (r.run_type == Run::RT_Iteration || median) {
        const std::string name = r.run_name.str();
        if (median || ns_.count(name) == 0) {
          ns_[name] = r.GetAdjustedRealTime();
        }
      }
    }
  }
  void Print() const {
    auto at = [&](const char* name) {
      auto it = ns_.find(name);
      return it == ns_.end() ? 0.0 : it->second;
    };
    std::printf("\ninterposer pass-through: %+.1f ns per call (target <= 5)\n",
                at("BM_KernelRead/interposed") - at("BM_KernelRead/libc"));
    const double budget =
        at("BM_EventfdCreateClose/capi") + at("BM_EventfdCreateClose/reservation");
    std::printf("interposed create+close: %.0f ns vs C API + reservation %.0f ns (%+.0f ns)\n",
                at("BM_EventfdCreateClose/interposed"), budget,
                at("BM_EventfdCreateClose/interposed") - budget);
  }

 private:
  std::map<std::string, double> ns_;
};

}  // namespace

int main(int argc, char** argv) {
  if (reinterpret_cast<void*>(&::read) == reinterpret_cast<void*>(libc().read)) {
    std::fprintf(stderr, "preload_bench: run it with LD_PRELOAD=.../libuepoll-preload.so\n");
    return 2;
  }
  benchmark::Initialize(&argc, argv);
  Summary summary;
  benchmark::RunSpecifiedBenchmarks(&summary);
  summary.Print();
  benchmark::Shutdown();
  return 0;
}
