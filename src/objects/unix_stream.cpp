// Placeholder until the AF_UNIX stream object lands.
#include <cerrno>

#include "uepoll/objects.hpp"

namespace uepoll {
Result<FilePair> make_unix_stream_pair(int) noexcept { return Error{EOPNOTSUPP}; }
}  // namespace uepoll
