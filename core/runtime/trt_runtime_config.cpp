#include "core/runtime/trt_runtime_config.h"

#include <ctime>
#include <stdexcept>

#include "core/definitions/cache_protocol.h"
#include "core/runtime/log.h"
#include "core/runtime/runtime_cache_file.h"

namespace torch_tensorrt_rtx {
namespace runtime {

TRTRuntimeConfig::TRTRuntimeConfig(EngineKey engine_key, RuntimeSettings settings,
                                   std::chrono::milliseconds lock_timeout)
    : engine_key_(engine_key), settings_(std::move(settings)), lock_timeout_(lock_timeout) {}

TRTRuntimeConfig::~TRTRuntimeConfig() { Release(); }

void TRTRuntimeConfig::UpdateSettings(const RuntimeSettings& settings) {
  if (settings == settings_) return;
  settings_ = settings;
  stale_ = true;
}

void TRTRuntimeConfig::SetProfiling(bool enabled) {
  if (enabled == profiling_) return;
  profiling_ = enabled;
  stale_ = true;
}

trt::ExecutionContext& TRTRuntimeConfig::Context(trt::Engine& engine) {
  if (stale_ || context_ == nullptr) Recreate(engine, context_ ? "settings changed" : "first use");
  return *context_;
}

void TRTRuntimeConfig::BindCommunicator(trt::Engine& engine, void* communicator) {
  communicator_ = communicator;
  Recreate(engine, "NCCL communicator bound");
}

void TRTRuntimeConfig::ReleaseCommunicator(trt::Engine& engine) {
  // Through Recreate(), like every other context: the cache is saved and every strategy
  // applied to the new context.
  communicator_ = nullptr;
  Recreate(engine, "NCCL communicator released");
}

bool TRTRuntimeConfig::SaveRuntimeCache() noexcept {
  if (cache_ == nullptr || cache_file_ == nullptr) return false;
  try {
    const std::string blob = cache_->Serialize();
    if (blob.empty()) return false;
    const EngineKey digest = Sha256(blob.data(), blob.size());
    const auto now = static_cast<std::uint64_t>(std::time(nullptr));
    // A clock that went back (now < saved_last_use_) counts as fresh, as in the Python runtime.
    const bool fresh = saved_digest_ && (now < saved_last_use_ ||
                                         now - saved_last_use_ < static_cast<std::uint64_t>(protocol::kTouchIntervalSeconds));
    if (fresh && *saved_digest_ == digest) return false;  // unchanged: leave the file alone
    if (!cache_file_->TrySaveEntry(engine_key_, blob.data(), blob.size(), now)) return false;
    saved_digest_ = digest;
    saved_last_use_ = now;
    return true;
  } catch (const std::exception& e) {
    LogWarning("runtime cache: serializing or saving failed (" + std::string(e.what()) + "); " +
               cache_file_path_ + " left untouched");
  } catch (...) {
    LogWarning("runtime cache: serializing or saving failed; " + cache_file_path_ +
               " left untouched");
  }
  return false;
}

void TRTRuntimeConfig::DropContext() noexcept {
  SaveRuntimeCache();
  context_.reset();
  stale_ = true;
}

void TRTRuntimeConfig::Release() noexcept {
  SaveRuntimeCache();
  context_.reset();
  cache_.reset();
  trt_config_.reset();
  cache_file_path_.clear();
  cache_file_.reset();
  stale_ = true;
}

void TRTRuntimeConfig::Recreate(trt::Engine& engine, const char* reason) {
  LogDebug(std::string("creating execution context (") + reason + "): " + ToString(settings_));
  // (1) Save what the old context JIT-compiled before anything is dropped.
  SaveRuntimeCache();
  // (2) The context goes before the config it was created from.
  context_.reset();
  // (3) A fresh runtime config with every strategy applied.
  std::unique_ptr<trt::RuntimeConfig> config = engine.CreateRuntimeConfig();
  if (config == nullptr) throw std::runtime_error("TensorRT returned no runtime config");
  config->SetStrategies(settings_);
  // (4) The runtime cache: kept while the cache path is unchanged, else a new one
  // loaded from the new file.
  const std::string path = EffectiveCachePath(settings_);
  if (cache_ == nullptr || path != cache_file_path_) {
    cache_.reset();
    cache_ = config->CreateRuntimeCache();
    cache_file_path_ = path;
    cache_file_.reset();
    saved_digest_.reset();
    if (cache_ != nullptr && !path.empty()) {
      // One store for this path's loads and saves: its absolute path and size cap are fixed
      // now, so a chdir before the save cannot send it to another file.
      cache_file_ = std::make_unique<RuntimeCacheFile>(path, lock_timeout_);
      trt::RuntimeCache* cache = cache_.get();
      std::optional<CachedEntry> entry = cache_file_->TryLoad(engine_key_, [cache](const void* data, std::size_t size) {
            return cache->Deserialize(data, size);
          });
      if (entry) {
        saved_digest_ = Sha256(entry->data.data(), entry->data.size());
        saved_last_use_ = entry->last_use;
      }
    }
  }
  if (cache_ != nullptr && !config->SetRuntimeCache(*cache_)) {
    LogWarning("TensorRT did not accept the runtime cache for " + (path.empty() ? "<disabled>" : path) +
               "; kernels will be compiled without it");
  }
  trt_config_ = std::move(config);
  // (5) The context, then what lives on the context.
  context_ = engine.CreateExecutionContext(*trt_config_);
  if (context_ == nullptr) {
    throw std::runtime_error(std::string("TensorRT could not create an execution context (") +
                             reason + ")");
  }
  if (profiling_) context_->SetProfiling(true);
  if (communicator_ != nullptr && !context_->SetCommunicator(communicator_)) {
    LogWarning("this TensorRT build cannot bind an NCCL communicator to the execution context");
  }
  stale_ = false;
}

}  // namespace runtime
}  // namespace torch_tensorrt_rtx
