#include "core/runtime/runtime_settings.h"

#include <cctype>
#include <cstdlib>
#include <stdexcept>

#include "core/definitions/cache_protocol.h"
#include "core/runtime/cache_file_io.h"

namespace torch_tensorrt_rtx {
namespace runtime {
namespace settings_detail {

void ThrowUnknownName(const char* setting, const std::string& name, const char* const* names,
                      std::size_t count) {
  std::string valid;
  for (std::size_t i = 0; i < count; ++i) valid += (i ? ", '" : "'") + std::string(names[i]) + "'";
  throw std::invalid_argument("unknown " + std::string(setting) + " '" + name + "': expected one of " + valid);
}

}  // namespace settings_detail

namespace {

// The strategies of `s` as "setting=name" entries, in definition order.
std::vector<std::string> StrategyEntries(const StrategySettings& s) {
  std::vector<std::string> out;
  ForEachStrategy(s, [&](const char* setting, const char* const* names, std::size_t, const auto& value) {
    out.push_back(std::string(setting) + "=" + names[static_cast<std::size_t>(value)]);
  });
  return out;
}

}  // namespace

bool RuntimeSettings::operator==(const RuntimeSettings& o) const {
  return cache_path == o.cache_path && cache_enabled == o.cache_enabled &&
         StrategyEntries(*this) == StrategyEntries(o);
}

std::string ToString(const RuntimeSettings& s) {
  std::string out = "cache_path=" + (!s.cache_enabled ? std::string("<disabled>")
                                     : s.cache_path.empty() ? std::string("<default>") : s.cache_path);
  for (const std::string& entry : StrategyEntries(s)) out += "; " + entry;
  return out;
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
  // Both structs list the strategies in the same (definition) order.
  std::vector<std::optional<std::size_t>> set;
  ForEachStrategy(*this, [&](const char*, const char* const*, std::size_t, const auto& value) {
    set.push_back(value ? std::optional<std::size_t>(static_cast<std::size_t>(*value)) : std::nullopt);
  });
  std::size_t i = 0;
  ForEachStrategy(s, [&](const char*, const char* const*, std::size_t, auto& value) {
    if (set[i]) value = static_cast<std::decay_t<decltype(value)>>(*set[i]);
    ++i;
  });
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
      continue;
    }
    if (eq == std::string::npos) {
      throw std::invalid_argument("runtime setting '" + entry + "': expected 'name=value'");
    }
    if (key == "cache_path") {
      o.cache_path = value;
      continue;
    }
    bool known = false;
    std::string valid = "cache_path, cache_disabled";
    ForEachStrategy(o, [&](const char* setting, const char* const*, std::size_t, auto& member) {
      valid += std::string(", ") + setting;
      if (key != setting) return;
      member = ParseStrategy<typename std::decay_t<decltype(member)>::value_type>(value);
      known = true;
    });
    if (!known) throw std::invalid_argument("unknown runtime setting '" + key + "': expected " + valid);
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
  ForEachStrategy(*this, [&](const char* setting, const char* const* names, std::size_t, const auto& value) {
    if (value) out.push_back(std::string(setting) + "=" + names[static_cast<std::size_t>(*value)]);
  });
  return out;
}

std::vector<std::string> ToEntries(const RuntimeSettings& s) {
  std::vector<std::string> out = {s.cache_enabled ? "cache_path=" + s.cache_path : std::string("cache_disabled")};
  for (std::string& entry : StrategyEntries(s)) out.push_back(std::move(entry));
  return out;
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
