// A scripted TensorRT backend for tests and benchmarks: implements the narrow interface
// (core/runtime/trt_interface.h) on the host, records every call, and emulates the two
// TensorRT-RTX behaviours the runtime must handle -- JIT-compiled kernels and a runtime
// cache that keeps them. Never linked into the shipped library (testonly).
//
// Example:
//
//   auto log = std::make_shared<CallLog>();
//   auto runtime = std::make_shared<ScriptedRuntime>(log);
//   TRTEngine engine(EngineRecord::FromList(MakeRecordList("e", ScriptedEngineBytes(
//       {"x"}, {"y"}))), runtime, settings);
//   ... log->calls() == {"deserialize e", "create_runtime_config", ...}
//
// Emulation:
//  - Engine bytes are text: "SCRIPTED-ENGINE v1\n" then "input NAME\n"/"output NAME\n";
//    every binding is float32; every output is 2 * input 0, shaped like input 0. An input
//    line may give its profile range, "input x 1x4 8x4" (min, max); without one the engine
//    reports no range. A line "verdict unsupported_cc" makes CheckEngine report that this
//    GPU is not one the engine was built for; bytes without the magic are malformed.
//  - allocation_strategy user_managed: Enqueue fails unless SetDeviceMemory handed the
//    context at least DeviceMemorySizeForShapes() bytes (64 per element of input 0).
//  - Kernels: with kernel strategy "lazy" the first enqueue for a new input shape JIT-
//    compiles kernel "<engine>/<shape>" ("jit ..." in the log) unless the attached
//    runtime cache holds it; "eager" compiles "<engine>/eager" at context creation;
//    "none" uses a generic kernel and never JITs.
//  - Runtime cache bytes: "SCRIPTED-CACHE v1\n" then one kernel per line; anything else is
//    rejected by Deserialize. Serialize of an empty cache gives "".
//  - Weightless engines: lines "weight NAME COUNT" declare refittable float32 weights. Such an
//    engine fails Enqueue until a Refitter set every weight (right name, float32, COUNT elements;
//    anything else is refused, as TensorRT does) and Refit succeeded; then every output is also
//    scaled by element 0 of the first weight. A line "refit fails" makes Refit fail. An engine
//    without weight lines is not refittable (CreateRefitter gives nullptr).
//  - Weight streaming: a line "streamable BYTES" (default 0); the budget starts at BYTES, is
//    capped to it, cannot change while a context of the engine lives, and the automatic budget
//    is BYTES / 2.
#ifndef TORCH_TENSORRT_RTX_TESTS_CORE_RUNTIME_SCRIPTED_BACKEND_H_
#define TORCH_TENSORRT_RTX_TESTS_CORE_RUNTIME_SCRIPTED_BACKEND_H_

#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/runtime/trt_interface.h"

namespace torch_tensorrt_rtx {
namespace testing {

namespace rt = ::torch_tensorrt_rtx::runtime;

class CallLog final {
 public:
  void Add(std::string call);
  std::vector<std::string> calls() const;
  void Clear();
  // Index of the first call starting with `prefix` at or after `from`; -1 if none.
  int Find(const std::string& prefix, int from = 0) const;
  int Count(const std::string& prefix) const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> calls_;
};

constexpr const char* kScriptedEngineMagic = "SCRIPTED-ENGINE v1\n";
constexpr const char* kScriptedCacheMagic = "SCRIPTED-CACHE v1\n";

std::string ScriptedEngineBytes(const std::vector<std::string>& inputs,
                                const std::vector<std::string>& outputs,
                                const std::vector<std::pair<std::string, int64_t>>& weights = {});
// A record list like Python's EngineRecord.to_list(), with the sentinel in optional slots.
std::vector<std::string> MakeRecordList(const std::string& name, std::string engine_bytes,
                                        const std::vector<std::string>& inputs,
                                        const std::vector<std::string>& outputs);

class ScriptedRuntime final : public rt::trt::Runtime {
 public:
  explicit ScriptedRuntime(std::shared_ptr<CallLog> log = std::make_shared<CallLog>());
  std::string Name() const override { return "scripted test backend"; }
  rt::trt::EngineVerdict CheckEngine(const std::string& bytes) override;
  std::unique_ptr<rt::trt::Engine> DeserializeEngine(const std::string& engine_name,
                                                     const std::string& bytes) override;
  const std::shared_ptr<CallLog>& log() const { return log_; }

 private:
  std::shared_ptr<CallLog> log_;
};

// Process-wide counts of scripted objects, for lifetime tests (engines freed with their
// program) and benchmarks: live engines and contexts now, deserializations, contexts
// created and successful refits so far.
struct ScriptedStats {
  int live_engines;
  int live_contexts;
  int deserializations;
  int contexts_created;
  int refits;
};
ScriptedStats Stats();

// Serialized form of a scripted cache holding `kernels`.
std::string ScriptedCacheBytes(const std::set<std::string>& kernels);

}  // namespace testing
}  // namespace torch_tensorrt_rtx

#endif  // TORCH_TENSORRT_RTX_TESTS_CORE_RUNTIME_SCRIPTED_BACKEND_H_
