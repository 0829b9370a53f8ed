// Weightless engines on the C++ runtime, through the scripted backend's refitter: the op's
// trailing inputs are the engine's weights, named in its output spec; the engine is refitted
// from them before its first run, once per engine object, with the Python runtime's error words.
// Also the weight-streaming budget of an engine.
#include "core/runtime/refit_engine.h"

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/runtime/execute_engine.h"
#include "core/runtime/record_engine.h"

#include "gtest/gtest.h"
#include "tests/core/runtime/packed_record.h"
#include "tests/core/runtime/scripted_backend.h"
#include "tests/core/util/test_dir.h"

namespace torch_tensorrt_rtx {
namespace runtime {
namespace {

using testing::CallLog;
using testing::ScriptedRuntime;

// What the compiler writes (json.dumps, sort_keys): the weights' names under "refit_weights".
std::string Spec(const std::string& names_json) {
  return R"({"fx_nodes":["y:relu"],"inputs":[{"dtype":"float32","shape":["i0_0","i0_1"]}],)"
         R"("name":"blk0","outputs":[{"dtype":"float32","shape":["i0_0","i0_1"]}],)"
         R"("refit_derived":{"scale":["w.weight"]},"refit_weights":)" +
         names_json + R"(,"sha256":"sha"})";
}

const std::string kSpec = Spec(R"(["scale","bias"])");

class RefitEngineTest : public ::testing::Test {
 protected:
  void SetUp() override { settings_.cache_path = testing::MakeTestDir("refit_test") + "/cache.bin"; }
  // An engine y = 2 * x * scale[0] with weights scale (1 float) and bias (4 floats).
  std::unique_ptr<TRTEngine> Engine(const std::string& extra_lines = "") {
    std::string bytes = testing::ScriptedEngineBytes({"x"}, {"y"}, {{"scale", 1}, {"bias", 4}}) + extra_lines;
    return std::make_unique<TRTEngine>(
        EngineRecord::FromList(testing::MakeRecordList("blk0", std::move(bytes), {"x"}, {"y"})),
        std::make_shared<ScriptedRuntime>(log_), settings_);
  }
  // What the engine op does for one call.
  std::vector<at::Tensor> Run(TRTEngine& engine, const std::vector<at::Tensor>& inputs,
                              const std::string* spec = &kSpec) {
    std::lock_guard<std::mutex> guard(engine.mutex());
    return ExecuteEngineLocked(RefitBeforeRunLocked(inputs, engine, spec), engine);
  }
  // The message of the c10::Error the call throws ("" if none).
  std::string Error(TRTEngine& engine, const std::vector<at::Tensor>& inputs, const std::string* spec = &kSpec) {
    try {
      Run(engine, inputs, spec);
    } catch (const c10::Error& e) {
      return e.what_without_backtrace();
    }
    return "";
  }
  std::shared_ptr<CallLog> log_ = std::make_shared<CallLog>();
  RuntimeSettings settings_;
  const at::Tensor x_ = at::tensor({-1.0f, 0.5f, 2.0f, 3.0f}).reshape({1, 4});
};

TEST(SpecRefitWeightsTest, ReadsTheNamesWhereverTheKeyIs) {
  EXPECT_EQ(SpecRefitWeights(kSpec), (std::vector<std::string>{"scale", "bias"}));
  EXPECT_EQ(SpecRefitWeights(R"( { "refit_weights" : [ "a\"b", "c\\d/e" ] , "x": {"y": [1, -2.5e3, true, null]} } )"),
            (std::vector<std::string>{"a\"b", "c\\d/e"}));
  // json.dumps writes non-ASCII as \u escapes (a surrogate pair beyond the BMP).
  EXPECT_EQ(SpecRefitWeights(R"({"refit_weights":["caf\u00e9","\ud83d\ude00"]})"),
            (std::vector<std::string>{"caf\xc3\xa9", "\xf0\x9f\x98\x80"}));
}

TEST(SpecRefitWeightsTest, NoNamesAndMalformedText) {
  EXPECT_TRUE(SpecRefitWeights(R"({"name":"blk0","refit_weights":[]})").empty());
  EXPECT_TRUE(SpecRefitWeights(R"({"name":"refit_weights"})").empty());  // a value, not the key
  EXPECT_TRUE(SpecRefitWeights("{}").empty());
  for (const std::string bad : {"", "[]", R"({"refit_weights":["a")", R"({"refit_weights":[1]})",
                                R"({"a":[[[)"}) {
    try {
      SpecRefitWeights(bad);
      ADD_FAILURE() << "no error for " << bad;
    } catch (const c10::Error& e) {
      EXPECT_NE(std::string(e.what()).find("engine op output spec"), std::string::npos) << e.what();
    }
  }
}

TEST_F(RefitEngineTest, FirstRunRefitsEveryWeightThenNeverAgain) {
  auto engine = Engine();
  const at::Tensor scale = at::tensor({3.0f}), bias = at::zeros({4});
  EXPECT_TRUE(at::equal(Run(*engine, {x_, scale, bias})[0], x_ * 6));
  EXPECT_EQ(log_->Count("refitter.set_named_weights scale"), 1);
  EXPECT_EQ(log_->Count("refitter.set_named_weights bias"), 1);
  EXPECT_EQ(log_->Count("refitter.refit"), 1);
  EXPECT_LT(log_->Find("refitter.refit"), log_->Find("engine.create_execution_context"));
  Run(*engine, {x_, at::tensor({5.0f}), bias});  // the program's buffers are the weights: no refit
  EXPECT_EQ(log_->Count("refitter.refit"), 1);
  EXPECT_EQ(log_->Count("engine.create_refitter"), 1);
}

TEST_F(RefitEngineTest, MarkForRefitRefitsTheNewValuesBeforeTheNextRun) {
  auto engine = Engine();
  const at::Tensor bias = at::zeros({4});
  Run(*engine, {x_, at::tensor({3.0f}), bias});
  engine->MarkForRefit();
  EXPECT_TRUE(at::equal(Run(*engine, {x_, at::tensor({7.0f}), bias})[0], x_ * 14));
  EXPECT_EQ(log_->Count("refitter.refit"), 2);
  EXPECT_EQ(log_->Count("runtime.deserialize"), 1);  // no rebuild, no new engine
}

TEST_F(RefitEngineTest, AMissingWeightIsAClearError) {
  auto engine = Engine();
  const std::string only_scale = Spec(R"(["scale"])");
  const std::string what = Error(*engine, {x_, at::tensor({3.0f})}, &only_scale);
  EXPECT_NE(what.find("engine 'blk0': the engine still needs weights ['bias'] (1 missing); the program "
                      "does not provide them"), std::string::npos) << what;
  EXPECT_EQ(log_->Count("refitter.refit"), 0);
  EXPECT_EQ(log_->Count("engine.create_execution_context"), 0);
}

TEST_F(RefitEngineTest, AWrongShapedOrTypedWeightIsRefusedByName) {
  auto engine = Engine();
  std::string what = Error(*engine, {x_, at::tensor({3.0f}), at::zeros({3})});
  EXPECT_NE(what.find("engine 'blk0': TensorRT-RTX refused weight 'bias' (shape (3,), torch.float32); "
                      "expected the shape and dtype the engine was built with"), std::string::npos) << what;
  what = Error(*engine, {x_, at::tensor({3.0f}), at::zeros({2, 2}, at::kHalf)});
  EXPECT_NE(what.find("refused weight 'bias' (shape (2, 2), torch.float16)"), std::string::npos) << what;
  what = Error(*engine, {x_, at::tensor({3.0f}).to(at::kDouble), at::zeros({4})});
  EXPECT_NE(what.find("weight 'scale' (shape (1,), torch.float64) has a dtype TensorRT-RTX weights cannot hold"),
            std::string::npos) << what;
  EXPECT_TRUE(engine->NeedsRefitLocked());
  // bfloat16 weights go in as float32, as the compiler stored them at build.
  EXPECT_TRUE(at::equal(Run(*engine, {x_, at::tensor({3.0f}).to(at::kBFloat16), at::zeros({4})})[0], x_ * 6));
}

TEST_F(RefitEngineTest, ARefitFailureAndAnEngineThatCannotBeRefitted) {
  auto failing = Engine("refit fails\n");
  std::string what = Error(*failing, {x_, at::tensor({3.0f}), at::zeros({4})});
  EXPECT_NE(what.find("engine 'blk0': TensorRT-RTX refit_cuda_engine failed"), std::string::npos) << what;
  auto plain = std::make_unique<TRTEngine>(
      EngineRecord::FromList(testing::MakeRecordList("blk0", testing::ScriptedEngineBytes({"x"}, {"y"}), {"x"}, {"y"})),
      std::make_shared<ScriptedRuntime>(log_), settings_);
  what = Error(*plain, {x_, at::tensor({3.0f}), at::zeros({4})});
  EXPECT_NE(what.find("TensorRT-RTX cannot refit it"), std::string::npos) << what;
  EXPECT_NE(what.find("passes it 2 weights"), std::string::npos) << what;
}

TEST_F(RefitEngineTest, NamesAndTensorsMustPairUpAndFoldedNamesAreSkipped) {
  auto engine = Engine();
  std::string what = Error(*engine, {x_, at::tensor({3.0f})});
  EXPECT_NE(what.find("engine 'blk0': 2 refit weight names but 1 weight tensors"), std::string::npos) << what;
  // A name the engine does not list (folded into another constant at build) is skipped.
  const std::string with_folded = Spec(R"(["scale","folded","bias"])");
  EXPECT_TRUE(at::equal(Run(*engine, {x_, at::tensor({3.0f}), at::ones({9}), at::zeros({4})}, &with_folded)[0],
                        x_ * 6));
  EXPECT_EQ(log_->Count("refitter.set_named_weights folded"), 0);
}

TEST_F(RefitEngineTest, TheServingOpHasNoNamesForTrailingWeights) {
  auto engine = Engine();
  const std::string what = Error(*engine, {x_, at::tensor({3.0f}), at::zeros({4})}, nullptr);
  EXPECT_NE(what.find("got 2 trailing weight inputs but no names for them"), std::string::npos) << what;
}

at::Tensor WeightlessRecord() {
  return testing::PackedRecordTensor(testing::MakeRecordList(
      "blk0", testing::ScriptedEngineBytes({"x"}, {"y"}, {{"scale", 1}, {"bias", 4}}), {"x"}, {"y"}));
}

// The op of saved programs: once per engine object, i.e. per record tensor.
TEST(RecordEngineRefitTest, EachRecordTensorsEngineIsRefittedOnce) {
  const at::Tensor x = at::ones({1, 4});
  at::Tensor a = WeightlessRecord(), b = WeightlessRecord();
  EXPECT_TRUE(at::equal(ExecuteRecordEngine({x, at::tensor({3.0f}), at::zeros({4})}, a, &kSpec)[0], x * 6));
  EXPECT_TRUE(at::equal(ExecuteRecordEngine({x, at::tensor({4.0f}), at::zeros({4})}, a, &kSpec)[0], x * 6));
  EXPECT_TRUE(at::equal(ExecuteRecordEngine({x, at::tensor({4.0f}), at::zeros({4})}, b, &kSpec)[0], x * 8));
  RecordEngine::Find(a)->engine().MarkForRefit();
  EXPECT_TRUE(at::equal(ExecuteRecordEngine({x, at::tensor({4.0f}), at::zeros({4})}, a, &kSpec)[0], x * 8));
}

// -- weight streaming ---------------------------------------------------------------------------

TEST_F(RefitEngineTest, WeightStreamingBudgetDropsTheContextAndIsCapped) {
  auto engine = std::make_unique<TRTEngine>(
      EngineRecord::FromList(testing::MakeRecordList(
          "blk0", testing::ScriptedEngineBytes({"x"}, {"y"}) + "streamable 1000\n", {"x"}, {"y"})),
      std::make_shared<ScriptedRuntime>(log_), settings_);
  EXPECT_EQ(engine->StreamableWeightsSize(), 1000);
  EXPECT_EQ(engine->WeightStreamingBudget(), 1000);  // everything on the GPU to start with
  EXPECT_EQ(engine->WeightStreamingAutomaticBudget(), 500);
  ExecuteEngine({x_}, *engine);
  EXPECT_EQ(log_->Count("engine.create_execution_context"), 1);
  engine->SetWeightStreamingBudget(300);  // the double refuses a budget under a live context
  EXPECT_EQ(log_->Count("engine.set_weight_streaming_budget 300"), 1);
  EXPECT_EQ(engine->WeightStreamingBudget(), 300);
  EXPECT_TRUE(at::equal(ExecuteEngine({x_}, *engine)[0], x_ * 2));
  EXPECT_EQ(log_->Count("engine.create_execution_context"), 2);  // recreated the usual way
  engine->SetWeightStreamingBudget(5000);
  EXPECT_EQ(engine->WeightStreamingBudget(), 1000);
  EXPECT_THROW(engine->SetWeightStreamingBudget(-1), std::invalid_argument);
}

TEST_F(RefitEngineTest, WeightStreamingNeedsStreamableWeights) {
  auto engine = Engine();
  EXPECT_EQ(engine->StreamableWeightsSize(), 0);
  try {
    engine->SetWeightStreamingBudget(10);
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("enable_weight_streaming=True"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace runtime
}  // namespace torch_tensorrt_rtx
