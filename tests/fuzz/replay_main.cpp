// Replays a libFuzzer target over files, without libFuzzer: for builds with any compiler, so the
// corpora run as ordinary tests. Usage: <exe> PATH... (each PATH a file or a directory of files).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

int run_file(const std::filesystem::path& p) {
  std::vector<char> bytes;
  {
    // Closed before the target runs: the capi target compares descriptor numbers with the kernel.
    std::FILE* f = std::fopen(p.c_str(), "rb");
    if (f == nullptr) {
      std::fprintf(stderr, "cannot read %s\n", p.c_str());
      return 1;
    }
    char chunk[4096];
    std::size_t n = 0;
    while ((n = std::fread(chunk, 1, sizeof(chunk), f)) > 0)
      bytes.insert(bytes.end(), chunk, chunk + n);
    std::fclose(f);
  }
  std::fprintf(stderr, "replay %s (%zu bytes)\n", p.c_str(), bytes.size());
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int failed = 0;
  std::size_t files = 0;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path arg(argv[i]);
    std::error_code ec;
    if (std::filesystem::is_directory(arg, ec)) {
      std::vector<std::filesystem::path> list;
      for (const auto& e : std::filesystem::directory_iterator(arg)) {
        if (e.is_regular_file()) list.push_back(e.path());
      }
      std::sort(list.begin(), list.end());
      for (const auto& p : list) {
        failed += run_file(p);
        ++files;
      }
    } else {
      failed += run_file(arg);
      ++files;
    }
  }
  std::printf("replayed %zu inputs, %d unreadable\n", files, failed);
  if (files == 0) {
    std::fprintf(stderr, "no inputs\n");
    return 1;
  }
  return failed == 0 ? 0 : 1;
}
