// Compiled with the core layer's include root (tests/layering/CMakeLists.txt): must not compile,
// because epoll is above core.
#include "epoll/epoll.hpp"
