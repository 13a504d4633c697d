// Placeholder until the in-process AF_INET stream object lands.
#include <cerrno>

#include "uepoll/objects.hpp"

namespace uepoll {
Result<Ref<File>> make_inet_stream_socket(int, int) noexcept { return Error{EAFNOSUPPORT}; }
}  // namespace uepoll
