// Benchmark (not a test): what FileLock costs against the raw system calls it wraps and
// against Python's filelock, all measured in this one run on the same file system.
//
//   bazel run //benchmarks:file_lock_bench
//
// Prints the median of each variant and the ratios; the target is FileLock within 1.5x of
// raw open+flock+unlock+close.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "core/util/file_lock.h"

namespace {

using torch_tensorrt_rtx::util::FileLock;
using torch_tensorrt_rtx::util::LockMode;

constexpr int kRounds = 21;
constexpr int kIterationsPerRound = 2000;

// Median over rounds of the mean microseconds per call within a round.
double MedianMicros(const std::function<void()>& body) {
  std::vector<double> rounds;
  for (int round = 0; round < kRounds; ++round) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kIterationsPerRound; ++i) {
      body();
    }
    const std::chrono::duration<double, std::micro> elapsed = std::chrono::steady_clock::now() - start;
    rounds.push_back(elapsed.count() / kIterationsPerRound);
  }
  std::nth_element(rounds.begin(), rounds.begin() + kRounds / 2, rounds.end());
  return rounds[kRounds / 2];
}

// Asks the project's Python to time filelock.FileLock acquire+release on the same path.
double PythonFileLockMicros(const std::string& python, const std::string& lock_path) {
  const std::string script =
      "import sys, time, statistics, filelock\n"
      "lock = filelock.FileLock(sys.argv[1])\n"
      "rounds = []\n"
      "for _ in range(21):\n"
      "    t = time.perf_counter()\n"
      "    for _ in range(500):\n"
      "        lock.acquire(); lock.release()\n"
      "    rounds.append((time.perf_counter() - t) / 500 * 1e6)\n"
      "print(statistics.median(rounds))\n";
  const std::string command = python + " -c '" + script + "' " + lock_path;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    return -1;
  }
  double micros = -1;
  if (fscanf(pipe, "%lf", &micros) != 1) {
    micros = -1;
  }
  pclose(pipe);
  return micros;
}

}  // namespace

int main(int argc, char** argv) {
  char dir_template[] = "/tmp/file_lock_bench_XXXXXX";
  const std::string dir = mkdtemp(dir_template);
  const std::string lock_path = dir + "/runtime.cache.lock";

  const double raw = MedianMicros([&] {
    const int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    flock(fd, LOCK_EX);
    flock(fd, LOCK_UN);
    close(fd);
  });
  const double ours = MedianMicros([&] {
    FileLock lock(lock_path, LockMode::kExclusive);
    lock.lock();
  });
  FileLock held_open(lock_path, LockMode::kExclusive);
  const double ours_reused = MedianMicros([&] {
    held_open.lock();
    held_open.unlock();
  });
  const char* python = argc > 1 ? argv[1] : getenv("TTRX_PYTHON");
  const double py = python ? PythonFileLockMicros(python, lock_path) : -1;

  std::printf("%-46s %10s %8s\n", "variant (median of 21 rounds)", "us/call", "vs raw");
  std::printf("%-46s %10.2f %8.2fx\n", "raw open+flock+unlock+close", raw, 1.0);
  std::printf("%-46s %10.2f %8.2fx\n", "FileLock construct+lock+unlock+destroy", ours, ours / raw);
  std::printf("%-46s %10.2f %8.2fx\n", "FileLock lock+unlock (file kept open)", ours_reused, ours_reused / raw);
  if (py > 0) {
    std::printf("%-46s %10.2f %8.2fx\n", "python filelock.FileLock acquire+release", py, py / raw);
  } else {
    std::printf("python filelock: not measured (pass the project's python as argv[1])\n");
  }
  std::printf("target: FileLock within 1.5x of raw -> %s\n", ours / raw <= 1.5 ? "met" : "NOT met");
  return 0;
}
