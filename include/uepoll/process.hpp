// Process: the system-call surface of uepoll for C++ users. A Process owns one descriptor table;
// its member functions behave like the Linux system calls of the same names (errno precedence
// included) and return Result instead of setting errno.
//
// The C API (uepoll.h) is Process::global() with errno. Separate Process objects model separate
// processes (like nginx's worker processes, each with its own table); the epoll subsystem
// itself, like Linux's, is shared: any instance may watch any file, and max_user_watches and the
// nesting mutex are process-wide.
//
// Thread safety: thread-safe; every function may be called from any thread at any time.
// Lifetime: destroying a Process closes its descriptors.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#include "uepoll/blocking.hpp"
#include "uepoll/file.hpp"
#include "uepoll/lock_mode.hpp"
#include "uepoll/result.hpp"

namespace uepoll {

class FdTable;  // the descriptor table, private to the library (src/core/fd_table.hpp)

class Process {
 public:
  /// fd_limit: the most descriptors the table holds (EMFILE beyond); kDefaultFdLimit is the
  /// process's RLIMIT_NOFILE soft limit, capped at 2^20.
  static constexpr int kDefaultFdLimit = -1;
  explicit Process(LockMode mode = LockMode::kFine, int fd_limit = kDefaultFdLimit) noexcept;
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  /// The process behind the C API; its lock mode comes from UEPOLL_LOCK_MODE.
  static Process& global() noexcept;

  /// The lock mode of the epoll instances this process creates.
  LockMode lock_mode() const noexcept { return mode_; }

  FdTable& fds() noexcept { return *fds_; }

  /// Installs a user's object at the lowest free descriptor; `cloexec` records FD_CLOEXEC.
  Result<int> install(Ref<File> file, bool cloexec = false) noexcept;
  /// The object behind `fd` (null: EBADF).
  Ref<File> get(int fd) const noexcept;

  // epoll
  Result<int> epoll_create(int size) noexcept;
  Result<int> epoll_create1(int flags) noexcept;
  Result<void> epoll_ctl(int epfd, int op, int fd, const epoll_event* event) noexcept;
  Result<int> epoll_wait(int epfd, epoll_event* events, int maxevents, int timeout_ms) noexcept;
  Result<int> epoll_pwait(int epfd, epoll_event* events, int maxevents, int timeout_ms,
                          const sigset_t* sigmask) noexcept;
  Result<int> epoll_pwait2(int epfd, epoll_event* events, int maxevents, const timespec* timeout,
                           const sigset_t* sigmask) noexcept;
  /// epoll_ctl of the kernel descriptor `kfd` in the uepoll instance `epfd`
  /// (uepoll_epoll_ctl_kernel).
  Result<void> epoll_ctl_kernel(int epfd, int op, int kfd, const epoll_event* event) noexcept;
  /// A kernel descriptor readable while `epfd` has events (uepoll_epoll_kernel_fd).
  Result<int> epoll_kernel_fd(int epfd) noexcept;

  // objects
  Result<int> eventfd(unsigned int initval, int flags) noexcept;
  Result<void> pipe2(int fds[2], int flags) noexcept;
  Result<void> socketpair(int domain, int type, int protocol, int sv[2]) noexcept;
  Result<int> socket(int domain, int type, int protocol) noexcept;

  // sockets
  Result<void> bind(int fd, const sockaddr* addr, socklen_t len) noexcept;
  Result<void> listen(int fd, int backlog) noexcept;
  Result<int> accept4(int fd, sockaddr* addr, socklen_t* len, int flags) noexcept;
  Result<void> connect(int fd, const sockaddr* addr, socklen_t len) noexcept;
  Result<void> getsockopt(int fd, int level, int name, void* val, socklen_t* len) noexcept;
  Result<void> setsockopt(int fd, int level, int name, const void* val, socklen_t len) noexcept;
  Result<void> getsockname(int fd, sockaddr* addr, socklen_t* len) noexcept;
  Result<void> getpeername(int fd, sockaddr* addr, socklen_t* len) noexcept;
  Result<void> shutdown(int fd, int how) noexcept;

  // descriptors and I/O
  Result<size_t> read(int fd, void* buf, size_t count) noexcept;
  Result<size_t> write(int fd, const void* buf, size_t count) noexcept;
  /// ioctl(fd, FIONREAD): the bytes a read could take now.
  Result<size_t> readable_bytes(int fd) noexcept;
  Result<size_t> recv(int fd, void* buf, size_t len, int flags) noexcept;
  Result<size_t> send(int fd, const void* buf, size_t len, int flags) noexcept;
  Result<void> close(int fd) noexcept;
  Result<int> dup(int oldfd) noexcept;
  Result<int> dup2(int oldfd, int newfd) noexcept;
  Result<int> dup3(int oldfd, int newfd, int flags) noexcept;
  Result<int> fcntl(int fd, int cmd, long arg) noexcept;
  Result<int> poll(pollfd* fds, nfds_t nfds, int timeout_ms) noexcept;
  /// What poll_with does with a descriptor that is not in the table.
  enum class KernelFds { kInvalid, kPassThrough };
  /// poll() with a Timeout and a signal mask installed while it sleeps (ppoll); descriptors not
  /// in the table are POLLNVAL, or, for the interposer, kernel descriptors polled by the kernel.
  Result<int> poll_with(pollfd* fds, nfds_t nfds, Timeout timeout, const sigset_t* sigmask,
                        KernelFds kernel) noexcept;

 private:
  Result<int> wait_common(int epfd, epoll_event* events, int maxevents, Timeout timeout,
                          const sigset_t* sigmask) noexcept;

  // The table lives inside the Process (no allocation that could fail) while its definition
  // stays private: the storage is here, the object is built in process.cpp, which checks the fit.
  // The pointer and the mode, read on every call, share the first cache line.
  FdTable* const fds_;
  const LockMode mode_;
  alignas(64) unsigned char fds_storage_[128];
};

/// max_user_watches: the most epoll items that may exist at once, process-wide (Linux counts
/// them per user). Defaults to the host's fs.epoll.max_user_watches.
long max_user_watches() noexcept;
/// Sets the limit; EINVAL for limit < 1.
Result<void> set_max_user_watches(long limit) noexcept;

}  // namespace uepoll
