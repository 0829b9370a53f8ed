// The C++ runtime cache store (RuntimeCacheFile over cache_file_io_windows.cpp and the
// Windows FileLock), built with mingw-w64 and run under wine by scripts/windows_test.sh.
//
// The cases of tests/core/runtime/runtime_cache_file_test.cpp that do not need POSIX, with
// a second process of this program standing in for the Python filelock holder (no Windows
// Python here), then the Windows file-system cases: reparse points, directories, pipes
// and devices at the cache path, unique temp names, sharing modes, stale temp files, and
// the default path under %LOCALAPPDATA%.
#ifdef _WIN32

#define WIN32_LEAN_AND_MEAN
#include <windows.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/runtime/cache_file_io.h"
#include "core/runtime/runtime_cache_file.h"
#include "core/runtime/runtime_settings.h"
#include "core/util/file_lock.h"
#include "gtest/gtest.h"
#include "tests/core/util/child_process.h"
#include "tests/core/util/file_lock_test_support.h"
#include "tests/core/util/test_dir.h"

namespace torch_tensorrt_rtx {
namespace runtime {
namespace {

using std::chrono::milliseconds;
using testing::ChildProcess;
using testing::Wide;

const EngineKey kA = Sha256("engine A", 8);
const EngineKey kB = Sha256("engine B", 8);

EngineKey KeyOf(int t) {
  const std::string name = "engine " + std::to_string(t);
  return Sha256(name.data(), name.size());
}

std::string Blob(int t, int round) {
  return std::string(static_cast<std::size_t>(round * 1000 + t), static_cast<char>('a' + t));
}

FILETIME LastWrite(const std::string& path) {
  WIN32_FILE_ATTRIBUTE_DATA data = {};
  GetFileAttributesExW(Wide(path).c_str(), GetFileExInfoStandard, &data);
  return data.ftLastWriteTime;
}

class RuntimeCacheFileWindowsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTestDir("cache_file_test");
    path_ = dir_ + "\\runtime_cache.bin";
  }
  static std::string Entry(const RuntimeCacheFile& store, const EngineKey& key) {
    std::optional<CachedEntry> entry = store.TryLoadEntry(key);
    return entry ? entry->data : "<none>";
  }
  std::string dir_, path_;
};

// --- The portable cases of runtime_cache_file_test.cpp ------------------------------------

TEST_F(RuntimeCacheFileWindowsTest, MissingFileLoadsNothingAndCreatesNoLockFile) {
  RuntimeCacheFile store(path_);
  bool called = false;
  EXPECT_FALSE(store.TryLoad(kA, [&](const void*, size_t) { return called = true; }));
  EXPECT_FALSE(called);
  EXPECT_FALSE(testing::FileExists(store.lock_path()));
}

TEST_F(RuntimeCacheFileWindowsTest, EntriesOfTwoEnginesSurviveEachOthersSaves) {
  RuntimeCacheFile store(path_);
  ASSERT_TRUE(store.TrySaveEntry(kA, "aaa", 3, 100));
  ASSERT_TRUE(store.TrySaveEntry(kB, "bbbb", 4, 200));
  ASSERT_TRUE(store.TrySaveEntry(kA, "AAAAA", 5, 300));
  EXPECT_EQ(Entry(store, kA), "AAAAA");
  EXPECT_EQ(Entry(store, kB), "bbbb");
  const auto index = store.TryReadIndex();
  ASSERT_TRUE(index.has_value());
  ASSERT_EQ(index->size(), 2u);
  EXPECT_EQ((*index)[0].key, kB);
  EXPECT_EQ((*index)[1].last_use, 300u);
}

TEST_F(RuntimeCacheFileWindowsTest, EmbeddedNulInThePathIsAClearError) {
  EXPECT_THROW(RuntimeCacheFile(std::string("C:\\a\0b", 6)), std::invalid_argument);
  EXPECT_THROW(RuntimeCacheFile(""), std::invalid_argument);
}

TEST_F(RuntimeCacheFileWindowsTest, PathIsNormalizedLexicallyLikeNtpathAbspath) {
  RuntimeCacheFile store(dir_ + "\\missing\\..\\\\.\\runtime_cache.bin");
  EXPECT_EQ(store.path(), path_);
  EXPECT_EQ(store.lock_path(), path_ + ".lock");
  RuntimeCacheFile forward_slashes(dir_ + "/missing/../runtime_cache.bin");
  EXPECT_EQ(forward_slashes.path(), path_);
  ASSERT_TRUE(store.TrySaveEntry(kA, "x", 1));
  EXPECT_EQ(Entry(RuntimeCacheFile(path_), kA), "x");
  EXPECT_FALSE(testing::FileExists(dir_ + "\\missing"));
}

TEST_F(RuntimeCacheFileWindowsTest, RejectedBytesWarnAndLoadNothing) {
  RuntimeCacheFile store(path_);
  ASSERT_TRUE(store.TrySaveEntry(kA, "garbage", 7));
  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(store.TryLoad(kA, [](const void*, size_t) { return false; }));
  EXPECT_FALSE(store.TryLoad(kA, [](const void*, size_t) -> bool { throw std::runtime_error("bad"); }));
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("cannot use the entry"), std::string::npos) << err;
  EXPECT_NE(err.find("bad"), std::string::npos) << err;
  EXPECT_EQ(Entry(store, kA), "garbage");
}

TEST_F(RuntimeCacheFileWindowsTest, HolderProcessMakesSaveTimeOutWithoutThrowingAndFileUnchanged) {
  RuntimeCacheFile store(path_, milliseconds(300));
  ASSERT_TRUE(store.TrySaveEntry(kA, "original", 8));
  const FILETIME before = LastWrite(path_);
  // Another process holds the lock exclusively, as a Python runtime saving would.
  ChildProcess holder({testing::SelfExecutable(), "--hold-lock", store.lock_path(), "exclusive"});
  ASSERT_EQ(holder.ReadLine(), "locked");

  ::testing::internal::CaptureStderr();
  const auto start = std::chrono::steady_clock::now();
  bool saved = true;
  EXPECT_NO_THROW(saved = store.TrySaveEntry(kA, "replacement", 11));
  const auto waited = std::chrono::steady_clock::now() - start;
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_FALSE(saved);
  EXPECT_GE(waited, milliseconds(300));
  EXPECT_NE(err.find("could not lock"), std::string::npos) << err;
  const FILETIME after = LastWrite(path_);
  EXPECT_EQ(CompareFileTime(&before, &after), 0) << "the cache file was written during a timed-out save";
  EXPECT_FALSE(store.TryLoadEntry(kA).has_value());  // a timed-out load does not throw

  holder.CloseStdin();
  EXPECT_EQ(holder.Wait(), 0);
  EXPECT_TRUE(store.TrySaveEntry(kA, "replacement", 11));
  EXPECT_EQ(Entry(store, kA), "replacement");
}

TEST_F(RuntimeCacheFileWindowsTest, SharedReadersCoexistAndBlockSavers) {
  RuntimeCacheFile store(path_, milliseconds(200));
  ASSERT_TRUE(store.TrySaveEntry(kA, "data", 4));
  util::FileLock reader(path_ + ".lock", util::LockMode::kShared);
  ASSERT_TRUE(reader.try_lock());
  EXPECT_EQ(Entry(store, kA), "data");
  EXPECT_FALSE(store.TrySaveEntry(kA, "new", 3));
  reader.unlock();
  EXPECT_TRUE(store.TrySaveEntry(kA, "new", 3));
}

TEST_F(RuntimeCacheFileWindowsTest, ConcurrentSaversOfDifferentEnginesLoseNothing) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 10;
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      RuntimeCacheFile store(path_);
      for (int r = 1; r <= kRounds; ++r) {
        const std::string blob = Blob(t, r);
        if (!store.TrySaveEntry(KeyOf(t), blob.data(), blob.size())) ++failed;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failed, 0);
  RuntimeCacheFile store(path_);
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(Entry(store, KeyOf(t)), Blob(t, kRounds));
}

TEST_F(RuntimeCacheFileWindowsTest, ConcurrentSaverProcessesLoseNothing) {
  // Real processes, each replacing the file with MoveFileExW under the lock many times.
  constexpr int kProcesses = 4;
  constexpr int kRounds = 10;
  std::vector<std::unique_ptr<ChildProcess>> savers;
  for (int t = 0; t < kProcesses; ++t) {
    savers.push_back(std::make_unique<ChildProcess>(std::vector<std::string>{
        testing::SelfExecutable(), "--save-entries", path_, std::to_string(t), std::to_string(kRounds)}));
  }
  for (auto& saver : savers) EXPECT_EQ(saver->Wait(), 0) << "a saver process failed a save";
  RuntimeCacheFile store(path_);
  for (int t = 0; t < kProcesses; ++t) EXPECT_EQ(Entry(store, KeyOf(t)), Blob(t, kRounds));
}

TEST_F(RuntimeCacheFileWindowsTest, ReadOnlyLockFileStillLoads) {
  RuntimeCacheFile store(path_);
  ASSERT_TRUE(store.TrySaveEntry(kA, "warm", 4));
  // A read-only lock file (a warm cache in a read-only location): the shared lock falls
  // back to a read-only handle.
  ASSERT_TRUE(SetFileAttributesW(Wide(store.lock_path()).c_str(), FILE_ATTRIBUTE_READONLY));
  EXPECT_EQ(Entry(store, kA), "warm");
  SetFileAttributesW(Wide(store.lock_path()).c_str(), FILE_ATTRIBUTE_NORMAL);
}

// --- Windows file-system cases -------------------------------------------------------------

TEST_F(RuntimeCacheFileWindowsTest, Utf8PathsRoundTrip) {
  const std::string path = dir_ + "\\cach\xC3\xA9_\xE6\x97\xA5\xE6\x9C\xAC.bin";  // "caché_日本.bin"
  RuntimeCacheFile store(path);
  ASSERT_TRUE(store.TrySaveEntry(kA, "kernels", 7));
  EXPECT_NE(GetFileAttributesW((Wide(dir_) + L"\\cach\u00E9_\u65E5\u672C.bin").c_str()), INVALID_FILE_ATTRIBUTES);
  EXPECT_EQ(Entry(RuntimeCacheFile(path), kA), "kernels");
}

TEST_F(RuntimeCacheFileWindowsTest, DirectoryAtCachePathIsRefusedAndKept) {
  ASSERT_TRUE(CreateDirectoryW(Wide(path_).c_str(), nullptr));
  RuntimeCacheFile store(path_, milliseconds(200));
  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(store.TryLoadEntry(kA).has_value());
  EXPECT_FALSE(store.TrySaveEntry(kA, "x", 1));
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("not a regular file"), std::string::npos) << err;
  EXPECT_NE(GetFileAttributesW(Wide(path_).c_str()) & FILE_ATTRIBUTE_DIRECTORY, 0u);
}

TEST_F(RuntimeCacheFileWindowsTest, PipeAtCachePathIsRefusedWithoutBlocking) {
  const std::string pipe = "\\\\.\\pipe\\ttrx_cache_test_" + std::to_string(GetCurrentProcessId());
  HANDLE server = CreateNamedPipeW(Wide(pipe).c_str(), PIPE_ACCESS_DUPLEX, PIPE_TYPE_BYTE, 4, 0, 0, 0, nullptr);
  ASSERT_NE(server, INVALID_HANDLE_VALUE) << "Windows error " << GetLastError();
  const auto start = std::chrono::steady_clock::now();
  try {
    io::ReadableFile::Open(pipe, std::nullopt);
    ADD_FAILURE() << "a named pipe was accepted as a cache file";
  } catch (const io::CacheFileRefused& e) {
    EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  CloseHandle(server);
}

TEST_F(RuntimeCacheFileWindowsTest, DeviceIsRefused) {
  EXPECT_THROW(io::ReadableFile::Open("\\\\.\\NUL", std::nullopt), io::CacheFileRefused);
}

TEST_F(RuntimeCacheFileWindowsTest, OversizeFileIsRefusedNamingTheCap) {
  testing::WriteFile(path_, "0123456789");
  try {
    io::ReadableFile::Open(path_, 4);
    ADD_FAILURE() << "a file over the cap was accepted";
  } catch (const io::CacheFileRefused& e) {
    EXPECT_NE(std::string(e.what()).find("cap of 4 bytes"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path_), std::string::npos) << e.what();
  }
  EXPECT_EQ(io::ReadableFile::Open(path_, 10)->size(), 10u);
}

TEST_F(RuntimeCacheFileWindowsTest, ForeignFileIsNeverOverwritten) {
  const std::string foreign = "not a runtime cache, but somebody's data";
  testing::WriteFile(path_, foreign);
  RuntimeCacheFile store(path_);
  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(store.TryLoadEntry(kA).has_value());
  EXPECT_FALSE(store.TrySaveEntry(kA, "x", 1));
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("not a runtime cache container"), std::string::npos) << err;
  EXPECT_EQ(testing::ReadFile(path_), foreign);
}

TEST_F(RuntimeCacheFileWindowsTest, CorruptContainerIsReplacedBySave) {
  RuntimeCacheFile store(path_);
  ASSERT_TRUE(store.TrySaveEntry(kA, "aaaa", 4));
  std::string bytes = testing::ReadFile(path_);
  testing::WriteFile(path_, bytes.substr(0, bytes.size() - 2));  // truncated: ours, inconsistent
  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(store.TryLoadEntry(kA).has_value());
  EXPECT_TRUE(store.TrySaveEntry(kB, "bb", 2));
  ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(Entry(store, kB), "bb");
  EXPECT_EQ(Entry(store, kA), "<none>");
}

TEST_F(RuntimeCacheFileWindowsTest, SymlinkAtCachePathRefused) {
  const std::string target = dir_ + "\\elsewhere";
  testing::WriteFile(target, "not a cache");
  if (!CreateSymbolicLinkW(Wide(path_).c_str(), Wide(target).c_str(), 0x2) ||
      !(GetFileAttributesW(Wide(path_).c_str()) & FILE_ATTRIBUTE_REPARSE_POINT) ||
      GetFileAttributesW(Wide(path_).c_str()) == INVALID_FILE_ATTRIBUTES) {
    // Wine 8 reports success from CreateSymbolicLinkW but creates nothing: needs Windows.
    GTEST_SKIP() << "no reparse point could be created here (wine 8 stubs CreateSymbolicLinkW)";
  }
  EXPECT_TRUE(io::IsSymlink(path_));
  EXPECT_THROW(io::ReadableFile::Open(path_, std::nullopt), io::CacheFileRefused);
  RuntimeCacheFile store(path_);
  EXPECT_FALSE(store.TrySaveEntry(kA, "x", 1));
  EXPECT_EQ(testing::ReadFile(target), "not a cache");
}

TEST_F(RuntimeCacheFileWindowsTest, TempNamesAreUniqueOwnAndDeletedUnlessCommitted) {
  std::set<std::string> names;
  {
    std::vector<io::TempFile> temps;
    for (int i = 0; i < 50; ++i) temps.push_back(io::TempFile::CreateBeside(path_));
    for (const io::TempFile& temp : temps) {
      names.insert(temp.name());
      EXPECT_TRUE(io::IsOwnTempName("runtime_cache.bin", io::BaseName(temp.name()))) << temp.name();
      EXPECT_TRUE(testing::FileExists(temp.name()));
    }
  }
  EXPECT_EQ(names.size(), 50u);
  for (const std::string& name : names) EXPECT_FALSE(testing::FileExists(name)) << name;
}

TEST_F(RuntimeCacheFileWindowsTest, CommitReplacesTheFileAtomically) {
  testing::WriteFile(path_, "old");
  io::TempFile temp = io::TempFile::CreateBeside(path_);
  temp.Write("new bytes", 9);
  const std::string temp_name = temp.name();
  temp.CommitTo(path_);
  EXPECT_EQ(testing::ReadFile(path_), "new bytes");
  EXPECT_FALSE(testing::FileExists(temp_name));
}

TEST_F(RuntimeCacheFileWindowsTest, OpenReaderDoesNotPreventRenameOrDelete) {
  testing::WriteFile(path_, "bytes");
  std::optional<io::ReadableFile> reader = io::ReadableFile::Open(path_, std::nullopt);
  ASSERT_TRUE(reader.has_value());
  // Our reader shares delete: the file can be moved away and deleted while it is open.
  EXPECT_TRUE(MoveFileExW(Wide(path_).c_str(), Wide(path_ + ".moved").c_str(), 0)) << GetLastError();
  EXPECT_TRUE(DeleteFileW(Wide(path_ + ".moved").c_str())) << GetLastError();
  char buf[5];
  reader->ReadAt(0, buf, 5);
  EXPECT_EQ(std::string(buf, 5), "bytes");
  char past;
  EXPECT_THROW(reader->ReadAt(5, &past, 1), std::system_error);
}

TEST_F(RuntimeCacheFileWindowsTest, SaveRemovesOnlyOwnStaleTempFiles) {
  const std::string stale = path_ + ".trtx-tmp-Ab3_x9";
  const std::string users = path_ + ".backup.tmp";
  testing::WriteFile(stale, "left by a killed writer");
  testing::WriteFile(users, "the user's");
  ASSERT_TRUE(RuntimeCacheFile(path_).TrySaveEntry(kA, "x", 1));
  EXPECT_FALSE(testing::FileExists(stale));
  EXPECT_TRUE(testing::FileExists(users));
}

TEST_F(RuntimeCacheFileWindowsTest, MakePrivateDirsCreatesEveryLevel) {
  const std::string deep = dir_ + "\\a\\b\\c";
  io::MakePrivateDirs(deep);
  EXPECT_NE(GetFileAttributesW(Wide(deep).c_str()) & FILE_ATTRIBUTE_DIRECTORY, 0u);
  EXPECT_EQ(io::DirName(deep), dir_ + "\\a\\b");
  EXPECT_EQ(io::BaseName(deep), "c");
  EXPECT_EQ(io::DirName("C:\\x"), "C:\\");
  EXPECT_EQ(io::DirName("C:\\"), "C:\\");
}

// Sets (or, for nullptr, removes) an environment variable for this test only.
class ScopedEnv {
 public:
  ScopedEnv(const wchar_t* name, const wchar_t* value) : name_(name) {
    wchar_t old[32768];
    const DWORD n = GetEnvironmentVariableW(name, old, 32768);
    had_ = n > 0 && n < 32768;
    if (had_) old_.assign(old, n);
    SetEnvironmentVariableW(name, value);
  }
  ~ScopedEnv() { SetEnvironmentVariableW(name_, had_ ? old_.c_str() : nullptr); }

 private:
  const wchar_t* name_;
  bool had_ = false;
  std::wstring old_;
};

TEST_F(RuntimeCacheFileWindowsTest, DefaultCachePathIsUnderLocalAppData) {
  {
    ScopedEnv local(L"LOCALAPPDATA", L"C:\\Users\\Jos\u00E9\\AppData\\Local");
    EXPECT_EQ(DefaultCachePath(), "C:\\Users\\Jos\xC3\xA9\\AppData\\Local\\torch_tensorrt_rtx\\runtime_cache.bin");
  }
  {
    ScopedEnv local(L"LOCALAPPDATA", nullptr);
    ScopedEnv profile(L"USERPROFILE", L"D:\\Users\\me");
    EXPECT_EQ(DefaultCachePath(), "D:\\Users\\me\\AppData\\Local\\torch_tensorrt_rtx\\runtime_cache.bin");
  }
}

}  // namespace
}  // namespace runtime
}  // namespace torch_tensorrt_rtx

namespace {

// Child mode: saves `rounds` growing entries for engine `t` (the last is Blob(t, rounds));
// exit 1 if any save failed.
int SaveEntries(const std::string& path, int t, int rounds) {
  using namespace torch_tensorrt_rtx::runtime;
  RuntimeCacheFile store(path);
  for (int r = 1; r <= rounds; ++r) {
    const std::string blob = Blob(t, r);
    if (!store.TrySaveEntry(KeyOf(t), blob.data(), blob.size())) return 1;
  }
  return 0;
}

// Child mode for scripts/windows_test.sh's file-format check with the Python runtime:
// exit 0 if engine `t`'s entry in the cache at `path` is Blob(t, round), else 1.
int ExpectEntry(const std::string& path, int t, int round) {
  using namespace torch_tensorrt_rtx::runtime;
  std::optional<CachedEntry> entry = RuntimeCacheFile(path).TryLoadEntry(KeyOf(t));
  if (entry && entry->data == Blob(t, round)) return 0;
  std::cerr << "entry of engine " << t << " in " << path << ": "
            << (entry ? std::to_string(entry->data.size()) + " bytes, not the expected ones" : "missing") << std::endl;
  return 1;
}

// Child mode for scripts/windows_test.sh's cross-check with the Python runtime: sets
// LOCALAPPDATA and USERPROFILE ("-" removes one) and prints DefaultCachePath().
int PrintDefaultCachePath(const std::string& local, const std::string& profile) {
  using torch_tensorrt_rtx::testing::Wide;
  SetEnvironmentVariableW(L"LOCALAPPDATA", local == "-" ? nullptr : Wide(local).c_str());
  SetEnvironmentVariableW(L"USERPROFILE", profile == "-" ? nullptr : Wide(profile).c_str());
  std::cout << torch_tensorrt_rtx::runtime::DefaultCachePath() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int exit_code = 0;
  if (torch_tensorrt_rtx::util::RunChildMode(argc, argv, &exit_code)) return exit_code;
  if (argc == 5 && std::string(argv[1]) == "--save-entries") {
    return SaveEntries(argv[2], std::stoi(argv[3]), std::stoi(argv[4]));
  }
  if (argc == 5 && std::string(argv[1]) == "--expect-entry") {
    return ExpectEntry(argv[2], std::stoi(argv[3]), std::stoi(argv[4]));
  }
  if (argc == 4 && std::string(argv[1]) == "--default-cache-path") return PrintDefaultCachePath(argv[2], argv[3]);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}

#endif  // _WIN32
