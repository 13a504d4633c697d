// Compiled with the core layer's include root (tests/layering/CMakeLists.txt): must compile.
#include "core/fd_table.hpp"
#include "sync/rcu.hpp"
#include "uepoll/file.hpp"
#include "uepoll/sync.hpp"
