// TRTEngine: one TensorRT(-RTX) engine of a compiled program: its record (engine bytes,
// binding names, compute capabilities), the deserialized engine (created lazily, on first use) and
// its TRTRuntimeConfig.
//
// Example:
//
//   TRTEngine engine(EngineRecord::FromList(std::move(fields)));   // no TensorRT needed
//   engine.UpdateSettings(settings);          // from the Python context managers or C++
//   std::lock_guard<std::mutex> guard(engine.mutex());
//   trt::ExecutionContext& ctx = engine.Context();   // deserializes, creates the context
//
// Contract:
//  - Construction, ToString() and record() never touch TensorRT, so engines load, pickle
//    and print in builds without TensorRT-RTX. The first Engine()/Context() call
//    deserializes; in such builds it throws trt::BackendUnavailableError.
//  - Before deserializing, the backend's verdict on the bytes (engine_contract.h): bytes
//    that are no engine, or a GPU the engine was not built for, throw std::runtime_error
//    with the contract's message. A context (re)creation with incompatible strategies logs
//    the contract's warning.
//  - The engine bytes are moved in, never deep-copied.
//  - Settings and execution may be used from several threads: callers of Context(),
//    Engine() and the communicator methods hold mutex(); the settings methods lock it.
#ifndef TORCH_TENSORRT_RTX_CORE_RUNTIME_TRT_ENGINE_H_
#define TORCH_TENSORRT_RTX_CORE_RUNTIME_TRT_ENGINE_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/runtime/engine_record.h"
#include "core/runtime/runtime_settings.h"
#include "core/runtime/trt_interface.h"
#include "core/runtime/trt_runtime_config.h"

namespace torch_tensorrt_rtx {
namespace runtime {

class TRTEngine final {
 public:
  // `runtime` null means trt::CreateDefaultRuntime(), asked for at first deserialization.
  explicit TRTEngine(EngineRecord record, std::shared_ptr<trt::Runtime> runtime = nullptr,
                     RuntimeSettings settings = {},
                     std::chrono::milliseconds lock_timeout = util::kDefaultLockTimeout);
  ~TRTEngine();
  TRTEngine(const TRTEngine&) = delete;
  TRTEngine& operator=(const TRTEngine&) = delete;

  const EngineRecord& record() const noexcept { return record_; }
  const std::string& name() const noexcept { return record_.name(); }
  const std::vector<std::string>& input_names() const noexcept { return input_names_; }
  const std::vector<std::string>& output_names() const noexcept { return output_names_; }

  // Settings API (locks mutex()).
  RuntimeSettings settings() const;
  // settings() for a caller that already holds mutex().
  const RuntimeSettings& SettingsLocked() const noexcept { return config_.settings(); }
  void UpdateSettings(const RuntimeSettings& settings);
  void SetProfiling(bool enabled);
  bool SaveRuntimeCache() noexcept;

  // Execution API: the caller holds mutex().
  std::mutex& mutex() const noexcept { return mutex_; }
  trt::Engine& Engine();
  trt::ExecutionContext& Context();
  // UpdateSettings for a caller that already holds mutex() (e.g. just before Context()).
  void UpdateSettingsLocked(const RuntimeSettings& settings);
  void BindCommunicator(void* communicator);
  void ReleaseCommunicator();

  // Weightless engines (refit_engine.h refits them from the program's weights): true until
  // refitted, and again after MarkForRefit() (new weights). The *Locked ones: caller holds mutex().
  bool NeedsRefitLocked() const noexcept { return !refitted_; }
  void SetRefittedLocked() noexcept { refitted_ = true; }
  void MarkForRefit();

  // Weight streaming (lock mutex(), deserialize the engine; trt::Engine says what they mean).
  int64_t StreamableWeightsSize();
  int64_t WeightStreamingBudget();
  int64_t WeightStreamingAutomaticBudget();
  // Drops the execution context (a budget changes only without one; the next run creates it
  // the usual way), then sets the budget. Throws std::invalid_argument for a negative budget or an
  // engine without streamable weights, std::runtime_error when TensorRT-RTX refuses it.
  void SetWeightStreamingBudget(int64_t bytes);

  std::string ToString() const;

 private:
  EngineRecord record_;
  std::vector<std::string> input_names_;
  std::vector<std::string> output_names_;
  mutable std::mutex mutex_;
  bool refitted_ = false;
  // Destruction runs bottom-up: context and cache, then engine, then runtime.
  std::shared_ptr<trt::Runtime> runtime_;
  std::unique_ptr<trt::Engine> engine_;
  TRTRuntimeConfig config_;
};

}  // namespace runtime
}  // namespace torch_tensorrt_rtx

#endif  // TORCH_TENSORRT_RTX_CORE_RUNTIME_TRT_ENGINE_H_
