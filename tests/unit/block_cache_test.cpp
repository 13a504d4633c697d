// The per-thread block cache (src/sync/block_cache.hpp): what it keeps, how much, for whom, and
// that the objects RCU frees in batches (items) really come back through it.
#include <gtest/gtest.h>
#include <sys/epoll.h>

#include <thread>
#include <vector>

#include "sync/block_cache.hpp"
#include "sync/rcu.hpp"
#include "uepoll/process.hpp"

namespace {

using uepoll::detail::block_alloc;
using uepoll::detail::block_free;
using uepoll::detail::blocks_cached;
using uepoll::detail::kBlocksCachedPerClass;

// Each test runs on a fresh thread, whose cache starts empty.
template <class Body>
void on_fresh_thread(Body body) {
  std::thread(body).join();
}

TEST(BlockCache, AFreedBlockIsTheNextOneOfItsSizeClass) {
  on_fresh_thread([] {
    void* small = block_alloc(40);
    void* medium = block_alloc(200);
    ASSERT_NE(small, nullptr);
    ASSERT_NE(medium, nullptr);
    block_free(small, 40);
    block_free(medium, 200);
    EXPECT_EQ(blocks_cached(128), 1);
    EXPECT_EQ(blocks_cached(256), 1);
    EXPECT_EQ(block_alloc(256), medium);  // the same class (129 - 256 bytes)
    EXPECT_EQ(block_alloc(128), small);   // and the other (up to 128)
    EXPECT_EQ(blocks_cached(128), 0);
    EXPECT_EQ(blocks_cached(256), 0);
    block_free(small, 128);
    block_free(medium, 256);
  });
}

TEST(BlockCache, LargerBlocksAreMallocsOwn) {
  on_fresh_thread([] {
    void* big = block_alloc(512);
    ASSERT_NE(big, nullptr);
    block_free(big, 512);
    EXPECT_EQ(blocks_cached(512), 0);
    EXPECT_EQ(blocks_cached(128) + blocks_cached(256), 0);
  });
}

TEST(BlockCache, KeepsNoMoreThanItsCapacity) {
  on_fresh_thread([] {
    std::vector<void*> blocks;
    for (int i = 0; i < kBlocksCachedPerClass + 100; ++i) {
      blocks.push_back(block_alloc(128));
    }
    for (void* b : blocks) {
      block_free(b, 128);
    }
    EXPECT_EQ(blocks_cached(128), kBlocksCachedPerClass);  // the rest went back to malloc
  });
}

// The items that DEL retires reach the cache of the thread that frees them after the grace
// period, and the next ADD allocates from it.
TEST(BlockCache, ItemsFreedAfterAGracePeriodComeBackAsItems) {
  on_fresh_thread([] {
    uepoll::Process p;
    const int ep = p.epoll_create1(0).value();
    const int fd = p.eventfd(0, 0).value();
    epoll_event ev{};
    ev.events = EPOLLIN;
    constexpr int kRounds = 100;
    for (int i = 0; i < kRounds; ++i) {
      ASSERT_TRUE(p.epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
      ASSERT_TRUE(p.epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr));
    }
    const int before = blocks_cached(128);
    uepoll::rcu::barrier();  // frees every retired object, on this thread
    const int freed = blocks_cached(128);
    EXPECT_GE(freed - before, kRounds);
    ASSERT_TRUE(p.epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
    EXPECT_EQ(blocks_cached(128), freed - 1);
    EXPECT_TRUE(p.close(fd));
    EXPECT_TRUE(p.close(ep));
  });
}

}  // namespace
