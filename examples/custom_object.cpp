// custom_object: a pollable object written outside uepoll, end to end.
//
// uepoll's own objects (eventfd, pipes, sockets) are ordinary subclasses of uepoll::File; a user's
// object is written the same way and then behaves like any other descriptor: epoll can watch it
// (level- or edge-triggered, nested, EPOLLONESHOT, ...), poll() can wait on it, read()/write()
// reach it, dup()/close() manage it.
//
// The object here is MessageQueue, a bounded in-process queue of whole messages:
//   - write() queues one message (at most kMaxMessage bytes; EAGAIN or blocking when full);
//   - read() takes the oldest message whole (a short buffer truncates it, like a datagram) and
//     blocks while the queue is empty, unless the descriptor is non-blocking (then EAGAIN);
//   - hang_up() is the producer's end of stream: later writes fail with EPIPE and read() returns
//     0 once the queue is drained;
//   - readiness: EPOLLIN while a message is queued, EPOLLOUT while there is room, EPOLLHUP after
//     hang_up().
//
// What the program does (and checks; it exits 0 only if every check passed):
//   1. installs a MessageQueue in a uepoll::Process and watches it from two epoll instances, one
//      level-triggered and one edge-triggered, and shows how the two report the same writes;
//   2. feeds it from a producer thread while the main thread runs an edge-triggered event loop
//      that drains it with non-blocking reads, until the producer hangs up;
//   3. closes the descriptor: the epoll registrations go with the last reference to the object,
//      not with the descriptor, as on Linux;
//   4. blocks in read() (uepoll::Waiter) until another thread writes;
//   5. in UEPOLL_STATS builds, checks that no object is left behind.
#include <fcntl.h>
#include <sys/epoll.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <new>
#include <string>
#include <string_view>
#include <thread>

#include "uepoll/blocking.hpp"    // Waiter: blocking the calling thread on a WaitQueue
#include "uepoll/file.hpp"        // File, PollTable, poll_wait, IoFlags
#include "uepoll/process.hpp"     // Process: a descriptor table and the system calls
#include "uepoll/ref.hpp"         // Ref<T>, make_ref<T>
#include "uepoll/result.hpp"      // Result<T>, Error
#include "uepoll/stats.hpp"       // live-object counts (UEPOLL_STATS builds)
#include "uepoll/sync.hpp"        // Mutex, MutexLock
#include "uepoll/wait_queue.hpp"  // WaitQueue, PollMask

namespace {

// ------------------------------------------------------------------------------------------------
// The object
// ------------------------------------------------------------------------------------------------

class MessageQueue final : public uepoll::File {
 public:
  static constexpr std::size_t kCapacity = 16;     // messages queued at most
  static constexpr std::size_t kMaxMessage = 256;  // bytes per message

  // A message queue can be read and written through the same descriptor; `status_flags` may
  // hold O_NONBLOCK (fcntl(F_SETFL) changes it later, File keeps it).
  explicit MessageQueue(int status_flags = 0) noexcept : File(O_RDWR, status_flags) {}

  // The heart of a pollable object. Two rules:
  //  - hook the caller on every queue whose wake-ups can change the result, *before* looking
  //    at the state, so that a change between the two is never missed;
  //  - never block: epoll calls this with its own mutex held. Taking the object's own short
  //    lock is fine.
  uepoll::PollMask poll(uepoll::PollTable* table) noexcept override {
    uepoll::poll_wait(table, queue_);
    uepoll::MutexLock lock(mu_);
    uepoll::PollMask mask = 0;
    if (!messages_.empty()) {
      mask |= EPOLLIN | EPOLLRDNORM;
    }
    if (hung_up_) {
      mask |= EPOLLHUP;  // like a pipe whose writers are gone (reported even if not asked for)
    } else if (messages_.size() < kCapacity) {
      mask |= EPOLLOUT | EPOLLWRNORM;
    }
    return mask;
  }

  // read(): the Waiter pattern of blocking.hpp. Try; if the caller may not wait, fail with
  // EAGAIN; otherwise hook the waiter on the queue, try once more (a message may have arrived
  // in between), then sleep until a wake-up or a signal (EINTR, as Linux does).
  uepoll::Result<size_t> read(void* buf, size_t count, uepoll::IoFlags flags) noexcept override {
    for (uepoll::Waiter waiter;;) {
      if (auto r = try_take(buf, count); r || r.error() != EAGAIN || flags.dont_wait()) {
        return r;
      }
      waiter.arm(queue_);
      if (auto r = try_take(buf, count); r || r.error() != EAGAIN) {
        return r;
      }
      if (uepoll::Result<void> slept = waiter.sleep(); !slept) {
        return uepoll::Error{slept.error()};
      }
    }
  }

  uepoll::Result<size_t> write(const void* buf, size_t count,
                               uepoll::IoFlags flags) noexcept override {
    if (count > kMaxMessage) {
      return uepoll::Error{EMSGSIZE};
    }
    for (uepoll::Waiter waiter;;) {
      if (auto r = try_put(buf, count); r || r.error() != EAGAIN || flags.dont_wait()) {
        return r;
      }
      waiter.arm(queue_);
      if (auto r = try_put(buf, count); r || r.error() != EAGAIN) {
        return r;
      }
      if (uepoll::Result<void> slept = waiter.sleep(); !slept) {
        return uepoll::Error{slept.error()};
      }
    }
  }

  // The producer's end of stream (an object-specific operation, called through a Ref that the
  // producer keeps; descriptors are not the only way to reach an object).
  void hang_up() noexcept {
    {
      uepoll::MutexLock lock(mu_);
      hung_up_ = true;
    }
    // Wake with the bits that changed, after dropping the lock: epoll items filter the key by
    // their interest mask (EPOLLHUP always passes), blocked readers and writers re-check.
    queue_.wake(EPOLLIN | EPOLLHUP);
  }

 private:
  // Only File::put() may destroy the object (after an RCU grace period): keep it private.
  ~MessageQueue() override = default;

  uepoll::Result<size_t> try_take(void* buf, size_t count) noexcept {
    std::string message;
    {
      uepoll::MutexLock lock(mu_);
      if (messages_.empty()) {
        return hung_up_ ? uepoll::Result<size_t>(size_t{0}) : uepoll::Error{EAGAIN};
      }
      message = std::move(messages_.front());
      messages_.pop_front();
    }
    // Every change of state wakes the queue with its bits: a slot is free.
    queue_.wake(EPOLLOUT | EPOLLWRNORM);
    const size_t n = message.size() < count ? message.size() : count;
    std::memcpy(buf, message.data(), n);
    return n;
  }

  uepoll::Result<size_t> try_put(const void* buf, size_t count) noexcept {
    try {
      std::string message(static_cast<const char*>(buf), count);  // allocate outside the lock
      {
        uepoll::MutexLock lock(mu_);
        if (hung_up_) {
          return uepoll::Error{EPIPE};
        }
        if (messages_.size() >= kCapacity) {
          return uepoll::Error{EAGAIN};
        }
        messages_.push_back(std::move(message));
      }
    } catch (const std::bad_alloc&) {
      return uepoll::Error{ENOMEM};  // the C++ API never throws
    }
    // Every write wakes the readers, whether or not the queue was empty before: an
    // edge-triggered watcher sees one edge per message, as with Linux's pipes and eventfds.
    queue_.wake(EPOLLIN | EPOLLRDNORM);
    return count;
  }

  uepoll::WaitQueue queue_;  // readers, writers, epoll items and poll() callers hook here
  uepoll::Mutex mu_;         // may be held in poll(), never across a wake()
  std::deque<std::string> messages_ UEPOLL_GUARDED_BY(mu_);
  bool hung_up_ UEPOLL_GUARDED_BY(mu_) = false;
};

// ------------------------------------------------------------------------------------------------
// The program
// ------------------------------------------------------------------------------------------------

std::atomic<int> failures{0};  // the producer thread checks too

void check(bool ok, const char* what, int line) {
  if (!ok) {
    std::fprintf(stderr, "custom_object.cpp:%d: check failed: %s\n", line, what);
    ++failures;
  }
}
#define CHECK(cond) check((cond), #cond, __LINE__)

// epoll_wait on `ep` and print what it reported; returns the number of events (-1 on error).
int wait_and_show(uepoll::Process& proc, int ep, const char* name, int timeout_ms,
                  epoll_event* events, int max) {
  uepoll::Result<int> n = proc.epoll_wait(ep, events, max, timeout_ms);
  if (!n) {
    std::printf("  %s: epoll_wait failed: %s\n", name, std::strerror(n.error()));
    return -1;
  }
  std::printf("  %s: %d event(s)", name, *n);
  for (int i = 0; i < *n; ++i) {
    const std::uint32_t e = events[i].events;
    std::printf(" [fd %d:%s%s%s]", events[i].data.fd, (e & EPOLLIN) != 0 ? " IN" : "",
                (e & EPOLLOUT) != 0 ? " OUT" : "", (e & EPOLLHUP) != 0 ? " HUP" : "");
  }
  std::printf("\n");
  return *n;
}

bool send_text(uepoll::Process& proc, int fd, std::string_view text) {
  uepoll::Result<size_t> w = proc.write(fd, text.data(), text.size());
  return w && *w == text.size();
}

// 1. The same writes seen by a level-triggered and an edge-triggered watcher.
void trigger_modes(uepoll::Process& proc, int mq, int ep_lt, int ep_et) {
  std::printf("1. level- and edge-triggered watchers\n");
  epoll_event events[4];

  CHECK(wait_and_show(proc, ep_lt, "LT, empty queue", 0, events, 4) == 1);  // EPOLLOUT only
  CHECK(events[0].events == EPOLLOUT);
  CHECK(wait_and_show(proc, ep_et, "ET, empty queue", 0, events, 4) == 0);  // IN only, not ready

  for (const char* text : {"one", "two", "three"}) {
    CHECK(send_text(proc, mq, text));
  }
  std::printf("  wrote 3 messages\n");
  // Level-triggered: reported on every call while a message is queued.
  CHECK(wait_and_show(proc, ep_lt, "LT, 1st wait", 0, events, 4) == 1);
  CHECK(events[0].events == (EPOLLIN | EPOLLOUT));
  CHECK(wait_and_show(proc, ep_lt, "LT, 2nd wait", 0, events, 4) == 1);
  // Edge-triggered: reported once for the wake-ups so far, then not until the next one.
  CHECK(wait_and_show(proc, ep_et, "ET, 1st wait", 0, events, 4) == 1);
  CHECK(events[0].events == EPOLLIN && events[0].data.fd == mq);
  CHECK(wait_and_show(proc, ep_et, "ET, 2nd wait", 0, events, 4) == 0);
  CHECK(send_text(proc, mq, "four"));
  std::printf("  wrote 1 more message\n");
  CHECK(wait_and_show(proc, ep_et, "ET, 3rd wait", 0, events, 4) == 1);  // a new edge per write

  // Drain with a non-blocking descriptor, as an edge-triggered loop must (read until EAGAIN).
  CHECK(proc.fcntl(mq, F_SETFL, O_NONBLOCK).has_value());
  char buf[MessageQueue::kMaxMessage];
  int drained = 0;
  for (;;) {
    uepoll::Result<size_t> r = proc.read(mq, buf, sizeof buf);
    if (!r) {
      CHECK(r.error() == EAGAIN);
      break;
    }
    std::printf("  read \"%.*s\"\n", static_cast<int>(*r), buf);
    ++drained;
  }
  CHECK(drained == 4);
  CHECK(wait_and_show(proc, ep_lt, "LT, drained", 0, events, 4) == 1);
  CHECK(events[0].events == EPOLLOUT);
  CHECK(proc.fcntl(mq, F_SETFL, 0).has_value());
}

// 2. A producer thread feeds the queue; the main thread's edge-triggered loop drains it.
void event_loop(uepoll::Process& proc, const uepoll::Ref<MessageQueue>& queue, int mq, int ep_et) {
  constexpr int kMessages = 200;
  std::printf("2. a producer thread, an edge-triggered event loop (%d messages)\n", kMessages);

  // The event loop reads through a non-blocking descriptor, as edge-triggered loops must: it
  // reads until EAGAIN after each event. O_NONBLOCK belongs to the open file description (the
  // File), so the producer does not write through a descriptor: it calls the object directly
  // with blocking IoFlags and waits for room whenever the consumer falls behind.
  CHECK(proc.fcntl(mq, F_SETFL, O_NONBLOCK).has_value());
  std::thread producer([&queue] {
    for (int i = 0; i < kMessages; ++i) {
      char text[32];
      const int len = std::snprintf(text, sizeof text, "message %d", i);
      uepoll::Result<size_t> w = queue->write(text, static_cast<size_t>(len), uepoll::IoFlags{});
      CHECK(w && *w == static_cast<size_t>(len));
      if (i % 50 == 49) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));  // let the consumer idle
      }
    }
    queue->hang_up();
  });

  int received = 0;
  int wakeups = 0;
  bool end_of_stream = false;
  bool in_order = true;
  while (!end_of_stream) {
    epoll_event ev[4];
    uepoll::Result<int> n = proc.epoll_wait(ep_et, ev, 4, 5000);
    CHECK(n && *n == 1);
    if (!n || *n < 1) {
      break;  // timed out: the check above already failed
    }
    ++wakeups;
    // Drain everything queued now: an edge-triggered watcher is not told again about messages
    // that were already there at this wake-up.
    for (;;) {
      char buf[MessageQueue::kMaxMessage];
      uepoll::Result<size_t> r = proc.read(mq, buf, sizeof buf);
      if (!r) {
        CHECK(r.error() == EAGAIN);
        break;  // drained: back to epoll_wait
      }
      if (*r == 0) {
        end_of_stream = true;  // hung up and drained
        break;
      }
      char expected[32];
      const int len = std::snprintf(expected, sizeof expected, "message %d", received);
      in_order = in_order && std::string_view(buf, *r) == std::string_view(expected, len);
      ++received;
    }
  }
  producer.join();
  std::printf("  received %d messages in order: %s, in %d wake-up(s), then end of stream\n",
              received, in_order ? "yes" : "NO", wakeups);
  CHECK(received == kMessages);
  CHECK(in_order);
  CHECK(wakeups >= 1 && wakeups <= kMessages + 1);

  const char late[] = "late";
  uepoll::Result<size_t> w = proc.write(mq, late, sizeof late);
  CHECK(!w && w.error() == EPIPE);
}

// 3. Hang-up, close, and the last reference.
void close_and_release(uepoll::Process& proc, uepoll::Ref<MessageQueue>& queue, int mq, int ep_lt,
                       int ep_et) {
  std::printf("3. close and the last reference\n");
  // Hung up: both watchers report EPOLLHUP, which nobody asked for, as Linux does.
  epoll_event events[4];
  CHECK(wait_and_show(proc, ep_lt, "LT after hang-up", 0, events, 4) == 1);
  CHECK(events[0].events == EPOLLHUP);
  // Closing the descriptor does not end the registrations: as on Linux, they belong to the
  // open file description, which `queue` still holds (like a dup() would). They go when the
  // last reference does.
  CHECK(proc.close(mq).has_value());
  CHECK(wait_and_show(proc, ep_lt, "LT after close", 0, events, 4) == 1);
  queue.reset();  // the last reference: both epoll items are removed
  CHECK(wait_and_show(proc, ep_lt, "LT after the last reference", 0, events, 4) == 0);
  CHECK(wait_and_show(proc, ep_et, "ET after the last reference", 0, events, 4) == 0);
}

// 4. A blocking read: the calling thread sleeps in the object's Waiter until a write.
void blocking_read(uepoll::Process& proc) {
  std::printf("4. a blocking read\n");
  uepoll::Result<int> fd = proc.install(uepoll::make_ref<MessageQueue>());
  CHECK(fd.has_value());
  if (!fd) {
    return;
  }
  const auto start = std::chrono::steady_clock::now();
  std::thread writer([&proc, mq = *fd] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(send_text(proc, mq, "wake up"));
  });
  char buf[64];
  uepoll::Result<size_t> r = proc.read(*fd, buf, sizeof buf);  // blocks about 50 ms
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  writer.join();
  CHECK(r && std::string_view(buf, *r) == "wake up");
  CHECK(waited.count() >= 40);
  std::printf("  read \"%.*s\" after blocking for %lld ms\n", r ? static_cast<int>(*r) : 0, buf,
              static_cast<long long>(waited.count()));
  // A short buffer truncates the message, like a datagram socket.
  CHECK(send_text(proc, *fd, "truncated message"));
  r = proc.read(*fd, buf, 9);
  CHECK(r && std::string_view(buf, *r) == "truncated");
  CHECK(proc.close(*fd).has_value());
}

}  // namespace

int main() {
  const bool stats = uepoll::stats::enabled();
  const long files_before = stats ? uepoll::stats::quiesce_and_read().files : 0;
  {
    // A Process of our own: a descriptor table, like a separate process. (The C API's
    // uepoll_* functions use Process::global(); an object installed there works with them.)
    uepoll::Process proc;

    // Create the object and install it: the descriptor table takes one reference, `queue`
    // keeps another for the object-specific hang_up().
    uepoll::Ref<MessageQueue> queue = uepoll::make_ref<MessageQueue>();
    CHECK(queue.get() != nullptr);
    uepoll::Result<int> mq = proc.install(uepoll::Ref<MessageQueue>(queue));
    CHECK(mq.has_value());
    std::printf("message queue installed as descriptor %d\n", mq ? *mq : -1);

    uepoll::Result<int> ep_lt = proc.epoll_create1(EPOLL_CLOEXEC);
    uepoll::Result<int> ep_et = proc.epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep_lt.has_value() && ep_et.has_value());
    if (mq && ep_lt && ep_et) {
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT;  // level-triggered
      ev.data.fd = *mq;
      CHECK(proc.epoll_ctl(*ep_lt, EPOLL_CTL_ADD, *mq, &ev).has_value());
      ev.events = EPOLLIN | EPOLLET;  // edge-triggered
      CHECK(proc.epoll_ctl(*ep_et, EPOLL_CTL_ADD, *mq, &ev).has_value());

      trigger_modes(proc, *mq, *ep_lt, *ep_et);
      event_loop(proc, queue, *mq, *ep_et);

      close_and_release(proc, queue, *mq, *ep_lt, *ep_et);
      CHECK(proc.close(*ep_lt).has_value() && proc.close(*ep_et).has_value());
    }
    blocking_read(proc);
    // Destroying the Process closes whatever is still open; freed objects go after an RCU
    // grace period (quiesce_and_read() waits for it).
  }
  if (stats) {
    const long files_after = uepoll::stats::quiesce_and_read().files;
    std::printf("live files before: %ld, after: %ld\n", files_before, files_after);
    CHECK(files_after == files_before);
  }
  if (failures != 0) {
    std::printf("custom_object: %d check(s) FAILED\n", failures.load());
    return 1;
  }
  std::printf("custom_object: all checks passed\n");
  return 0;
}
