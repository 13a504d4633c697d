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

#include <sys/types.h>

#include <cstdint>

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

/// True when an in-process listener would take a connect() to `addr` (a loopback or wildcard
/// AF_INET/AF_INET6 address) now.
bool inet_listener_at(const sockaddr* addr, socklen_t len) noexcept;

/// The operations of a C plug-in object (uepoll_file_create); see uepoll.h.
struct PluginOps {
  std::uint32_t (*poll)(void* priv);
  ssize_t (*read)(void* priv, void* buf, size_t n);
  ssize_t (*write)(void* priv, const void* buf, size_t n);
  void (*release)(void* priv);
};

/// A C plug-in object; `flags` may hold O_NONBLOCK. `ops.release` runs at the last reference
/// only once the object has been adopted (a failed install does not hand it back to the caller).
Result<Ref<File>> make_plugin_file(const PluginOps& ops, void* priv, int flags) noexcept;
/// Marks a plug-in object as the caller's (its release callback will run) and returns the
/// handle for plugin_file_notify.
void* plugin_file_adopted(File& plugin) noexcept;
/// uepoll_file_notify: wakes the object's waiters with `events` (0: anything may have changed).
/// Safe at any time: racing the last close, or after it (then at worst a spurious wake-up of
/// a newer object that reuses the handle).
void plugin_file_notify(void* handle, std::uint32_t events) noexcept;

}  // namespace uepoll
