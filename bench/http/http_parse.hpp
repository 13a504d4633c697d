// Minimal HTTP/1.x message-head parsers for the HTTP benchmark: the server parses requests, the
// load generator parses responses. Both are incremental in the simple way: they are given all
// bytes received so far and either find a complete head or ask for more. Heads are small (the
// callers bound them by their buffer size), so re-parsing from the start is cheap.
//
// Accepted syntax (RFC 9112, with the usual tolerance): lines end in CRLF or a bare LF; empty
// lines before a request line are skipped; header names are tokens followed directly by ':';
// obsolete line folding is rejected. Only what the benchmark needs is interpreted:
// Content-Length, Connection (close / keep-alive) and Transfer-Encoding (rejected by the server,
// reported to the client).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace uepoll_bench::http {

enum class ParseStatus { kIncomplete, kDone, kError };

struct RequestHead {
  std::size_t head_len = 0;          // bytes up to and including the blank line
  std::uint64_t content_length = 0;  // body bytes that follow the head
  int version_minor = 1;             // HTTP/1.<minor>
  bool keep_alive = true;            // after this request, per version and Connection
  bool head_method = false;          // HEAD: the response carries no body
  int error_status = 0;              // with kError: the status to answer (400, 413, 501, 505)
};

struct ResponseHead {
  std::size_t head_len = 0;
  int status = 0;
  int version_minor = 1;
  bool keep_alive = true;
  bool has_content_length = false;
  std::uint64_t content_length = 0;
  bool chunked = false;  // Transfer-Encoding other than identity (the client cannot frame it)
};

/// Largest Content-Length the server accepts (the body is read and discarded).
inline constexpr std::uint64_t kMaxRequestBody = std::uint64_t{1} << 30;

namespace detail {

inline bool is_tchar(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
    return true;
  }
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~': return true;
    default: return false;
  }
}

inline char lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

inline bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) {
      return false;
    }
  }
  return true;
}

inline std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

/// Splits off the next line of `data` starting at `pos`; false when no line end is there yet.
/// `line` excludes the CR LF (or LF); `pos` moves past it.
inline bool next_line(std::string_view data, std::size_t& pos, std::string_view& line) noexcept {
  const std::size_t nl = data.find('\n', pos);
  if (nl == std::string_view::npos) {
    return false;
  }
  std::size_t end = nl;
  if (end > pos && data[end - 1] == '\r') {
    --end;
  }
  line = data.substr(pos, end - pos);
  pos = nl + 1;
  return true;
}

/// 1*DIGIT without overflow; false for anything else.
inline bool parse_decimal(std::string_view s, std::uint64_t& out) noexcept {
  if (s.empty() || s.size() > 19) {
    return false;
  }
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') {
      return false;
    }
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  out = v;
  return true;
}

/// "HTTP/1.<d>"; false for any other version (major other than 1 included).
inline bool parse_version(std::string_view s, int& minor) noexcept {
  if (s.size() != 8 || s.substr(0, 7) != "HTTP/1." || s[7] < '0' || s[7] > '9') {
    return false;
  }
  minor = s[7] - '0';
  return true;
}

/// Visits the comma-separated tokens of a Connection value.
template <class F>
void for_each_token(std::string_view v, F&& f) {
  while (!v.empty()) {
    const std::size_t comma = v.find(',');
    f(trim_ows(v.substr(0, comma)));
    if (comma == std::string_view::npos) {
      break;
    }
    v.remove_prefix(comma + 1);
  }
}

/// The header fields shared by requests and responses.
struct Fields {
  bool has_content_length = false;
  std::uint64_t content_length = 0;
  bool conn_close = false;
  bool conn_keep_alive = false;
  bool transfer_encoding = false;
};

/// Parses header lines from `pos` through the blank line. kError on malformed fields or
/// conflicting Content-Length values.
inline ParseStatus parse_fields(std::string_view data, std::size_t& pos, Fields& f) noexcept {
  std::string_view line;
  for (;;) {
    if (!next_line(data, pos, line)) {
      return ParseStatus::kIncomplete;
    }
    if (line.empty()) {
      return ParseStatus::kDone;
    }
    if (line.front() == ' ' || line.front() == '\t') {
      return ParseStatus::kError;  // obsolete line folding
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return ParseStatus::kError;
    }
    const std::string_view name = line.substr(0, colon);
    for (char c : name) {
      if (!is_tchar(c)) {
        return ParseStatus::kError;  // includes whitespace before the colon
      }
    }
    const std::string_view value = trim_ows(line.substr(colon + 1));
    for (char c : value) {
      const auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7f) {
        return ParseStatus::kError;
      }
    }
    if (iequals(name, "content-length")) {
      std::uint64_t n = 0;
      if (!parse_decimal(value, n) || (f.has_content_length && n != f.content_length)) {
        return ParseStatus::kError;
      }
      f.has_content_length = true;
      f.content_length = n;
    } else if (iequals(name, "connection")) {
      for_each_token(value, [&](std::string_view t) {
        if (iequals(t, "close")) {
          f.conn_close = true;
        } else if (iequals(t, "keep-alive")) {
          f.conn_keep_alive = true;
        }
      });
    } else if (iequals(name, "transfer-encoding")) {
      if (!iequals(value, "identity")) {
        f.transfer_encoding = true;
      }
    }
  }
}

}  // namespace detail

/// Parses a request head from the start of `data`.
inline ParseStatus parse_request_head(std::string_view data, RequestHead& out) noexcept {
  using namespace detail;
  out = RequestHead{};
  std::size_t pos = 0;
  std::string_view line;
  do {  // RFC 9112 2.2: ignore empty lines before the request line
    if (!next_line(data, pos, line)) {
      return ParseStatus::kIncomplete;
    }
  } while (line.empty());

  auto fail = [&](int status) {
    out.error_status = status;
    return ParseStatus::kError;
  };
  // method SP request-target SP HTTP-version
  const std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) {
    return fail(400);
  }
  const std::string_view method = line.substr(0, sp1);
  for (char c : method) {
    if (!is_tchar(c)) {
      return fail(400);
    }
  }
  const std::size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 == sp1 + 1) {
    return fail(400);
  }
  for (char c : line.substr(sp1 + 1, sp2 - sp1 - 1)) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return fail(400);
    }
  }
  const std::string_view version = line.substr(sp2 + 1);
  if (version.size() == 8 && version.substr(0, 5) == "HTTP/" && version[5] != '1') {
    return fail(505);
  }
  if (!parse_version(version, out.version_minor)) {
    return fail(400);
  }
  out.head_method = method == "HEAD";

  Fields f;
  const ParseStatus st = parse_fields(data, pos, f);
  if (st == ParseStatus::kIncomplete) {
    return st;
  }
  if (st == ParseStatus::kError) {
    return fail(400);
  }
  if (f.transfer_encoding) {
    return fail(501);  // chunked request bodies are not supported by this server
  }
  if (f.content_length > kMaxRequestBody) {
    return fail(413);
  }
  out.content_length = f.content_length;
  out.keep_alive = out.version_minor >= 1 ? !f.conn_close : (f.conn_keep_alive && !f.conn_close);
  out.head_len = pos;
  return ParseStatus::kDone;
}

/// Parses a response head from the start of `data`.
inline ParseStatus parse_response_head(std::string_view data, ResponseHead& out) noexcept {
  using namespace detail;
  out = ResponseHead{};
  std::size_t pos = 0;
  std::string_view line;
  if (!next_line(data, pos, line)) {
    return data.size() >= 5 && data.substr(0, 5) != "HTTP/" ? ParseStatus::kError
                                                            : ParseStatus::kIncomplete;
  }
  // HTTP-version SP 3DIGIT [SP reason-phrase]
  if (line.size() < 12 || !parse_version(line.substr(0, 8), out.version_minor) || line[8] != ' ') {
    return ParseStatus::kError;
  }
  int status = 0;
  for (int i = 9; i < 12; ++i) {
    const char c = line[static_cast<std::size_t>(i)];
    if (c < '0' || c > '9') {
      return ParseStatus::kError;
    }
    status = status * 10 + (c - '0');
  }
  if (line.size() > 12 && line[12] != ' ') {
    return ParseStatus::kError;
  }
  out.status = status;

  Fields f;
  const ParseStatus st = parse_fields(data, pos, f);
  if (st != ParseStatus::kDone) {
    return st;
  }
  out.has_content_length = f.has_content_length;
  out.content_length = f.content_length;
  out.chunked = f.transfer_encoding;
  out.keep_alive = out.version_minor >= 1 ? !f.conn_close : (f.conn_keep_alive && !f.conn_close);
  out.head_len = pos;
  return ParseStatus::kDone;
}

/// Whether a response to a request with method `head_method` has a body at all.
inline bool response_has_body(const ResponseHead& h, bool head_method) noexcept {
  return !(head_method || (h.status >= 100 && h.status < 200) || h.status == 204 ||
           h.status == 304);
}

}  // namespace uepoll_bench::http
