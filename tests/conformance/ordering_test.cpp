// Ready-list order: level-triggered items rotate, so that a small maxevents walks through every
// ready item; items left over by a short harvest come first next time.
//
// Notation: items 0..N-1 are eventfds registered in that order with data = index; "harvest k"
// is epoll_wait(maxevents k, timeout 0) and lists the data values it returns.
#include <sys/epoll.h>

#include <initializer_list>
#include <set>

#include "conformance.hpp"

namespace uepoll_conformance {
namespace {

class ReadyOrder : public Conformance {
 protected:
  // N eventfds with the given initial counters, registered LT|IN in order, data = index.
  void make_items(std::initializer_list<unsigned> initial, uint32_t mode = 0) {
    ep_ = make_epoll();
    uint64_t i = 0;
    for (unsigned v : initial) {
      items_.push_back(make_eventfd(v));
      add(ep_, items_.back(), EPOLLIN | mode, i++);
    }
  }
  std::vector<uint64_t> harvest(int k) {
    std::vector<uint64_t> out;
    for (const Ev& ev : wait(ep_, k, 0)) out.push_back(ev.data);
    return out;
  }

  Fd ep_;
  std::vector<Fd> items_;
};

using D = std::vector<uint64_t>;

// ep -LT-> 0..4, all ready ; harvest 1, six times
TEST_P(ReadyOrder, MaxeventsOneRotatesThroughEveryItem) {
  make_items({1, 1, 1, 1, 1});
  for (uint64_t round = 0; round < 6; ++round) {
    EXPECT_EQ(harvest(1), (D{round % 5})) << "round " << round;
  }
}

// ep -LT-> 0..4, all ready ; harvest 2, five times
TEST_P(ReadyOrder, LeftoversComeBeforeRequeuedItems) {
  make_items({1, 1, 1, 1, 1});
  EXPECT_EQ(harvest(2), (D{0, 1}));
  EXPECT_EQ(harvest(2), (D{2, 3}));
  EXPECT_EQ(harvest(2), (D{4, 0}));
  EXPECT_EQ(harvest(2), (D{1, 2}));
  EXPECT_EQ(harvest(2), (D{3, 4}));
}

// ep -LT-> 0..4, 0..3 ready ; harvest 1 ; 4 becomes ready ; harvest 8
TEST_P(ReadyOrder, NewlyReadyItemQueuesBehindRequeuedOnes) {
  make_items({1, 1, 1, 1, 0});
  EXPECT_EQ(harvest(1), (D{0}));
  write_u64(items_[4], 1);
  EXPECT_EQ(harvest(8), (D{1, 2, 3, 0, 4}));
}

// ep -LT-> 0..2, all ready ; harvest 1 ; 1 stops being ready ; harvest 1 four times
TEST_P(ReadyOrder, ItemsThatStopBeingReadyDropOut) {
  make_items({1, 1, 1});
  EXPECT_EQ(harvest(1), (D{0}));
  EXPECT_EQ(read_u64(items_[1]), 1U);
  EXPECT_EQ(harvest(1), (D{2}));
  EXPECT_EQ(harvest(1), (D{0}));
  EXPECT_EQ(harvest(1), (D{2}));
  EXPECT_EQ(harvest(8), (D{0, 2}));
}

// ep -LT-> 0, ep -ET-> 1, ep -LT-> 2, all ready ; harvest 1 repeatedly
TEST_P(ReadyOrder, EdgeTriggeredItemsAreNotRequeued) {
  ep_ = make_epoll();
  for (uint64_t i = 0; i < 3; ++i) {
    items_.push_back(make_eventfd(1));
    add(ep_, items_.back(), EPOLLIN | (i == 1 ? uint32_t{EPOLLET} : 0U), i);
  }
  EXPECT_EQ(harvest(1), (D{0}));
  EXPECT_EQ(harvest(1), (D{1}));
  EXPECT_EQ(harvest(1), (D{2}));
  EXPECT_EQ(harvest(1), (D{0}));
  EXPECT_EQ(harvest(1), (D{2}));
  EXPECT_EQ(harvest(8), (D{0, 2}));
}

// ep -LT-> 0..5, ready in the order 3, 1, 5 (by writes after ADD)
TEST_P(ReadyOrder, FirstReadyFirstReported) {
  make_items({0, 0, 0, 0, 0, 0});
  write_u64(items_[3], 1);
  write_u64(items_[1], 1);
  write_u64(items_[5], 1);
  write_u64(items_[3], 1);  // already queued: no second entry, no move
  EXPECT_EQ(harvest(8), (D{3, 1, 5}));
  EXPECT_EQ(harvest(8), (D{3, 1, 5}));
}

// ep -LT-> 0..63, all ready ; harvest 16 four times, then 64
TEST_P(ReadyOrder, NeverMoreThanMaxeventsAndNoDuplicates) {
  ep_ = make_epoll();
  for (uint64_t i = 0; i < 64; ++i) {
    items_.push_back(make_eventfd(1));
    add(ep_, items_.back(), EPOLLIN, i);
  }
  std::vector<int> seen(64, 0);
  for (int round = 0; round < 4; ++round) {
    const D got = harvest(16);
    ASSERT_EQ(got.size(), 16U);
    for (uint64_t d : got) ++seen[d];
  }
  for (int i = 0; i < 64; ++i) EXPECT_EQ(seen[static_cast<size_t>(i)], 1) << "item " << i;
  const D all = harvest(64);
  EXPECT_EQ(all.size(), 64U);
  EXPECT_EQ(std::set<uint64_t>(all.begin(), all.end()).size(), 64U);
}

}  // namespace

UEPOLL_CONFORMANCE_SUITE(ReadyOrder);

}  // namespace uepoll_conformance
