#include "sync/sys.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace uepoll::sys {

Calls calls = {
    ::close, ::read,         ::write,        ::eventfd, ::ppoll, ::epoll_create1,
    ::epoll_ctl, ::epoll_wait, ::epoll_pwait2, ::fcntl,   ::syscall,
    nullptr,     nullptr,        nullptr,
};

}  // namespace uepoll::sys
