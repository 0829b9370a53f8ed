// TRTRuntimeConfig: owns an engine's runtime settings, its TensorRT runtime config and
// runtime cache, and its execution context. It is the ONLY code that creates execution
// contexts (trt::Engine's factory is private, this class its only friend).
//
// Example:
//
//   TRTRuntimeConfig config(Sha256(engine_bytes.data(), engine_bytes.size()), settings);
//   trt::ExecutionContext& ctx = config.Context(engine);   // created lazily
//   config.UpdateSettings(new_settings);                     // recreated at next Context()
//   config.ReleaseCommunicator(engine);                      // recreated now, same path
//
// Contract:
//  - Every recreation -- first use, settings change, profiling toggle, allocation
//    strategy change, NCCL bind or release -- goes through one function that (1) saves
//    the runtime cache to its file, (2) drops the old context, (3) creates a runtime
//    config and applies EVERY strategy, (4) attaches the runtime cache (loaded from the
//    cache file when the cache path is new), (5) creates the context and re-applies
//    profiling and the communicator. No step can be skipped by a caller.
//  - The runtime cache is this engine's entry (keyed by `engine_key`) of the shared cache
//    file; saves keep every other engine's entry. A save is skipped while the entry is
//    unchanged since it was loaded or saved (unless its last-use time is a day old; a
//    last-use time in the future, a clock that went back, counts as fresh). Loads and saves
//    of one cache path go through one RuntimeCacheFile, made when the path is first used.
//    settings.cache_enabled = false: no load, no save (an in-memory cache still serves
//    the context).
//  - The destructor saves the runtime cache and never throws. Not thread-safe: the
//    owning TRTEngine serialises calls.
#ifndef TORCH_TENSORRT_RTX_CORE_RUNTIME_TRT_RUNTIME_CONFIG_H_
#define TORCH_TENSORRT_RTX_CORE_RUNTIME_TRT_RUNTIME_CONFIG_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/runtime/runtime_settings.h"
#include "core/runtime/sha256.h"
#include "core/runtime/trt_interface.h"
#include "core/util/file_lock.h"

namespace torch_tensorrt_rtx {
namespace runtime {

class RuntimeCacheFile;

class TRTRuntimeConfig final {
 public:
  explicit TRTRuntimeConfig(EngineKey engine_key, RuntimeSettings settings = {},
                            std::chrono::milliseconds lock_timeout = util::kDefaultLockTimeout);
  ~TRTRuntimeConfig();
  TRTRuntimeConfig(const TRTRuntimeConfig&) = delete;
  TRTRuntimeConfig& operator=(const TRTRuntimeConfig&) = delete;

  const RuntimeSettings& settings() const noexcept { return settings_; }
  // True when the next Context() creates a context.
  bool stale() const noexcept { return stale_ || context_ == nullptr; }
  // A change marks the context stale; it is recreated at the next Context().
  void UpdateSettings(const RuntimeSettings& settings);
  void SetProfiling(bool enabled);

  // The execution context for `engine`, (re)created if missing or stale.
  trt::ExecutionContext& Context(trt::Engine& engine);

  // Multi-device engines: bind or release an NCCL communicator. Both recreate the
  // context at once through the same path as every other recreation.
  void BindCommunicator(trt::Engine& engine, void* communicator);
  void ReleaseCommunicator(trt::Engine& engine);

  // Saves this engine's runtime cache entry if it changed; true if written. Never throws.
  bool SaveRuntimeCache() noexcept;

  // Drops the context only (saving the runtime cache first); the next Context() creates one
  // the usual way. For engine changes TensorRT allows only without a live context (a weight
  // streaming budget). Never throws.
  void DropContext() noexcept;

  // Drops the context and the TensorRT objects; call before the engine goes away.
  // Saves the runtime cache first. Never throws.
  void Release() noexcept;

 private:
  void Recreate(trt::Engine& engine, const char* reason);

  EngineKey engine_key_;
  RuntimeSettings settings_;
  std::chrono::milliseconds lock_timeout_;
  // What the file holds for this engine, as far as we know: digest and last-use time of
  // the entry we last loaded or saved (no digest: nothing loaded or saved yet).
  std::optional<EngineKey> saved_digest_;
  std::uint64_t saved_last_use_ = 0;
  bool profiling_ = false;
  void* communicator_ = nullptr;
  bool stale_ = true;
  // Declaration order is destruction order reversed: the context goes first.
  std::unique_ptr<trt::RuntimeConfig> trt_config_;
  std::unique_ptr<trt::RuntimeCache> cache_;
  std::string cache_file_path_;                // the setting cache_ was loaded for
  std::unique_ptr<RuntimeCacheFile> cache_file_;  // its store: loads and saves go to the same file
  std::unique_ptr<trt::ExecutionContext> context_;
};

}  // namespace runtime
}  // namespace torch_tensorrt_rtx

#endif  // TORCH_TENSORRT_RTX_CORE_RUNTIME_TRT_RUNTIME_CONFIG_H_
