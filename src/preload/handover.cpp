// Handing uepoll objects over to the kernel before the process forks or execs: from then on the
// program uses the kernel objects that stood behind them (their reservations), which the child
// shares with the parent as Linux shares open file descriptions. Epoll instances stay uepoll's
// (a child gets a copy; docs/deviations.md). Objects that cannot be handed over (in-process
// TCP sockets) stay too.
#include <sys/epoll.h>

#include <vector>

#include "epoll/epoll.hpp"
#include "preload/preload.hpp"

namespace uepoll::preload {

// Long, but one ordered pass (list, take out, hand over) over one list of entries.
// NOLINTNEXTLINE(readability-function-size)
void hand_over_all() noexcept {
  struct Entry {
    int fd;
    Ref<File> file;
  };
  std::vector<Entry> entries;
  try {
    table().fds().for_each([&](int fd, Ref<File> f) {
      // Epoll instances and listeners' in-process twins stay (docs/deviations.md).
      if (!f->is_epoll() && kind_of(fd) != Kind::kListener) {
        entries.push_back(Entry{fd, std::move(f)});
      }
    });
  } catch (const std::bad_alloc&) {
    return;  // no memory to list them: they stay uepoll's (docs/deviations.md)
  }
  auto fd_of = [&](const File* f) {
    for (const Entry& e : entries) {
      if (e.file.get() == f) {
        return e.fd;
      }
    }
    return -1;
  };
  // Every descriptor of an object leaves the table before any state moves: the sends and
  // writes below then reach the kernel objects, never uepoll.
  std::vector<Entry> taken;
  try {
    for (Entry& e : entries) {
      taken.push_back(Entry{e.fd, uninstall(e.fd)});
    }
  } catch (const std::bad_alloc&) {
    for (Entry& e : taken) {  // put back what was taken: the objects stay uepoll's
      (void)install(e.fd, std::move(e.file), false);
    }
    return;
  }
  for (Entry& e : entries) {
    if (fd_of(e.file.get()) != e.fd) {
      continue;  // another descriptor of the same object: handed over once
    }
    Ref<File> peer = e.file->connected_peer();
    File::KernelTwin twin{e.fd, peer ? fd_of(peer.get()) : -1};
    if (!e.file->hand_over(twin) && !e.file->is_epoll()) {
      // Not possible (an in-process socket): every descriptor of it goes back into the table.
      for (Entry& t : taken) {
        if (t.file.get() == e.file.get() && t.file) {
          (void)install(t.fd, std::move(t.file), false);  // had its slot: cannot fail
        }
      }
      continue;
    }
    // The item's own number if it still names this object, else any number that does.
    struct StandIn final : detail::KernelStandIn {
      const std::vector<Entry>& entries;
      const Entry& e;
      StandIn(const std::vector<Entry>& all, const Entry& one) : entries(all), e(one) {}
      int kernel_fd_for(int item_fd) noexcept override {
        for (const Entry& t : entries) {
          if (t.fd == item_fd && t.file.get() == e.file.get()) {
            return item_fd;
          }
        }
        return e.fd;
      }
    } stand_in(entries, e);
    detail::hand_over_watches(*e.file, stand_in);
  }
}

}  // namespace uepoll::preload
