// Randomized differential test of uepoll against the Linux kernel.
//
// For each seed a single-threaded program of random non-blocking operations (epoll_create1,
// eventfd, pipe2, socketpair, epoll_ctl, epoll_wait, poll, read/write/recv/send, shutdown, close,
// dup/dup2/dup3, fcntl) is generated from std::mt19937_64(seed) while it runs on the kernel (the
// kernel's results steer later choices), then the same program is replayed on uepoll. After every
// operation these must be equal: return value, errno, the ordered (events, data) list of
// epoll_wait, poll revents, the bytes read, and for each new descriptor its rank among the
// program's open descriptors and its number less the descriptors the process held before the
// program began (uepoll's table starts empty, so that is its raw number; on the kernel it skips
// stdio and the like). Programs name descriptors by logical slots; epoll_event.data holds the
// target's slot and the op index, never a raw descriptor. At the end everything is closed and
// the numbers the program used must all be free again on both backends.
//
// Usage: differential_test [--seeds=N] [--first-seed=S] [--ops=K] [--verbose] [--minimize]
//                          [--max-reports=N] [--backend=uepoll|kernel] [--stats]
//                          [--exclude=CHOICE,...]
//   --seeds=N          number of programs (default 2000), seeds S..S+N-1
//   --first-seed=S     first seed (default 1)
//   --ops=K            operations per program (default 150)
//   --verbose          print every operation with both backends' results
//   --max-reports=N    report the first N failing seeds in full (default 10), 40 more in one
//                      line each, then only count them
//   --minimize         on a divergence, shrink the program (in forked children) to a short
//                      sequence of calls that still diverges at the same kind of call, and print it
//   --backend=kernel   replay on the kernel instead of uepoll (checks the harness itself)
//   --stats            print how often each call gave each result on the kernel
//   --exclude=A,B      never generate these choices (triage while a feature is missing; e.g.
//                      --exclude=socketpair); the registered tests exclude nothing
// The last line of output is "differential: P passed, F failed"; the exit status is 0 only when
// F is 0.
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "program.hpp"

namespace uepoll_diff {
namespace {

constexpr int kDefaultOps = 150;
constexpr unsigned kWatchdogSeconds = 30;
constexpr unsigned kChildWatchdogSeconds = 5;
constexpr std::uint64_t kOneLineReports = 40;  // after the full reports, this many one-liners

struct Options {
  std::uint64_t first_seed = 1;
  std::uint64_t seeds = 2000;
  int ops = kDefaultOps;
  bool verbose = false;
  bool minimize = false;
  bool against_kernel = false;
  bool stats = false;
  std::set<std::string> exclude;
  std::uint64_t max_reports = 10;  // failing seeds reported in full (the rest in one line)
};

// Failing seeds so far, and at which call they diverged (for the closing tally).
std::uint64_t g_failures = 0;
std::map<std::string, std::uint64_t> g_failure_kinds;

// --stats: how often each kind of call gave each kind of result on the kernel (to tune weights).
std::map<std::string, std::uint64_t> g_stats;

void count_stats(const Generated& g) {
  for (std::size_t i = 0; i < g.ops.size(); ++i) {
    const Op& op = g.ops[i];
    const Result& r = g.kernel[i].res;
    std::string key = op_name(op.kind);
    if (op.kind == OpKind::kCtl)
      key += op.iarg == EPOLL_CTL_ADD   ? " ADD"
             : op.iarg == EPOLL_CTL_MOD ? " MOD"
             : op.iarg == EPOLL_CTL_DEL ? " DEL"
                                        : " badop";
    if (r.skipped) {
      key += " skipped";
    } else if (r.ret < 0) {
      key += " " + errno_name(r.err);
    } else if (op.kind == OpKind::kWait || op.kind == OpKind::kPoll) {
      key += " " + std::to_string(r.ret);
    } else {
      key += r.ret > 0 ? " >0" : " 0";
    }
    ++g_stats[key];
  }
}

// --- crash and hang context ---------------------------------------------------------------------
// What the process is doing, for the watchdog and crash handlers (written before every op).
// (The op index is g_current_op, set by the executor; -1 before a program, -2 while closing.)
volatile std::uint64_t g_seed = 0;
volatile int g_phase = 0;  // 0 kernel, 1 uepoll
struct sigaction g_old_actions[NSIG];

void write_str(const char* s) {
  ssize_t ignored = ::write(STDERR_FILENO, s, std::strlen(s));
  (void)ignored;
}

void write_num(std::uint64_t v) {
  char buf[24];
  int i = sizeof buf;
  buf[--i] = '\0';
  do {
    buf[--i] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0 && i > 0);
  write_str(buf + i);
}

void write_context(const char* what) {
  write_str("\ndifferential: ");
  write_str(what);
  write_str(" in seed ");
  write_num(g_seed);
  write_str(", op #");
  long op = g_current_op;
  if (op == -1) {
    write_str("(setup)");
  } else if (op < 0) {
    write_str("(closing everything)");
  } else {
    write_num(static_cast<std::uint64_t>(op));
  }
  write_str(g_phase == 0 ? " on the kernel" : " on uepoll");
  write_str("\n  replay: differential_test --first-seed=");
  write_num(g_seed);
  write_str(" --seeds=1 --verbose\n");
}

void on_alarm(int) {
  write_context("HANG (an operation blocked, or the program ran too long)");
  _exit(3);
}

void on_crash(int sig, siginfo_t* info, void* uctx) {
  write_context(sig == SIGSEGV   ? "CRASH (SIGSEGV)"
                : sig == SIGBUS  ? "CRASH (SIGBUS)"
                : sig == SIGABRT ? "CRASH (SIGABRT)"
                : sig == SIGFPE  ? "CRASH (SIGFPE)"
                                 : "CRASH");
  // Hand over to whoever handled the signal before (a sanitizer's reporter, or the default).
  struct sigaction old = g_old_actions[sig];
  sigaction(sig, &old, nullptr);
  if ((old.sa_flags & SA_SIGINFO) != 0 && old.sa_sigaction != nullptr) {
    old.sa_sigaction(sig, info, uctx);
  } else if (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN) {
    old.sa_handler(sig);
  } else {
    raise(sig);  // the default action: terminate (the signal is blocked until we return)
  }
}

void install_handlers() {
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  sigaction(SIGPIPE, &ign, nullptr);  // writes to a closed pipe/socket must fail with EPIPE

  struct sigaction alrm {};
  alrm.sa_handler = on_alarm;
  sigemptyset(&alrm.sa_mask);
  sigaction(SIGALRM, &alrm, nullptr);

  for (int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL}) {
    struct sigaction sa {};
    sa.sa_sigaction = on_crash;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, &g_old_actions[sig]);
  }
}

// --- running ------------------------------------------------------------------------------------
std::string fds_str(const std::vector<int>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? " " : "") + std::to_string(v[i]);
  return s + "]";
}

std::string outcome_detail(const Op& op, const Outcome& o) {
  return result_to_string(op, o.res) + "   {raw ret " + std::to_string(o.raw_ret) + ", arg fds " +
         fds_str(o.raw_fds) + (o.new_fds.empty() ? "" : ", new fds " + fds_str(o.new_fds)) + "}";
}

const uepoll_test::Api& other_api(const Options& opt) {
  return opt.against_kernel ? uepoll_test::kernel_api() : uepoll_test::uepoll_api();
}

struct Divergence {
  long op = -1;  // index, or the op count for a leak found after the program
  std::string text;
};

// Replays `ops` on the second backend and compares with the kernel's outcomes. Returns the first
// divergence (op == -1: none).
Divergence replay(const std::vector<Op>& ops, const std::vector<Outcome>& kernel,
                  const std::vector<int>& kernel_left, const Options& opt, const char* other_name) {
  Divergence d;
  Executor u(other_api(opt));
  g_phase = 1;
  g_current_op = -1;
  u.begin();
  for (std::size_t i = 0; i < ops.size(); ++i) {
    Outcome o = u.exec(ops[i]);
    const Outcome& k = kernel[i];
    bool same = o.res == k.res;
    if (opt.verbose) {
      std::printf("#%zu %s\n    kernel: %s\n    %s: %s%s\n", i, op_to_string(ops[i]).c_str(),
                  outcome_detail(ops[i], k).c_str(), other_name, outcome_detail(ops[i], o).c_str(),
                  same ? "" : "\n    ^^^ DIVERGENCE");
    }
    if (!same) {
      d.op = static_cast<long>(i);
      d.text = "op #" + std::to_string(i) + " of " + std::to_string(ops.size()) + ": " +
               op_to_string(ops[i]) + "\n  kernel: " + outcome_detail(ops[i], k) + "\n  " +
               other_name + ": " + outcome_detail(ops[i], o);
      break;
    }
  }
  g_current_op = -2;
  u.close_all();
  std::vector<int> left = u.leftovers(true);
  if (d.op < 0 && left != kernel_left) {
    d.op = static_cast<long>(ops.size());
    d.text =
        "after the program closed every descriptor it held, numbers still open (less foreign "
        "ones)\n  kernel: " +
        fds_str(kernel_left) + "\n  " + other_name + ": " + fds_str(left);
  }
  return d;
}

// Runs a fixed list of ops on the kernel (no generation), for minimization.
void run_kernel_fixed(const std::vector<Op>& ops, std::vector<Outcome>& outs,
                      std::vector<int>& left) {
  Executor k(uepoll_test::kernel_api());
  g_phase = 0;
  k.begin();
  for (std::size_t i = 0; i < ops.size(); ++i) {
    outs.push_back(k.exec(ops[i]));
  }
  k.close_all();
  left = k.leftovers(false);
}

// In a child: does `ops` still diverge at an op of kind `kind` (or, for kind == nullopt-like -1,
// after the program)? The child's exit status answers; hangs and crashes count as "no".
bool still_diverges(const std::vector<Op>& ops, int kind, const Options& opt) {
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) {
      dup2(devnull, STDERR_FILENO);
      close(devnull);
    }
    alarm(kChildWatchdogSeconds);
    std::vector<Outcome> outs;
    std::vector<int> left;
    run_kernel_fixed(ops, outs, left);
    Options quiet = opt;
    quiet.verbose = false;
    Divergence d = replay(ops, outs, left, quiet, "uepoll");
    bool hit = false;
    if (d.op >= 0) {
      if (static_cast<std::size_t>(d.op) < ops.size()) {
        hit = static_cast<int>(ops[static_cast<std::size_t>(d.op)].kind) == kind;
      } else {
        hit = kind == -1;
      }
    }
    _exit(hit ? 1 : 0);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 1;
}

void minimize(std::vector<Op> ops, const Divergence& d, const Options& opt) {
  int kind = -1;
  if (static_cast<std::size_t>(d.op) < ops.size()) {
    kind = static_cast<int>(ops[static_cast<std::size_t>(d.op)].kind);
    ops.resize(static_cast<std::size_t>(d.op) + 1);
  }
  if (!still_diverges(ops, kind, opt)) {
    std::printf(
        "  minimize: the divergence does not reproduce in a fresh process; not minimized\n");
    return;
  }
  // Delta debugging over the op list.
  std::size_t n = 2;
  while (ops.size() >= 2) {
    std::size_t chunk = (ops.size() + n - 1) / n;
    bool reduced = false;
    for (std::size_t start = 0; start < ops.size(); start += chunk) {
      std::vector<Op> cand;
      for (std::size_t i = 0; i < ops.size(); ++i) {
        if (i < start || i >= start + chunk) cand.push_back(ops[i]);
      }
      if (!cand.empty() && still_diverges(cand, kind, opt)) {
        ops = std::move(cand);
        n = std::max<std::size_t>(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (n >= ops.size()) break;
      n = std::min(ops.size(), n * 2);
    }
  }
  // Print the minimized program with both backends' results (in a child, in case it crashes).
  std::printf("  minimized to %zu calls:\n", ops.size());
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    alarm(kChildWatchdogSeconds);
    std::vector<Outcome> outs;
    std::vector<int> left;
    run_kernel_fixed(ops, outs, left);
    Executor u(other_api(opt));
    g_phase = 1;
    u.begin();
    for (std::size_t i = 0; i < ops.size(); ++i) {
      Outcome o = u.exec(ops[i]);
      bool same = o.res == outs[i].res;
      std::printf("    %s\n        // kernel: %s\n", op_to_c(ops[i]).c_str(),
                  result_to_string(ops[i], outs[i].res).c_str());
      if (!same)
        std::printf("        // uepoll: %s   <-- DIVERGES\n",
                    result_to_string(ops[i], o.res).c_str());
    }
    u.close_all();
    std::vector<int> uleft = u.leftovers(true);
    if (uleft != left)
      std::printf("    // left open after closing all: kernel %s, uepoll %s\n",
                  fds_str(left).c_str(), fds_str(uleft).c_str());
    std::fflush(stdout);
    _exit(0);
  }
  int status = 0;
  while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

bool run_seed(std::uint64_t seed, const Options& opt) {
  const char* other_name = opt.against_kernel ? "kernel#2" : "uepoll";
  g_seed = seed;
  g_phase = 0;
  g_current_op = -1;
  alarm(kWatchdogSeconds);

  Executor k(uepoll_test::kernel_api());
  k.begin();
  Generated g = generate(seed, opt.ops, opt.exclude, k);
  if (opt.stats) count_stats(g);
  g_current_op = -2;
  k.close_all();
  std::vector<int> kernel_left = k.leftovers(false);

  if (opt.verbose)
    std::printf("=== seed %llu: %zu ops\n", static_cast<unsigned long long>(seed), g.ops.size());
  Divergence d = replay(g.ops, g.kernel, kernel_left, opt, other_name);
  alarm(0);
  if (d.op < 0) return true;

  // Full reports for the first few failing seeds, one line each for the next ones, then a tally.
  ++g_failures;
  std::string where = static_cast<std::size_t>(d.op) < g.ops.size()
                          ? op_name(g.ops[static_cast<std::size_t>(d.op)].kind)
                          : std::string("descriptors left open");
  ++g_failure_kinds[where];
  if (g_failures <= opt.max_reports) {
    std::printf(
        "differential: DIVERGENCE in seed %llu, %s\n  replay: differential_test --first-seed=%llu "
        "--seeds=1 --verbose   (add --minimize to shrink it)\n",
        static_cast<unsigned long long>(seed), d.text.c_str(),
        static_cast<unsigned long long>(seed));
    if (opt.minimize) minimize(g.ops, d, opt);
  } else if (g_failures <= opt.max_reports + kOneLineReports) {
    std::string first_line = d.text.substr(0, d.text.find('\n'));
    std::printf("differential: DIVERGENCE in seed %llu, %s\n",
                static_cast<unsigned long long>(seed), first_line.c_str());
  } else if (g_failures == opt.max_reports + kOneLineReports + 1) {
    std::printf("differential: (further divergences are only counted)\n");
  }
  std::fflush(stdout);
  return false;
}

bool parse_u64(std::string_view s, std::uint64_t& out) {
  if (s.empty()) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  out = v;
  return true;
}

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--seeds=N] [--first-seed=S] [--ops=K] [--verbose] [--minimize] "
               "[--max-reports=N] [--backend=uepoll|kernel] [--stats] [--exclude=CHOICE,...]\n"
               "  CHOICE: %s\n",
               argv0, kGeneratorChoices);
  return 2;
}

}  // namespace
}  // namespace uepoll_diff

int main(int argc, char** argv) {
  using namespace uepoll_diff;
  Options opt;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    std::uint64_t v = 0;
    if (a.starts_with("--seeds=") && parse_u64(a.substr(8), v)) {
      opt.seeds = v;
    } else if (a.starts_with("--first-seed=") && parse_u64(a.substr(13), v)) {
      opt.first_seed = v;
    } else if (a.starts_with("--ops=") && parse_u64(a.substr(6), v) && v > 0 && v < 100000) {
      opt.ops = static_cast<int>(v);
    } else if (a.starts_with("--max-reports=") && parse_u64(a.substr(14), v)) {
      opt.max_reports = v;
    } else if (a == "--verbose") {
      opt.verbose = true;
    } else if (a.starts_with("--exclude=")) {
      std::string_view list = a.substr(10);
      while (!list.empty()) {
        auto comma = list.find(',');
        std::string name(list.substr(0, comma));
        std::string known = std::string(" ") + kGeneratorChoices + " ";
        if (known.find(" " + name + " ") == std::string::npos) return usage(argv[0]);
        opt.exclude.insert(name);
        list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
      }
    } else if (a == "--stats") {
      opt.stats = true;
    } else if (a == "--minimize") {
      opt.minimize = true;
    } else if (a == "--backend=kernel") {
      opt.against_kernel = true;
    } else if (a == "--backend=uepoll") {
      opt.against_kernel = false;
    } else {
      return usage(argv[0]);
    }
  }
  install_handlers();
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  auto t0 = std::chrono::steady_clock::now();
  std::uint64_t passed = 0;
  std::uint64_t failed = 0;
  for (std::uint64_t i = 0; i < opt.seeds; ++i) {
    if (run_seed(opt.first_seed + i, opt)) {
      ++passed;
    } else {
      ++failed;
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (failed > 0) {
    std::printf("differential: failing seeds by the call that diverged first:\n");
    for (const auto& [key, n] : g_failure_kinds) {
      std::printf("  %-24s %llu\n", key.c_str(), static_cast<unsigned long long>(n));
    }
  }
  for (const auto& [key, n] : g_stats)
    std::printf("  %-40s %llu\n", key.c_str(), static_cast<unsigned long long>(n));
  std::fprintf(stderr, "differential: %d ops per program, %.2f s\n", opt.ops, secs);
  std::printf("differential: %llu passed, %llu failed\n", static_cast<unsigned long long>(passed),
              static_cast<unsigned long long>(failed));
  return failed == 0 ? 0 : 1;
}
