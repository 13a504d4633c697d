// Checks of the HTTP benchmark's parsers and latency histogram (no sockets involved).
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>

#include "histogram.hpp"
#include "http_parse.hpp"

namespace {

int g_failures = 0;

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
      ++g_failures;                                                                 \
    }                                                                               \
  } while (0)

using namespace uepoll_bench::http;

ParseStatus req(std::string_view s, RequestHead* h) { return parse_request_head(s, *h); }
ParseStatus resp(std::string_view s, ResponseHead* h) { return parse_response_head(s, *h); }

void test_requests() {
  RequestHead h;
  const std::string get = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
  CHECK(req(get, &h) == ParseStatus::kDone);
  CHECK(h.head_len == get.size());
  CHECK(h.keep_alive);
  CHECK(h.content_length == 0);
  CHECK(!h.head_method);
  // Every proper prefix is incomplete.
  for (std::size_t i = 0; i < get.size(); ++i) {
    CHECK(req(std::string_view(get).substr(0, i), &h) == ParseStatus::kIncomplete);
  }
  // Pipelined bytes after the head are not part of it.
  CHECK(req(get + "GET /x HTTP/1.1\r\n", &h) == ParseStatus::kDone && h.head_len == get.size());
  // Bare LF line ends, leading empty lines, Connection tokens, HTTP/1.0.
  CHECK(req("\r\nGET /a HTTP/1.1\nHost: x\nConnection: Keep-Alive, CLOSE\n\n", &h) ==
        ParseStatus::kDone);
  CHECK(!h.keep_alive);
  CHECK(req("GET / HTTP/1.0\r\n\r\n", &h) == ParseStatus::kDone && !h.keep_alive);
  CHECK(req("GET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n", &h) == ParseStatus::kDone &&
        h.keep_alive && h.version_minor == 0);
  CHECK(req("HEAD / HTTP/1.1\r\n\r\n", &h) == ParseStatus::kDone && h.head_method);
  // Bodies.
  CHECK(req("POST /p HTTP/1.1\r\nContent-Length:  12 \r\n\r\nhello world!", &h) ==
        ParseStatus::kDone);
  CHECK(h.content_length == 12);
  CHECK(req("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", &h) ==
        ParseStatus::kDone);
  // Errors and the status they answer.
  CHECK(req("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", &h) ==
            ParseStatus::kError &&
        h.error_status == 400);
  CHECK(req("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", &h) == ParseStatus::kError);
  CHECK(req("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", &h) ==
        ParseStatus::kError);
  CHECK(req("POST / HTTP/1.1\r\nContent-Length: 2000000000\r\n\r\n", &h) == ParseStatus::kError &&
        h.error_status == 413);
  CHECK(req("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &h) == ParseStatus::kError &&
        h.error_status == 501);
  CHECK(req("GET / HTTP/2.0\r\n\r\n", &h) == ParseStatus::kError && h.error_status == 505);
  CHECK(req("GET / HTTX/1.1\r\n\r\n", &h) == ParseStatus::kError && h.error_status == 400);
  CHECK(req("GET /\r\n\r\n", &h) == ParseStatus::kError);
  CHECK(req("GET  / HTTP/1.1\r\n\r\n", &h) == ParseStatus::kError);
  CHECK(req("G(T / HTTP/1.1\r\n\r\n", &h) == ParseStatus::kError);
  CHECK(req("GET / HTTP/1.1\r\nHost x\r\n\r\n", &h) == ParseStatus::kError);
  CHECK(req("GET / HTTP/1.1\r\nHost : x\r\n\r\n", &h) == ParseStatus::kError);
  CHECK(req("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", &h) == ParseStatus::kError);
  CHECK(req("GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", &h) == ParseStatus::kError);
}

void test_responses() {
  ResponseHead h;
  const std::string head =
      "HTTP/1.1 200 OK\r\nServer: s\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n"
      "Connection: close\r\n\r\n";
  CHECK(resp(head, &h) == ParseStatus::kDone);
  CHECK(h.head_len == head.size() && h.status == 200 && !h.keep_alive);
  CHECK(h.has_content_length && h.content_length == 100 && !h.chunked);
  for (std::size_t i = 0; i < head.size(); ++i) {
    CHECK(resp(std::string_view(head).substr(0, i), &h) == ParseStatus::kIncomplete);
  }
  CHECK(resp("HTTP/1.1 204\r\n\r\n", &h) == ParseStatus::kDone && h.status == 204 && h.keep_alive &&
        !response_has_body(h, false));
  CHECK(resp("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", &h) == ParseStatus::kDone &&
        !h.keep_alive);
  CHECK(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &h) == ParseStatus::kDone &&
        h.chunked);
  CHECK(resp("HTTP/1.1 404 Not Found\r\n\r\n", &h) == ParseStatus::kDone && h.status == 404 &&
        !h.has_content_length);
  CHECK(resp("HTTP/1.1 2x0 OK\r\n\r\n", &h) == ParseStatus::kError);
  CHECK(resp("HTTP/1.1 200OK\r\n\r\n", &h) == ParseStatus::kError);
  CHECK(resp("SSH-2.0-OpenSSH", &h) == ParseStatus::kError);
  CHECK(resp("HTTP/1.1 200 OK\r\nbad\r\n\r\n", &h) == ParseStatus::kError);
}

void test_histogram() {
  // Bucket bounds tile the value range without gaps.
  for (int i = 0; i + 1 < LatencyHistogram::kBuckets; ++i) {
    CHECK(LatencyHistogram::upper_bound(i) + 1 == LatencyHistogram::lower_bound(i + 1));
  }
  CHECK(LatencyHistogram::upper_bound(LatencyHistogram::kBuckets - 1) == UINT64_MAX);
  std::mt19937_64 rng(42);
  for (int i = 0; i < 100000; ++i) {
    const std::uint64_t v = rng() >> (rng() % 64);
    const int b = LatencyHistogram::index(v);
    CHECK(b >= 0 && b < LatencyHistogram::kBuckets);
    CHECK(LatencyHistogram::lower_bound(b) <= v && v <= LatencyHistogram::upper_bound(b));
  }
  // Percentiles of 1..100000 within the bucket resolution (1/32), merged from two halves.
  LatencyHistogram a, b;
  for (std::uint64_t v = 1; v <= 100000; ++v) {
    (v % 2 != 0 ? a : b).record(v);
  }
  a.merge(b);
  CHECK(a.count() == 100000 && a.max() == 100000 && a.min() == 1);
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    const double want = p * 1000.0;
    const double got = static_cast<double>(a.percentile(p));
    CHECK(got >= want * (1 - 1.0 / 32) && got <= want * (1 + 1.0 / 32));
  }
  CHECK(a.percentile(100) == 100000);
  LatencyHistogram empty;
  CHECK(empty.percentile(50) == 0 && empty.max() == 0);
}

}  // namespace

int main() {
  test_requests();
  test_responses();
  test_histogram();
  if (g_failures != 0) {
    std::fprintf(stderr, "%d check(s) failed\n", g_failures);
    return 1;
  }
  std::printf("http_bench_selftest: all checks passed\n");
  return 0;
}
