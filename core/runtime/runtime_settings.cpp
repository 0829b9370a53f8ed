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

RuntimeSettings SettingsOverrides::ApplyTo(RuntimeSettings s) const {
  if (cache_path) {
    s.cache_path = *cache_path;
    s.cache_enabled = true;
  }
  if (cache_disabled) {
    s.cache_path.clear();
    s.cache_enabled = false;
  }
  if (kernel_strategy) s.kernel_strategy = *kernel_strategy;
  if (cuda_graph_strategy) s.cuda_graph_strategy = *cuda_graph_strategy;
  if (allocation_strategy) s.allocation_strategy = *allocation_strategy;
  return s;
}

SettingsOverrides SettingsOverrides::Parse(const std::vector<std::string>& entries) {
  SettingsOverrides o;
  for (const std::string& entry : entries) {
    const std::size_t eq = entry.find('=');
    const std::string key = entry.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : entry.substr(eq + 1);
    if (entry == "cache_disabled") {
      o.cache_disabled = true;
    } else if (eq == std::string::npos) {
      throw std::invalid_argument("runtime setting '" + entry + "': expected 'name=value'");
    } else if (key == "cache_path") {
      o.cache_path = value;
    } else if (key == kKernelStrategySetting) {
      o.kernel_strategy = ParseKernelStrategy(value);
    } else if (key == kCudaGraphStrategySetting) {
      o.cuda_graph_strategy = ParseCudaGraphStrategy(value);
    } else if (key == kAllocationStrategySetting) {
      o.allocation_strategy = ParseAllocationStrategy(value);
    } else {
      throw std::invalid_argument("unknown runtime setting '" + key + "': expected cache_path, cache_disabled, " +
                                  kKernelStrategySetting + ", " + kCudaGraphStrategySetting +
                                  " or " + kAllocationStrategySetting);
    }
  }
  return o;
}

std::vector<std::string> SettingsOverrides::ToEntries() const {
  std::vector<std::string> out;
  if (cache_disabled) {
    out.push_back("cache_disabled");
  } else if (cache_path) {
    out.push_back("cache_path=" + *cache_path);
  }
  if (kernel_strategy) out.push_back(std::string(kKernelStrategySetting) + "=" + Name(*kernel_strategy));
  if (cuda_graph_strategy) {
    out.push_back(std::string(kCudaGraphStrategySetting) + "=" + Name(*cuda_graph_strategy));
  }
  if (allocation_strategy) {
    out.push_back(std::string(kAllocationStrategySetting) + "=" + Name(*allocation_strategy));
  }
  return out;
}

std::vector<std::string> ToEntries(const RuntimeSettings& s) {
  return {s.cache_enabled ? "cache_path=" + s.cache_path : std::string("cache_disabled"),
          std::string(kKernelStrategySetting) + "=" + Name(s.kernel_strategy),
          std::string(kCudaGraphStrategySetting) + "=" + Name(s.cuda_graph_strategy),
          std::string(kAllocationStrategySetting) + "=" + Name(s.allocation_strategy)};
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
