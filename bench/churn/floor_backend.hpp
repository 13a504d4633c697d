// The churn benchmark's floor: the same loop on a backend that does only what any user-space
// epoll must do per cycle, with nothing else: three allocations for the pair (its state and two
// ends) and one for the item, two descriptor slots, the locks a cycle needs uncontended (the
// instance's, each end's, the ready list's) and reference counts on the close path. No nesting,
// no wait queue, no RCU, no error checks beyond the loop's own. It runs in the same process and
// run as the real modes, so "uepoll is N times the floor" compares like with like.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <new>
#include <vector>

namespace uepoll_bench {

class FloorBackend {
 public:
  static constexpr const char* kName = "floor";

  int epoll_create1(int) { return take_slot(&instance_); }

  int socketpair(int, int, int, int sv[2]) {
    Pair* pair = new (std::nothrow) Pair;
    End* a = new (std::nothrow) End;
    End* b = new (std::nothrow) End;
    if (pair == nullptr || a == nullptr || b == nullptr) {
      delete pair;
      delete a;
      delete b;
      errno = ENOMEM;
      return -1;
    }
    a->pair = b->pair = pair;
    a->peer = b;
    b->peer = a;
    sv[0] = take_slot(a);
    sv[1] = take_slot(b);
    return 0;
  }
  int pipe2(int fds[2], int) { return socketpair(0, 0, 0, fds); }

  int epoll_ctl(int, int, int fd, epoll_event* ev) {
    End* end = static_cast<End*>(slots_[static_cast<std::size_t>(fd)]);
    Item* item = new (std::nothrow) Item{end, *ev, false};
    if (item == nullptr) {
      errno = ENOMEM;
      return -1;
    }
    Guard instance(instance_.lock);
    Guard object(end->lock);
    end->item = item;
    end->refs.fetch_add(1, std::memory_order_relaxed);  // the item's pin, as a watch holds one
    return 0;
  }

  ssize_t write(int fd, const void* buf, size_t) {
    End* end = static_cast<End*>(slots_[static_cast<std::size_t>(fd)]);
    End* peer = end->peer;
    Item* ready = nullptr;
    {
      Guard object(peer->lock);
      peer->byte = *static_cast<const char*>(buf);
      peer->queued = true;
      ready = peer->item;
    }
    if (ready != nullptr) {
      Guard list(instance_.ready_lock);
      if (!ready->queued) {
        ready->queued = true;
        instance_.ready.push_back(ready);
      }
    }
    return 1;
  }

  int epoll_wait(int, epoll_event* events, int, int) {
    Guard list(instance_.ready_lock);
    if (instance_.ready.empty()) {
      return 0;
    }
    Item* item = instance_.ready.back();
    instance_.ready.pop_back();
    item->queued = false;
    events[0] = item->event;
    return 1;
  }

  ssize_t read(int fd, void* buf, size_t) {
    End* end = static_cast<End*>(slots_[static_cast<std::size_t>(fd)]);
    Guard object(end->lock);
    *static_cast<char*>(buf) = end->byte;
    end->queued = false;
    return 1;
  }

  int close(int fd) {
    if (fd == 0) {
      return 0;  // the instance: lives as long as the backend
    }
    End* end = static_cast<End*>(slots_[static_cast<std::size_t>(fd)]);
    slots_[static_cast<std::size_t>(fd)] = nullptr;
    free_.push_back(fd);
    if (Item* item = end->item) {  // the release path: remove the item, drop its pin
      Guard instance(instance_.lock);
      Guard object(end->lock);
      end->item = nullptr;
      delete item;
      end->refs.fetch_sub(1, std::memory_order_acq_rel);
    }
    if (end->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      Pair* pair = end->pair;
      if (end->peer != nullptr) {
        end->peer->peer = nullptr;
      }
      delete end;
      if (pair->ends.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        delete pair;
      }
    }
    return 0;
  }

 private:
  struct Lock {
    std::atomic<bool> held{false};
  };
  class Guard {
   public:
    explicit Guard(Lock& l) : l_(l) {
      while (l_.held.exchange(true, std::memory_order_acquire)) {
      }
    }
    ~Guard() { l_.held.store(false, std::memory_order_release); }

   private:
    Lock& l_;
  };
  struct Pair {
    std::atomic<int> ends{2};
  };
  struct Item;
  struct End {
    Lock lock;
    std::atomic<int> refs{1};
    Pair* pair = nullptr;
    End* peer = nullptr;
    Item* item = nullptr;
    char byte = 0;
    bool queued = false;
  };
  struct Item {
    End* end;
    epoll_event event;
    bool queued;
  };
  struct Instance {
    Lock lock;
    Lock ready_lock;
    std::vector<Item*> ready;
  };

  int take_slot(void* object) {
    if (!free_.empty()) {
      const int fd = free_.back();
      free_.pop_back();
      slots_[static_cast<std::size_t>(fd)] = object;
      return fd;
    }
    slots_.push_back(object);
    return static_cast<int>(slots_.size() - 1);
  }

  Instance instance_;
  std::vector<void*> slots_;
  std::vector<int> free_;
};

}  // namespace uepoll_bench
