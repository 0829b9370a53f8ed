// The platform-independent parts of cache_file_io.h.
#include <cctype>
#include <utility>

#include "core/definitions/cache_protocol.h"
#include "core/runtime/cache_file_io.h"

namespace torch_tensorrt_rtx {
namespace runtime {
namespace io {

// Ownership of the platform handle (-1 when closed on every platform); Close() is per platform.
ReadableFile::ReadableFile(ReadableFile&& other) noexcept
    : handle_(other.handle_), size_(other.size_), path_(std::move(other.path_)) {
  other.handle_ = -1;
}

ReadableFile& ReadableFile::operator=(ReadableFile&& other) noexcept {
  if (this != &other) {
    Close();
    handle_ = other.handle_;
    size_ = other.size_;
    path_ = std::move(other.path_);
    other.handle_ = -1;
  }
  return *this;
}

ReadableFile::~ReadableFile() { Close(); }

bool IsOwnTempName(const std::string& cache_name, const std::string& file_name) {
  const std::string prefix = cache_name + protocol::kTempMarker;
  if (file_name.size() < prefix.size() + 6 || file_name.size() > prefix.size() + 8 ||
      file_name.compare(0, prefix.size(), prefix) != 0) {
    return false;
  }
  for (std::size_t i = prefix.size(); i < file_name.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(file_name[i]);
    if (!(std::isalnum(c) || c == '_') || c > 127) return false;
  }
  return true;
}

}  // namespace io
}  // namespace runtime
}  // namespace torch_tensorrt_rtx
