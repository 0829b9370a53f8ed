// RuntimeSettings: the runtime modes of an engine, chosen at run time and never stored in
// an engine record -- the C++ twin of torch_tensorrt_rtx.runtime.settings.RuntimeSettings.
//
// Example:
//
//   RuntimeSettings s;                                   // lazy, disabled, static
//   s.cache_path = "/data/rtx.cache";
//   s.kernel_strategy = ParseKernelStrategy("eager");    // throws on an unknown name
//   engine.UpdateSettings(s);                            // context recreated lazily
//
// Contract: the strategy enums and their names are generated (runtime_strategies.h) from
// [strategies] in py/torch_tensorrt_rtx/runtime/definitions.toml, the definition the Python
// runtime reads too; the first name of each is the default.
// Parse* throw std::invalid_argument listing the valid names. An empty cache_path means
// the per-user default (DefaultCachePath()); cache_enabled = false turns the runtime
// cache file off (the Python runtime's cache_path=None).
#ifndef TORCH_TENSORRT_RTX_CORE_RUNTIME_RUNTIME_SETTINGS_H_
#define TORCH_TENSORRT_RTX_CORE_RUNTIME_RUNTIME_SETTINGS_H_

#include <optional>
#include <string>
#include <vector>

#include "core/definitions/runtime_strategies.h"

namespace torch_tensorrt_rtx {
namespace runtime {

struct RuntimeSettings {
  std::string cache_path;     // "" = DefaultCachePath()
  bool cache_enabled = true;  // false: no runtime cache file is loaded or saved
  KernelStrategy kernel_strategy = static_cast<KernelStrategy>(0);
  CudaGraphStrategy cuda_graph_strategy = static_cast<CudaGraphStrategy>(0);
  AllocationStrategy allocation_strategy = static_cast<AllocationStrategy>(0);

  bool operator==(const RuntimeSettings& o) const {
    return cache_path == o.cache_path && cache_enabled == o.cache_enabled &&
           kernel_strategy == o.kernel_strategy &&
           cuda_graph_strategy == o.cuda_graph_strategy &&
           allocation_strategy == o.allocation_strategy;
  }
  bool operator!=(const RuntimeSettings& o) const { return !(*this == o); }
};

KernelStrategy ParseKernelStrategy(const std::string& name);
CudaGraphStrategy ParseCudaGraphStrategy(const std::string& name);
AllocationStrategy ParseAllocationStrategy(const std::string& name);
const char* Name(KernelStrategy s);
const char* Name(CudaGraphStrategy s);
const char* Name(AllocationStrategy s);

// "cache_path=...; kernel_strategy=lazy; ..." for logs and __str__.
std::string ToString(const RuntimeSettings& s);

// Per-engine settings that replace the scope's: unset members follow the scope.
struct SettingsOverrides {
  std::optional<std::string> cache_path;  // a file ("" = per-user default); enables the cache
  bool cache_disabled = false;             // no runtime cache file (wins over cache_path)
  std::optional<KernelStrategy> kernel_strategy;
  std::optional<CudaGraphStrategy> cuda_graph_strategy;
  std::optional<AllocationStrategy> allocation_strategy;

  RuntimeSettings ApplyTo(RuntimeSettings scope) const;
  // The one encoding of settings between Python and C++ (and serving.h): a list of
  // "name=value" entries, names and values from definitions.toml, plus "cache_path=P"
  // ("" = the per-user default) or "cache_disabled". Throws std::invalid_argument naming a
  // bad entry and the valid names. Python's twin: runtime/_native.py settings_entries.
  static SettingsOverrides Parse(const std::vector<std::string>& entries);
  // The set members as entries Parse reads back.
  std::vector<std::string> ToEntries() const;
};

// Every setting of `s` as entries SettingsOverrides::Parse reads back.
std::vector<std::string> ToEntries(const RuntimeSettings& s);

// The Python runtime's default: $XDG_CACHE_HOME (if absolute) or ~/.cache, then the
// names in definitions.toml (torch_tensorrt_rtx/runtime_cache.bin). Does not create
// the directory.
std::string DefaultCachePath();

// The cache path in effect: s.cache_path, or DefaultCachePath() when it is empty; ""
// when the cache is disabled.
std::string EffectiveCachePath(const RuntimeSettings& s);

}  // namespace runtime
}  // namespace torch_tensorrt_rtx

#endif  // TORCH_TENSORRT_RTX_CORE_RUNTIME_RUNTIME_SETTINGS_H_
