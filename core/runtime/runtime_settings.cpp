#include "core/runtime/runtime_settings.h"

#include <cctype>
#include <cstdlib>
#include <stdexcept>

#include "core/definitions/cache_protocol.h"
#include "core/runtime/cache_file_io.h"

namespace torch_tensorrt_rtx {
namespace runtime {
namespace {

template <typename Enum, std::size_t N>
Enum ParseName(const char* what, const std::string& name, const char* const (&names)[N]) {
  std::string lower;
  for (char c : name) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  std::string valid;
  for (std::size_t i = 0; i < N; ++i) {
    if (lower == names[i]) return static_cast<Enum>(i);
    valid += (i ? ", '" : "'") + std::string(names[i]) + "'";
  }
  throw std::invalid_argument("unknown " + std::string(what) + " '" + name +
                              "': expected one of " + valid);
}

}  // namespace

KernelStrategy ParseKernelStrategy(const std::string& name) {
  return ParseName<KernelStrategy>(kKernelStrategySetting, name, kKernelStrategyNames);
}
CudaGraphStrategy ParseCudaGraphStrategy(const std::string& name) {
  return ParseName<CudaGraphStrategy>(kCudaGraphStrategySetting, name, kCudaGraphStrategyNames);
}
AllocationStrategy ParseAllocationStrategy(const std::string& name) {
  return ParseName<AllocationStrategy>(kAllocationStrategySetting, name, kAllocationStrategyNames);
}
const char* Name(KernelStrategy s) { return kKernelStrategyNames[static_cast<int>(s)]; }
const char* Name(CudaGraphStrategy s) { return kCudaGraphStrategyNames[static_cast<int>(s)]; }
const char* Name(AllocationStrategy s) { return kAllocationStrategyNames[static_cast<int>(s)]; }

std::string ToString(const RuntimeSettings& s) {
  return "cache_path=" +
         (!s.cache_enabled ? std::string("<disabled>")
                           : s.cache_path.empty() ? std::string("<default>") : s.cache_path) +
         "; kernel_strategy=" + Name(s.kernel_strategy) +
         "; cuda_graph_strategy=" + Name(s.cuda_graph_strategy) +
         "; allocation_strategy=" + Name(s.allocation_strategy);
}

std::string DefaultCachePath() {
#ifdef _WIN32
  return io::DefaultCacheDir() + "\\" + protocol::kDefaultCacheFile;
#else
  return io::DefaultCacheDir() + "/" + protocol::kDefaultCacheFile;
#endif
}

std::string EffectiveCachePath(const RuntimeSettings& s) {
  if (!s.cache_enabled) return "";
  return s.cache_path.empty() ? DefaultCachePath() : s.cache_path;
}

}  // namespace runtime
}  // namespace torch_tensorrt_rtx
