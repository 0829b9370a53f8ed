// The platform-independent parts of cache_file_io.h.
#include <cctype>

#include "core/definitions/cache_protocol.h"
#include "core/runtime/cache_file_io.h"

namespace torch_tensorrt_rtx {
namespace runtime {
namespace io {

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
