// libFuzzer target: the input bytes decode into a short program of non-blocking epoll/descriptor
// calls (the op set of tests/differential), run op by op on the kernel and on uepoll's C API.
// The kernel is the oracle: any difference in the normalized results (return value, errno, new
// descriptors' ranks, event lists with logical data, poll revents, bytes read, leftovers after
// closing everything) aborts with both results printed.
//
// Never blocks: every object is created non-blocking (O_NONBLOCK can't be cleared: F_SETFL always
// keeps it), timeouts are 0. Never touches a descriptor it does not own: bad descriptors are -1,
// 1 << 20 or INT_MAX, and dup2/dup3 targets are program slots only.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "program.hpp"
#include "support/backend.hpp"

namespace {

using uepoll_diff::Executor;
using uepoll_diff::Op;
using uepoll_diff::OpKind;
using uepoll_diff::Outcome;
using uepoll_diff::Ref;
using uepoll_diff::WaitVariant;

constexpr int kMaxSlots = 48;
constexpr int kMaxOps = 96;

class Reader {
 public:
  Reader(const std::uint8_t* data, std::size_t size) : p_(data), n_(size) {}
  bool empty() const { return i_ >= n_; }
  std::uint8_t u8() { return i_ < n_ ? p_[i_++] : 0; }
  std::uint32_t u32() {
    std::uint32_t v = 0;
    for (int k = 0; k < 4; ++k) v |= static_cast<std::uint32_t>(u8()) << (8 * k);
    return v;
  }
  int below(int n) { return n <= 0 ? 0 : u8() % n; }
  bool chance(int pct) { return below(100) < pct; }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
  std::size_t i_ = 0;
};

class Decoder {
 public:
  explicit Decoder(Reader& r) : r_(r) {}

  int slots() const { return next_slot_; }
  bool full(int n) const { return next_slot_ + n > kMaxSlots; }
  int new_slots(int n) {
    int s = next_slot_;
    next_slot_ += n;
    return s;
  }

  static Ref raw(int v) {
    Ref ref;
    ref.raw = v;
    return ref;
  }
  static Ref slot(int s) {
    Ref ref;
    ref.slot = s;
    return ref;
  }
  Ref bad() {
    static const int kBad[] = {-1, 1 << 20, INT_MAX};
    return raw(kBad[r_.below(3)]);
  }
  // Mostly a slot (open or closed), sometimes a bad number.
  Ref any() {
    std::uint8_t b = r_.u8();
    if (next_slot_ == 0 || b >= 232) return bad();
    return slot(b % next_slot_);
  }
  // A slot or -1 (targets of dup2/dup3: never a foreign number).
  Ref slot_or_minus1() {
    std::uint8_t b = r_.u8();
    if (next_slot_ == 0 || b >= 240) return raw(-1);
    return slot(b % next_slot_);
  }

  std::uint32_t mask() {
    static const std::uint32_t kBits[] = {EPOLLIN,  EPOLLOUT,     EPOLLPRI,       EPOLLRDHUP,
                                          EPOLLET,  EPOLLONESHOT, EPOLLEXCLUSIVE, EPOLLERR,
                                          EPOLLHUP, EPOLLRDNORM,  EPOLLWRNORM};
    std::uint32_t sel = r_.u8() | (static_cast<std::uint32_t>(r_.u8()) << 8);
    std::uint32_t m = 0;
    for (std::size_t i = 0; i < sizeof(kBits) / sizeof(kBits[0]); ++i) {
      if ((sel >> i) & 1U) m |= kBits[i];
    }
    return m;
  }

  short poll_events() {
    static const short kBits[] = {POLLIN,  POLLOUT,    POLLPRI,    POLLRDHUP,  POLLERR,
                                  POLLHUP, POLLRDNORM, POLLWRNORM, POLLRDBAND, POLLWRBAND};
    unsigned sel = r_.u8() | (static_cast<unsigned>(r_.u8()) << 8);
    int m = 0;
    for (std::size_t i = 0; i < sizeof(kBits) / sizeof(kBits[0]); ++i) {
      if ((sel >> i) & 1U) m |= kBits[i];
    }
    return static_cast<short>(m);
  }

  int io_count() {
    static const int kCounts[] = {0, 1, 4, 7, 8, 9, 16, 64, 512, 4096, 8192, 65536, 70000};
    std::uint8_t b = r_.u8();
    if (b < 128) return 8;  // the eventfd size, and a small read/write elsewhere
    return kCounts[b % 13];
  }

  // Decodes one op; returns false when the input is used up.
  bool next(Op& op, unsigned seq) {
    if (r_.empty()) return false;
    op = Op{};
    op.seq = seq;
    int kind = r_.below(16);
    bool creating = kind <= 3 || kind == 13 || kind == 14;
    if (creating && full(2)) kind = 12;  // out of slots: close something instead
    switch (kind) {
      case 0: {
        if (r_.chance(85)) {
          op.kind = OpKind::kEpollCreate1;
          static const int kFlags[] = {0, EPOLL_CLOEXEC, 1, EPOLL_CLOEXEC | O_NONBLOCK};
          op.iarg = kFlags[r_.below(4)];
        } else {
          op.kind = OpKind::kEpollCreate;
          static const int kSizes[] = {1, 10, 1000, 0, -1};
          op.iarg = kSizes[r_.below(5)];
        }
        op.new_slot = new_slots(1);
        break;
      }
      case 1: {
        op.kind = OpKind::kEventfd;
        static const std::uint64_t kInit[] = {0, 1, 2, 7, 0xffffffffULL, 0x12345678ULL};
        op.value = kInit[r_.below(6)];
        int flags = EFD_NONBLOCK;
        std::uint8_t f = r_.u8();
        if (f & 1) flags |= EFD_SEMAPHORE;
        if (f & 2) flags |= EFD_CLOEXEC;
        if ((f & 0x1c) == 0x1c) flags |= (f & 0x20) ? 2 : 0x10;  // invalid flags: EINVAL
        op.iarg = flags;
        op.new_slot = new_slots(1);
        break;
      }
      case 2: {
        op.kind = OpKind::kPipe2;
        int flags = O_NONBLOCK;
        std::uint8_t f = r_.u8();
        if (f & 1) flags |= O_CLOEXEC;
        if ((f & 0x1e) == 0x1e) flags |= O_WRONLY;  // EINVAL
        op.iarg = flags;
        op.new_slot = new_slots(2);
        break;
      }
      case 3: {
        op.kind = OpKind::kSocketpair;
        std::uint8_t f = r_.u8();
        op.iarg = (f & 0x7c) == 0x7c ? AF_INET : AF_UNIX;
        long type = SOCK_STREAM | SOCK_NONBLOCK;
        if (f & 1) type |= SOCK_CLOEXEC;
        if ((f & 0x82) == 0x82) type |= 0x100;
        op.larg = type;
        op.count = (r_.u8() & 0x3f) == 0x3f ? 1 : 0;
        op.new_slot = new_slots(2);
        break;
      }
      case 4:
      case 5: {
        op.kind = OpKind::kCtl;
        std::uint8_t c = r_.u8();
        op.iarg = c < 100   ? EPOLL_CTL_ADD
                  : c < 170 ? EPOLL_CTL_MOD
                  : c < 240 ? EPOLL_CTL_DEL
                            : (c & 1 ? 0 : 4);
        op.a = any();
        op.b = any();
        op.events = mask();
        op.data = (static_cast<std::uint64_t>(op.b.slot < 0 ? 0xffff : op.b.slot) << 32) | seq;
        op.null_ptr = r_.u8() >= 250;
        break;
      }
      case 6:
      case 7: {
        op.kind = OpKind::kWait;
        op.a = any();
        std::uint8_t c = r_.u8();
        static const int kOdd[] = {0, -1, INT_MAX, INT_MIN, 4096, 1 << 24};
        op.count = c < 220 ? 1 + c % 8 : kOdd[c % 6];
        std::uint8_t v = r_.u8();
        op.variant = v < 180   ? WaitVariant::kWait
                     : v < 220 ? WaitVariant::kPwait
                               : WaitVariant::kPwait2;
        op.null_ptr = r_.u8() >= 250;
        break;
      }
      case 8: {
        op.kind = OpKind::kPoll;
        int n = r_.below(5);
        for (int i = 0; i < n; ++i) {
          uepoll_diff::PollEntry e;
          e.ref = any();
          e.events = poll_events();
          op.pfds.push_back(e);
        }
        break;
      }
      case 9: {
        op.a = any();
        op.count = io_count();
        std::uint8_t v = r_.u8();
        if (v >= 200) {
          op.kind = OpKind::kRecv;
          op.larg = MSG_DONTWAIT | ((v & 1) ? MSG_PEEK : 0);
        } else {
          op.kind = OpKind::kRead;
        }
        break;
      }
      case 10: {
        op.a = any();
        op.count = io_count();
        static const std::uint64_t kValues[] = {0,
                                                1,
                                                2,
                                                3,
                                                99,
                                                0xfffffffffffffffeULL,
                                                0xfffffffffffffffdULL,
                                                0xffffffffffffffffULL,
                                                1ULL << 63,
                                                0xfffffffffffffff9ULL};
        op.value = kValues[r_.below(10)];
        std::uint8_t v = r_.u8();
        if (v >= 200) {
          op.kind = OpKind::kSend;
          op.larg = MSG_DONTWAIT | ((v & 1) ? MSG_NOSIGNAL : 0);
        } else {
          op.kind = OpKind::kWrite;
        }
        break;
      }
      case 11: {
        op.kind = OpKind::kShutdown;
        op.a = any();
        static const int kHow[] = {SHUT_RD, SHUT_WR, SHUT_RDWR, 3, -1};
        op.iarg = kHow[r_.below(5)];
        break;
      }
      case 13: {
        std::uint8_t d = r_.u8();
        op.a = any();
        op.new_slot = new_slots(1);
        if (d < 100) {
          op.kind = OpKind::kDup;
        } else {
          op.kind = d < 180 ? OpKind::kDup2 : OpKind::kDup3;
          op.b = (d & 7) == 0 ? op.a : slot_or_minus1();
          if (op.b.slot < 0) op.b = raw(-1);
          if (op.kind == OpKind::kDup3) {
            static const int kFlags[] = {0, O_CLOEXEC, O_NONBLOCK};
            op.iarg = kFlags[r_.below(3)];
          }
        }
        break;
      }
      case 14: {
        op.kind = OpKind::kFcntl;
        op.a = any();
        std::uint8_t c = r_.u8() % 6;
        if (c == 0) {
          op.iarg = F_GETFL;
        } else if (c == 1) {
          op.iarg = F_SETFL;
          op.larg = O_NONBLOCK;  // never clear it: reads and writes must not block
        } else if (c == 2) {
          op.iarg = F_GETFD;
        } else if (c == 3) {
          op.iarg = F_SETFD;
          op.larg = r_.chance(50) ? FD_CLOEXEC : 0;
        } else {
          op.iarg = c == 4 ? F_DUPFD : F_DUPFD_CLOEXEC;
          op.new_slot = new_slots(1);
          std::uint8_t g = r_.u8();
          if (g < 120) {
            op.larg = 0;
          } else if (g < 240 && next_slot_ > 1) {
            op.fcntl_arg_is_ref = true;
            op.b = slot(g % (next_slot_ - 1));
          } else {
            op.larg = -1;
          }
        }
        break;
      }
      default: {  // 12, 15
        op.kind = OpKind::kClose;
        op.a = any();
        break;
      }
    }
    return true;
  }

 private:
  Reader& r_;
  int next_slot_ = 0;
};

std::string fds_str(const std::vector<int>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? " " : "") + std::to_string(v[i]);
  return s + "]";
}

[[noreturn]] void report(const std::vector<Op>& ops, const std::vector<Outcome>& k,
                         const std::vector<Outcome>& u, const std::string& what) {
  std::fprintf(stderr, "\n=== uepoll capi_fuzz DIVERGENCE: %s\n", what.c_str());
  for (std::size_t i = 0; i < ops.size(); ++i) {
    std::fprintf(stderr, "#%zu %s\n    kernel: %s (raw %ld)\n    uepoll: %s (raw %ld)%s\n", i,
                 uepoll_diff::op_to_string(ops[i]).c_str(),
                 uepoll_diff::result_to_string(ops[i], k[i].res).c_str(), k[i].raw_ret,
                 uepoll_diff::result_to_string(ops[i], u[i].res).c_str(), u[i].raw_ret,
                 k[i].res == u[i].res ? "" : "\n    ^^^ DIVERGENCE");
  }
  std::fprintf(stderr, "--- as C (s<N> = slot N):\n");
  for (const Op& op : ops) std::fprintf(stderr, "  %s\n", uepoll_diff::op_to_c(op).c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool init = [] {
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, nullptr);  // writes to a closed pipe/socket must fail with EPIPE
    // uepoll may open kernel descriptors of its own on first use (its RCU, timers): let it do so
    // now, before the kernel executor records the numbers that are not the program's.
    const uepoll_test::Api& u = uepoll_test::uepoll_api();
    int ep = u.epoll_create1(0);
    int ev = u.eventfd(0, EFD_NONBLOCK);
    int p[2] = {-1, -1};
    int s[2] = {-1, -1};
    u.pipe2(p, O_NONBLOCK);
    u.socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s);
    epoll_event e{};
    e.events = EPOLLIN;
    u.epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e);
    u.epoll_wait(ep, &e, 1, 0);
    pollfd pf{ev, POLLIN, 0};
    u.poll(&pf, 1, 0);  // (uepoll's poll creates a per-thread kernel eventfd)
    u.poll(nullptr, 0, 0);
    for (int fd : {ep, ev, p[0], p[1], s[0], s[1]}) {
      if (fd >= 0) u.close(fd);
    }
    return true;
  }();
  (void)init;

  Reader reader(data, size);
  Decoder dec(reader);
  Executor kernel(uepoll_test::kernel_api());
  Executor uep(uepoll_test::uepoll_api());
  uep.begin();
  kernel.begin();

  std::vector<Op> ops;
  std::vector<Outcome> kout;
  std::vector<Outcome> uout;
  Op op;
  for (unsigned seq = 0; seq < static_cast<unsigned>(kMaxOps) && dec.next(op, seq); ++seq) {
    ops.push_back(op);
    kout.push_back(kernel.exec(op));
    uout.push_back(uep.exec(op));
    if (!(kout.back().res == uout.back().res)) {
      report(ops, kout, uout,
             "op #" + std::to_string(seq) + " (" + uepoll_diff::op_name(op.kind) + ")");
    }
  }
  static const bool verbose = std::getenv("UEPOLL_FUZZ_VERBOSE") != nullptr;
  if (verbose) {
    for (std::size_t i = 0; i < ops.size(); ++i) {
      std::fprintf(stderr, "#%zu %s -> %s\n", i, uepoll_diff::op_to_string(ops[i]).c_str(),
                   uepoll_diff::result_to_string(ops[i], kout[i].res).c_str());
    }
  }
  uepoll_diff::g_current_op = -1;
  kernel.close_all();
  uep.close_all();
  std::vector<int> kleft = kernel.leftovers(false);
  std::vector<int> uleft = uep.leftovers(true);
  if (!kleft.empty() || !uleft.empty()) {
    report(ops, kout, uout,
           "descriptors still open after closing everything: kernel " + fds_str(kleft) +
               ", uepoll " + fds_str(uleft));
  }
  return 0;
}
