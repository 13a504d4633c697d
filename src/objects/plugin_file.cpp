// C plug-in objects (uepoll_file_create): a File whose poll, read, write and release are the
// caller's functions. The wake-up side is uepoll_file_notify, which wakes the object's one queue.
#include <sys/epoll.h>

#include <atomic>
#include <cerrno>
#include <optional>

#include "sync/rcu.hpp"
#include "uepoll/blocking.hpp"
#include "uepoll/objects.hpp"

namespace uepoll {
namespace {

// What poll() may report: the poll bits, never epoll's private ones.
constexpr PollMask kPollBits = EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLERR | EPOLLHUP |
                               EPOLLRDNORM | EPOLLRDBAND | EPOLLWRNORM | EPOLLWRBAND | EPOLLMSG |
                               EPOLLRDHUP;
// The largest errno a plug-in may return as -errno; anything below is reported as EIO.
constexpr ssize_t kMaxErrno = 4095;

class PluginFile final : public File {
 public:
  PluginFile(const PluginOps& ops, void* priv, int flags) noexcept
      : File(O_RDWR, flags & O_NONBLOCK), ops_(ops), priv_(priv) {}

  PollMask poll(PollTable* table) noexcept override {
    poll_wait(table, queue_);
    return ops_.poll(priv_) & kPollBits;
  }

  Result<size_t> read(void* buf, size_t count, IoFlags flags) noexcept override {
    if (ops_.read == nullptr) {
      return Error{EINVAL};
    }
    return transfer(flags, [&] { return ops_.read(priv_, buf, count); }, count);
  }

  Result<size_t> write(const void* buf, size_t count, IoFlags flags) noexcept override {
    if (ops_.write == nullptr) {
      return Error{EINVAL};
    }
    return transfer(flags, [&] { return ops_.write(priv_, buf, count); }, count);
  }

  void adopt() noexcept { adopted_.store(true, std::memory_order_release); }

  void notify(std::uint32_t events) noexcept {
    // The caller may race the last close: the memory outlives this read-side section (File
    // memory is retired through RCU), and by the time release() runs no epoll item or waiter
    // is hooked on the queue any more.
    rcu::ReadGuard rcu;
    queue_.wake(events & kPollBits);
  }

 private:
  void release() noexcept override {
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
    return block_on<size_t>(queue_, flags.dont_wait(), nullptr, attempt,
                            [](int error) noexcept { return Result<size_t>(Error{error}); });
  }

  WaitQueue queue_;
  const PluginOps ops_;
  void* const priv_;
  std::atomic<bool> adopted_{false};
};

}  // namespace

Result<Ref<File>> make_plugin_file(const PluginOps& ops, void* priv, int flags) noexcept {
  Ref<File> f = make_ref<PluginFile>(ops, priv, flags);
  if (!f) {
    return Error{ENOMEM};
  }
  return f;
}

void plugin_file_adopted(File& plugin) noexcept { static_cast<PluginFile&>(plugin).adopt(); }

void plugin_file_notify(File& plugin, std::uint32_t events) noexcept {
  static_cast<PluginFile&>(plugin).notify(events);
}

}  // namespace uepoll
