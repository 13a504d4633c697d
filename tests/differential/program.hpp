// Randomized differential test: the program model shared by the generator, the executors and the
// driver. A program is a list of operations on *logical* descriptors (slots); each backend maps
// slots to its own descriptor numbers, so the same program runs unchanged on the kernel and on
// uepoll. Results are normalized so that they compare equal when the backends agree (descriptor
// numbers are reported as their rank among the program's open descriptors, never raw).
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "support/backend.hpp"

namespace uepoll_diff {

// A descriptor argument: a logical slot (its current number while open, the number it last had
// once closed; -1 if it never had one) or a raw integer (-1, a number no program ever owns).
struct Ref {
  int slot = -1;  // >= 0: a slot
  int raw = -1;   // used when slot < 0
};

enum class OpKind {
  kEpollCreate1,
  kEpollCreate,
  kEventfd,
  kPipe2,
  kSocketpair,
  kCtl,
  kWait,
  kPoll,
  kRead,
  kWrite,
  kRecv,
  kSend,
  kShutdown,
  kClose,
  kDup,
  kDup2,
  kDup3,
  kFcntl,
};

enum class WaitVariant { kWait, kPwait, kPwait2 };

struct PollEntry {
  Ref ref;
  short events = 0;
};

struct Op {
  OpKind kind = OpKind::kClose;
  Ref a;                     // main descriptor (epfd for ctl/wait, oldfd for dup*)
  Ref b;                     // second descriptor (target of ctl, newfd of dup2/dup3)
  int iarg = 0;              // flags / ctl op / how / fcntl cmd / size of epoll_create / domain
  long larg = 0;             // fcntl argument, socketpair type, recv/send flags
  int count = 0;             // maxevents / byte count
  std::uint32_t events = 0;  // epoll_ctl mask
  std::uint64_t data = 0;    // epoll_ctl data (logical, identical on both backends)
  std::uint64_t value = 0;   // eventfd write value
  bool null_ptr = false;     // pass NULL for the event(s) pointer
  bool fcntl_arg_is_ref = false;  // F_DUPFD*: larg is taken from ref b's number
  WaitVariant variant = WaitVariant::kWait;
  short guard = 0;  // 0, or POLLIN/POLLOUT: poll the descriptor first, skip the I/O unless set
  std::vector<PollEntry> pfds;
  int new_slot = -1;  // first slot a successful fd-creating call fills (pipe/socketpair: 2)
  unsigned seq = 0;   // index of the op (seeds write patterns)
};

struct Result {
  long ret = 0;               // normalized: descriptor-returning calls give 0 on success
  int err = 0;                // errno when the call failed, else 0
  std::vector<int> ranks;     // each new descriptor's rank among the program's open descriptors
  std::vector<int> nums;      // each new descriptor's number, less the foreign ones below it
  bool dup_target_ok = true;  // dup2/dup3 returned the requested number
  bool collision = false;     // a "new" descriptor number was already open in the program
  std::vector<std::pair<std::uint32_t, std::uint64_t>> events;
  std::vector<short> revents;
  long guard_revents = -1;      // revents of the guard poll, -1 when none
  bool skipped = false;         // guard said not ready: no I/O done
  std::uint64_t data_hash = 0;  // of the bytes read
  std::uint64_t value = 0;      // first 8 bytes read (eventfd counter)
  int closed_slot = -1;         // slot whose descriptor this call closed
  std::vector<int> owners;      // slot owning each descriptor argument before the call

  bool operator==(const Result&) const = default;
};

// Real results also keep what is not comparable, for messages.
struct Outcome {
  Result res;
  long raw_ret = 0;
  std::vector<int> raw_fds;  // the backend's numbers of the arguments (a, b, pfds...)
  std::vector<int> new_fds;  // the backend's numbers of the new descriptors
};

std::string op_to_string(const Op& op);
std::string result_to_string(const Op& op, const Result& r);
std::string events_to_string(std::uint32_t ev);
std::string poll_events_to_string(short ev);
std::string op_name(OpKind kind);
std::string errno_name(int e);
// The op as a line of C using variables s<slot> for the descriptors, for minimized reports.
std::string op_to_c(const Op& op);

// The index of the op being executed (for the hang and crash reports); -1 outside programs.
inline volatile long g_current_op = -1;

// Runs operations on one backend, keeping that backend's slot -> number table.
class Executor {
 public:
  explicit Executor(const uepoll_test::Api& api);
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Before the first op: records the numbers that the process already has open (below a bound),
  // so that a descriptor's number can be compared between backends with those taken out.
  void begin();
  Outcome exec(const Op& op);
  // Closes every descriptor the program still holds (results not compared).
  void close_all();
  // After close_all: the numbers a backend still reports open among those the program used (and,
  // for uepoll whose table is private, every number up to a bound). Closes them (so one broken
  // program does not poison the next) and returns them normalized.
  std::vector<int> leftovers(bool sweep_all);

  const uepoll_test::Api& api() const { return *api_; }
  bool slot_open(int slot) const;
  bool slot_had_fd(int slot) const;
  int slot_count() const { return static_cast<int>(fd_.size()); }
  // The slot that owns number `fd` now, or -1.
  int owner_of_number(int fd) const;
  int resolve(const Ref& r) const;

 private:
  void ensure_slot(int slot);
  int normalize_number(int fd) const;
  int rank_of(int fd) const;
  void record_new(Outcome& out, int slot, int fd);
  void record_close(Outcome& out, int fd);

  const uepoll_test::Api* api_;
  std::vector<int> fd_;       // per slot: its number (kept after close), -1 if never opened
  std::vector<bool> open_;    // per slot
  std::vector<int> foreign_;  // sorted numbers open before the program began
  std::vector<int> used_;     // every number the program ever had
};

struct Generated {
  std::vector<Op> ops;
  std::vector<Outcome> kernel;  // the kernel's outcome of each op
};

// Names of the generator's choices, for --exclude (a triage aid while a feature is missing; the
// registered tests exclude nothing).
inline constexpr const char* kGeneratorChoices =
    "epoll_create eventfd pipe2 socketpair epoll_ctl epoll_wait poll read write shutdown close dup "
    "fcntl chain burst "
    // and finer ones: no POLLRDNORM-like bits, no 0-byte writes, no epoll_ctl on pipes
    "normbits zerowrite pipewatch";

// Generates a program of `nops` operations from `seed`, executing each op on `kernel` as it goes
// (the choice of later ops depends on the kernel's results). `kernel` must be begun.
Generated generate(std::uint64_t seed, int nops, const std::set<std::string>& exclude,
                   Executor& kernel);

}  // namespace uepoll_diff
