// UEPOLL_PRELOAD_INET=loopback: TCP between endpoints of the same process on uepoll's
// in-process sockets, every other connection on the kernel's.
//
// Sockets are created by the kernel and stay the kernel's until one of two moments:
//   - listen() on a loopback or wildcard address: the kernel listens (other processes can still
//     connect) and an in-process twin listener is bound to the same address and port. The
//     number's kind becomes kListener: the table holds the twin, and the kernel listener is
//     also reachable through one of uepoll's own descriptors. accept() takes from either queue,
//     epoll watches both, poll() and select() wait for both.
//   - connect() to an address where an in-process listener waits: the socket becomes an
//     in-process socket (kUepoll), bound to the address and port the kernel gives its
//     reservation, so that names stay unique across both worlds.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

#include "preload/preload.hpp"
#include "preload/reentry.hpp"
#include "sync/sys.hpp"
#include "uepoll/objects.hpp"

namespace uepoll::preload {
namespace {

// A listener's twin: the kernel listener as one of uepoll's own descriptors, and how many of
// the program's numbers name the pair. Few (one per listening socket): a vector under a mutex.
struct Twin {
  const File* twin;
  int kernel_fd;
  int family;
  int numbers;
};
std::mutex g_twins_mutex;
std::vector<Twin> g_twins;

Twin* find_twin(const File* twin) noexcept {
  for (Twin& t : g_twins) {
    if (t.twin == twin) {
      return &t;
    }
  }
  return nullptr;
}

int int_option(int fd, int level, int name) noexcept {
  int v = 0;
  socklen_t len = sizeof v;
  return libc().getsockopt(fd, level, name, &v, &len) == 0 ? v : -1;
}

bool is_tcp(int fd, int* family) noexcept {
  *family = int_option(fd, SOL_SOCKET, SO_DOMAIN);
  return (*family == AF_INET || *family == AF_INET6) &&
         int_option(fd, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_TCP;
}

// 127/8, ::1, ::ffff:127/104, or a wildcard.
bool loopback_or_any(const sockaddr_storage& ss) noexcept {
  if (ss.ss_family == AF_INET) {
    const std::uint32_t a = ntohl(reinterpret_cast<const sockaddr_in&>(ss).sin_addr.s_addr);
    return a == INADDR_ANY || (a >> 24) == 127;
  }
  const in6_addr& a = reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr;
  if (IN6_IS_ADDR_V4MAPPED(&a)) {
    return a.s6_addr[12] == 127 ||
           (a.s6_addr[12] | a.s6_addr[13] | a.s6_addr[14] | a.s6_addr[15]) == 0;
  }
  return IN6_IS_ADDR_UNSPECIFIED(&a) || IN6_IS_ADDR_LOOPBACK(&a);
}

// The options a program sets before listen() or connect() that the in-process socket must have.
void copy_options(int from, File& to, int family) noexcept {
  struct Option {
    int level;
    int name;
  };
  static constexpr Option kInts[] = {
      {SOL_SOCKET, SO_REUSEADDR},
      {SOL_SOCKET, SO_REUSEPORT},
      {SOL_SOCKET, SO_KEEPALIVE},
      {IPPROTO_TCP, TCP_NODELAY},
  };
  for (const Option& o : kInts) {
    if (const int v = int_option(from, o.level, o.name); v > 0) {
      (void)to.setsockopt(o.level, o.name, &v, sizeof v);
    }
  }
  if (family == AF_INET6) {
    const int v = int_option(from, IPPROTO_IPV6, IPV6_V6ONLY);
    (void)to.setsockopt(IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof v);
  }
  linger l{};
  socklen_t len = sizeof l;
  if (libc().getsockopt(from, SOL_SOCKET, SO_LINGER, &l, &len) == 0 && l.l_onoff != 0) {
    (void)to.setsockopt(SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  for (int name : {SO_RCVTIMEO, SO_SNDTIMEO}) {
    timeval tv{};
    len = sizeof tv;
    if (libc().getsockopt(from, SOL_SOCKET, name, &tv, &len) == 0 &&
        (tv.tv_sec | tv.tv_usec) != 0) {
      (void)to.setsockopt(SOL_SOCKET, name, &tv, sizeof tv);
    }
  }
}

Result<Ref<File>> in_process_socket(int fd, int family) noexcept {
  const int status = libc().fcntl(fd, F_GETFL);
  auto made = make_inet_stream_socket(family, status >= 0 ? status & O_NONBLOCK : 0);
  if (made) {
    copy_options(fd, **made, family);
  }
  return made;
}

bool cloexec(int fd) noexcept {
  const int flags = libc().fcntl(fd, F_GETFD);
  return flags >= 0 && (flags & FD_CLOEXEC) != 0;
}

// The source address the kernel would give a connection to `dst` on the loopback network.
sockaddr_storage source_for(const sockaddr_storage& dst, int family) noexcept {
  sockaddr_storage src{};
  if (family == AF_INET) {
    auto& in = reinterpret_cast<sockaddr_in&>(src);
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return src;
  }
  auto& in6 = reinterpret_cast<sockaddr_in6&>(src);
  in6.sin6_family = AF_INET6;
  const bool v4 = dst.ss_family == AF_INET ||
                  IN6_IS_ADDR_V4MAPPED(&reinterpret_cast<const sockaddr_in6&>(dst).sin6_addr);
  if (v4) {
    in6.sin6_addr.s6_addr[10] = 0xff;
    in6.sin6_addr.s6_addr[11] = 0xff;
    in6.sin6_addr.s6_addr[12] = 127;
    in6.sin6_addr.s6_addr[15] = 1;
  } else {
    in6.sin6_addr = in6addr_loopback;
  }
  return src;
}

socklen_t length_of(int family) noexcept {
  return family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
}

}  // namespace

void add_in_process_twin(int fd, int backlog) noexcept {
  int family;
  if (!is_tcp(fd, &family)) {
    return;
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (libc().getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      !loopback_or_any(addr)) {
    return;
  }
  Inside inside;
  auto made = in_process_socket(fd, family);
  if (!made || !(*made)->bind(reinterpret_cast<sockaddr*>(&addr), len) ||
      !(*made)->listen(backlog)) {
    return;  // the kernel listener alone: in-process clients connect through the kernel
  }
  const int kernel_fd = own_dup(fd);
  if (kernel_fd < 0) {
    return;
  }
  {
    std::lock_guard<std::mutex> guard(g_twins_mutex);
    try {
      g_twins.push_back(Twin{made->get(), kernel_fd, family, 0});
    } catch (const std::bad_alloc&) {
      libc().close(kernel_fd);
      return;
    }
  }
  if (!install(fd, std::move(*made), cloexec(fd), Kind::kListener)) {
    std::lock_guard<std::mutex> guard(g_twins_mutex);
    // Not counted yet: drop the record (the twin itself died with the failed install).
    for (auto it = g_twins.begin(); it != g_twins.end(); ++it) {
      if (it->kernel_fd == kernel_fd) {
        g_twins.erase(it);
        break;
      }
    }
    libc().close(kernel_fd);
  }
}

bool connect_in_process(int fd, const sockaddr* addr, socklen_t len, int* rc) noexcept {
  int family;
  if (!is_tcp(fd, &family) || int_option(fd, SOL_SOCKET, SO_ACCEPTCONN) != 0) {
    return false;
  }
  sockaddr_storage local{};
  socklen_t local_len = sizeof local;
  sockaddr_storage dst{};
  std::memcpy(&dst, addr, std::min<size_t>(len, sizeof dst));
  if (libc().getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) {
    return false;
  }
  if (reinterpret_cast<const sockaddr_in&>(local).sin_port == 0) {
    // Unbound: the kernel picks the port, so that the name is unique among both worlds.
    sockaddr_storage src = source_for(dst, family);
    if (libc().bind(fd, reinterpret_cast<sockaddr*>(&src), length_of(family)) != 0) {
      return false;
    }
    local_len = sizeof local;
    if (libc().getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) {
      return false;
    }
  }
  Inside inside;
  auto made = in_process_socket(fd, family);
  if (!made || !(*made)->bind(reinterpret_cast<sockaddr*>(&local), local_len)) {
    return false;
  }
  if (!install(fd, std::move(*made), cloexec(fd))) {
    return false;
  }
  Result<void> connected = table().connect(fd, addr, len);
  *rc = connected ? 0 : fail(connected.error());
  return true;
}

int accept_either(int fd, sockaddr* addr, socklen_t* len, int flags) noexcept {
  if ((flags & ~sys::kSocketFlags) != 0) {
    return fail(EINVAL);
  }
  Inside inside;
  Ref<File> listener = table().get(fd);
  if (!listener) {
    return fail(EBADF);
  }
  int kernel_fd = -1;
  int family = AF_INET;
  {
    std::lock_guard<std::mutex> guard(g_twins_mutex);
    if (Twin* t = find_twin(listener.get())) {
      kernel_fd = t->kernel_fd;
      family = t->family;
    }
  }
  const int new_flags = (flags & SOCK_NONBLOCK) != 0 ? O_NONBLOCK : 0;
  for (;;) {
    Result<Ref<File>> got = listener->accept(addr, len, new_flags, IoFlags{0, true});
    if (got) {
      // The accepted socket's number: a kernel socket of the same family as its reservation.
      const int number = libc().socket(family, SOCK_STREAM | (flags & SOCK_CLOEXEC), 0);
      if (number < 0) {
        return -1;  // EMFILE, ENFILE: the connection is lost (its peer sees a reset)
      }
      if (Result<void> placed = install(number, std::move(*got), (flags & SOCK_CLOEXEC) != 0);
          !placed) {
        libc().close(number);
        return fail(placed.error());
      }
      return number;
    }
    if (got.error() != EAGAIN || kernel_fd < 0) {
      return fail(got.error());
    }
    pollfd kernel{kernel_fd, POLLIN, 0};
    if (libc().poll(&kernel, 1, 0) > 0) {
      const int n = libc().accept4(fd, addr, len, flags);
      if (n >= 0 || errno != EAGAIN) {
        return n;
      }
    }
    if ((listener->status_flags() & O_NONBLOCK) != 0) {
      return fail(EAGAIN);
    }
    pollfd both[2] = {{fd, POLLIN, 0}, {kernel_fd, POLLIN, 0}};
    Result<int> ready =
        table().poll_with(both, 2, Timeout::none(), nullptr, Process::KernelFds::kPassThrough);
    if (!ready) {
      return fail(ready.error());
    }
  }
}

int listener_epoll_ctl(int epfd, int op, int fd, epoll_event* event) noexcept {
  Inside inside;
  Ref<File> twin = table().get(fd);
  const int kernel_fd = twin ? listener_kernel_fd(twin.get()) : -1;
  if (Result<void> r = table().epoll_ctl(epfd, op, fd, event); !r) {
    return fail(r.error());
  }
  if (kernel_fd < 0) {
    return 0;
  }
  if (Result<void> r = table().epoll_ctl_kernel(epfd, op, kernel_fd, event); !r) {
    if (op == EPOLL_CTL_ADD) {
      (void)table().epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nullptr);
    }
    return fail(r.error());
  }
  return 0;
}

int listener_kernel_fd(const File* twin) noexcept {
  std::lock_guard<std::mutex> guard(g_twins_mutex);
  const Twin* t = find_twin(twin);
  return t != nullptr ? t->kernel_fd : -1;
}

void listener_number_added(const File* twin) noexcept {
  std::lock_guard<std::mutex> guard(g_twins_mutex);
  if (Twin* t = find_twin(twin)) {
    ++t->numbers;
  }
}

void listener_number_gone(const File* twin) noexcept {
  int close_fd = -1;
  {
    std::lock_guard<std::mutex> guard(g_twins_mutex);
    for (auto it = g_twins.begin(); it != g_twins.end(); ++it) {
      if (it->twin == twin && --it->numbers == 0) {
        close_fd = it->kernel_fd;
        g_twins.erase(it);
        break;
      }
    }
  }
  if (close_fd >= 0) {
    sys::calls.forget_own_fd(close_fd);
    libc().close(close_fd);
  }
}

pid_t fork_keeping_listeners(pid_t (*fork)()) noexcept {
  pid_t pid;
  {
    std::lock_guard<std::mutex> guard(g_twins_mutex);  // no other thread in the middle of it
    pid = fork();
  }
  if (pid != 0) {
    return pid;
  }
  std::vector<int> numbers;
  try {
    table().fds().for_each([&](int fd, const Ref<File>&) {
      if (kind_of(fd) == Kind::kListener) {
        numbers.push_back(fd);
      }
    });
  } catch (const std::bad_alloc&) {
    // No memory to list them: the child keeps copies (docs/deviations.md).
  }
  Inside inside;
  for (int fd : numbers) {
    uninstall(fd);  // the last number closes the child's copy of the own descriptor
  }
  return 0;
}

}  // namespace uepoll::preload
