// Text forms of ops and results, for divergence reports and --verbose.
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>

#include "program.hpp"

namespace uepoll_diff {
namespace {

struct Bit {
  std::uint32_t bit;
  const char* name;
};

std::string bits_to_string(std::uint32_t v, const Bit* bits, std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    if ((v & bits[i].bit) != 0) {
      if (!s.empty()) s += '|';
      s += bits[i].name;
      v &= ~bits[i].bit;
    }
  }
  if (v != 0) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s0x%x", s.empty() ? "" : "|", v);
    s += buf;
  }
  return s.empty() ? "0" : s;
}

std::string hex(std::uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

std::string ref_str(const Ref& r) {
  if (r.slot >= 0) return "s" + std::to_string(r.slot);
  return std::to_string(r.raw);
}

std::string flags_str(int flags, const Bit* bits, std::size_t n) {
  return bits_to_string(static_cast<std::uint32_t>(flags), bits, n);
}

const Bit kOpenFlags[] = {{O_NONBLOCK, "O_NONBLOCK"}, {O_CLOEXEC, "O_CLOEXEC"},
                          {O_WRONLY, "O_WRONLY"},     {O_RDWR, "O_RDWR"},
                          {O_APPEND, "O_APPEND"},     {O_DIRECT, "O_DIRECT"}};
const Bit kEfdFlags[] = {
    {EFD_NONBLOCK, "EFD_NONBLOCK"}, {EFD_CLOEXEC, "EFD_CLOEXEC"}, {EFD_SEMAPHORE, "EFD_SEMAPHORE"}};
const Bit kSockType[] = {{SOCK_NONBLOCK, "SOCK_NONBLOCK"}, {SOCK_CLOEXEC, "SOCK_CLOEXEC"}};
const Bit kMsgFlags[] = {
    {MSG_DONTWAIT, "MSG_DONTWAIT"}, {MSG_NOSIGNAL, "MSG_NOSIGNAL"}, {MSG_PEEK, "MSG_PEEK"}};

std::string ctl_op_str(int op) {
  switch (op) {
    case EPOLL_CTL_ADD: return "EPOLL_CTL_ADD";
    case EPOLL_CTL_MOD: return "EPOLL_CTL_MOD";
    case EPOLL_CTL_DEL: return "EPOLL_CTL_DEL";
    default: return std::to_string(op);
  }
}

std::string fcntl_cmd_str(int cmd) {
  switch (cmd) {
    case F_GETFL: return "F_GETFL";
    case F_SETFL: return "F_SETFL";
    case F_GETFD: return "F_GETFD";
    case F_SETFD: return "F_SETFD";
    case F_DUPFD: return "F_DUPFD";
    case F_DUPFD_CLOEXEC: return "F_DUPFD_CLOEXEC";
    default: return std::to_string(cmd);
  }
}

std::string shut_str(int how) {
  switch (how) {
    case SHUT_RD: return "SHUT_RD";
    case SHUT_WR: return "SHUT_WR";
    case SHUT_RDWR: return "SHUT_RDWR";
    default: return std::to_string(how);
  }
}

std::string domain_str(int d) {
  return d == AF_UNIX ? "AF_UNIX" : d == AF_INET ? "AF_INET" : std::to_string(d);
}

std::string sock_type_str(long t) {
  std::string base = (t & 0xf) == SOCK_STREAM ? "SOCK_STREAM" : std::to_string(t & 0xf);
  long rest = t & ~0xfL;
  if (rest != 0) base += "|" + bits_to_string(static_cast<std::uint32_t>(rest), kSockType, 2);
  return base;
}

}  // namespace

std::string errno_name(int e) {
  switch (e) {
    case 0: return "0";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case EEXIST: return "EEXIST";
    case ENOENT: return "ENOENT";
    case EPERM: return "EPERM";
    case ELOOP: return "ELOOP";
    case EFAULT: return "EFAULT";
    case EAGAIN: return "EAGAIN";
    case EPIPE: return "EPIPE";
    case ECONNRESET: return "ECONNRESET";
    case ENOTSOCK: return "ENOTSOCK";
    case ENOTCONN: return "ENOTCONN";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EMFILE: return "EMFILE";
    case ENOSYS: return "ENOSYS";
    case ENOSPC: return "ENOSPC";
    case EINTR: return "EINTR";
    case ENOMEM: return "ENOMEM";
    default: return std::to_string(e) + " (" + std::strerror(e) + ")";
  }
}

namespace {

std::string wait_name(WaitVariant v) {
  return v == WaitVariant::kWait    ? "epoll_wait"
         : v == WaitVariant::kPwait ? "epoll_pwait"
                                    : "epoll_pwait2";
}

bool returns_fd(const Op& op) {
  switch (op.kind) {
    case OpKind::kEpollCreate1:
    case OpKind::kEpollCreate:
    case OpKind::kEventfd:
    case OpKind::kDup:
    case OpKind::kDup2:
    case OpKind::kDup3: return true;
    case OpKind::kFcntl: return op.iarg == F_DUPFD || op.iarg == F_DUPFD_CLOEXEC;
    default: return false;
  }
}

std::string fcntl_arg_str(const Op& op) {
  if (op.fcntl_arg_is_ref) return ref_str(op.b);
  if (op.iarg == F_SETFL) return flags_str(static_cast<int>(op.larg), kOpenFlags, 6);
  if (op.iarg == F_SETFD) return op.larg == FD_CLOEXEC ? "FD_CLOEXEC" : std::to_string(op.larg);
  return std::to_string(op.larg);
}

std::string guard_str(const Op& op) {
  if (op.guard == 0) return "";
  return std::string(" [guarded: only if poll() gives ") +
         (op.guard == POLLIN ? "POLLIN" : "POLLOUT") + "]";
}

}  // namespace

std::string events_to_string(std::uint32_t ev) {
  static const Bit bits[] = {
      {EPOLLIN, "EPOLLIN"},         {EPOLLPRI, "EPOLLPRI"},
      {EPOLLOUT, "EPOLLOUT"},       {EPOLLERR, "EPOLLERR"},
      {EPOLLHUP, "EPOLLHUP"},       {EPOLLRDNORM, "EPOLLRDNORM"},
      {EPOLLRDBAND, "EPOLLRDBAND"}, {EPOLLWRNORM, "EPOLLWRNORM"},
      {EPOLLWRBAND, "EPOLLWRBAND"}, {EPOLLMSG, "EPOLLMSG"},
      {EPOLLRDHUP, "EPOLLRDHUP"},   {EPOLLEXCLUSIVE, "EPOLLEXCLUSIVE"},
      {EPOLLWAKEUP, "EPOLLWAKEUP"}, {EPOLLONESHOT, "EPOLLONESHOT"},
      {EPOLLET, "EPOLLET"},
  };
  return bits_to_string(ev, bits, sizeof bits / sizeof bits[0]);
}

std::string poll_events_to_string(short ev) {
  static const Bit bits[] = {
      {POLLIN, "POLLIN"},         {POLLPRI, "POLLPRI"},       {POLLOUT, "POLLOUT"},
      {POLLERR, "POLLERR"},       {POLLHUP, "POLLHUP"},       {POLLNVAL, "POLLNVAL"},
      {POLLRDNORM, "POLLRDNORM"}, {POLLRDBAND, "POLLRDBAND"}, {POLLWRNORM, "POLLWRNORM"},
      {POLLWRBAND, "POLLWRBAND"}, {POLLRDHUP, "POLLRDHUP"},
  };
  return bits_to_string(static_cast<std::uint16_t>(ev), bits, sizeof bits / sizeof bits[0]);
}

std::string op_name(OpKind kind) {
  switch (kind) {
    case OpKind::kEpollCreate1: return "epoll_create1";
    case OpKind::kEpollCreate: return "epoll_create";
    case OpKind::kEventfd: return "eventfd";
    case OpKind::kPipe2: return "pipe2";
    case OpKind::kSocketpair: return "socketpair";
    case OpKind::kCtl: return "epoll_ctl";
    case OpKind::kWait: return "epoll_wait";
    case OpKind::kPoll: return "poll";
    case OpKind::kRead: return "read";
    case OpKind::kWrite: return "write";
    case OpKind::kRecv: return "recv";
    case OpKind::kSend: return "send";
    case OpKind::kShutdown: return "shutdown";
    case OpKind::kClose: return "close";
    case OpKind::kDup: return "dup";
    case OpKind::kDup2: return "dup2";
    case OpKind::kDup3: return "dup3";
    case OpKind::kFcntl: return "fcntl";
  }
  return "?";
}

std::string op_to_string(const Op& op) {
  std::string s;
  std::string ns = "s" + std::to_string(op.new_slot);
  switch (op.kind) {
    case OpKind::kEpollCreate1:
      s = ns + " = epoll_create1(" +
          (op.iarg == EPOLL_CLOEXEC ? std::string("EPOLL_CLOEXEC")
                                    : flags_str(op.iarg, kOpenFlags, 6)) +
          ")";
      break;
    case OpKind::kEpollCreate: s = ns + " = epoll_create(" + std::to_string(op.iarg) + ")"; break;
    case OpKind::kEventfd:
      s = ns + " = eventfd(" + std::to_string(op.value) + ", " + flags_str(op.iarg, kEfdFlags, 3) +
          ")";
      break;
    case OpKind::kPipe2:
      s = "pipe2([s" + std::to_string(op.new_slot) + ", s" + std::to_string(op.new_slot + 1) +
          "], " + flags_str(op.iarg, kOpenFlags, 6) + ")";
      break;
    case OpKind::kSocketpair:
      s = "socketpair(" + domain_str(op.iarg) + ", " + sock_type_str(op.larg) + ", " +
          std::to_string(op.count) + ", [s" + std::to_string(op.new_slot) + ", s" +
          std::to_string(op.new_slot + 1) + "])";
      break;
    case OpKind::kCtl:
      s = "epoll_ctl(" + ref_str(op.a) + ", " + ctl_op_str(op.iarg) + ", " + ref_str(op.b) + ", " +
          (op.null_ptr ? std::string("NULL")
                       : "{" + events_to_string(op.events) + ", data=" + hex(op.data) + "}") +
          ")";
      break;
    case OpKind::kWait:
      s = wait_name(op.variant) + "(" + ref_str(op.a) + ", " + (op.null_ptr ? "NULL" : "buf") +
          ", " + std::to_string(op.count) + ", 0" +
          (op.variant == WaitVariant::kWait ? "" : ", NULL") + ")";
      break;
    case OpKind::kPoll: {
      s = "poll([";
      for (std::size_t i = 0; i < op.pfds.size(); ++i) {
        if (i) s += ", ";
        s += "{" + ref_str(op.pfds[i].ref) + ", " + poll_events_to_string(op.pfds[i].events) + "}";
      }
      s += "], " + std::to_string(op.pfds.size()) + ", 0)";
      break;
    }
    case OpKind::kRead:
      s = "read(" + ref_str(op.a) + ", buf, " + std::to_string(op.count) + ")" + guard_str(op);
      break;
    case OpKind::kRecv:
      s = "recv(" + ref_str(op.a) + ", buf, " + std::to_string(op.count) + ", " +
          bits_to_string(static_cast<std::uint32_t>(op.larg), kMsgFlags, 3) + ")";
      break;
    case OpKind::kWrite:
    case OpKind::kSend: {
      std::string what = op.count <= 16 ? "value " + hex(op.value) : "pattern";
      s = std::string(op.kind == OpKind::kWrite ? "write(" : "send(") + ref_str(op.a) + ", <" +
          what + ">, " + std::to_string(op.count);
      if (op.kind == OpKind::kSend)
        s += ", " + bits_to_string(static_cast<std::uint32_t>(op.larg), kMsgFlags, 3);
      s += ")" + guard_str(op);
      break;
    }
    case OpKind::kShutdown: s = "shutdown(" + ref_str(op.a) + ", " + shut_str(op.iarg) + ")"; break;
    case OpKind::kClose: s = "close(" + ref_str(op.a) + ")"; break;
    case OpKind::kDup: s = ns + " = dup(" + ref_str(op.a) + ")"; break;
    case OpKind::kDup2: s = ns + " = dup2(" + ref_str(op.a) + ", " + ref_str(op.b) + ")"; break;
    case OpKind::kDup3:
      s = ns + " = dup3(" + ref_str(op.a) + ", " + ref_str(op.b) + ", " +
          flags_str(op.iarg, kOpenFlags, 6) + ")";
      break;
    case OpKind::kFcntl:
      s = "fcntl(" + ref_str(op.a) + ", " + fcntl_cmd_str(op.iarg) + ", " + fcntl_arg_str(op) + ")";
      if (returns_fd(op)) s = ns + " = " + s;
      break;
  }
  return s;
}

std::string op_to_c(const Op& op) {
  std::string s = op_to_string(op);
  // op_to_string is already C-like; descriptor-creating calls get a declaration.
  if (returns_fd(op)) s = "int " + s;
  return s + ";";
}

std::string result_to_string(const Op& op, const Result& r) {
  std::string s;
  if (r.guard_revents != -1) {
    s += "guard poll revents=" + (r.guard_revents < 0
                                      ? std::string("<poll failed>")
                                      : poll_events_to_string(static_cast<short>(r.guard_revents)));
    if (r.skipped) return s + ", I/O skipped";
    s += "; ";
  }
  if (r.ret < 0) {
    s += "-1 " + errno_name(r.err);
  } else if (returns_fd(op)) {
    s += "fd";
  } else if (op.kind == OpKind::kFcntl && op.iarg == F_GETFL) {
    s += hex(static_cast<std::uint64_t>(r.ret)) + " (" +
         flags_str(static_cast<int>(r.ret), kOpenFlags, 6) + ")";
  } else {
    s += std::to_string(r.ret);
  }
  if (!r.ranks.empty()) {
    s += " [new:";
    for (std::size_t i = 0; i < r.ranks.size(); ++i) {
      s += " rank " + std::to_string(r.ranks[i]) + "/number " + std::to_string(r.nums[i]);
    }
    s += "]";
  }
  if (!r.dup_target_ok) s += " [returned a number other than newfd]";
  if (r.collision) s += " [returned a number the program already held]";
  if (r.closed_slot >= 0) s += " [closed s" + std::to_string(r.closed_slot) + "]";
  if (!r.events.empty()) {
    s += " events=[";
    for (std::size_t i = 0; i < r.events.size(); ++i) {
      if (i) s += ", ";
      s += "{" + events_to_string(r.events[i].first) + ", " + hex(r.events[i].second) + "}";
    }
    s += "]";
  }
  if (!r.revents.empty()) {
    s += " revents=[";
    for (std::size_t i = 0; i < r.revents.size(); ++i) {
      if (i) s += ", ";
      s += poll_events_to_string(r.revents[i]);
    }
    s += "]";
  }
  if ((op.kind == OpKind::kRead || op.kind == OpKind::kRecv) && r.ret > 0) {
    s += " data[0..8)=" + hex(r.value) + " hash=" + hex(r.data_hash);
  }
  bool owned = false;
  for (int o : r.owners) owned = owned || o >= 0;
  if (owned) {
    s += " (args are slots:";
    for (int o : r.owners) s += o < 0 ? " -" : " s" + std::to_string(o);
    s += ")";
  }
  return s;
}

}  // namespace uepoll_diff
