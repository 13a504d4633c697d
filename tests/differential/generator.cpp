// Generates a random program, op by op, running each op on the kernel as it is chosen: the kernel's
// results keep a small model of the objects (kind, blocking mode, peers) so that later ops are
// meaningful and never block. The model only steers choices; nothing is compared here.
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "program.hpp"

namespace uepoll_diff {
namespace {

enum class ObjKind { kEpoll, kEventfd, kPipeR, kPipeW, kSock };

struct Obj {
  ObjKind kind = ObjKind::kEpoll;
  bool nonblock = false;
  int refs = 0;
  int peer = -1;      // pipe/socket: the other end's object
  bool shut = false;  // socket: a shutdown() succeeded on it
  bool big = false;   // eventfd: a huge value was written, so a blocking write might block
};

constexpr int kMaxOpenSlots = 48;
constexpr std::uint64_t kEfdMax = 0xfffffffffffffffeULL;  // the largest eventfd counter

class Gen {
 public:
  Gen(std::uint64_t seed, int nops, const std::set<std::string>& exclude, Executor& k)
      : rng_(seed), nops_(nops), exclude_(exclude), k_(k) {}

  Generated run() {
    while (static_cast<int>(out_.ops.size()) < nops_) step();
    return std::move(out_);
  }

 private:
  // --- randomness -------------------------------------------------------------------------
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : rng_() % n; }
  int range(int lo, int hi) {
    return lo + static_cast<int>(below(static_cast<std::uint64_t>(hi - lo + 1)));
  }
  bool chance(int percent) { return below(100) < static_cast<std::uint64_t>(percent); }
  // Sizes spread over orders of magnitude: 1..max, log-uniform-ish.
  int log_size(int max) {
    int bits = 0;
    while ((1 << bits) < max) ++bits;
    int b = range(0, bits);
    int hi = std::min(max, 1 << b);
    int lo = std::max(1, hi / 2);
    return range(lo, hi);
  }

  bool norm_bits() const { return exclude_.count("normbits") == 0; }
  bool zero_writes() const { return exclude_.count("zerowrite") == 0; }

  // --- model --------------------------------------------------------------------------------
  bool done() const { return static_cast<int>(out_.ops.size()) >= nops_; }

  int obj_of_slot(int slot) const {
    if (slot < 0 || static_cast<std::size_t>(slot) >= slot_obj_.size()) return -1;
    return slot_obj_[static_cast<std::size_t>(slot)];
  }
  // The object a reference designates on the kernel right now (-1: none).
  int obj_of_ref(const Ref& r) const {
    int owner = k_.owner_of_number(k_.resolve(r));
    return owner < 0 ? -1 : obj_of_slot(owner);
  }
  const Obj* obj(int id) const { return id < 0 ? nullptr : &objs_[static_cast<std::size_t>(id)]; }

  template <class Pred>
  std::vector<int> open_slots(Pred pred) const {
    std::vector<int> v;
    for (int s = 0; s < k_.slot_count(); ++s) {
      if (!k_.slot_open(s)) continue;
      int o = obj_of_slot(s);
      if (o >= 0 && pred(objs_[static_cast<std::size_t>(o)])) v.push_back(s);
    }
    return v;
  }
  std::vector<int> open_slots() const {
    return open_slots([](const Obj&) { return true; });
  }
  std::vector<int> closed_slots() const {
    std::vector<int> v;
    for (int s = 0; s < k_.slot_count(); ++s) {
      if (k_.slot_had_fd(s) && !k_.slot_open(s)) v.push_back(s);
    }
    return v;
  }
  int pick(const std::vector<int>& v) {
    return v.empty() ? -1 : v[static_cast<std::size_t>(below(v.size()))];
  }

  static Ref slot_ref(int s) {
    Ref r;
    r.slot = s;
    return r;
  }
  static Ref raw_ref(int v) {
    Ref r;
    r.raw = v;
    return r;
  }
  Ref bad_ref() { return raw_ref(chance(60) ? -1 : (chance(50) ? (1 << 20) : INT_MAX)); }

  // A descriptor argument: mostly an open slot matching `pred`, sometimes any open slot, a closed
  // slot (its old number, possibly reused since) or a bad number.
  template <class Pred>
  Ref choose_ref(Pred pred, int p_match, int p_any, int p_closed) {
    int roll = range(0, 99);
    if (roll < p_match) {
      int s = pick(open_slots(pred));
      if (s >= 0) return slot_ref(s);
      roll = p_match;  // fall through to "any"
    }
    if (roll < p_match + p_any) {
      int s = pick(open_slots());
      if (s >= 0) return slot_ref(s);
    }
    if (roll < p_match + p_any + p_closed) {
      int s = pick(closed_slots());
      if (s >= 0) return slot_ref(s);
    }
    return bad_ref();
  }
  Ref any_ref() {
    return choose_ref([](const Obj&) { return true; }, 85, 0, 10);
  }
  static bool is_epoll(const Obj& o) { return o.kind == ObjKind::kEpoll; }

  int new_slots(int n) {
    int first = static_cast<int>(slot_obj_.size());
    for (int i = 0; i < n; ++i) slot_obj_.push_back(-1);
    return first;
  }
  int new_obj(ObjKind kind, bool nonblock) {
    Obj o;
    o.kind = kind;
    o.nonblock = nonblock;
    objs_.push_back(o);
    return static_cast<int>(objs_.size()) - 1;
  }
  void set_slot(int slot, int o) {
    slot_obj_[static_cast<std::size_t>(slot)] = o;
    if (o >= 0) ++objs_[static_cast<std::size_t>(o)].refs;
  }
  void unref_slot(int slot) {
    int o = obj_of_slot(slot);
    if (o >= 0) --objs_[static_cast<std::size_t>(o)].refs;
  }

  // Runs `op` on the kernel, records it and updates the model from the result.
  const Outcome& emit(Op op) {
    op.seq = static_cast<unsigned>(out_.ops.size());
    Outcome o = k_.exec(op);
    const Result& r = o.res;
    switch (op.kind) {
      case OpKind::kEpollCreate1:
      case OpKind::kEpollCreate:
        if (!o.new_fds.empty()) set_slot(op.new_slot, new_obj(ObjKind::kEpoll, false));
        break;
      case OpKind::kEventfd:
        if (!o.new_fds.empty())
          set_slot(op.new_slot, new_obj(ObjKind::kEventfd, (op.iarg & EFD_NONBLOCK) != 0));
        break;
      case OpKind::kPipe2:
        if (o.new_fds.size() == 2) {
          bool nb = (op.iarg & O_NONBLOCK) != 0;
          int rd = new_obj(ObjKind::kPipeR, nb);
          int w = new_obj(ObjKind::kPipeW, nb);
          objs_[static_cast<std::size_t>(rd)].peer = w;
          objs_[static_cast<std::size_t>(w)].peer = rd;
          set_slot(op.new_slot, rd);
          set_slot(op.new_slot + 1, w);
        }
        break;
      case OpKind::kSocketpair:
        if (o.new_fds.size() == 2) {
          bool nb = (op.larg & SOCK_NONBLOCK) != 0;
          int a = new_obj(ObjKind::kSock, nb);
          int b = new_obj(ObjKind::kSock, nb);
          objs_[static_cast<std::size_t>(a)].peer = b;
          objs_[static_cast<std::size_t>(b)].peer = a;
          set_slot(op.new_slot, a);
          set_slot(op.new_slot + 1, b);
        }
        break;
      case OpKind::kDup:
      case OpKind::kDup2:
      case OpKind::kDup3:
      case OpKind::kFcntl: {
        int src = r.owners.empty() ? -1 : obj_of_slot(r.owners[0]);
        if (r.closed_slot >= 0) unref_slot(r.closed_slot);
        if (!o.new_fds.empty()) set_slot(op.new_slot, src);
        if (op.kind == OpKind::kFcntl && op.iarg == F_SETFL && r.ret == 0 && src >= 0) {
          objs_[static_cast<std::size_t>(src)].nonblock = (op.larg & O_NONBLOCK) != 0;
        }
        break;
      }
      case OpKind::kClose:
        if (r.closed_slot >= 0) unref_slot(r.closed_slot);
        break;
      case OpKind::kShutdown: {
        int src = r.owners.empty() ? -1 : obj_of_slot(r.owners[0]);
        if (src >= 0 && r.ret == 0) {
          objs_[static_cast<std::size_t>(src)].shut = true;
          int peer = objs_[static_cast<std::size_t>(src)].peer;
          if (peer >= 0) objs_[static_cast<std::size_t>(peer)].shut = true;
        }
        break;
      }
      case OpKind::kWrite:
      case OpKind::kSend: {
        int src = r.owners.empty() ? -1 : obj_of_slot(r.owners[0]);
        if (src >= 0 && r.ret > 0 && op.value > 0xffffffffULL)
          objs_[static_cast<std::size_t>(src)].big = true;
        break;
      }
      case OpKind::kCtl: {
        if (r.ret != 0) break;
        int ep = obj_of_slot(r.owners[0]);
        int target = r.owners[1];
        if (op.iarg == EPOLL_CTL_ADD) {
          regs_.emplace_back(ep, target);
        } else if (op.iarg == EPOLL_CTL_DEL) {
          auto it = std::find(regs_.begin(), regs_.end(), std::make_pair(ep, target));
          if (it != regs_.end()) regs_.erase(it);
        }
        break;
      }
      default: break;
    }
    out_.ops.push_back(op);
    out_.kernel.push_back(std::move(o));
    return out_.kernel.back();
  }

  // --- op generators ------------------------------------------------------------------------
  void gen_epoll_create() {
    Op op;
    if (chance(85)) {
      op.kind = OpKind::kEpollCreate1;
      int roll = range(0, 99);
      op.iarg = roll < 45   ? 0
                : roll < 92 ? EPOLL_CLOEXEC
                            : (chance(50) ? 1 : EPOLL_CLOEXEC | O_NONBLOCK);
    } else {
      op.kind = OpKind::kEpollCreate;
      static const int sizes[] = {1, 1, 10, 1000, 0, -1};
      op.iarg = sizes[below(6)];
    }
    op.new_slot = new_slots(1);
    emit(op);
  }

  void gen_eventfd() {
    Op op;
    op.kind = OpKind::kEventfd;
    int roll = range(0, 99);
    op.value = roll < 45   ? 0
               : roll < 85 ? static_cast<std::uint64_t>(range(1, 10))
                           : (chance(50) ? 0xffffffffULL : below(0x100000000ULL));
    int flags = 0;
    if (chance(75)) flags |= EFD_NONBLOCK;
    if (chance(30)) flags |= EFD_SEMAPHORE;
    if (chance(20)) flags |= EFD_CLOEXEC;
    if (chance(4)) flags |= (chance(50) ? 2 : 0x10);
    op.iarg = flags;
    op.new_slot = new_slots(1);
    emit(op);
  }

  void gen_pipe() {
    Op op;
    op.kind = OpKind::kPipe2;
    int flags = 0;
    if (chance(75)) flags |= O_NONBLOCK;
    if (chance(20)) flags |= O_CLOEXEC;
    if (chance(4)) flags |= O_WRONLY;
    op.iarg = flags;
    op.new_slot = new_slots(2);
    emit(op);
  }

  void gen_socketpair() {
    Op op;
    op.kind = OpKind::kSocketpair;
    op.iarg = chance(97) ? AF_UNIX : AF_INET;
    long type = SOCK_STREAM;
    if (chance(75)) type |= SOCK_NONBLOCK;
    if (chance(20)) type |= SOCK_CLOEXEC;
    if (chance(3)) type |= 0x100;
    op.larg = type;
    op.count = chance(98) ? 0 : 1;
    op.new_slot = new_slots(2);
    emit(op);
  }

  std::uint32_t random_mask() {
    if (chance(5)) return 0;
    std::uint32_t m = 0;
    if (chance(60)) m |= EPOLLIN;
    if (chance(40)) m |= EPOLLOUT;
    if (chance(10)) m |= EPOLLPRI;
    if (chance(25)) m |= EPOLLRDHUP;
    if (chance(30)) m |= EPOLLET;
    if (chance(20)) m |= EPOLLONESHOT;
    if (chance(8)) m |= EPOLLEXCLUSIVE;
    if (chance(10)) m |= EPOLLERR;
    if (chance(10)) m |= EPOLLHUP;
    if (norm_bits() && chance(3)) m |= EPOLLRDNORM;
    if (norm_bits() && chance(3)) m |= EPOLLWRNORM;
    return m;
  }

  Ref epoll_ref() { return choose_ref(is_epoll, 85, 7, 4); }

  void ctl(const Ref& ep, int ctl_op, const Ref& target, std::uint32_t mask) {
    Op op;
    op.kind = OpKind::kCtl;
    op.a = ep;
    op.b = target;
    op.iarg = ctl_op;
    op.events = mask;
    op.data = (static_cast<std::uint64_t>(target.slot < 0 ? 0xffff : target.slot) << 32) |
              static_cast<std::uint64_t>(out_.ops.size());
    op.null_ptr = chance(2);
    emit(op);
  }

  void gen_ctl() {
    int roll = range(0, 99);
    int ctl_op = roll < 50   ? EPOLL_CTL_ADD
                 : roll < 75 ? EPOLL_CTL_MOD
                 : roll < 93 ? EPOLL_CTL_DEL
                             : (chance(50) ? 0 : 4);
    Ref ep;
    Ref target;
    if (ctl_op != EPOLL_CTL_ADD && !regs_.empty() && chance(70)) {
      // A registration that exists (if its slot and instance are still around).
      auto [ep_obj, slot] = regs_[static_cast<std::size_t>(below(regs_.size()))];
      std::vector<int> eps = open_slots([](const Obj&) { return true; });
      std::vector<int> match;
      for (int s : eps) {
        if (obj_of_slot(s) == ep_obj) match.push_back(s);
      }
      ep = match.empty() ? epoll_ref() : slot_ref(pick(match));
      target = slot_ref(slot);
    } else {
      ep = epoll_ref();
      if (chance(18)) {
        target = choose_ref(is_epoll, 90, 0, 5);
      } else if (exclude_.count("pipewatch") != 0) {
        target = choose_ref(
            [](const Obj& o) {
              return o.kind != ObjKind::kEpoll && o.kind != ObjKind::kPipeR &&
                     o.kind != ObjKind::kPipeW;
            },
            85, 0, 5);
      } else {
        target = choose_ref([](const Obj& o) { return o.kind != ObjKind::kEpoll; }, 85, 5, 5);
      }
    }
    ctl(ep, ctl_op, target, random_mask());
  }

  // An open instance that has registrations (per the model), else any reference for an epfd.
  Ref busy_epoll_ref() {
    if (!regs_.empty() && chance(65)) {
      int ep_obj = regs_[static_cast<std::size_t>(below(regs_.size()))].first;
      std::vector<int> match = open_slots([](const Obj&) { return true; });
      std::erase_if(match, [&](int s) { return obj_of_slot(s) != ep_obj; });
      if (!match.empty()) return slot_ref(pick(match));
    }
    return epoll_ref();
  }

  void gen_wait() {
    Op op;
    op.kind = OpKind::kWait;
    op.a = busy_epoll_ref();
    int roll = range(0, 99);
    op.count = roll < 94 ? range(1, 8) : roll < 97 ? 0 : (chance(50) ? -1 : INT_MAX);
    roll = range(0, 99);
    op.variant = roll < 70   ? WaitVariant::kWait
                 : roll < 85 ? WaitVariant::kPwait
                             : WaitVariant::kPwait2;
    op.null_ptr = chance(2);
    emit(op);
  }

  short random_poll_events() {
    if (chance(5)) return 0;
    int m = 0;
    if (chance(60)) m |= POLLIN;
    if (chance(50)) m |= POLLOUT;
    if (chance(10)) m |= POLLPRI;
    if (chance(20)) m |= POLLRDHUP;
    if (chance(5)) m |= POLLERR;
    if (chance(5)) m |= POLLHUP;
    if (norm_bits() && chance(6)) m |= POLLRDNORM;
    if (norm_bits() && chance(6)) m |= POLLWRNORM;
    if (norm_bits() && chance(3)) m |= POLLRDBAND;
    if (norm_bits() && chance(3)) m |= POLLWRBAND;
    return static_cast<short>(m);
  }

  void gen_poll() {
    Op op;
    op.kind = OpKind::kPoll;
    int n = chance(5) ? 0 : range(1, 6);
    for (int i = 0; i < n; ++i) {
      PollEntry e;
      int roll = range(0, 99);
      if (roll < 25) {
        e.ref = choose_ref(is_epoll, 100, 0, 0);
      } else if (roll < 90) {
        e.ref = choose_ref([](const Obj&) { return true; }, 100, 0, 0);
      } else if (roll < 95) {
        e.ref = choose_ref([](const Obj&) { return false; }, 0, 0, 100);
      } else {
        e.ref = bad_ref();
      }
      e.events = random_poll_events();
      op.pfds.push_back(e);
    }
    emit(op);
  }

  static bool readable_kind(const Obj& o) {
    return o.kind == ObjKind::kEventfd || o.kind == ObjKind::kPipeR || o.kind == ObjKind::kSock;
  }
  static bool writable_kind(const Obj& o) {
    return o.kind == ObjKind::kEventfd || o.kind == ObjKind::kPipeW || o.kind == ObjKind::kSock;
  }

  void gen_read() {
    Op op;
    op.kind = OpKind::kRead;
    op.a = choose_ref(readable_kind, 75, 17, 5);
    const Obj* o = obj(obj_of_ref(op.a));
    op.count = range(1, 64);
    if (o == nullptr) {
      if (chance(20)) op.kind = OpKind::kRecv;
    } else if (o->kind == ObjKind::kEventfd) {
      static const int odd[] = {0, 4, 7, 9, 16, 100};
      op.count = chance(85) ? 8 : odd[below(6)];
      if (!o->nonblock) op.guard = POLLIN;
    } else if (o->kind == ObjKind::kPipeR) {
      op.count = chance(10) ? 0 : log_size(70000);
      if (!o->nonblock) op.guard = POLLIN;
      if (chance(4)) {
        op.kind = OpKind::kRecv;  // ENOTSOCK
        op.larg = MSG_DONTWAIT;
        op.guard = 0;
      }
    } else if (o->kind == ObjKind::kSock) {
      op.count = chance(85) ? log_size(4096) : log_size(70000);
      if (!o->nonblock || chance(50)) {
        op.kind = OpKind::kRecv;
        op.larg = (!o->nonblock || chance(50)) ? MSG_DONTWAIT : 0;
        if (chance(15)) op.larg |= MSG_PEEK;
      }
    }
    emit(op);
  }

  void gen_write() {
    Op op;
    op.kind = OpKind::kWrite;
    op.a = choose_ref(writable_kind, 75, 17, 5);
    const Obj* o = obj(obj_of_ref(op.a));
    op.count = range(1, 64);
    op.value = below(1000);
    if (o == nullptr) {
      if (chance(20)) {
        op.kind = OpKind::kSend;
        op.larg = MSG_DONTWAIT | MSG_NOSIGNAL;
      }
    } else if (o->kind == ObjKind::kEventfd) {
      static const int odd[] = {0, 4, 7, 9, 16};
      op.count = chance(90) ? 8 : odd[zero_writes() ? below(5) : 1 + below(4)];
      int roll = range(0, 99);
      static const std::uint64_t bigs[] = {kEfdMax, kEfdMax - 1, kEfdMax + 1, 1ULL << 63,
                                           kEfdMax - 5};
      op.value = roll < 15   ? 0
                 : roll < 88 ? static_cast<std::uint64_t>(range(1, 100))
                             : bigs[below(5)];
      if (!o->nonblock) {
        if (op.value > 0xffffffffULL && op.value != kEfdMax + 1) op.value = 3;
        if (o->big) op.count = 4;  // the counter may be near its maximum: only an EINVAL write
        op.guard = POLLOUT;
      }
    } else if (o->kind == ObjKind::kPipeW) {
      op.count = zero_writes() && chance(5) ? 0 : log_size(70000);
      op.value = rng_();
      if (!o->nonblock) {
        op.count = std::min(op.count, 4096);
        op.guard = POLLOUT;
      }
    } else if (o->kind == ObjKind::kSock) {
      int roll = range(0, 99);
      op.count = roll < 80 ? log_size(512) : roll < 95 ? log_size(8192) : log_size(70000);
      op.value = rng_();
      if (!o->nonblock || chance(50)) {
        op.kind = OpKind::kSend;
        op.larg = MSG_DONTWAIT;
        if (chance(50)) op.larg |= MSG_NOSIGNAL;
        if (o->nonblock && chance(30)) op.larg = chance(50) ? 0 : MSG_NOSIGNAL;
      }
    }
    emit(op);
  }

  // Many small writes in a row to one non-blocking object (to reach a pipe's capacity or a
  // socket's buffer-count limit), with an epoll_wait now and then.
  void gen_burst() {
    int s = pick(open_slots([&](const Obj& o) {
      if (!o.nonblock || !writable_kind(o)) return false;
      if (o.kind == ObjKind::kEventfd) return true;
      return !o.shut && o.peer >= 0 && objs_[static_cast<std::size_t>(o.peer)].refs > 0;
    }));
    if (s < 0) {
      gen_write();
      return;
    }
    ObjKind kind = objs_[static_cast<std::size_t>(obj_of_slot(s))].kind;
    bool big_writes =
        chance(50);  // sockets: large writes reach the byte limit, small ones the count
    int n = kind == ObjKind::kSock    ? (big_writes ? range(10, 40) : range(20, 90))
            : kind == ObjKind::kPipeW ? range(4, 24)
                                      : range(2, 6);
    for (int i = 0; i < n && !done(); ++i) {
      Op op;
      op.kind = OpKind::kWrite;
      op.a = slot_ref(s);
      op.value = rng_();
      if (kind == ObjKind::kSock) {
        op.count = big_writes ? range(1024, 16384) : log_size(64);
        if (chance(50)) {
          op.kind = OpKind::kSend;
          op.larg = MSG_DONTWAIT;
        }
      } else if (kind == ObjKind::kPipeW) {
        op.count = chance(50) ? 4096 : log_size(16384);
      } else {
        op.count = 8;
        op.value = chance(50) ? 0 : below(100);
      }
      emit(op);
      if (chance(12) && !done()) gen_wait();
    }
  }

  void gen_shutdown() {
    Op op;
    op.kind = OpKind::kShutdown;
    op.a = choose_ref([](const Obj& o) { return o.kind == ObjKind::kSock; }, 80, 15, 3);
    op.iarg = chance(92) ? range(SHUT_RD, SHUT_RDWR) : (chance(50) ? 3 : -1);
    emit(op);
  }

  void gen_close() {
    Op op;
    op.kind = OpKind::kClose;
    op.a = choose_ref([](const Obj&) { return true; }, 88, 0, 8);
    emit(op);
  }

  void gen_dup() {
    int roll = range(0, 99);
    Op op;
    op.new_slot = new_slots(1);
    op.a = any_ref();
    if (roll < 45) {
      op.kind = OpKind::kDup;
    } else {
      op.kind = roll < 80 ? OpKind::kDup2 : OpKind::kDup3;
      // newfd: only numbers the program owns or once owned (never a foreign descriptor).
      int r2 = range(0, 99);
      if (r2 < 10 && op.a.slot >= 0) {
        op.b = op.a;
      } else if (r2 < 60) {
        op.b = choose_ref([](const Obj&) { return true; }, 100, 0, 0);
      } else if (r2 < 92) {
        op.b = choose_ref([](const Obj&) { return false; }, 0, 0, 100);
      } else {
        op.b = raw_ref(-1);
      }
      if (op.b.slot < 0) op.b = raw_ref(-1);
      if (op.kind == OpKind::kDup3) {
        int r3 = range(0, 99);
        op.iarg = r3 < 45 ? 0 : r3 < 90 ? O_CLOEXEC : O_NONBLOCK;
      }
    }
    emit(op);
  }

  void gen_fcntl() {
    Op op;
    op.kind = OpKind::kFcntl;
    op.a = any_ref();
    int roll = range(0, 99);
    if (roll < 30) {
      op.iarg = F_GETFL;
    } else if (roll < 55) {
      op.iarg = F_SETFL;
      op.larg = chance(60) ? O_NONBLOCK : 0;
    } else if (roll < 70) {
      op.iarg = F_GETFD;
    } else if (roll < 80) {
      op.iarg = F_SETFD;
      op.larg = chance(50) ? FD_CLOEXEC : 0;
    } else {
      op.iarg = chance(50) ? F_DUPFD : F_DUPFD_CLOEXEC;
      op.new_slot = new_slots(1);
      int r2 = range(0, 99);
      if (r2 < 50) {
        op.larg = 0;
      } else if (r2 < 90) {
        op.fcntl_arg_is_ref = true;
        op.b = choose_ref([](const Obj&) { return true; }, 70, 0, 30);
        if (op.b.slot < 0) {
          op.fcntl_arg_is_ref = false;
          op.larg = 0;
        }
      } else {
        op.larg = -1;
      }
    }
    emit(op);
  }

  // A chain of instances, each watching the previous one, then a few links that the nesting
  // rules refuse (or accept): a sixth level, a cycle, an object at the bottom.
  void gen_chain() {
    int n = range(3, 7);
    std::vector<int> chain;
    for (int i = 0; i < n && !done(); ++i) {
      Op op;
      op.kind = OpKind::kEpollCreate1;
      op.new_slot = new_slots(1);
      emit(op);
      if (k_.slot_open(op.new_slot)) chain.push_back(op.new_slot);
    }
    for (std::size_t i = 1; i < chain.size() && !done(); ++i) {
      std::uint32_t mask = EPOLLIN;
      if (chance(30)) mask |= EPOLLET;
      if (chance(10)) mask |= EPOLLOUT;
      ctl(slot_ref(chain[i]), EPOLL_CTL_ADD, slot_ref(chain[i - 1]), mask);
    }
    if (chain.size() < 2) return;
    if (chance(50) && !done()) {
      ctl(slot_ref(chain.front()), EPOLL_CTL_ADD, slot_ref(chain.back()), EPOLLIN);  // a cycle
    }
    if (chance(60) && !done()) {
      int leaf = pick(open_slots([&](const Obj& o) {
        return o.kind != ObjKind::kEpoll &&
               (exclude_.count("pipewatch") == 0 ||
                (o.kind != ObjKind::kPipeR && o.kind != ObjKind::kPipeW));
      }));
      if (leaf >= 0)
        ctl(slot_ref(chain.front()), EPOLL_CTL_ADD, slot_ref(leaf), EPOLLIN | EPOLLOUT);
    }
    if (chance(40) && !done()) {
      int other = pick(open_slots(is_epoll));
      if (other >= 0) {
        if (chance(50)) {
          ctl(slot_ref(other), EPOLL_CTL_ADD, slot_ref(chain.back()), EPOLLIN);
        } else {
          ctl(slot_ref(chain.front()), EPOLL_CTL_ADD, slot_ref(other), EPOLLIN);
        }
      }
    }
  }

  void step() {
    int nopen = static_cast<int>(open_slots().size());
    bool have_epoll = !open_slots(is_epoll).empty();
    bool can_create = nopen < kMaxOpenSlots;
    int w_create = can_create ? (nopen < 6 ? 12 : 4) : 0;
    struct Choice {
      const char* name;  // for --exclude
      int weight;
      void (Gen::*fn)();
    };
    const Choice choices[] = {
        {"epoll_create", can_create ? (have_epoll ? 5 : 30) : 0, &Gen::gen_epoll_create},
        {"eventfd", w_create + 1, &Gen::gen_eventfd},
        {"pipe2", w_create, &Gen::gen_pipe},
        {"socketpair", w_create, &Gen::gen_socketpair},
        {"epoll_ctl", 25, &Gen::gen_ctl},
        {"epoll_wait", 18, &Gen::gen_wait},
        {"poll", 6, &Gen::gen_poll},
        {"read", 12, &Gen::gen_read},
        {"write", 14, &Gen::gen_write},
        {"shutdown", 2, &Gen::gen_shutdown},
        {"close", nopen > 32 ? 30 : 6, &Gen::gen_close},
        {"dup", can_create ? 6 : 2, &Gen::gen_dup},
        {"fcntl", 5, &Gen::gen_fcntl},
        {"chain", can_create ? 1 : 0, &Gen::gen_chain},
        {"burst", 1, &Gen::gen_burst},
    };
    auto weight = [&](const Choice& c) { return exclude_.count(c.name) != 0 ? 0 : c.weight; };
    int total = 0;
    for (const Choice& c : choices) total += weight(c);
    if (total == 0) {
      gen_close();
      return;
    }
    int roll = range(0, total - 1);
    for (const Choice& c : choices) {
      if (roll < weight(c)) {
        (this->*c.fn)();
        return;
      }
      roll -= weight(c);
    }
  }

  std::mt19937_64 rng_;
  int nops_;
  const std::set<std::string>& exclude_;
  Executor& k_;
  Generated out_;
  std::vector<int> slot_obj_;  // per slot: its object, -1 when its creation failed
  std::vector<Obj> objs_;
  std::vector<std::pair<int, int>> regs_;  // (instance object, target slot) added successfully
};

}  // namespace

Generated generate(std::uint64_t seed, int nops, const std::set<std::string>& exclude,
                   Executor& kernel) {
  Gen g(seed, nops, exclude, kernel);
  return g.run();
}

}  // namespace uepoll_diff
