// The interposed data calls: read, write, their vector and socket forms, glibc's FORTIFY
// checks of them (__read_chk, ...), eventfd_read and eventfd_write, and sendfile. The callers
// of read(), write() and recv() are here with them, so that the calls bind directly
// (interpose.cpp).
#undef _FORTIFY_SOURCE
#include <errno.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include "preload/libc.hpp"
#include "preload/preload.hpp"
#include "preload/reentry.hpp"

namespace uepoll::preload {
namespace {

// readv/writev and the msghdr calls on uepoll descriptors go through one buffer.
struct Gathered {
  std::unique_ptr<char[]> buf;
  size_t len = 0;
};

Result<size_t> total_length(const iovec* iov, int iovcnt) noexcept {
  if (iovcnt < 0 || iovcnt > IOV_MAX) {
    return Error{EINVAL};
  }
  size_t total = 0;
  for (int i = 0; i < iovcnt; ++i) {
    if (iov[i].iov_len > static_cast<size_t>(SSIZE_MAX) - total) {
      return Error{EINVAL};
    }
    total += iov[i].iov_len;
  }
  return total;
}

// A buffer as long as the whole vector: EINVAL for a vector Linux refuses, or ENOMEM.
Result<Gathered> buffer_for(const iovec* iov, int iovcnt) noexcept {
  Result<size_t> total = total_length(iov, iovcnt);
  if (!total) {
    return Error{total.error()};
  }
  Gathered g{std::unique_ptr<char[]>(new (std::nothrow) char[*total > 0 ? *total : 1]), *total};
  if (!g.buf) {
    return Error{ENOMEM};
  }
  return g;
}

template <class Read>
ssize_t scatter_read(const iovec* iov, int iovcnt, Read&& read) noexcept {
  Result<Gathered> g = buffer_for(iov, iovcnt);
  if (!g) {
    return fail(g.error());
  }
  Result<size_t> got = read(g->buf.get(), g->len);
  if (!got) {
    return fail(got.error());
  }
  size_t off = 0;
  for (int i = 0; i < iovcnt && off < *got; ++i) {
    const size_t n = std::min(iov[i].iov_len, *got - off);
    std::memcpy(iov[i].iov_base, g->buf.get() + off, n);
    off += n;
  }
  return static_cast<ssize_t>(*got);
}

template <class Write>
ssize_t gather_write(const iovec* iov, int iovcnt, Write&& write) noexcept {
  Result<Gathered> g = buffer_for(iov, iovcnt);
  if (!g) {
    return fail(g.error());
  }
  size_t off = 0;
  for (int i = 0; i < iovcnt; ++i) {
    std::memcpy(g->buf.get() + off, iov[i].iov_base, iov[i].iov_len);
    off += iov[i].iov_len;
  }
  return errno_of_size(write(g->buf.get(), g->len));
}

// A write from a signal handler that interrupted uepoll code on this thread: queued, done when
// the thread holds nothing (reentry.hpp). Reports the whole write done, as Linux would.
ssize_t queue_for_handler(int fd, const void* buf, size_t count, int send_flags) noexcept {
  if (count > 0 && buf == nullptr) {
    return fail(EFAULT);
  }
  return queue_write(fd, buf, count, send_flags) ? static_cast<ssize_t>(count) : fail(EAGAIN);
}

// The same for writev/sendmsg: small vectors only, gathered on the stack.
ssize_t queue_vector_for_handler(int fd, const iovec* iov, int iovcnt, int send_flags) noexcept {
  char buf[64];
  size_t len = 0;
  for (int i = 0; i < iovcnt; ++i) {
    if (iov[i].iov_len > sizeof buf - len) {
      return fail(EAGAIN);
    }
    std::memcpy(buf + len, iov[i].iov_base, iov[i].iov_len);
    len += iov[i].iov_len;
  }
  return queue_for_handler(fd, buf, len, send_flags);
}

}  // namespace
}  // namespace uepoll::preload

using namespace uepoll::preload;  // NOLINT: the C functions below are this file's whole point
using uepoll::Result;

extern "C" {

ssize_t read(int fd, void* buf, size_t count) {
  if (ours(fd)) {
    Inside inside;
    return errno_of_size(table().read(fd, buf, count));
  }
  return libc().read(fd, buf, count);
}

ssize_t write(int fd, const void* buf, size_t count) {
  if (ours(fd)) {
    if (interrupted_inside()) {
      return queue_for_handler(fd, buf, count, -1);
    }
    Inside inside;
    return errno_of_size(table().write(fd, buf, count));
  }
  return libc().write(fd, buf, count);
}

ssize_t readv(int fd, const struct iovec* iov, int iovcnt) {
  if (!ours(fd)) {
    return libc().readv(fd, iov, iovcnt);
  }
  Inside inside;
  return scatter_read(iov, iovcnt, [&](void* buf, size_t n) { return table().read(fd, buf, n); });
}

ssize_t writev(int fd, const struct iovec* iov, int iovcnt) {
  if (!ours(fd)) {
    return libc().writev(fd, iov, iovcnt);
  }
  if (interrupted_inside()) {
    return iovcnt < 0 ? fail(EINVAL) : queue_vector_for_handler(fd, iov, iovcnt, -1);
  }
  Inside inside;
  return gather_write(iov, iovcnt,
                      [&](const void* buf, size_t n) { return table().write(fd, buf, n); });
}

ssize_t recv(int fd, void* buf, size_t len, int flags) {
  if (ours(fd)) {
    Inside inside;
    return errno_of_size(table().recv(fd, buf, len, flags));
  }
  return libc().recv(fd, buf, len, flags);
}

ssize_t send(int fd, const void* buf, size_t len, int flags) {
  if (ours(fd)) {
    if (interrupted_inside()) {
      return queue_for_handler(fd, buf, len, flags);
    }
    Inside inside;
    return errno_of_size(table().send(fd, buf, len, flags));
  }
  return libc().send(fd, buf, len, flags);
}

ssize_t recvfrom(int fd, void* buf, size_t len, int flags, struct sockaddr* addr,
                 socklen_t* addrlen) {
  if (!ours(fd)) {
    return libc().recvfrom(fd, buf, len, flags, addr, addrlen);
  }
  Inside inside;
  if (addr != nullptr && addrlen != nullptr) {
    *addrlen = 0;  // a connected stream reports no source address
  }
  return errno_of_size(table().recv(fd, buf, len, flags));
}

ssize_t sendto(int fd, const void* buf, size_t len, int flags, const struct sockaddr* addr,
               socklen_t addrlen) {
  if (!ours(fd)) {
    return libc().sendto(fd, buf, len, flags, addr, addrlen);
  }
  if (addr != nullptr) {
    return fail(EISCONN);  // a connected stream socket takes no destination
  }
  if (interrupted_inside()) {
    return queue_for_handler(fd, buf, len, flags);
  }
  Inside inside;
  return errno_of_size(table().send(fd, buf, len, flags));
}

ssize_t recvmsg(int fd, struct msghdr* msg, int flags) {
  if (!ours(fd)) {
    return libc().recvmsg(fd, msg, flags);
  }
  Inside inside;
  msg->msg_namelen = 0;
  msg->msg_controllen = 0;
  msg->msg_flags = 0;
  return scatter_read(msg->msg_iov, static_cast<int>(msg->msg_iovlen),
                      [&](void* buf, size_t n) { return table().recv(fd, buf, n, flags); });
}

ssize_t sendmsg(int fd, const struct msghdr* msg, int flags) {
  if (!ours(fd)) {
    return libc().sendmsg(fd, msg, flags);
  }
  if (msg->msg_controllen != 0) {
    return fail(EOPNOTSUPP);  // descriptors and credentials: docs/deviations.md
  }
  if (interrupted_inside()) {
    return queue_vector_for_handler(fd, msg->msg_iov, static_cast<int>(msg->msg_iovlen), flags);
  }
  Inside inside;
  return gather_write(msg->msg_iov, static_cast<int>(msg->msg_iovlen),
                      [&](const void* buf, size_t n) { return table().send(fd, buf, n, flags); });
}

ssize_t __read_chk(int fd, void* buf, size_t count, size_t buflen) {
  if (count > buflen) {
    std::abort();  // what glibc's __chk_fail does, without its message
  }
  return read(fd, buf, count);
}

ssize_t __recv_chk(int fd, void* buf, size_t len, size_t buflen, int flags) {
  if (len > buflen) {
    std::abort();
  }
  return recv(fd, buf, len, flags);
}

ssize_t __recvfrom_chk(int fd, void* buf, size_t len, size_t buflen, int flags,
                       struct sockaddr* addr, socklen_t* addrlen) {
  if (len > buflen) {
    std::abort();
  }
  return recvfrom(fd, buf, len, flags, addr, addrlen);
}

// glibc's eventfd wrappers, here beside the read() and write() they call (bound directly).
int eventfd_read(int fd, eventfd_t* value) {
  return read(fd, value, sizeof *value) == static_cast<ssize_t>(sizeof *value) ? 0 : -1;
}

int eventfd_write(int fd, eventfd_t value) {
  return write(fd, &value, sizeof value) == static_cast<ssize_t>(sizeof value) ? 0 : -1;
}

// sendfile() into a uepoll socket or pipe: through a buffer, as much as the destination takes
// (the input must be a kernel file that can be read, as Linux requires it to be mmap-able).
static ssize_t sendfile_into_uepoll(int out, int in, off_t* offset, size_t count) noexcept {
  constexpr size_t kChunk = 65536;
  std::unique_ptr<char[]> buf(new (std::nothrow) char[kChunk]);
  if (!buf) {
    return fail(ENOMEM);
  }
  size_t done = 0;
  while (done < count) {
    const size_t want = std::min(kChunk, count - done);
    const ssize_t got =
        offset != nullptr ? pread(in, buf.get(), want, *offset) : libc().read(in, buf.get(), want);
    if (got <= 0) {
      return done > 0 ? static_cast<ssize_t>(done) : got;
    }
    Result<size_t> put = table().write(out, buf.get(), static_cast<size_t>(got));
    const size_t taken = put ? *put : 0;
    if (offset != nullptr) {
      *offset += static_cast<off_t>(taken);
    } else if (taken < static_cast<size_t>(got)) {
      lseek(in, -static_cast<off_t>(static_cast<size_t>(got) - taken), SEEK_CUR);  // unread
    }
    done += taken;
    if (!put) {
      return done > 0 ? static_cast<ssize_t>(done) : fail(put.error());
    }
    if (taken < static_cast<size_t>(got)) {
      break;  // the destination is full (non-blocking) or a signal came
    }
  }
  return static_cast<ssize_t>(done);
}

ssize_t sendfile(int out, int in, off_t* offset, size_t count) {
  if (!ours(out) && !ours(in)) {
    return libc().sendfile(out, in, offset, count);
  }
  if (ours(in)) {
    return fail(EINVAL);  // a pipe, socket or eventfd is no file to send from
  }
  Inside inside;
  return sendfile_into_uepoll(out, in, offset, count);
}

ssize_t sendfile64(int out, int in, off64_t* offset, size_t count) {
  static_assert(sizeof(off64_t) == sizeof(off_t));
  return sendfile(out, in, reinterpret_cast<off_t*>(offset), count);
}

}  // extern "C"
