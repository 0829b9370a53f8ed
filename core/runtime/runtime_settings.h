// RuntimeSettings: the runtime modes of an engine, chosen at run time and never stored in
// an engine record -- the C++ twin of torch_tensorrt_rtx.runtime.settings.RuntimeSettings.
//
// Example:
//
//   RuntimeSettings s;                                   // lazy, disabled, static
//   s.cache_path = "/data/rtx.cache";
//   s.kernel_strategy = ParseStrategy<KernelStrategy>("eager");  // throws on an unknown name
//   engine.UpdateSettings(s);                            // context recreated lazily
//
// Contract: the strategy enums, their names and the strategy members of RuntimeSettings and
// SettingsOverrides are generated (runtime_strategies.h) from [strategies] in
// py/torch_tensorrt_rtx/runtime/definitions.toml, the definition the Python runtime reads
// too; the first name of each is the default. Everything here handles every strategy through
// ForEachStrategy, so a new [strategies] table needs no edit in this file. An empty cache_path means
// the per-user default (DefaultCachePath()); cache_enabled = false turns the runtime
// cache file off (the Python runtime's cache_path=None).
#ifndef TORCH_TENSORRT_RTX_CORE_RUNTIME_RUNTIME_SETTINGS_H_
#define TORCH_TENSORRT_RTX_CORE_RUNTIME_RUNTIME_SETTINGS_H_

#include <cctype>
#include <cstddef>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "core/definitions/runtime_strategies.h"

namespace torch_tensorrt_rtx {
namespace runtime {

// The strategies (StrategySettings, generated with one member per [strategies] table) plus
// the runtime cache file.
struct RuntimeSettings : StrategySettings {
  std::string cache_path;     // "" = DefaultCachePath()
  bool cache_enabled = true;  // false: no runtime cache file is loaded or saved

  bool operator==(const RuntimeSettings& o) const;
  bool operator!=(const RuntimeSettings& o) const { return !(*this == o); }
};

// A strategy's value for its name (any case); throws std::invalid_argument naming the
// setting, the bad name and the valid ones. Name() is the reverse.
template <typename Enum>
Enum ParseStrategy(const std::string& name);
template <typename Enum>
const char* Name(Enum value);

// "cache_path=...; kernel_strategy=lazy; ..." for logs and __str__.
std::string ToString(const RuntimeSettings& s);

// Per-engine settings that replace the scope's: unset members follow the scope.
struct SettingsOverrides : StrategyOverrides {
  std::optional<std::string> cache_path;  // a file ("" = per-user default); enables the cache
  bool cache_disabled = false;             // no runtime cache file (wins over cache_path)

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

// ---- implementation of the templates ----------------------------------------------------
namespace settings_detail {
// The names of Enum's strategy (from the generated table) and how many there are.
template <typename Enum>
void Names(const char* const** names, std::size_t* count, const char** setting) {
  StrategySettings defaults;
  ForEachStrategy(defaults, [&](const char* key, const char* const* table, std::size_t n, auto& member) {
    if constexpr (std::is_same_v<std::decay_t<decltype(member)>, Enum>) {
      *names = table;
      *count = n;
      *setting = key;
    }
  });
}
[[noreturn]] void ThrowUnknownName(const char* setting, const std::string& name,
                                   const char* const* names, std::size_t count);
}  // namespace settings_detail

template <typename Enum>
Enum ParseStrategy(const std::string& name) {
  const char* const* names = nullptr;
  std::size_t count = 0;
  const char* setting = "";
  settings_detail::Names<Enum>(&names, &count, &setting);
  std::string lower;
  for (char c : name) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  for (std::size_t i = 0; i < count; ++i) {
    if (lower == names[i]) return static_cast<Enum>(i);
  }
  settings_detail::ThrowUnknownName(setting, name, names, count);
}

template <typename Enum>
const char* Name(Enum value) {
  const char* const* names = nullptr;
  std::size_t count = 0;
  const char* setting = "";
  settings_detail::Names<Enum>(&names, &count, &setting);
  return names[static_cast<std::size_t>(value)];
}

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
