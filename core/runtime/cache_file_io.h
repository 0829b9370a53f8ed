// The file operations of the runtime cache store, one implementation per platform:
// cache_file_io_posix.cpp (Linux, macOS) and cache_file_io_windows.cpp. The Python twin is
// py/torch_tensorrt_rtx/runtime/cache_file_io.py; both refuse the same files.
//
// Example (a save, under the exclusive lock):
//
//   std::optional<ReadableFile> old = ReadableFile::Open(path, std::nullopt);
//   TempFile temp = TempFile::CreateBeside(path);        // "<name>.trtx-tmp-XXXXXX"
//   temp.Write(bytes.data(), bytes.size());
//   temp.CommitTo(path);       // flush to disk, atomic replace, make the rename durable
//
// Contract:
//  - ReadableFile::Open never blocks (a FIFO cannot hang it), never follows a symlink and
//    accepts only a regular file owned by us or root and not writable by other users, no
//    larger than `max_bytes`; otherwise it throws CacheFileRefused saying why. The caller
//    checks the directory (CheckDirectoryTrusted) first, once. A missing file is nullopt.
//    Paths are UTF-8.
//  - OS failures throw std::system_error naming the path.
//  - A TempFile not committed is deleted by its destructor.
#ifndef TORCH_TENSORRT_RTX_CORE_RUNTIME_CACHE_FILE_IO_H_
#define TORCH_TENSORRT_RTX_CORE_RUNTIME_CACHE_FILE_IO_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

namespace torch_tensorrt_rtx {
namespace runtime {
namespace io {

// The path holds something the store must not read or replace; what() says why.
class CacheFileRefused : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ReadableFile final {
 public:
  // nullopt if nothing is at `path`; max_bytes nullopt means any size.
  static std::optional<ReadableFile> Open(const std::string& path,
                                          std::optional<std::uint64_t> max_bytes);
  ReadableFile(ReadableFile&& other) noexcept;
  ReadableFile& operator=(ReadableFile&& other) noexcept;
  ReadableFile(const ReadableFile&) = delete;
  ReadableFile& operator=(const ReadableFile&) = delete;
  ~ReadableFile();

  std::uint64_t size() const noexcept { return size_; }
  // Exactly `size` bytes at `offset` into `out`; throws if the file ends sooner.
  void ReadAt(std::uint64_t offset, char* out, std::size_t size) const;
  void Close() noexcept;

 private:
  ReadableFile(std::intptr_t handle, std::uint64_t size, std::string path) noexcept
      : handle_(handle), size_(size), path_(std::move(path)) {}
  std::intptr_t handle_;
  std::uint64_t size_;
  std::string path_;
};

class TempFile final {
 public:
  // A new, uniquely named file beside `path` (mode 0600 on POSIX).
  static TempFile CreateBeside(const std::string& path);
  TempFile(TempFile&& other) noexcept;
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  TempFile& operator=(TempFile&&) = delete;
  ~TempFile();

  void Write(const void* data, std::size_t size);
  // Flushes to disk, closes, atomically replaces `path` with this file and makes the
  // rename durable. Refuses (CacheFileRefused) if a symlink appeared at `path`.
  void CommitTo(const std::string& path);
  const std::string& name() const noexcept { return name_; }

 private:
  TempFile(std::intptr_t handle, std::string name) noexcept : handle_(handle), name_(std::move(name)) {}
  std::intptr_t handle_;
  std::string name_;
};

// Lexically normalised absolute path, like Python's os.path.abspath.
std::string AbsolutePath(const std::string& path);
std::string DirName(const std::string& path);
std::string BaseName(const std::string& path);
// Anything at the path, a dangling symlink included (lexists).
bool Exists(const std::string& path) noexcept;
bool IsSymlink(const std::string& path) noexcept;
// Missing directories created, each with mode 0700.
void MakePrivateDirs(const std::string& dir);
// CacheFileRefused if other users can write into `dir` (nothing if it does not exist).
void CheckDirectoryTrusted(const std::string& dir);
// True for "<cache_name><temp marker><6 to 8 of [A-Za-z0-9_]>", the only names
// RemoveStaleTempFiles deletes.
bool IsOwnTempName(const std::string& cache_name, const std::string& file_name);
// Deletes temp files of killed writers next to `path` (call under the exclusive lock).
void RemoveStaleTempFiles(const std::string& path) noexcept;
// The per-user directory of the default cache: $XDG_CACHE_HOME (absolute) or the home
// directory's .cache ($HOME if absolute, else the password database); on Windows
// %LOCALAPPDATA% (else %USERPROFILE%\AppData\Local). Then the protocol's directory name.
std::string DefaultCacheDir();

}  // namespace io
}  // namespace runtime
}  // namespace torch_tensorrt_rtx

#endif  // TORCH_TENSORRT_RTX_CORE_RUNTIME_CACHE_FILE_IO_H_
