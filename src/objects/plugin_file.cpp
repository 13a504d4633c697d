// C plug-in objects (uepoll_file_create): a File whose poll, read, write and release are the
// caller's functions. The wake-up side is uepoll_file_notify, which wakes the object's one queue.
//
// The caller's handle is not the object but a small stub that is never freed (stubs are pooled
// and reused): a notify looks the object up through the stub inside an RCU read-side section,
// and release() clears the stub before the object is retired. So a notify racing the last close,
// even one that started before release and was preempted, touches only live memory; a notify
// after release finds nothing, or, once the stub is reused, wakes the newer object spuriously.
#include <sys/epoll.h>

#include <atomic>
#include <cerrno>
#include <optional>

#include "sync/fault_injection.hpp"
#include "sync/rcu.hpp"
#include "uepoll/blocking.hpp"
#include "uepoll/objects.hpp"
#include "uepoll/sync.hpp"

namespace uepoll {
namespace {

// What poll() may report: the poll bits, never epoll's private ones.
constexpr PollMask kPollBits = EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLRDNORM |
                               EPOLLRDBAND | EPOLLWRNORM | EPOLLWRBAND | EPOLLMSG | EPOLLRDHUP;
// The largest errno a plug-in may return as -errno; anything below is reported as EIO.
constexpr ssize_t kMaxErrno = 4095;

class PluginFile;

struct Stub {
  std::atomic<PluginFile*> file{nullptr};
  Stub* next_free = nullptr;  // in the pool
};

struct StubPool {
  static Stub* take() noexcept {
    {
      MutexLock guard(mutex);
      if (Stub* s = free_list) {
        free_list = s->next_free;
        return s;
      }
    }
    return detail::try_new<Stub>();
  }
  static void give_back(Stub* s) noexcept {
    MutexLock guard(mutex);
    s->next_free = free_list;
    free_list = s;
  }
  static inline Mutex mutex{LockLevel::kLeaf};
  static inline Stub* free_list UEPOLL_GUARDED_BY(mutex) = nullptr;
};

class PluginFile final : public File {
 public:
  PluginFile(const PluginOps& ops, void* priv, int flags, Stub* stub) noexcept
      : File(O_RDWR, flags & O_NONBLOCK), ops_(ops), priv_(priv), stub_(stub) {}

  PollMask poll(PollTable* table) noexcept override {
    poll_wait(table, queue_);
    return ops_.poll(priv_) & kPollBits;
  }

  Result<size_t> read(void* buf, size_t count, IoFlags flags) noexcept override {
    if (ops_.read == nullptr) {
      return Error{EINVAL};
    }
    return transfer(
        flags, [&] { return ops_.read(priv_, buf, count); }, count);
  }

  Result<size_t> write(const void* buf, size_t count, IoFlags flags) noexcept override {
    if (ops_.write == nullptr) {
      return Error{EINVAL};
    }
    return transfer(
        flags, [&] { return ops_.write(priv_, buf, count); }, count);
  }

  /// The caller's from now on: release will run. Publishes the object to its stub.
  void adopt() noexcept {
    adopted_.store(true, std::memory_order_release);
    stub_->file.store(this, std::memory_order_release);
  }
  Stub* stub() const noexcept { return stub_; }

  static void notify(Stub& stub, std::uint32_t events) noexcept {
    rcu::ReadGuard rcu;  // the object found here is retired only after this section ends
    if (PluginFile* f = stub.file.load(std::memory_order_acquire)) {
      f->queue_.wake(events & kPollBits);
    }
  }

 private:
  void release() noexcept override {
    stub_->file.store(nullptr, std::memory_order_release);  // no notify finds us any more
    StubPool::give_back(stub_);
    if (adopted_.load(std::memory_order_acquire) && ops_.release != nullptr) {
      ops_.release(priv_);
    }
  }

  // One read or write: -EAGAIN blocks (unless non-blocking) until a notify, then retries.
  template <class Op>
  Result<size_t> transfer(IoFlags flags, Op&& op, size_t count) noexcept {
    auto attempt = [&]() noexcept -> std::optional<Result<size_t>> {
      const ssize_t n = op();
      if (n == -EAGAIN) {
        return std::nullopt;
      }
      if (n < 0) {
        return Result<size_t>(Error{n >= -kMaxErrno ? static_cast<int>(-n) : EIO});
      }
      return static_cast<size_t>(n) <= count ? static_cast<size_t>(n) : count;
    };
    return block_on<size_t>(queue_, flags.dont_wait(), Timeout::none(), attempt,
                            [](int error) noexcept { return Result<size_t>(Error{error}); });
  }

  WaitQueue queue_;
  const PluginOps ops_;
  void* const priv_;
  Stub* const stub_;
  std::atomic<bool> adopted_{false};
};

}  // namespace

Result<Ref<File>> make_plugin_file(const PluginOps& ops, void* priv, int flags) noexcept {
  Stub* stub = StubPool::take();
  if (stub == nullptr) {
    return Error{ENOMEM};
  }
  Ref<File> f = make_ref<PluginFile>(ops, priv, flags, stub);
  if (!f) {
    StubPool::give_back(stub);
    return Error{ENOMEM};
  }
  return f;
}

void* plugin_file_adopted(File& plugin) noexcept {
  auto& p = static_cast<PluginFile&>(plugin);
  p.adopt();
  return p.stub();
}

void plugin_file_notify(void* handle, std::uint32_t events) noexcept {
  PluginFile::notify(*static_cast<Stub*>(handle), events);
}

}  // namespace uepoll
