#include "core/runtime/log.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <utility>

namespace torch_tensorrt_rtx {
namespace runtime {
namespace {

LogLevel ThresholdFromEnv() noexcept {
  const char* value = std::getenv("TORCH_TENSORRT_RTX_LOG_LEVEL");
  if (value == nullptr) return LogLevel::kWarning;
  if (std::strcmp(value, "debug") == 0) return LogLevel::kDebug;
  if (std::strcmp(value, "info") == 0) return LogLevel::kInfo;
  if (std::strcmp(value, "error") == 0) return LogLevel::kError;
  return LogLevel::kWarning;
}

const char* Name(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::kDebug: return "DEBUG";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kWarning: return "WARNING";
    case LogLevel::kError: return "ERROR";
  }
  return "?";
}

}  // namespace

void Log(LogLevel level, const std::string& message) noexcept {
  static const LogLevel threshold = ThresholdFromEnv();
  if (level < threshold) return;
  // One fprintf call per line so lines from several threads do not interleave.
  std::fprintf(stderr, "[torch_tensorrt_rtx] %s: %s\n", Name(level), message.c_str());
}

namespace {

std::mutex& SinkMutex() {
  static std::mutex mutex;
  return mutex;
}
CacheWarningSink sink = nullptr;                          // guarded by SinkMutex()
std::set<std::pair<std::string, std::string>>* reported;  // (path, kind); guarded by SinkMutex()

}  // namespace

void SetCacheWarningSink(CacheWarningSink new_sink) noexcept {
  std::lock_guard<std::mutex> guard(SinkMutex());
  sink = new_sink;
}

void ReportCacheWarning(const std::string& path, const char* kind, const std::string& text) noexcept {
  LogWarning(text);
  CacheWarningSink to_call = nullptr;
  try {
    std::lock_guard<std::mutex> guard(SinkMutex());
    if (sink == nullptr) return;
    if (reported == nullptr) reported = new std::set<std::pair<std::string, std::string>>();  // never freed
    if (!reported->emplace(path, kind).second) return;
    to_call = sink;
  } catch (...) {
    return;  // out of memory: the stderr line above is the warning
  }
  to_call(path.c_str(), kind, text.c_str());  // outside the mutex: the sink may call back into us
}

}  // namespace runtime
}  // namespace torch_tensorrt_rtx

// For Python's ctypes (runtime_cache_file.connect_native_warnings), which needs C linkage.
extern "C" void torch_tensorrt_rtx_set_cache_warning_sink(torch_tensorrt_rtx::runtime::CacheWarningSink sink) {
  torch_tensorrt_rtx::runtime::SetCacheWarningSink(sink);
}
