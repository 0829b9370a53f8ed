#include "core/runtime/log.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

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

}  // namespace runtime
}  // namespace torch_tensorrt_rtx
