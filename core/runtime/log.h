// Logging for the C++ runtime: one line per message on stderr, prefixed with the level.
//
// Example:
//
//   LogWarning("runtime cache: could not lock " + lock_path + " within 10.0 s");
//
// Contract: never throws (these are called from destructors and noexcept paths); a
// failing stderr write is ignored. Messages at or above the level set by
// TORCH_TENSORRT_RTX_LOG_LEVEL (debug|info|warning|error; default warning) are printed.
#ifndef TORCH_TENSORRT_RTX_CORE_RUNTIME_LOG_H_
#define TORCH_TENSORRT_RTX_CORE_RUNTIME_LOG_H_

#include <string>

namespace torch_tensorrt_rtx {
namespace runtime {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void Log(LogLevel level, const std::string& message) noexcept;
inline void LogDebug(const std::string& m) noexcept { Log(LogLevel::kDebug, m); }
inline void LogInfo(const std::string& m) noexcept { Log(LogLevel::kInfo, m); }
inline void LogWarning(const std::string& m) noexcept { Log(LogLevel::kWarning, m); }
inline void LogError(const std::string& m) noexcept { Log(LogLevel::kError, m); }

// A runtime cache warning: logged as a warning every time, and handed to the sink (if one
// is set) the first time for this cache path and reason `kind`. The sink is how the warning
// reaches Python's `warnings` as a RuntimeCacheWarning; it must not throw.
using CacheWarningSink = void (*)(const char* path, const char* kind, const char* text);
void ReportCacheWarning(const std::string& path, const char* kind, const std::string& text) noexcept;
void SetCacheWarningSink(CacheWarningSink sink) noexcept;
// (Also exported with C linkage as torch_tensorrt_rtx_set_cache_warning_sink, for ctypes.)

}  // namespace runtime
}  // namespace torch_tensorrt_rtx

#endif  // TORCH_TENSORRT_RTX_CORE_RUNTIME_LOG_H_
