#include "core/runtime/build_callbacks.h"

#include <atomic>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace torch_tensorrt_rtx::runtime::build_callbacks {
namespace {

std::atomic<LogFunction> log_forward{nullptr};
std::atomic<std::int32_t> log_limit{2};  // warnings and errors
std::atomic<std::uint64_t> messages_dropped{0};
std::atomic<std::uint64_t> phases_finished{0};

}  // namespace

void LogFilter(void* self, std::int32_t severity, const char* message) noexcept {
  const LogFunction forward = log_forward.load(std::memory_order_acquire);
  if (forward == nullptr || severity > log_limit.load(std::memory_order_relaxed)) {
    messages_dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  forward(self, severity, message);
}

LogFunction SetLogForward(LogFunction forward) noexcept {
  return log_forward.exchange(forward, std::memory_order_acq_rel);
}

void SetLogLimit(std::int32_t least_severe_kept) noexcept {
  log_limit.store(least_severe_kept, std::memory_order_relaxed);
}

std::uint64_t MessagesDropped() noexcept { return messages_dropped.load(std::memory_order_relaxed); }

void PhaseStart(void*, const char*, const char*, std::int32_t) noexcept {}

bool StepComplete(void*, const char*, std::int32_t) noexcept { return true; }  // false would cancel the build

void PhaseFinishTrimming(void* self, const char* phase) noexcept {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
  PhaseFinish(self, phase);
}

void PhaseFinish(void*, const char*) noexcept { phases_finished.fetch_add(1, std::memory_order_relaxed); }

std::uint64_t PhasesFinished() noexcept { return phases_finished.load(std::memory_order_relaxed); }

}  // namespace torch_tensorrt_rtx::runtime::build_callbacks
