// Built against the installed package through find_package(uepoll) as C++20: the C API and the
// C++ API (a Process of its own, next to the global one behind the C API). Exit 0 on success.
#include <uepoll/uepoll.h>
#include <uepoll/process.hpp>

#include <sys/eventfd.h>  // EFD_NONBLOCK

#include <cerrno>
#include <cstdint>
#include <cstdio>

namespace {

int failures = 0;

void check(bool ok, const char* what, int line) {
  if (!ok) {
    std::fprintf(stderr, "consumer.cpp:%d: check failed: %s\n", line, what);
    ++failures;
  }
}
#define CHECK(cond) check((cond), #cond, __LINE__)

}  // namespace

int main() {
  // The C API: the global process.
  const int ep = uepoll_epoll_create1(0);
  const int efd = uepoll_eventfd(0, 0);
  CHECK(ep == 0 && efd == 1);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.fd = efd;
  CHECK(uepoll_epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) == 0);
  std::uint64_t one = 1;
  CHECK(uepoll_write(efd, &one, sizeof one) == static_cast<ssize_t>(sizeof one));
  epoll_event out[4]{};
  CHECK(uepoll_epoll_wait(ep, out, 4, 1000) == 1);
  CHECK(out[0].data.fd == efd && out[0].events == EPOLLIN);
  CHECK(uepoll::Process::global().get(efd).get() != nullptr);

  // The C++ API: a separate process has a table of its own, starting at 0 again.
  {
    uepoll::Process proc;
    uepoll::Result<int> pep = proc.epoll_create1(EPOLL_CLOEXEC);
    uepoll::Result<int> pefd = proc.eventfd(7, EFD_NONBLOCK);
    CHECK(pep.has_value() && *pep == 0);
    CHECK(pefd.has_value() && *pefd == 1);
    epoll_event pev{};
    pev.events = EPOLLIN;
    pev.data.u64 = 42;
    CHECK(proc.epoll_ctl(*pep, EPOLL_CTL_ADD, *pefd, &pev).has_value());
    epoll_event pout[2]{};
    uepoll::Result<int> n = proc.epoll_wait(*pep, pout, 2, 0);
    CHECK(n.has_value() && *n == 1 && pout[0].data.u64 == 42);
    std::uint64_t value = 0;
    uepoll::Result<size_t> r = proc.read(*pefd, &value, sizeof value);
    CHECK(r.has_value() && *r == sizeof value && value == 7);
    r = proc.read(*pefd, &value, sizeof value);
    CHECK(!r.has_value() && r.error() == EAGAIN);
    CHECK(proc.close(*pefd).has_value());
    CHECK(!proc.close(*pefd).has_value());
  }  // destroying the process closes its epoll instance

  CHECK(uepoll_close(efd) == 0 && uepoll_close(ep) == 0);
  if (failures != 0) {
    std::fprintf(stderr, "consumer: %d check(s) failed\n", failures);
    return 1;
  }
  std::printf("consumer: the C and C++ APIs work through find_package(uepoll)\n");
  return 0;
}
