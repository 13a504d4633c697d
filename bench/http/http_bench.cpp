// http_bench: the seed's workload (nginx with keepalive_requests 1, driven by wrk) in one
// program, on uepoll's in-process sockets (--backend=fine|legacy: a uepoll::Process per thread;
// --backend=capi: the C API, every thread in its one table, lock mode from UEPOLL_LOCK_MODE) or
// on the host kernel's loopback TCP and epoll (--backend=kernel), from the same template code.
//
//   http_bench --backend=fine --workers=2 --client-threads=2 --connections=64 --duration=3
//
// W server workers (threads), each with its own descriptor table and epoll instance, accept
// from one listener shared by all of them (EPOLLEXCLUSIVE, the default) or from per-worker
// SO_REUSEPORT listeners; T load-generator threads, each with its own table and epoll
// instance, keep C connections busy. After --warmup seconds the counters are read, the run is
// measured for --duration seconds, then everything is torn down and checked for leaked
// descriptors. See README.md in this directory.
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "client.hpp"
#include "server.hpp"
#include "uepoll/stats.hpp"

namespace uepoll_bench::http {
namespace {

struct Options {
  std::string backend = "fine";
  std::string accept = "reuseport";
  std::string role = "both";
  int workers = 2;
  int client_threads = 2;
  int connections = 64;
  double duration_s = 3.0;
  double warmup_s = 0.5;
  int keepalive_requests = 1;
  int body_bytes = 100;
  int timeout_ms = 2000;
  int port = 0;
  int backlog = 511;
  bool timing = false;
  std::string json;
};

void usage(FILE* out) {
  std::fputs(
      "usage: http_bench [options]\n"
      "  --backend=fine|legacy|kernel|capi\n"
      "                                 uepoll (LockMode kFine / kLegacy, a table per thread),\n"
      "                                 the host kernel, or uepoll's C API (one table for all\n"
      "                                 threads, UEPOLL_LOCK_MODE=fine|legacy) [fine]\n"
      "  --workers=W                    server worker threads [2]\n"
      "  --accept=exclusive|reuseport   one shared listener with EPOLLEXCLUSIVE, or one\n"
      "                                 SO_REUSEPORT listener per worker [reuseport]\n"
      "  --client-threads=T             load-generator threads [2]\n"
      "  --connections=C                connections over all client threads [64]\n"
      "  --duration=S                   measured seconds [3]\n"
      "  --warmup=S                     seconds run before measuring [0.5]\n"
      "  --keepalive-requests=N         responses per connection before the server closes it "
      "[1]\n"
      "  --body-bytes=N                 body size of the 200 response [100]\n"
      "  --timeout=MS                   per-request timeout of the client [2000]\n"
      "  --port=P                       listening port on 127.0.0.1, 0 = any free port [0]\n"
      "  --backlog=N                    listen() backlog [511]\n"
      "  --timing                       uepoll: time the release path and the global mutex\n"
      "  --role=both|server|client      kernel only: run just the server (for an external load\n"
      "                                 generator such as wrk; needs no --port) or just the load\n"
      "                                 generator (against an external server on --port) [both]\n"
      "  --json=FILE                    also write the result as one JSON object to FILE\n",
      out);
}

bool parse_int(const std::string& s, int lo, int hi, int* out) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (errno != 0 || end == s.c_str() || *end != '\0' || v < lo || v > hi) {
    return false;
  }
  *out = static_cast<int>(v);
  return true;
}

bool parse_seconds(const std::string& s, double lo, double hi, double* out) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || end == s.c_str() || *end != '\0' || !(v >= lo && v <= hi)) {
    return false;
  }
  *out = v;
  return true;
}

/// Parses --name=value (or --name value) arguments; returns false after printing a message.
bool parse_options(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      usage(stdout);
      std::exit(0);
    }
    if (arg == "--timing") {
      o->timing = true;
      continue;
    }
    std::string name = arg;
    std::string value;
    const std::size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      std::fprintf(stderr, "http_bench: %s needs a value\n", arg.c_str());
      return false;
    }
    bool ok = true;
    if (name == "--backend") {
      ok = value == "fine" || value == "legacy" || value == "kernel" || value == "capi";
      o->backend = value;
    } else if (name == "--role") {
      ok = value == "both" || value == "server" || value == "client";
      o->role = value;
    } else if (name == "--accept") {
      ok = value == "exclusive" || value == "reuseport";
      o->accept = value;
    } else if (name == "--workers") {
      ok = parse_int(value, 1, 256, &o->workers);
    } else if (name == "--client-threads") {
      ok = parse_int(value, 1, 256, &o->client_threads);
    } else if (name == "--connections") {
      ok = parse_int(value, 1, 100'000, &o->connections);
    } else if (name == "--duration") {
      ok = parse_seconds(value, 0.05, 3600, &o->duration_s);
    } else if (name == "--warmup") {
      ok = parse_seconds(value, 0, 600, &o->warmup_s);
    } else if (name == "--keepalive-requests") {
      ok = parse_int(value, 1, 1'000'000'000, &o->keepalive_requests);
    } else if (name == "--body-bytes") {
      ok = parse_int(value, 0, 1 << 20, &o->body_bytes);
    } else if (name == "--timeout") {
      ok = parse_int(value, 1, 600'000, &o->timeout_ms);
    } else if (name == "--port") {
      ok = parse_int(value, 0, 65535, &o->port);
    } else if (name == "--backlog") {
      ok = parse_int(value, 1, 65535, &o->backlog);
    } else if (name == "--json") {
      ok = !value.empty();
      o->json = value;
    } else {
      std::fprintf(stderr, "http_bench: unknown option %s\n", name.c_str());
      usage(stderr);
      return false;
    }
    if (!ok) {
      std::fprintf(stderr, "http_bench: bad value for %s: '%s'\n", name.c_str(), value.c_str());
      return false;
    }
  }
  if (o->role != "both" && o->backend != "kernel") {
    std::fprintf(stderr,
                 "http_bench: --role=%s needs --backend=kernel (uepoll's sockets are "
                 "reachable only inside this program)\n",
                 o->role.c_str());
    return false;
  }
  if (o->role == "client" && o->port == 0) {
    std::fprintf(stderr, "http_bench: --role=client needs the server's --port\n");
    return false;
  }
  if (o->connections < o->client_threads) {
    std::fprintf(stderr, "http_bench: --connections must be at least --client-threads\n");
    return false;
  }
  return true;
}

struct Report {
  Options opt;
  double window_s = 0;
  ClientStats client;
  ServerStats server;
  LatencyHistogram hist;
  double cpu_s = 0;
  // uepoll only
  bool have_uepoll_stats = false;
  std::uint64_t global_mutex = 0;
  double global_mutex_per_s = 0;
  std::uint64_t global_mutex_hold_ns = 0;
  std::uint64_t release_path_ns = 0;
  std::uint64_t release_path_calls = 0;
  // teardown checks
  long leaked_descriptors = 0;
  bool have_live_files = false;
  long leaked_files = 0;
  int fatal_errno = 0;

  /// Responses per second: counted by the load generator, or by the server with --role=server.
  std::uint64_t requests() const {
    return opt.role == "server" ? server.requests : client.requests;
  }
  double rps() const { return window_s > 0 ? static_cast<double>(requests()) / window_s : 0; }
};

double us(std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto sec = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

/// Open descriptors of this (real) process.
long count_kernel_fds() {
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) {
    return -1;
  }
  long n = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') {
      ++n;
    }
  }
  closedir(d);
  return n - 1;  // the directory's own descriptor
}

/// Open descriptors of one backend's table (uepoll) or -1 (kernel, C API: one table for all
/// threads, counted once by count_shared_fds).
long count_table_fds(KernelBackend&) { return -1; }
long count_table_fds(CapiBackend&) { return -1; }
long count_table_fds(UepollBackend& b) {
  long n = 0;
  for (int fd = 0; fd < (1 << 16); ++fd) {  // the benchmark never opens more
    if (b.process().get(fd)) {
      ++n;
    }
  }
  return n;
}

/// Open descriptors of the table every thread of backend B shares (0 for UepollBackend).
template <class B>
long count_shared_fds() {
  if constexpr (std::is_same_v<B, KernelBackend>) {
    return count_kernel_fds();
  } else if constexpr (std::is_same_v<B, CapiBackend>) {
    return CapiBackend::open_descriptors();
  } else {
    return 0;
  }
}

/// The lock mode of a uepoll run ("fine" or "legacy"), nullptr on the kernel.
const char* lock_mode(const Options& o) {
  if (o.backend == "kernel") {
    return nullptr;
  }
  return o.backend == "capi" ? CapiBackend::lock_mode() : o.backend.c_str();
}

/// Aborts the program if the run overstays its bound (a hung thread must not hang CI).
class Watchdog {
 public:
  explicit Watchdog(double seconds)
      : thread_([this, seconds] {
          std::unique_lock lock(mu_);
          const auto deadline =
              std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
          if (!cv_.wait_until(lock, deadline, [this] { return done_; })) {
            std::fprintf(stderr, "http_bench: watchdog: run exceeded %.0f s, aborting\n", seconds);
            std::fflush(stderr);
            std::_Exit(3);
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

void name_thread(std::thread& t, const char* prefix, int i) {
  char name[16];
  std::snprintf(name, sizeof name, "%s%d", prefix, i);
  pthread_setname_np(t.native_handle(), name);
}

void sleep_seconds(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

/// One run over backend type B; `make` creates one backend (one descriptor table).
// `make` builds a server worker's backend, `make_client` a client thread's: the seed measured the
// server alone, so the clients never take the legacy mutex (a uepoll client is always kFine).
template <class B>
int run(const Options& opt, const std::function<std::unique_ptr<B>()>& make,
        const std::function<std::unique_ptr<B>()>& make_client, Report* rep) {
  constexpr bool kUepoll = !std::is_same_v<B, KernelBackend>;
  rep->opt = opt;
  const long shared_fds_before = count_shared_fds<B>();
  const uepoll::stats::Snapshot live_before = uepoll::stats::quiesce_and_read();

  RunControl control;
  std::string err;
  const bool exclusive = opt.accept == "exclusive";

  const bool run_server = opt.role != "client";
  const bool run_clients = opt.role != "server";
  const int n_workers = run_server ? opt.workers : 0;
  const int n_clients = run_clients ? opt.client_threads : 0;

  // Server: one backend (descriptor table) per worker; the listener(s).
  std::vector<std::unique_ptr<B>> server_b;
  std::vector<int> listen_fds;
  for (int i = 0; i < n_workers; ++i) {
    server_b.push_back(make());
  }
  auto port = static_cast<std::uint16_t>(opt.port);
  for (int i = 0; i < n_workers; ++i) {
    int fd = -1;
    if (exclusive && i > 0) {
      fd = share_descriptor(*server_b[0], listen_fds[0], *server_b[static_cast<std::size_t>(i)]);
      if (fd < 0) {
        err = "sharing the listener with worker " + std::to_string(i) + ": " + errno_text(errno);
      }
    } else {
      fd = open_listener(*server_b[static_cast<std::size_t>(i)], port, !exclusive, opt.backlog,
                         &err);
      if (fd >= 0 && port == 0) {
        const int p = bound_port(*server_b[static_cast<std::size_t>(i)], fd);
        if (p <= 0) {
          err = "getsockname(listener): " + errno_text(errno);
          fd = -1;
        } else {
          port = static_cast<std::uint16_t>(p);
        }
      }
    }
    if (fd < 0) {
      std::fprintf(stderr, "http_bench: backend %s: %s\n", opt.backend.c_str(), err.c_str());
      for (std::size_t j = 0; j < listen_fds.size(); ++j) {
        server_b[j]->close(listen_fds[j]);
      }
      return 2;
    }
    listen_fds.push_back(fd);
  }

  ServerConfig scfg;
  scfg.keepalive_requests = opt.keepalive_requests;
  scfg.body_bytes = opt.body_bytes;
  std::vector<std::unique_ptr<ServerWorker<B>>> workers;
  for (int i = 0; i < n_workers; ++i) {
    const auto k = static_cast<std::size_t>(i);
    workers.push_back(
        std::make_unique<ServerWorker<B>>(*server_b[k], listen_fds[k], scfg, control));
    if (!workers.back()->setup(exclusive, &err)) {
      std::fprintf(stderr, "http_bench: server worker %d: %s\n", i, err.c_str());
      return 2;  // destructors close everything
    }
  }

  // Load generator: one backend per thread, the connections split as evenly as possible.
  ClientConfig ccfg;
  ccfg.server = loopback_address(port);
  ccfg.timeout_ms = opt.timeout_ms;
  std::vector<std::unique_ptr<B>> client_b;
  std::vector<std::unique_ptr<ClientThread<B>>> clients;
  for (int i = 0; i < n_clients; ++i) {
    client_b.push_back(make_client());
    const int n = opt.connections / opt.client_threads + (i < opt.connections % opt.client_threads);
    clients.push_back(std::make_unique<ClientThread<B>>(*client_b.back(), n, ccfg, control));
    if (!clients.back()->setup(&err)) {
      std::fprintf(stderr, "http_bench: client thread %d: %s\n", i, err.c_str());
      return 2;
    }
  }

  if (opt.role == "server") {
    std::fprintf(stderr, "http_bench: serving on 127.0.0.1:%u for %.1f s\n", port,
                 opt.warmup_s + opt.duration_s);
  }
  std::vector<std::thread> server_threads;
  std::vector<std::thread> client_threads;
  for (int i = 0; i < n_workers; ++i) {
    server_threads.emplace_back([w = workers[static_cast<std::size_t>(i)].get()] { w->run(); });
    name_thread(server_threads.back(), "http-srv-", i);
  }
  for (int i = 0; i < n_clients; ++i) {
    client_threads.emplace_back([c = clients[static_cast<std::size_t>(i)].get()] { c->run(); });
    name_thread(client_threads.back(), "http-cli-", i);
  }

  // Warm-up, then the measured window.
  sleep_seconds(opt.warmup_s);
  uepoll::stats::Snapshot s0;
  if constexpr (kUepoll) {
    s0 = uepoll::stats::quiesce_and_read();
    if (opt.timing) {
      uepoll::stats::set_timing(true);
    }
  }
  const double cpu0 = cpu_seconds();
  const std::uint64_t t0 = now_ns();
  control.server_phase.store(kMeasure, std::memory_order_release);
  control.client_phase.store(kMeasure, std::memory_order_release);

  sleep_seconds(opt.duration_s);

  control.client_phase.store(kDrain, std::memory_order_release);
  control.server_phase.store(kDrain, std::memory_order_release);
  const std::uint64_t t1 = now_ns();
  const double cpu1 = cpu_seconds();
  if constexpr (kUepoll) {
    uepoll::stats::set_timing(false);
    const uepoll::stats::Snapshot s1 = uepoll::stats::quiesce_and_read();
    const std::uint64_t t2 = now_ns();  // the mutex count runs until s1 was read
    rep->have_uepoll_stats = true;
    rep->global_mutex = s1.global_mutex - s0.global_mutex;
    rep->global_mutex_per_s =
        static_cast<double>(rep->global_mutex) / (static_cast<double>(t2 - t0) / 1e9);
    rep->global_mutex_hold_ns = s1.global_mutex_hold_ns - s0.global_mutex_hold_ns;
    rep->release_path_ns = s1.release_path_ns - s0.release_path_ns;
    rep->release_path_calls = s1.release_path_calls - s0.release_path_calls;
  }
  rep->window_s = static_cast<double>(t1 - t0) / 1e9;
  rep->cpu_s = cpu1 - cpu0;

  // Stop the clients first (their connections close), then the servers.
  control.client_phase.store(kStop, std::memory_order_release);
  for (auto& t : client_threads) {
    t.join();
  }
  control.server_phase.store(kStop, std::memory_order_release);
  for (auto& t : server_threads) {
    t.join();
  }
  for (auto& c : clients) {
    c->teardown();
    rep->client.add(c->stats());
    rep->hist.merge(c->histogram());
    if (c->fatal_errno() != 0) {
      rep->fatal_errno = c->fatal_errno();
    }
  }
  for (auto& w : workers) {
    w->teardown();
    rep->server.add(w->stats());
    if (w->fatal_errno() != 0) {
      rep->fatal_errno = w->fatal_errno();
    }
  }

  // Leak checks: every descriptor table must be empty again, and (UEPOLL_STATS builds) every
  // object freed.
  long left = 0;
  for (auto* bs : {&server_b, &client_b}) {
    for (auto& b : *bs) {
      const long n = count_table_fds(*b);
      left += n > 0 ? n : 0;
    }
  }
  clients.clear();
  workers.clear();
  client_b.clear();
  server_b.clear();
  if constexpr (!std::is_same_v<B, UepollBackend>) {
    left = count_shared_fds<B>() - shared_fds_before;
  }
  rep->leaked_descriptors = left;
  if (uepoll::stats::enabled()) {
    const uepoll::stats::Snapshot live_after = uepoll::stats::quiesce_and_read();
    rep->have_live_files = true;
    rep->leaked_files = live_after.files - live_before.files;
  }
  return 0;
}

void print_report(const Report& r) {
  const Options& o = r.opt;
  const std::string backend = o.backend == "capi" ? "capi-" + std::string(lock_mode(o)) : o.backend;
  std::printf(
      "http_bench%s%s backend=%s accept=%s workers=%d client_threads=%d connections=%d "
      "keepalive_requests=%d duration=%.2fs: %llu requests, %.0f req/s, errors %llu; "
      "latency us p50 %.1f p90 %.1f p99 %.1f max %.1f; cpu %.0f%%",
      o.role == "both" ? "" : " role=", o.role == "both" ? "" : o.role.c_str(), backend.c_str(),
      o.accept.c_str(), o.workers, o.client_threads, o.connections, o.keepalive_requests,
      r.window_s, static_cast<unsigned long long>(r.requests()), r.rps(),
      static_cast<unsigned long long>(o.role == "server" ? r.server.errors : r.client.errors),
      us(r.hist.percentile(50)), us(r.hist.percentile(90)), us(r.hist.percentile(99)),
      us(r.hist.max()), r.window_s > 0 ? 100.0 * r.cpu_s / r.window_s : 0.0);
  if (r.have_uepoll_stats) {
    std::printf("; global mutex %.0f/s", r.global_mutex_per_s);
    if (o.timing) {
      const double share =
          r.cpu_s > 0 ? static_cast<double>(r.release_path_ns) / (r.cpu_s * 1e9) : 0.0;
      const double hold = r.global_mutex > 0 ? static_cast<double>(r.global_mutex_hold_ns) /
                                                   static_cast<double>(r.global_mutex)
                                             : 0.0;
      std::printf("; release path %.1f%% of cpu (%llu calls), mutex hold %.0f ns/acq",
                  100.0 * share, static_cast<unsigned long long>(r.release_path_calls), hold);
    }
  }
  std::printf("\n");
  const ClientStats& c = r.client;
  if (c.errors + c.errors_outside > 0 || r.server.errors + r.server.errors_outside > 0) {
    std::printf(
        "  client errors: connect %llu read %llu write %llu parse %llu timeout %llu "
        "(outside window %llu, last errno %llu %s); server errors: accept %llu io %llu bad %llu "
        "truncated %llu timeout %llu\n",
        static_cast<unsigned long long>(c.connect_errors),
        static_cast<unsigned long long>(c.read_errors),
        static_cast<unsigned long long>(c.write_errors),
        static_cast<unsigned long long>(c.parse_errors),
        static_cast<unsigned long long>(c.timeouts),
        static_cast<unsigned long long>(c.errors_outside),
        static_cast<unsigned long long>(c.last_errno),
        c.last_errno != 0 ? std::strerror(static_cast<int>(c.last_errno)) : "",
        static_cast<unsigned long long>(r.server.accept_errors),
        static_cast<unsigned long long>(r.server.io_errors),
        static_cast<unsigned long long>(r.server.bad_requests),
        static_cast<unsigned long long>(r.server.truncated),
        static_cast<unsigned long long>(r.server.timeouts));
  }
  if (r.leaked_descriptors != 0 || r.leaked_files != 0 || r.fatal_errno != 0) {
    std::printf("  WARNING: leaked descriptors %ld, leaked files %ld, fatal errno %d\n",
                r.leaked_descriptors, r.leaked_files, r.fatal_errno);
  }
  std::fflush(stdout);
}

bool write_json(const Report& r, const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    std::fprintf(stderr, "http_bench: cannot write %s: %s\n", path.c_str(), std::strerror(errno));
    return false;
  }
  const Options& o = r.opt;
  auto u = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
  std::fprintf(f, "{\n");
  std::fprintf(f, "  \"backend\": \"%s\",\n", o.backend.c_str());
  if (const char* mode = lock_mode(o)) {
    std::fprintf(f, "  \"lock_mode\": \"%s\",\n", mode);
  } else {
    std::fprintf(f, "  \"lock_mode\": null,\n");
  }
  std::fprintf(f, "  \"role\": \"%s\",\n", o.role.c_str());
  std::fprintf(f, "  \"accept\": \"%s\",\n", o.accept.c_str());
  std::fprintf(f, "  \"workers\": %d,\n", o.workers);
  std::fprintf(f, "  \"client_threads\": %d,\n", o.client_threads);
  std::fprintf(f, "  \"connections\": %d,\n", o.connections);
  std::fprintf(f, "  \"keepalive_requests\": %d,\n", o.keepalive_requests);
  std::fprintf(f, "  \"body_bytes\": %d,\n", o.body_bytes);
  std::fprintf(f, "  \"warmup_s\": %.3f,\n", o.warmup_s);
  std::fprintf(f, "  \"duration_s\": %.6f,\n", r.window_s);
  std::fprintf(f, "  \"requests\": %llu,\n", u(r.requests()));
  std::fprintf(f, "  \"rps\": %.1f,\n", r.rps());
  std::fprintf(f, "  \"p50_us\": %.3f,\n", us(r.hist.percentile(50)));
  std::fprintf(f, "  \"p90_us\": %.3f,\n", us(r.hist.percentile(90)));
  std::fprintf(f, "  \"p99_us\": %.3f,\n", us(r.hist.percentile(99)));
  std::fprintf(f, "  \"max_us\": %.3f,\n", us(r.hist.max()));
  std::fprintf(f, "  \"mean_us\": %.3f,\n", r.hist.mean() / 1000.0);
  std::fprintf(f, "  \"errors\": %llu,\n",
               u(o.role == "server" ? r.server.errors : r.client.errors));
  std::fprintf(f, "  \"non_2xx\": %llu,\n", u(r.client.non_2xx));
  std::fprintf(f,
               "  \"client\": {\"requests_total\": %llu, \"connects\": %llu, "
               "\"errors_outside_window\": %llu, \"connect_errors\": %llu, \"read_errors\": %llu, "
               "\"write_errors\": %llu, \"parse_errors\": %llu, \"timeouts\": %llu, "
               "\"last_errno\": %llu},\n",
               u(r.client.requests_total), u(r.client.connects), u(r.client.errors_outside),
               u(r.client.connect_errors), u(r.client.read_errors), u(r.client.write_errors),
               u(r.client.parse_errors), u(r.client.timeouts), u(r.client.last_errno));
  std::fprintf(f,
               "  \"server\": {\"accepted\": %llu, \"requests\": %llu, \"requests_total\": %llu, "
               "\"errors\": %llu, \"errors_outside_window\": %llu, \"accept_errors\": %llu, "
               "\"io_errors\": %llu, \"bad_requests\": %llu, \"truncated\": %llu, "
               "\"timeouts\": %llu},\n",
               u(r.server.accepted), u(r.server.requests), u(r.server.requests_total),
               u(r.server.errors), u(r.server.errors_outside), u(r.server.accept_errors),
               u(r.server.io_errors), u(r.server.bad_requests), u(r.server.truncated),
               u(r.server.timeouts));
  std::fprintf(f, "  \"cpu_s\": %.6f,\n", r.cpu_s);
  std::fprintf(f, "  \"cpu_utilization\": %.4f,\n", r.window_s > 0 ? r.cpu_s / r.window_s : 0.0);
  if (r.have_uepoll_stats) {
    std::fprintf(f, "  \"global_mutex_acquisitions\": %llu,\n", u(r.global_mutex));
    std::fprintf(f, "  \"global_mutex_per_s\": %.1f,\n", r.global_mutex_per_s);
  } else {
    std::fprintf(f, "  \"global_mutex_acquisitions\": null,\n  \"global_mutex_per_s\": null,\n");
  }
  if (r.have_uepoll_stats && o.timing) {
    const double share =
        r.cpu_s > 0 ? static_cast<double>(r.release_path_ns) / (r.cpu_s * 1e9) : 0.0;
    const double hold = r.global_mutex > 0 ? static_cast<double>(r.global_mutex_hold_ns) /
                                                 static_cast<double>(r.global_mutex)
                                           : 0.0;
    const double per_call = r.release_path_calls > 0 ? static_cast<double>(r.release_path_ns) /
                                                           static_cast<double>(r.release_path_calls)
                                                     : 0.0;
    std::fprintf(f,
                 "  \"timing\": {\"release_path_ns\": %llu, \"release_path_calls\": %llu, "
                 "\"release_path_ns_per_call\": %.1f, \"release_path_share\": %.6f, "
                 "\"global_mutex_hold_ns\": %llu, \"global_mutex_hold_ns_per_acquisition\": "
                 "%.1f},\n",
                 u(r.release_path_ns), u(r.release_path_calls), per_call, share,
                 u(r.global_mutex_hold_ns), hold);
  } else {
    std::fprintf(f, "  \"timing\": null,\n");
  }
  std::fprintf(f, "  \"leaked_descriptors\": %ld,\n", r.leaked_descriptors);
  if (r.have_live_files) {
    std::fprintf(f, "  \"leaked_files\": %ld,\n", r.leaked_files);
  } else {
    std::fprintf(f, "  \"leaked_files\": null,\n");
  }
  std::fprintf(f, "  \"fatal_errno\": %d\n}\n", r.fatal_errno);
  const bool ok = std::fclose(f) == 0;
  if (!ok) {
    std::fprintf(stderr, "http_bench: writing %s failed\n", path.c_str());
  }
  return ok;
}

}  // namespace
}  // namespace uepoll_bench::http

int main(int argc, char** argv) {
  using namespace uepoll_bench;
  using namespace uepoll_bench::http;
  Options opt;
  if (!parse_options(argc, argv, &opt)) {
    return 1;
  }
  ::signal(SIGPIPE, SIG_IGN);  // sends use MSG_NOSIGNAL; this covers anything else

  Report rep;
  int rc = 0;
  {
    Watchdog watchdog(opt.warmup_s + opt.duration_s + 30.0);
    if (opt.backend == "kernel") {
      auto make = [] { return std::make_unique<KernelBackend>(); };
      rc = run<KernelBackend>(opt, make, make, &rep);
    } else if (opt.backend == "capi") {
      // Server and clients alike in the C API's one table and lock mode, as one C program.
      auto make = [] { return std::make_unique<CapiBackend>(); };
      rc = run<CapiBackend>(opt, make, make, &rep);
    } else {
      const uepoll::LockMode mode =
          opt.backend == "legacy" ? uepoll::LockMode::kLegacy : uepoll::LockMode::kFine;
      rc = run<UepollBackend>(
          opt, [mode] { return std::make_unique<UepollBackend>(mode); },
          [] { return std::make_unique<UepollBackend>(uepoll::LockMode::kFine); }, &rep);
    }
  }
  if (rc != 0) {
    return rc;
  }
  print_report(rep);
  if (!opt.json.empty() && !write_json(rep, opt.json)) {
    return 1;
  }
  if (rep.fatal_errno != 0 || rep.leaked_descriptors != 0 || rep.leaked_files != 0) {
    return 5;
  }
  return rep.requests() == 0 ? 4 : 0;
}
