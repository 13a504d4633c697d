#include "preload/preload.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "preload/libc.hpp"
#include "preload/reentry.hpp"
#include "sync/sys.hpp"

namespace uepoll::preload {
namespace {

template <class F>
F next_definition(const char* name) noexcept {
  void* f = dlsym(RTLD_NEXT, name);
  if (f == nullptr) {
    f = dlsym(RTLD_DEFAULT, name);
  }
  return reinterpret_cast<F>(f);
}

Libc resolve() noexcept {
  Libc l{};
#define UEPOLL_NEXT(name) l.name = next_definition<decltype(l.name)>(#name)
  UEPOLL_NEXT(close);
  UEPOLL_NEXT(close_range);
  UEPOLL_NEXT(dup);
  UEPOLL_NEXT(dup2);
  UEPOLL_NEXT(dup3);
  UEPOLL_NEXT(fcntl);
  UEPOLL_NEXT(ioctl);
  UEPOLL_NEXT(read);
  UEPOLL_NEXT(write);
  UEPOLL_NEXT(readv);
  UEPOLL_NEXT(writev);
  UEPOLL_NEXT(recv);
  UEPOLL_NEXT(recvfrom);
  UEPOLL_NEXT(recvmsg);
  UEPOLL_NEXT(send);
  UEPOLL_NEXT(sendto);
  UEPOLL_NEXT(sendmsg);
  UEPOLL_NEXT(poll);
  UEPOLL_NEXT(ppoll);
  UEPOLL_NEXT(select);
  UEPOLL_NEXT(pselect);
  UEPOLL_NEXT(epoll_create);
  UEPOLL_NEXT(epoll_create1);
  UEPOLL_NEXT(epoll_ctl);
  UEPOLL_NEXT(epoll_wait);
  UEPOLL_NEXT(epoll_pwait);
  UEPOLL_NEXT(epoll_pwait2);
  UEPOLL_NEXT(eventfd);
  UEPOLL_NEXT(pipe);
  UEPOLL_NEXT(pipe2);
  UEPOLL_NEXT(socketpair);
  UEPOLL_NEXT(shutdown);
  UEPOLL_NEXT(getsockopt);
  UEPOLL_NEXT(setsockopt);
  UEPOLL_NEXT(getsockname);
  UEPOLL_NEXT(getpeername);
  UEPOLL_NEXT(socket);
  UEPOLL_NEXT(bind);
  UEPOLL_NEXT(listen);
  UEPOLL_NEXT(connect);
  UEPOLL_NEXT(accept);
  UEPOLL_NEXT(accept4);
  UEPOLL_NEXT(sendfile);
  UEPOLL_NEXT(syscall);
  UEPOLL_NEXT(fork);
  UEPOLL_NEXT(posix_spawn);
  UEPOLL_NEXT(posix_spawnp);
  UEPOLL_NEXT(execve);
  UEPOLL_NEXT(execv);
  UEPOLL_NEXT(execvp);
  UEPOLL_NEXT(execvpe);
#undef UEPOLL_NEXT
  return l;
}

int g_own_base = 0;  // uepoll's own descriptors go at or above this number

void mark(int fd, Kind kind) noexcept {
  if (fd >= 0 && fd < kMaxFds) {
    std::atomic_ref<Kind>(g_hot.kind[fd]).store(kind, std::memory_order_release);
  }
}

// Moves one of uepoll's own new descriptors up, out of the way of the numbers the program gets
// (lowest free first), and marks it.
int adopt_own_fd(int fd) noexcept {
  const int high = fd >= g_own_base ? -1 : g_hot.libc.fcntl(fd, F_DUPFD_CLOEXEC, g_own_base);
  if (high >= 0) {
    g_hot.libc.close(fd);
    fd = high;
  }
  mark(fd, Kind::kOwn);
  return fd;
}

void forget_own_fd(int fd) noexcept { mark(fd, Kind::kKernel); }

// An own descriptor of the kernel epoll behind one of the program's descriptors for `instance`.
int kernel_twin_of(const void* instance) noexcept {
  // No references taken: this runs under the nesting mutex, where dropping one is not allowed.
  const int found = table().fds().find_number(static_cast<const File*>(instance));
  if (found < 0) {
    return -1;
  }
  return own_dup(found);
}

bool env_is(const char* name, const char* value) noexcept {
  const char* v = std::getenv(name);
  return v != nullptr && std::strcmp(v, value) == 0;
}

void initialize() noexcept {
  g_hot.libc = resolve();
  // From now on uepoll's own system calls reach libc, not this library's definitions.
  sys::calls.close = g_hot.libc.close;
  sys::calls.read = g_hot.libc.read;
  sys::calls.write = g_hot.libc.write;
  sys::calls.eventfd = g_hot.libc.eventfd;
  sys::calls.ppoll = g_hot.libc.ppoll;
  sys::calls.epoll_create1 = g_hot.libc.epoll_create1;
  sys::calls.epoll_ctl = g_hot.libc.epoll_ctl;
  sys::calls.epoll_wait = g_hot.libc.epoll_wait;
  sys::calls.epoll_pwait2 = g_hot.libc.epoll_pwait2;
  sys::calls.fcntl = g_hot.libc.fcntl;
  sys::calls.syscall = g_hot.libc.syscall;
  sys::calls.adopt_own_fd = &adopt_own_fd;
  sys::calls.forget_own_fd = &forget_own_fd;
  sys::calls.kernel_twin_of = &kernel_twin_of;
  wrap_sleeps();

  g_hot.config.objects = !env_is("UEPOLL_PRELOAD_OBJECTS", "0");
  g_hot.config.loopback = env_is("UEPOLL_PRELOAD_INET", "loopback");
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= 256) {
    const rlim_t limit = rl.rlim_cur < kMaxFds ? rl.rlim_cur : kMaxFds;
    g_own_base = static_cast<int>(limit - limit / 4);
  }
}

// Runs before main (and before other libraries' constructors of lower priority); init() covers
// calls that come even earlier.
[[gnu::constructor(101)]] void preload_constructor() noexcept { init(); }

}  // namespace

// Trivial: zero-initialised before anything runs, never constructed or destroyed afterwards.
static_assert(std::is_trivially_default_constructible_v<Hot> &&
              std::is_trivially_destructible_v<Hot>);
Hot g_hot;

void init() noexcept {
  if (std::atomic_ref<bool>(g_hot.ready).load(std::memory_order_acquire)) {
    return;
  }
  static const bool done = (initialize(), true);  // one thread initialises, the others wait
  (void)done;
  std::atomic_ref<bool>(g_hot.ready).store(true, std::memory_order_release);
}

Process& table() noexcept {
  // Never destroyed: other threads and atexit handlers may still use it while statics die.
  static Process* process = new Process(lock_mode_from_environment(), kMaxFds);
  return *process;
}

Result<void> install(int fd, Ref<File> file, bool cloexec, Kind kind) noexcept {
  const File* twin = kind == Kind::kListener ? file.get() : nullptr;
  if (Result<void> placed = table().fds().place(fd, std::move(file), cloexec); !placed) {
    return placed;
  }
  if (twin != nullptr) {
    listener_number_added(twin);
  }
  mark(fd, kind);
  return {};
}

Ref<File> uninstall(int fd) noexcept {
  const bool listener = kind_of(fd) == Kind::kListener;
  Ref<File> file = table().fds().take(fd);
  mark(fd, Kind::kKernel);
  if (listener && file) {
    listener_number_gone(file.get());
  }
  return file;
}

int own_dup(int fd) noexcept {
  int own = g_hot.libc.fcntl(fd, F_DUPFD_CLOEXEC, g_own_base);
  if (own < 0) {
    own = g_hot.libc.fcntl(fd, F_DUPFD_CLOEXEC, 0);  // nothing free up there: anywhere
  }
  mark(own, Kind::kOwn);
  return own;
}

}  // namespace uepoll::preload
