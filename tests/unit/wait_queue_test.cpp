// WaitQueue: entry order and the exclusive wake-one protocol.
#include "uepoll/wait_queue.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace {

struct Recorder : uepoll::WaitEntry {
  int id = 0;
  bool consume = true;
  std::vector<int>* log = nullptr;
};

bool record(uepoll::WaitEntry& e, uepoll::PollMask) noexcept {
  auto& r = static_cast<Recorder&>(e);
  r.log->push_back(r.id);
  return r.consume;
}

void init(Recorder& r, int id, bool exclusive, std::vector<int>* log, bool consume = true) {
  r.on_wake = &record;
  r.exclusive = exclusive;
  r.id = id;
  r.log = log;
  r.consume = consume;
}

TEST(WaitQueue, NewestSharedEntryFirstExclusiveAtTheTail) {
  std::vector<int> log;
  uepoll::WaitQueue q;
  Recorder a;
  init(a, 1, false, &log);
  Recorder b;
  init(b, 2, true, &log);
  Recorder c;
  init(c, 3, false, &log);
  Recorder d;
  init(d, 4, true, &log);
  q.add(a);
  q.add(b);
  q.add(c);
  q.add(d);
  q.wake(EPOLLIN);
  // Shared entries newest first, then exclusive ones in order until one consumes.
  EXPECT_EQ(log, (std::vector<int>{3, 1, 2}));
  uepoll::WaitQueue::remove(a);
  uepoll::WaitQueue::remove(b);
  uepoll::WaitQueue::remove(c);
  uepoll::WaitQueue::remove(d);
  EXPECT_FALSE(q.has_entries());
}

TEST(WaitQueue, ExclusiveEntryThatDoesNotConsumePassesTheWakeOn) {
  std::vector<int> log;
  uepoll::WaitQueue q;
  Recorder idle;
  init(idle, 1, true, &log, /*consume=*/false);
  Recorder busy;
  init(busy, 2, true, &log);
  Recorder last;
  init(last, 3, true, &log);
  q.add(idle);
  q.add(busy);
  q.add(last);
  q.wake(0);
  EXPECT_EQ(log, (std::vector<int>{1, 2}));
  uepoll::WaitQueue::remove(busy);
  uepoll::WaitQueue::remove(busy);  // a second remove is a no-op
  log.clear();
  q.wake(0);
  EXPECT_EQ(log, (std::vector<int>{1, 3}));
  uepoll::WaitQueue::remove(idle);
  uepoll::WaitQueue::remove(last);
}

}  // namespace
