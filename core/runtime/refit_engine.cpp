#include "core/runtime/refit_engine.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include <c10/util/Exception.h>

#include "core/runtime/execute_engine.h"
#include "core/runtime/log.h"
#include "core/runtime/output_spec.h"

namespace torch_tensorrt_rtx {
namespace runtime {
namespace {

// What a Python user sees for the same tensor: "(3,)", "(2, 4)", "torch.float32".
std::string PyShape(const at::Tensor& t) {
  std::ostringstream os;
  os << "(";
  for (int64_t i = 0; i < t.dim(); ++i) os << (i ? ", " : "") << t.size(i);
  os << (t.dim() == 1 ? ",)" : ")");
  return os.str();
}

std::string PyDtype(const at::Tensor& t) {
  return "torch." + std::string(c10::getDtypeNames(t.scalar_type()).first);
}

std::string PyList(const std::vector<std::string>& names, std::size_t limit) {
  std::string out = "[";
  for (std::size_t i = 0; i < names.size() && i < limit; ++i) out += (i ? ", '" : "'") + names[i] + "'";
  return out + "]";
}

std::optional<trt::DataType> WeightType(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return trt::DataType::kFloat;
    case at::kHalf: return trt::DataType::kHalf;
    case at::kChar: return trt::DataType::kInt8;
    case at::kByte: return trt::DataType::kUInt8;
    case at::kInt: return trt::DataType::kInt32;
    case at::kLong: return trt::DataType::kInt64;
    case at::kBool: return trt::DataType::kBool;
    default: return std::nullopt;
  }
}

}  // namespace

int RefitEngineLocked(TRTEngine& engine, const std::vector<std::string>& names,
                      const std::vector<at::Tensor>& weights) {
  const std::string what = "engine '" + engine.name() + "'";
  TORCH_CHECK(names.size() == weights.size(), what, ": ", names.size(), " refit weight names but ",
              weights.size(), " weight tensors");
  std::unique_ptr<trt::Refitter> refitter = engine.Engine().CreateRefitter();
  TORCH_CHECK(refitter != nullptr, what, ": TensorRT-RTX cannot refit it (the engine was not built with "
              "strip_engine_weights=True or immutable_weights=False), yet the program passes it ",
              weights.size(), " weights");
  const std::vector<std::string> all = refitter->AllWeights();
  const std::set<std::string> known(all.begin(), all.end());
  std::vector<at::Tensor> keepalive;  // host copies, read until the refit returns
  void* stream = nullptr;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    if (!known.count(name)) {
      LogDebug(what + ": weight '" + name + "' is not refittable in the engine (folded); skipped");
      continue;
    }
    const at::Tensor& weight = weights[i];
    at::Tensor host = weight.detach().to(at::kCPU).contiguous();
    if (host.scalar_type() == at::kBFloat16) host = host.to(at::kFloat);  // stored as fp32 at build
    const std::optional<trt::DataType> type = WeightType(host.scalar_type());
    TORCH_CHECK(type.has_value(), what, ": weight '", name, "' (shape ", PyShape(weight), ", ", PyDtype(weight),
                ") has a dtype TensorRT-RTX weights cannot hold; expected the shape and dtype the engine was "
                "built with");
    if (!weight.is_cpu()) stream = CurrentStream(weight.device());
    keepalive.push_back(host);
    TORCH_CHECK(refitter->SetNamedWeights(name, trt::WeightsView{*type, host.data_ptr(), host.numel()}), what,
                ": TensorRT-RTX refused weight '", name, "' (shape ", PyShape(weight), ", ", PyDtype(weight),
                "); expected the shape and dtype the engine was built with");
  }
  std::vector<std::string> missing = refitter->MissingWeights();
  std::sort(missing.begin(), missing.end());
  TORCH_CHECK(missing.empty(), what, ": the engine still needs weights ", PyList(missing, 8),
              missing.size() > 8 ? " ..." : "", " (", missing.size(),
              " missing); the program does not provide them");
  TORCH_CHECK(refitter->Refit(stream), what, ": TensorRT-RTX refit_cuda_engine failed");
  LogInfo(what + ": refitted " + std::to_string(keepalive.size()) + " weights");
  return static_cast<int>(keepalive.size());
}

std::vector<at::Tensor> RefitBeforeRunLocked(const std::vector<at::Tensor>& inputs, TRTEngine& engine,
                                             const std::string* output_spec) {
  const std::size_t own = engine.input_names().size();
  if (inputs.size() <= own) return inputs;
  if (engine.NeedsRefitLocked()) {  // the weights are copied out only for the refit, not on every run
    std::vector<at::Tensor> weights(inputs.begin() + static_cast<std::ptrdiff_t>(own), inputs.end());
    TORCH_CHECK(output_spec != nullptr, "engine '", engine.name(), "' got ", weights.size(),
                " trailing weight inputs but no names for them: a weightless engine runs through the "
                "saved program's op (torch.ops.tensorrt_rtx.execute_engine), whose output spec names them");
    RefitEngineLocked(engine, SpecRefitWeights(*output_spec), weights);
    engine.SetRefittedLocked();
  }
  return std::vector<at::Tensor>(inputs.begin(), inputs.begin() + static_cast<std::ptrdiff_t>(own));
}

}  // namespace runtime
}  // namespace torch_tensorrt_rtx
