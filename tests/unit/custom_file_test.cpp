// A user's own File plugged in through the public interface: readiness, wake-ups, EPERM for an
// object that cannot be polled, and blocking through Waiter.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "uepoll/blocking.hpp"
#include "uepoll/file.hpp"
#include "uepoll/process.hpp"

namespace {

// Readable while `ready` is set; every ring() is a wake-up.
class Bell final : public uepoll::File {
 public:
  Bell() : File(O_RDWR) {}
  uepoll::PollMask poll(uepoll::PollTable* table) noexcept override {
    uepoll::poll_wait(table, queue_);
    return ready_.load() ? uepoll::PollMask{EPOLLIN} : 0;
  }
  uepoll::Result<size_t> read(void*, size_t, uepoll::IoFlags flags) noexcept override {
    for (uepoll::Waiter waiter;;) {
      if (ready_.exchange(false)) {
        return size_t{0};
      }
      if (flags.dont_wait()) {
        return uepoll::Error{EAGAIN};
      }
      waiter.arm(queue_);
      if (ready_.exchange(false)) {
        return size_t{0};
      }
      if (auto slept = waiter.sleep(); !slept) {
        return uepoll::Error{slept.error()};
      }
    }
  }
  void ring() {
    ready_.store(true);
    queue_.wake(EPOLLIN);
  }

 private:
  uepoll::WaitQueue queue_;
  std::atomic<bool> ready_{false};
};

// A file epoll may not watch (a regular file, on Linux).
class Unpollable final : public uepoll::File {
 public:
  Unpollable() : File(O_RDONLY) {}
  uepoll::PollMask poll(uepoll::PollTable*) noexcept override { return EPOLLIN | EPOLLOUT; }
  bool pollable() const noexcept override { return false; }
};

TEST(CustomFile, EdgeTriggeredItemFiresOnEveryRing) {
  uepoll::Process p;
  auto bell = uepoll::make_ref<Bell>();
  Bell* raw = bell.get();
  int fd = p.install(uepoll::Ref<uepoll::File>(std::move(bell))).value();
  int ep = p.epoll_create1(0).value();
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ASSERT_TRUE(p.epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
  epoll_event out[1];
  EXPECT_EQ(p.epoll_wait(ep, out, 1, 0).value(), 0);
  raw->ring();
  EXPECT_EQ(p.epoll_wait(ep, out, 1, 0).value(), 1);
  EXPECT_EQ(p.epoll_wait(ep, out, 1, 0).value(), 0);
  raw->ring();  // still readable, but a new wake-up: a new edge
  EXPECT_EQ(p.epoll_wait(ep, out, 1, 0).value(), 1);
}

TEST(CustomFile, UnpollableTargetIsEpermBeforeEinval) {
  uepoll::Process p;
  int fd = p.install(uepoll::make_ref<Unpollable>()).value();
  int other = p.install(uepoll::make_ref<Unpollable>()).value();
  int ep = p.epoll_create1(0).value();
  epoll_event ev{};
  ev.events = EPOLLIN;
  EXPECT_EQ(p.epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev).error(), EPERM);
  // The target is checked before whether epfd is an epoll instance.
  EXPECT_EQ(p.epoll_ctl(other, EPOLL_CTL_ADD, fd, &ev).error(), EPERM);
  EXPECT_EQ(p.epoll_ctl(fd, EPOLL_CTL_ADD, ep, &ev).error(), EINVAL);
}

TEST(CustomFile, BlockingReadWokenByAnotherThread) {
  uepoll::Process p;
  auto bell = uepoll::make_ref<Bell>();
  Bell* raw = bell.get();
  int fd = p.install(uepoll::Ref<uepoll::File>(std::move(bell))).value();
  std::thread ringer([raw] { raw->ring(); });
  char c;
  EXPECT_EQ(p.read(fd, &c, 1).value(), 0u);  // returns once rung, whenever that happens
  ringer.join();
}

}  // namespace
