// RuntimeCacheFile cases that need Windows (the store over cache_file_io_windows.cpp and the
// Windows FileLock): UTF-8 and backslash paths, reparse points, directories, pipes and
// devices at the cache path, unique temp names, sharing modes, stale temp files, and the
// default path under %LOCALAPPDATA%. Built with mingw-w64 together with the portable suite
// tests/core/runtime/runtime_cache_file_test.cpp (which has main() and the child modes), and
// run under wine by scripts/windows_test.sh.
#ifdef _WIN32

#define WIN32_LEAN_AND_MEAN
#include <windows.h>

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "core/runtime/cache_file_io.h"
#include "core/runtime/runtime_cache_file.h"
#include "core/runtime/runtime_settings.h"
#include "gtest/gtest.h"
#include "tests/core/runtime/runtime_cache_file_test_support.h"
#include "tests/core/util/test_dir.h"

namespace torch_tensorrt_rtx {
namespace runtime {
namespace {

using std::chrono::milliseconds;
using testing::Wide;

class RuntimeCacheFileWindowsTest : public RuntimeCacheFileTest {};

TEST_F(RuntimeCacheFileWindowsTest, BackslashPathsAreNormalizedLikeNtpathAbspath) {
  RuntimeCacheFile store(dir_ + "\\missing\\..\\\\.\\runtime_cache.bin");
  EXPECT_EQ(store.path(), path_);
  EXPECT_EQ(store.lock_path(), path_ + ".lock");
}

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

#endif  // _WIN32
