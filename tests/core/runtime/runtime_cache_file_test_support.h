// Test support shared by the RuntimeCacheFile suites: the fixture, and the child modes of the
// test program, which runs second processes of itself (a lock holder, concurrent savers).
//
//   runtime_cache_file_test --hold-lock PATH shared|exclusive   FileLock child modes
//   runtime_cache_file_test --save-entries PATH T ROUNDS        saves ROUNDS growing entries
//                                                                for engine T; exit 1 if a
//                                                                save failed
//   runtime_cache_file_test --expect-entry PATH T ROUND         exit 0 if engine T's entry is
//                                                                Blob(T, ROUND), else 1
//
// The portable cases are in runtime_cache_file_test.cpp (which has main()), the POSIX-only
// ones in runtime_cache_file_posix_test.cpp, the Windows-only ones in
// tests/windows/runtime_cache_file_windows_test.cpp. On Windows there is one more child mode:
//   runtime_cache_file_test --default-cache-path LOCALAPPDATA USERPROFILE   ("-" = unset)
//                                                                prints DefaultCachePath()
#ifndef TORCH_TENSORRT_RTX_TESTS_CORE_RUNTIME_RUNTIME_CACHE_FILE_TEST_SUPPORT_H_
#define TORCH_TENSORRT_RTX_TESTS_CORE_RUNTIME_RUNTIME_CACHE_FILE_TEST_SUPPORT_H_

#include <iostream>
#include <optional>
#include <string>

#include "core/runtime/runtime_cache_file.h"
#include "gtest/gtest.h"
#include "tests/core/util/file_lock_test_support.h"
#include "tests/core/util/test_dir.h"
#ifdef _WIN32
#include "core/runtime/runtime_settings.h"  // DefaultCachePath()
#endif

namespace torch_tensorrt_rtx {
namespace runtime {

inline const EngineKey kA = Sha256("engine A", 8);
inline const EngineKey kB = Sha256("engine B", 8);

inline EngineKey KeyOf(int t) {
  const std::string name = "engine " + std::to_string(t);
  return Sha256(name.data(), name.size());
}

// Engine t's entry after `round` saves: distinct sizes and bytes per engine and round.
inline std::string Blob(int t, int round) {
  return std::string(static_cast<std::size_t>(round * 1000 + t), static_cast<char>('a' + t));
}

// The entry's bytes, or "<none>".
inline std::string Entry(const RuntimeCacheFile& store, const EngineKey& key) {
  std::optional<CachedEntry> entry = store.TryLoadEntry(key);
  return entry ? entry->data : "<none>";
}

class RuntimeCacheFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTestDir("cache_file_test");
    path_ = dir_ + testing::kSep + "runtime_cache.bin";
  }
  std::string dir_, path_;
};

// Runs a child mode if argv asks for one and stores its exit code; false otherwise.
inline bool RunStoreChildMode(int argc, char** argv, int* exit_code) {
  if (util::RunChildMode(argc, argv, exit_code)) return true;
#ifdef _WIN32
  if (argc == 4 && std::string(argv[1]) == "--default-cache-path") {
    // scripts/windows_test.sh compares this with the Python runtime's answer.
    const std::string local = argv[2], profile = argv[3];  // "-" removes the variable
    SetEnvironmentVariableW(L"LOCALAPPDATA", local == "-" ? nullptr : testing::Wide(local).c_str());
    SetEnvironmentVariableW(L"USERPROFILE", profile == "-" ? nullptr : testing::Wide(profile).c_str());
    std::cout << DefaultCachePath() << std::endl;
    *exit_code = 0;
    return true;
  }
#endif
  if (argc != 5) return false;
  const std::string command = argv[1];
  const std::string path = argv[2];
  const int t = std::stoi(argv[3]);
  const int rounds = std::stoi(argv[4]);
  if (command == "--save-entries") {
    RuntimeCacheFile store(path);
    *exit_code = 0;
    for (int r = 1; r <= rounds; ++r) {
      const std::string blob = Blob(t, r);
      if (!store.TrySaveEntry(KeyOf(t), blob.data(), blob.size())) *exit_code = 1;
    }
    return true;
  }
  if (command == "--expect-entry") {
    std::optional<CachedEntry> entry = RuntimeCacheFile(path).TryLoadEntry(KeyOf(t));
    *exit_code = entry && entry->data == Blob(t, rounds) ? 0 : 1;
    if (*exit_code != 0) {
      std::cerr << "entry of engine " << t << " in " << path << ": "
                << (entry ? std::to_string(entry->data.size()) + " bytes, not the expected ones" : "missing")
                << std::endl;
    }
    return true;
  }
  return false;
}

}  // namespace runtime
}  // namespace torch_tensorrt_rtx

#endif  // TORCH_TENSORRT_RTX_TESTS_CORE_RUNTIME_RUNTIME_CACHE_FILE_TEST_SUPPORT_H_
