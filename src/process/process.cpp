// The system-call layer: argument checks in Linux's order, descriptor lookups, then the object
// or epoll instance does the work. Nothing here touches errno (that is capi/'s job).
#include "uepoll/process.hpp"

#include <netinet/in.h>
#include <sys/eventfd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string_view>

#include "core/fd_table.hpp"
#include "epoll/epoll.hpp"
#include "sync/fault_injection.hpp"
#include "sync/sys.hpp"
#include "uepoll/blocking.hpp"
#include "uepoll/objects.hpp"

namespace uepoll {
namespace {

// The end of the user address range on x86-64 (4-level paging). Linux's access_ok() rejects
// buffers that reach past it with EFAULT; uepoll does the same range check (other bad pointers
// cannot be detected in user space; see docs/deviations.md).
constexpr std::uintptr_t kUserSpaceEnd = 0x7ffffffff000;
constexpr int kMaxEvents = INT_MAX / static_cast<int>(sizeof(epoll_event));

bool user_range_ok(const void* p, std::size_t size) noexcept {
  auto a = reinterpret_cast<std::uintptr_t>(p);
  return a <= kUserSpaceEnd && size <= kUserSpaceEnd - a;
}

bool valid_timespec(const timespec& ts) noexcept {
  return ts.tv_sec >= 0 && ts.tv_nsec >= 0 && ts.tv_nsec < 1'000'000'000;
}

IoFlags io_flags(const File& f, int msg_flags = 0) noexcept {
  return IoFlags{msg_flags, f.nonblocking()};
}

}  // namespace

Process::Process(LockMode mode, int fd_limit) noexcept
    : fds_(new (fds_storage_)
               FdTable(fd_limit == kDefaultFdLimit ? FdTable::default_limit() : fd_limit)),
      mode_(mode) {
  static_assert(sizeof(FdTable) <= sizeof(fds_storage_) && alignof(FdTable) <= 64);
}

Process::~Process() { fds_->~FdTable(); }

Ref<File> Process::get(int fd) const noexcept { return fds_->get(fd); }

Process& Process::global() noexcept {
  // Never destroyed: other threads may still use it while static destructors run.
  static Process* process = new Process(lock_mode_from_environment());
  return *process;
}

Result<int> Process::install(Ref<File> file, bool cloexec) noexcept {
  return fds_->install(std::move(file), cloexec);
}

// ---------------------------------------------------------------------------------------------
// epoll

Result<int> Process::epoll_create(int size) noexcept {
  if (size <= 0) {
    return Error{EINVAL};
  }
  return epoll_create1(0);
}

Result<int> Process::epoll_create1(int flags) noexcept {
  if ((flags & ~EPOLL_CLOEXEC) != 0) {
    return Error{EINVAL};
  }
  Result<Ref<File>> ep = detail::create_instance(0, mode_);
  if (!ep) {
    return Error{ep.error()};
  }
  return fds_->install(std::move(ep.value()), (flags & EPOLL_CLOEXEC) != 0);
}

Result<void> Process::epoll_ctl(int epfd, int op, int fd, const epoll_event* event) noexcept {
  epoll_event ev{};
  if (op != EPOLL_CTL_DEL) {  // even an invalid op copies the event first, as Linux does
    if (event == nullptr || !user_range_ok(event, sizeof *event)) {
      return Error{EFAULT};
    }
    ev = *event;
  }
  Ref<File> ep = fds_->get(epfd);
  if (!ep) {
    return Error{EBADF};
  }
  Ref<File> target = fds_->get(fd);
  if (!target) {
    return Error{EBADF};
  }
  if (!target->pollable()) {
    return Error{EPERM};
  }
  // EPOLLWAKEUP needs CAP_BLOCK_SUSPEND on Linux and is dropped silently without it; there is
  // no system suspend to hold off in user space, so uepoll always drops it.
  ev.events &= ~static_cast<std::uint32_t>(EPOLLWAKEUP);
  if (ep.get() == target.get() || !ep->is_epoll()) {
    return Error{EINVAL};
  }
  if (op != EPOLL_CTL_DEL && (ev.events & EPOLLEXCLUSIVE) != 0) {
    if (op == EPOLL_CTL_MOD) {
      return Error{EINVAL};
    }
    if (op == EPOLL_CTL_ADD &&
        (target->is_epoll() || (ev.events & ~detail::kExclusiveOkBits) != 0)) {
      return Error{EINVAL};
    }
  }
  return detail::instance_ctl(*ep, op, std::move(target), fd, ev);
}

namespace {

// When epfd is no epoll instance, Linux has already judged the target: EBADF, then EPERM.
Result<void> kernel_target_error(int kfd) noexcept {
  if (sys::calls.fcntl(kfd, F_GETFD) < 0) {
    return Error{EBADF};
  }
  // Asks the kernel about pollability.
  static const int scratch = sys::own_kernel_fd(sys::calls.epoll_create1(EPOLL_CLOEXEC));
  epoll_event ev{};
  if (scratch >= 0 && sys::calls.epoll_ctl(scratch, EPOLL_CTL_ADD, kfd, &ev) == 0) {
    sys::calls.epoll_ctl(scratch, EPOLL_CTL_DEL, kfd, nullptr);
  } else if (scratch >= 0 && errno == EPERM) {
    return Error{EPERM};
  }
  return {};
}

}  // namespace

Result<void> Process::epoll_ctl_kernel(int epfd, int op, int kfd,
                                       const epoll_event* event) noexcept {
  epoll_event ev{};
  if (op != EPOLL_CTL_DEL) {  // as epoll_ctl: the event is copied first, for any other op
    if (event == nullptr || !user_range_ok(event, sizeof *event)) {
      return Error{EFAULT};
    }
    ev = *event;
  }
  Ref<File> ep = fds_->get(epfd);
  if (!ep) {
    return Error{EBADF};
  }
  if (!ep->is_epoll()) {
    if (Result<void> target = kernel_target_error(kfd); !target) {
      return target;
    }
    return Error{EINVAL};
  }
  return detail::instance_ctl_kernel(*ep, op, kfd, op == EPOLL_CTL_DEL ? nullptr : &ev);
}

Result<int> Process::epoll_kernel_fd(int epfd) noexcept {
  Ref<File> ep = fds_->get(epfd);
  if (!ep) {
    return Error{EBADF};
  }
  if (!ep->is_epoll()) {
    return Error{EINVAL};
  }
  return detail::instance_kernel_fd(*ep);
}

Result<int> Process::wait_common(int epfd, epoll_event* events, int maxevents, Timeout timeout,
                                 const sigset_t* sigmask) noexcept {
  Ref<File> ep = fds_->get(epfd);
  if (!ep) {
    return Error{EBADF};
  }
  if (maxevents <= 0 || maxevents > kMaxEvents) {
    return Error{EINVAL};
  }
  if (!user_range_ok(events, static_cast<std::size_t>(maxevents) * sizeof(epoll_event))) {
    return Error{EFAULT};
  }
  if (!ep->is_epoll()) {
    return Error{EINVAL};
  }
  return detail::instance_wait(*ep, events, maxevents, timeout, sigmask);
}

Result<int> Process::epoll_wait(int epfd, epoll_event* events, int maxevents,
                                int timeout_ms) noexcept {
  return epoll_pwait(epfd, events, maxevents, timeout_ms, nullptr);
}

Result<int> Process::epoll_pwait(int epfd, epoll_event* events, int maxevents, int timeout_ms,
                                 const sigset_t* sigmask) noexcept {
  if (sigmask != nullptr && !user_range_ok(sigmask, sizeof *sigmask)) {
    return Error{EFAULT};
  }
  return wait_common(epfd, events, maxevents, Timeout::after_ms(timeout_ms), sigmask);
}

Result<int> Process::epoll_pwait2(int epfd, epoll_event* events, int maxevents,
                                  const timespec* timeout, const sigset_t* sigmask) noexcept {
  Timeout wait_for = Timeout::none();
  if (timeout != nullptr) {
    if (!user_range_ok(timeout, sizeof *timeout)) {
      return Error{EFAULT};
    }
    if (!valid_timespec(*timeout)) {
      return Error{EINVAL};
    }
    wait_for = Timeout::after(*timeout);
  }
  if (sigmask != nullptr && !user_range_ok(sigmask, sizeof *sigmask)) {
    return Error{EFAULT};
  }
  return wait_common(epfd, events, maxevents, wait_for, sigmask);
}

// ---------------------------------------------------------------------------------------------
// Objects

Result<int> Process::eventfd(unsigned int initval, int flags) noexcept {
  if ((flags & ~(EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC)) != 0) {
    return Error{EINVAL};
  }
  Result<Ref<File>> f = make_eventfd(initval, flags & (EFD_SEMAPHORE | EFD_NONBLOCK));
  if (!f) {
    return Error{f.error()};
  }
  return fds_->install(std::move(f.value()), (flags & EFD_CLOEXEC) != 0);
}

Result<void> Process::pipe2(int fds[2], int flags) noexcept {
  if ((flags & ~(O_CLOEXEC | O_NONBLOCK)) != 0) {
    return Error{EINVAL};
  }
  if (fds == nullptr || !user_range_ok(fds, 2 * sizeof(int))) {
    return Error{EFAULT};
  }
  Result<FilePair> pair = make_pipe(flags & O_NONBLOCK);
  if (!pair) {
    return Error{pair.error()};
  }
  return fds_->install_pair(std::move(pair->first), std::move(pair->second),
                            (flags & O_CLOEXEC) != 0, fds);
}

Result<void> Process::socketpair(int domain, int type, int protocol, int sv[2]) noexcept {
  const int flags = type & ~sys::kSocketTypeMask;
  type &= sys::kSocketTypeMask;
  if ((flags & ~sys::kSocketFlags) != 0) {
    return Error{EINVAL};
  }
  if (domain < 0 || domain >= AF_MAX) {
    return Error{EAFNOSUPPORT};
  }
  if (domain == AF_INET || domain == AF_INET6) {
    // Linux creates the first socket (checking type and protocol), then finds no socketpair.
    if (type == SOCK_STREAM && protocol != 0 && protocol != IPPROTO_TCP) {
      return Error{EPROTONOSUPPORT};
    }
    if (type == SOCK_DGRAM && protocol != 0 && protocol != IPPROTO_UDP) {
      return Error{EPROTONOSUPPORT};
    }
    if (type != SOCK_STREAM && type != SOCK_DGRAM && type != SOCK_RAW) {
      return Error{ESOCKTNOSUPPORT};
    }
    return Error{EOPNOTSUPP};
  }
  if (domain != AF_UNIX) {
    return Error{EAFNOSUPPORT};
  }
  if (type != SOCK_STREAM) {
    return Error{type == SOCK_DGRAM || type == SOCK_SEQPACKET ? EPROTONOSUPPORT : ESOCKTNOSUPPORT};
  }
  if (protocol != 0 && protocol != PF_UNIX) {
    return Error{EPROTONOSUPPORT};
  }
  if (sv == nullptr || !user_range_ok(sv, 2 * sizeof(int))) {
    return Error{EFAULT};
  }
  Result<FilePair> pair = make_unix_stream_pair((flags & SOCK_NONBLOCK) != 0 ? O_NONBLOCK : 0);
  if (!pair) {
    return Error{pair.error()};
  }
  return fds_->install_pair(std::move(pair->first), std::move(pair->second),
                            (flags & SOCK_CLOEXEC) != 0, sv);
}

Result<int> Process::socket(int domain, int type, int protocol) noexcept {
  const int flags = type & ~sys::kSocketTypeMask;
  type &= sys::kSocketTypeMask;
  if ((flags & ~sys::kSocketFlags) != 0) {
    return Error{EINVAL};
  }
  if (domain < 0 || domain >= AF_MAX) {
    return Error{EAFNOSUPPORT};
  }
  if (domain != AF_INET && domain != AF_INET6) {
    return Error{EAFNOSUPPORT};  // AF_UNIX sockets exist only as socketpairs (deviations.md)
  }
  if (type != SOCK_STREAM) {
    return Error{type == SOCK_DGRAM || type == SOCK_RAW ? EPROTONOSUPPORT : ESOCKTNOSUPPORT};
  }
  if (protocol != 0 && protocol != IPPROTO_TCP) {
    return Error{EPROTONOSUPPORT};
  }
  Result<Ref<File>> s =
      make_inet_stream_socket(domain, (flags & SOCK_NONBLOCK) != 0 ? O_NONBLOCK : 0);
  if (!s) {
    return Error{s.error()};
  }
  return fds_->install(std::move(s.value()), (flags & SOCK_CLOEXEC) != 0);
}

// ---------------------------------------------------------------------------------------------
// Sockets: EBADF, then ENOTSOCK (File's defaults), then the socket's own checks.

Result<void> Process::bind(int fd, const sockaddr* addr, socklen_t len) noexcept {
  Ref<File> f = fds_->get(fd);
  return f ? f->bind(addr, len) : Error{EBADF};
}

Result<void> Process::listen(int fd, int backlog) noexcept {
  Ref<File> f = fds_->get(fd);
  return f ? f->listen(backlog) : Error{EBADF};
}

Result<int> Process::accept4(int fd, sockaddr* addr, socklen_t* len, int flags) noexcept {
  Ref<File> f = fds_->get(fd);
  if (!f) {
    return Error{EBADF};
  }
  if ((flags & ~sys::kSocketFlags) != 0) {
    return Error{EINVAL};  // before ENOTSOCK, as on Linux 6.x
  }
  Result<Ref<File>> conn =
      f->accept(addr, len, (flags & SOCK_NONBLOCK) != 0 ? O_NONBLOCK : 0, io_flags(*f));
  if (!conn) {
    return Error{conn.error()};
  }
  return fds_->install(std::move(conn.value()), (flags & SOCK_CLOEXEC) != 0);
}

Result<void> Process::connect(int fd, const sockaddr* addr, socklen_t len) noexcept {
  Ref<File> f = fds_->get(fd);
  return f ? f->connect(addr, len, io_flags(*f)) : Error{EBADF};
}

Result<void> Process::getsockopt(int fd, int level, int name, void* val, socklen_t* len) noexcept {
  Ref<File> f = fds_->get(fd);
  return f ? f->getsockopt(level, name, val, len) : Error{EBADF};
}

Result<void> Process::setsockopt(int fd, int level, int name, const void* val,
                                 socklen_t len) noexcept {
  Ref<File> f = fds_->get(fd);
  return f ? f->setsockopt(level, name, val, len) : Error{EBADF};
}

Result<void> Process::getsockname(int fd, sockaddr* addr, socklen_t* len) noexcept {
  Ref<File> f = fds_->get(fd);
  return f ? f->getsockname(addr, len) : Error{EBADF};
}

Result<void> Process::getpeername(int fd, sockaddr* addr, socklen_t* len) noexcept {
  Ref<File> f = fds_->get(fd);
  return f ? f->getpeername(addr, len) : Error{EBADF};
}

Result<size_t> Process::readable_bytes(int fd) noexcept {
  Ref<File> f = fds_->get(fd);
  return f ? f->readable_bytes() : Error{EBADF};
}

Result<void> Process::shutdown(int fd, int how) noexcept {
  Ref<File> f = fds_->get(fd);
  return f ? f->shutdown(how) : Error{EBADF};
}

// ---------------------------------------------------------------------------------------------
// Descriptors and I/O

Result<size_t> Process::read(int fd, void* buf, size_t count) noexcept {
  Ref<File> f = fds_->get(fd);
  if (!f || !f->readable()) {
    return Error{EBADF};
  }
  if (count > 0 && (buf == nullptr || !user_range_ok(buf, count))) {
    return Error{EFAULT};
  }
  return f->read(buf, count, io_flags(*f));
}

Result<size_t> Process::write(int fd, const void* buf, size_t count) noexcept {
  Ref<File> f = fds_->get(fd);
  if (!f || !f->writable()) {
    return Error{EBADF};
  }
  if (count > 0 && (buf == nullptr || !user_range_ok(buf, count))) {
    return Error{EFAULT};
  }
  return f->write(buf, count, io_flags(*f));
}

Result<size_t> Process::recv(int fd, void* buf, size_t len, int flags) noexcept {
  Ref<File> f = fds_->get(fd);
  if (!f) {
    return Error{EBADF};
  }
  if (len > 0 && (buf == nullptr || !user_range_ok(buf, len))) {
    return f->is_epoll() || !f->pollable() ? Error{ENOTSOCK} : Error{EFAULT};
  }
  return f->recv(buf, len, io_flags(*f, flags));
}

Result<size_t> Process::send(int fd, const void* buf, size_t len, int flags) noexcept {
  Ref<File> f = fds_->get(fd);
  if (!f) {
    return Error{EBADF};
  }
  if (len > 0 && (buf == nullptr || !user_range_ok(buf, len))) {
    return f->is_epoll() || !f->pollable() ? Error{ENOTSOCK} : Error{EFAULT};
  }
  return f->send(buf, len, io_flags(*f, flags));
}

Result<void> Process::close(int fd) noexcept { return fds_->close(fd); }

Result<int> Process::dup(int oldfd) noexcept {
  Ref<File> f = fds_->get(oldfd);
  if (!f) {
    return Error{EBADF};
  }
  return fds_->install(std::move(f), false);
}

Result<int> Process::dup2(int oldfd, int newfd) noexcept {
  if (oldfd == newfd) {
    return fds_->get(oldfd) ? Result<int>(newfd) : Result<int>(Error{EBADF});
  }
  if (newfd < 0 || newfd >= fds_->limit()) {
    return Error{EBADF};
  }
  return fds_->dup_to(oldfd, newfd, false);
}

Result<int> Process::dup3(int oldfd, int newfd, int flags) noexcept {
  if ((flags & ~O_CLOEXEC) != 0 || oldfd == newfd) {
    return Error{EINVAL};
  }
  if (newfd < 0 || newfd >= fds_->limit()) {
    return Error{EBADF};
  }
  return fds_->dup_to(oldfd, newfd, (flags & O_CLOEXEC) != 0);
}

Result<int> Process::fcntl(int fd, int cmd, long arg) noexcept {
  Ref<File> f = fds_->get(fd);
  if (!f) {
    return Error{EBADF};
  }
  switch (cmd) {
    case F_GETFL: return f->access_mode() | f->status_flags();
    case F_SETFL: f->set_status_flags(static_cast<int>(arg)); return 0;
    case F_GETFD: {
      Result<bool> cloexec = fds_->cloexec(fd);
      if (!cloexec) {
        return Error{cloexec.error()};
      }
      return cloexec.value() ? FD_CLOEXEC : 0;
    }
    case F_SETFD:
      if (Result<void> r = fds_->set_cloexec(fd, (arg & FD_CLOEXEC) != 0); !r) {
        return Error{r.error()};
      }
      return 0;
    case F_DUPFD:
    case F_DUPFD_CLOEXEC:
      if (arg < 0 || arg >= fds_->limit()) {
        return Error{EINVAL};
      }
      return fds_->install(std::move(f), cmd == F_DUPFD_CLOEXEC, static_cast<int>(arg));
    default: return Error{EINVAL};
  }
}

// ---------------------------------------------------------------------------------------------
// poll()

namespace {

// The hooks of one poll() call: one per queue of every polled file, all waking this thread.
struct PollHook : WaitEntry {
  Parker* parker = nullptr;
  File* file = nullptr;  // a reference: the queue lives in the file's object
  PollHook* next_hook = nullptr;
};

struct PollCallTable : PollTable {
  PollCallTable() noexcept : PollTable(&hook, &hook_kernel_fd) {}
  ~PollCallTable() {
    for (PollHook* h = hooks; h != nullptr;) {
      PollHook* next = h->next_hook;
      WaitQueue::remove(*h);
      h->file->put();
      delete h;
      h = next;
    }
  }
  static void hook(PollTable& table, WaitQueue& queue) noexcept {
    auto& t = static_cast<PollCallTable&>(table);
    auto* h = detail::try_new<PollHook>();
    if (h == nullptr) {
      t.out_of_memory = true;
      return;
    }
    h->on_wake = [](WaitEntry& e, PollMask) noexcept {
      if (Parker* p = static_cast<PollHook&>(e).parker) {
        p->unpark();
      }
      return true;
    };
    h->parker = t.parker;
    h->file = t.polling;
    h->file->get();
    h->next_hook = t.hooks;
    t.hooks = h;
    queue.add(*h);
  }
  // A polled instance that watches kernel descriptors: the sleep watches its kernel side too.
  static void hook_kernel_fd(PollTable& table, int fd) noexcept {
    static_cast<PollCallTable&>(table).watch_kernel(pollfd{fd, POLLIN, 0});
  }
  void watch_kernel(pollfd p) noexcept {
    if (kernel_fd_count < SleepSpec::kMaxKernelFds) {
      kernel_fds[kernel_fd_count] = p;
    }
    ++kernel_fd_count;  // past the bound, the sleep naps and re-polls instead
  }
  Parker* parker = nullptr;
  File* polling = nullptr;  // the file whose poll() is running
  PollHook* hooks = nullptr;
  bool out_of_memory = false;
  pollfd kernel_fds[SleepSpec::kMaxKernelFds];
  int kernel_fd_count = 0;
};

}  // namespace

namespace {

// A kernel descriptor in poll(): the kernel's answer, without waiting.
Result<PollMask> poll_kernel_fd(const pollfd& fd) noexcept {
  pollfd probe{fd.fd, fd.events, 0};
  const timespec zero{0, 0};
  if (sys::calls.ppoll(&probe, 1, &zero, nullptr) < 0) {
    return Error{errno};
  }
  return PollMask{static_cast<std::uint16_t>(probe.revents)};
}

}  // namespace

Result<int> Process::poll(pollfd* fds, nfds_t nfds, int timeout_ms) noexcept {
  return poll_with(fds, nfds, Timeout::after_ms(timeout_ms), nullptr, KernelFds::kInvalid);
}

Result<int> Process::poll_with(pollfd* fds, nfds_t nfds, Timeout timeout, const sigset_t* sigmask,
                               KernelFds kernel) noexcept {
  if (nfds > static_cast<nfds_t>(fds_->limit())) {
    return Error{EINVAL};
  }
  if (nfds > 0 && (fds == nullptr || !user_range_ok(fds, nfds * sizeof(pollfd)))) {
    return Error{EFAULT};
  }
  PollCallTable table;
  ParkerLease lease;
  if (!timeout.is_zero()) {
    table.parker = lease.acquire();  // null: the sleeps below nap and re-check
  }
  bool first_pass = true;
  for (;;) {
    int ready = 0;
    for (nfds_t i = 0; i < nfds; ++i) {
      PollMask revents = 0;
      if (fds[i].fd >= 0) {
        Ref<File> f = fds_->get(fds[i].fd);
        if (f) {
          const PollMask wanted = static_cast<std::uint16_t>(fds[i].events) | POLLERR | POLLHUP;
          PollTable* pt = first_pass && !timeout.is_zero() ? &table : nullptr;
          table.polling = f.get();
          revents = f->poll(pt) & wanted;
        } else if (kernel == KernelFds::kPassThrough) {
          // Not ours: the kernel answers for it, now and while we sleep.
          Result<PollMask> kernel_revents = poll_kernel_fd(fds[i]);
          if (!kernel_revents) {
            return Error{kernel_revents.error()};
          }
          revents = *kernel_revents;
          if (first_pass && !timeout.is_zero()) {
            table.watch_kernel(pollfd{fds[i].fd, fds[i].events, 0});
          }
        } else {
          revents = POLLNVAL;
        }
      }
      fds[i].revents = static_cast<short>(revents);
      ready += revents != 0 ? 1 : 0;
    }
    if (table.out_of_memory) {
      return Error{ENOMEM};
    }
    if (ready > 0 || timeout.is_zero()) {
      return ready;
    }
    first_pass = false;
    Result<void> slept = lease.sleep(SleepSpec{timeout.deadline(), sigmask,
                                               /*restart_after_handler=*/false, table.kernel_fds,
                                               table.kernel_fd_count});
    if (!slept && slept.error() != ETIMEDOUT) {
      return Error{slept.error()};
    }
    if (!slept) {
      timeout = Timeout::zero();  // one last look, as Linux does after its timer fires
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Limits and modes

LockMode lock_mode_from_environment() noexcept {
  static const LockMode mode = [] {
    const char* value = std::getenv("UEPOLL_LOCK_MODE");
    return value != nullptr && std::string_view(value) == "legacy" ? LockMode::kLegacy
                                                                   : LockMode::kFine;
  }();
  return mode;
}

long max_user_watches() noexcept { return detail::max_user_watches(); }

Result<void> set_max_user_watches(long limit) noexcept {
  if (limit < 1) {
    return Error{EINVAL};
  }
  detail::set_max_user_watches(limit);
  return {};
}

}  // namespace uepoll
