// Executes program operations on one backend and normalizes the results.
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "program.hpp"

namespace uepoll_diff {
namespace {

// Numbers below this bound that are open when a program begins are "foreign" (stdio, a test
// runner's descriptors, a backend's own internal ones); program descriptors never reach it.
constexpr int kForeignScanBound = 256;
// Beyond the largest number a program used, how far a uepoll leak sweep looks.
constexpr int kSweepSlack = 16;

constexpr std::size_t kIoBufferSize = 128 * 1024;
constexpr int kEventBufferSize = 4096;

unsigned char g_read_buf[kIoBufferSize];
unsigned char g_write_buf[kIoBufferSize];
epoll_event g_events[kEventBufferSize];

std::uint64_t fnv1a(const unsigned char* p, std::size_t n) {
  std::uint64_t h = 1469598103934665603ULL;
  for (std::size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ULL;
  }
  return h;
}

// The bytes a write sends: the 8-byte value (repeated) for short writes, so eventfd writes carry
// the chosen counter increment, else a pattern that depends on the op.
void fill_write_buffer(const Op& op, std::size_t count) {
  if (count <= 16) {
    for (std::size_t i = 0; i < count; ++i) {
      g_write_buf[i] = static_cast<unsigned char>(op.value >> (8 * (i % 8)));
    }
    return;
  }
  for (std::size_t i = 0; i < count; ++i) {
    g_write_buf[i] = static_cast<unsigned char>(op.seq * 131u + i * 7u + (i >> 12));
  }
}

}  // namespace

Executor::Executor(const uepoll_test::Api& api) : api_(&api) {}

void Executor::begin() {
  fd_.clear();
  open_.clear();
  used_.clear();
  foreign_.clear();
  for (int n = 0; n < kForeignScanBound; ++n) {
    if (api_->fcntl(n, F_GETFD, 0) != -1) foreign_.push_back(n);
  }
  errno = 0;
}

void Executor::ensure_slot(int slot) {
  if (slot < 0) return;
  auto need = static_cast<std::size_t>(slot) + 1;
  if (fd_.size() < need) {
    fd_.resize(need, -1);
    open_.resize(need, false);
  }
}

bool Executor::slot_open(int slot) const {
  return slot >= 0 && static_cast<std::size_t>(slot) < open_.size() &&
         open_[static_cast<std::size_t>(slot)];
}

bool Executor::slot_had_fd(int slot) const {
  return slot >= 0 && static_cast<std::size_t>(slot) < fd_.size() &&
         fd_[static_cast<std::size_t>(slot)] >= 0;
}

int Executor::owner_of_number(int fd) const {
  if (fd < 0) return -1;
  for (std::size_t s = 0; s < fd_.size(); ++s) {
    if (open_[s] && fd_[s] == fd) return static_cast<int>(s);
  }
  return -1;
}

int Executor::resolve(const Ref& r) const {
  if (r.slot < 0) return r.raw;
  if (!slot_had_fd(r.slot)) return -1;
  return fd_[static_cast<std::size_t>(r.slot)];
}

int Executor::normalize_number(int fd) const {
  auto below = std::lower_bound(foreign_.begin(), foreign_.end(), fd) - foreign_.begin();
  return fd - static_cast<int>(below);
}

int Executor::rank_of(int fd) const {
  int rank = 0;
  for (std::size_t s = 0; s < fd_.size(); ++s) {
    if (open_[s] && fd_[s] < fd) ++rank;
  }
  return rank;
}

void Executor::record_new(Outcome& out, int slot, int fd) {
  int prev = owner_of_number(fd);
  if (prev >= 0) {
    // The backend handed out a number the program still holds: the table is corrupt.
    out.res.collision = true;
    open_[static_cast<std::size_t>(prev)] = false;
  }
  ensure_slot(slot);
  fd_[static_cast<std::size_t>(slot)] = fd;
  open_[static_cast<std::size_t>(slot)] = true;
  used_.push_back(fd);
  out.new_fds.push_back(fd);
}

void Executor::record_close(Outcome& out, int fd) {
  int owner = owner_of_number(fd);
  if (owner >= 0) {
    open_[static_cast<std::size_t>(owner)] = false;
    out.res.closed_slot = owner;
  }
}

Outcome Executor::exec(const Op& op) {
  g_current_op = static_cast<long>(op.seq);
  Outcome out;
  Result& r = out.res;
  const uepoll_test::Api& api = *api_;

  auto arg = [&](const Ref& ref) {
    int fd = resolve(ref);
    out.raw_fds.push_back(fd);
    r.owners.push_back(owner_of_number(fd));
    return fd;
  };
  auto fail = [&](long ret) {
    int e = errno;
    r.ret = ret;
    out.raw_ret = ret;
    if (ret < 0) r.err = e;
  };
  // A call that returns one new descriptor for `slot`.
  auto fd_result = [&](int fd, int slot) {
    int e = errno;
    out.raw_ret = fd;
    if (fd < 0) {
      r.ret = -1;
      r.err = e;
      return false;
    }
    r.ret = 0;
    record_new(out, slot, fd);
    return true;
  };
  auto finish_new = [&]() {
    for (int fd : out.new_fds) {
      r.ranks.push_back(rank_of(fd));
      r.nums.push_back(normalize_number(fd));
    }
  };
  // Guarded I/O: poll first, and skip the call unless the guard bit came back.
  auto guard_blocks = [&](int fd) {
    if (op.guard == 0) return false;
    pollfd g{fd, op.guard, 0};
    int pr = api.poll(&g, 1, 0);
    r.guard_revents = pr < 0 ? -2 : g.revents;
    if (pr <= 0 || (g.revents & op.guard) == 0) {
      r.skipped = true;
      return true;
    }
    return false;
  };

  errno = 0;
  switch (op.kind) {
    case OpKind::kEpollCreate1: fd_result(api.epoll_create1(op.iarg), op.new_slot); break;
    case OpKind::kEpollCreate: fd_result(api.epoll_create(op.iarg), op.new_slot); break;
    case OpKind::kEventfd:
      fd_result(api.eventfd(static_cast<unsigned>(op.value), op.iarg), op.new_slot);
      break;
    case OpKind::kPipe2: {
      int fds[2] = {-1, -1};
      int ret = api.pipe2(fds, op.iarg);
      fail(ret);
      if (ret == 0) {
        record_new(out, op.new_slot, fds[0]);
        record_new(out, op.new_slot + 1, fds[1]);
      }
      break;
    }
    case OpKind::kSocketpair: {
      int sv[2] = {-1, -1};
      int ret = api.socketpair(op.iarg, static_cast<int>(op.larg), op.count, sv);
      fail(ret);
      if (ret == 0) {
        record_new(out, op.new_slot, sv[0]);
        record_new(out, op.new_slot + 1, sv[1]);
      }
      break;
    }
    case OpKind::kCtl: {
      int epfd = arg(op.a);
      int fd = arg(op.b);
      epoll_event ev{};
      ev.events = op.events;
      ev.data.u64 = op.data;
      errno = 0;
      fail(api.epoll_ctl(epfd, op.iarg, fd, op.null_ptr ? nullptr : &ev));
      break;
    }
    case OpKind::kWait: {
      int epfd = arg(op.a);
      std::memset(g_events, 0xa5, sizeof(g_events));
      epoll_event* buf = op.null_ptr ? nullptr : g_events;
      int ret = -1;
      errno = 0;
      if (op.variant == WaitVariant::kWait) {
        ret = api.epoll_wait(epfd, buf, op.count, 0);
      } else if (op.variant == WaitVariant::kPwait) {
        ret = api.epoll_pwait(epfd, buf, op.count, 0, nullptr);
      } else {
        timespec ts{0, 0};
        ret = api.epoll_pwait2(epfd, buf, op.count, &ts, nullptr);
      }
      fail(ret);
      if (ret > 0 && buf != nullptr) {
        int n = std::min(ret, kEventBufferSize);
        for (int i = 0; i < n; ++i) {
          std::uint32_t ev = g_events[i].events;
          std::uint64_t data = g_events[i].data.u64;
          r.events.emplace_back(ev, data);
        }
      }
      break;
    }
    case OpKind::kPoll: {
      std::vector<pollfd> p;
      for (const PollEntry& e : op.pfds) p.push_back(pollfd{arg(e.ref), e.events, 0});
      errno = 0;
      int ret = api.poll(p.data(), static_cast<nfds_t>(p.size()), 0);
      fail(ret);
      if (ret >= 0) {
        for (const pollfd& q : p) r.revents.push_back(q.revents);
      }
      break;
    }
    case OpKind::kRead:
    case OpKind::kRecv: {
      int fd = arg(op.a);
      if (guard_blocks(fd)) break;
      auto count = static_cast<std::size_t>(op.count);
      std::memset(g_read_buf, 0, std::min(count, kIoBufferSize));
      errno = 0;
      ssize_t n = op.kind == OpKind::kRead
                      ? api.read(fd, g_read_buf, count)
                      : api.recv(fd, g_read_buf, count, static_cast<int>(op.larg));
      fail(n);
      if (n > 0) {
        auto got = std::min(static_cast<std::size_t>(n), kIoBufferSize);
        r.data_hash = fnv1a(g_read_buf, got);
        std::uint64_t v = 0;
        std::memcpy(&v, g_read_buf, std::min<std::size_t>(got, 8));
        r.value = v;
      }
      break;
    }
    case OpKind::kWrite:
    case OpKind::kSend: {
      int fd = arg(op.a);
      if (guard_blocks(fd)) break;
      auto count = std::min(static_cast<std::size_t>(op.count), kIoBufferSize);
      fill_write_buffer(op, count);
      errno = 0;
      ssize_t n = op.kind == OpKind::kWrite
                      ? api.write(fd, g_write_buf, count)
                      : api.send(fd, g_write_buf, count, static_cast<int>(op.larg));
      fail(n);
      break;
    }
    case OpKind::kShutdown: {
      int fd = arg(op.a);
      errno = 0;
      fail(api.shutdown(fd, op.iarg));
      break;
    }
    case OpKind::kClose: {
      int fd = arg(op.a);
      errno = 0;
      int ret = api.close(fd);
      fail(ret);
      if (ret == 0) record_close(out, fd);
      break;
    }
    case OpKind::kDup: {
      int fd = arg(op.a);
      errno = 0;
      fd_result(api.dup(fd), op.new_slot);
      break;
    }
    case OpKind::kDup2:
    case OpKind::kDup3: {
      int oldfd = arg(op.a);
      int newfd = arg(op.b);
      errno = 0;
      int ret = op.kind == OpKind::kDup2 ? api.dup2(oldfd, newfd) : api.dup3(oldfd, newfd, op.iarg);
      int e = errno;
      out.raw_ret = ret;
      if (ret < 0) {
        r.ret = -1;
        r.err = e;
        break;
      }
      r.ret = 0;
      r.dup_target_ok = ret == newfd;
      if (oldfd != ret) {
        record_close(out, ret);
        record_new(out, op.new_slot, ret);
      }
      break;
    }
    case OpKind::kFcntl: {
      int fd = arg(op.a);
      long farg = op.larg;
      if (op.fcntl_arg_is_ref) farg = arg(op.b);
      errno = 0;
      int ret = api.fcntl(fd, op.iarg, farg);
      if (op.iarg == F_DUPFD || op.iarg == F_DUPFD_CLOEXEC) {
        fd_result(ret, op.new_slot);
      } else {
        fail(ret);
      }
      break;
    }
  }
  finish_new();
  return out;
}

void Executor::close_all() {
  for (std::size_t s = 0; s < fd_.size(); ++s) {
    if (open_[s]) {
      api_->close(fd_[s]);
      open_[s] = false;
    }
  }
}

std::vector<int> Executor::leftovers(bool sweep_all) {
  std::vector<int> candidates = used_;
  if (sweep_all) {
    int top = kSweepSlack;
    for (int fd : used_) top = std::max(top, fd + kSweepSlack);
    for (int n = 0; n <= top; ++n) {
      if (!std::binary_search(foreign_.begin(), foreign_.end(), n)) candidates.push_back(n);
    }
  }
  std::sort(candidates.begin(), candidates.end());
  candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
  std::vector<int> left;
  for (int n : candidates) {
    if (n < 0) continue;
    if (api_->fcntl(n, F_GETFD, 0) != -1) {
      left.push_back(normalize_number(n));
      api_->close(n);
    }
  }
  errno = 0;
  return left;
}

}  // namespace uepoll_diff
