// The built-in pollable objects. Each is an ordinary File subclass written against the public
// interface of file.hpp, wait_queue.hpp and blocking.hpp, like a user's own object would be.
//
// Readiness follows Linux (see docs/deviations.md for the few differences):
//   eventfd      EPOLLIN while the counter is non-zero, EPOLLOUT while it is below 2^64-2.
//   pipe         65536-byte capacity; EPOLLOUT when a 4096-byte page is free; writers gone ->
//                EPOLLHUP on the read end; readers gone -> EPOLLERR on the write end, EPIPE and
//                SIGPIPE on write.
//   socketpair   AF_UNIX stream: EPOLLRDHUP after the peer's SHUT_WR, EPOLLHUP once both
//                directions are shut.
//   socket       in-process AF_INET/AF_INET6 streams over a private loopback address space.
#pragma once

#include "uepoll/file.hpp"
#include "uepoll/ref.hpp"
#include "uepoll/result.hpp"

namespace uepoll {

/// eventfd(initval, flags): flags EFD_SEMAPHORE | EFD_NONBLOCK (EFD_CLOEXEC is the table's).
Result<Ref<File>> make_eventfd(unsigned int initval, int flags) noexcept;

struct FilePair {
  Ref<File> first;
  Ref<File> second;
};

/// pipe2(): first is the read end, second the write end; flags may hold O_NONBLOCK.
Result<FilePair> make_pipe(int flags) noexcept;

/// socketpair(AF_UNIX, SOCK_STREAM, 0): two connected ends; flags may hold O_NONBLOCK.
Result<FilePair> make_unix_stream_pair(int flags) noexcept;

/// socket(domain, SOCK_STREAM, 0) for AF_INET / AF_INET6; flags may hold O_NONBLOCK.
Result<Ref<File>> make_inet_stream_socket(int domain, int flags) noexcept;

}  // namespace uepoll
