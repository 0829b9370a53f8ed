// execute_engine on CPU tensors with the scripted backend.
#include "core/runtime/execute_engine.h"

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "core/runtime/engine_contract.h"

#include "gtest/gtest.h"
#include "tests/core/runtime/scripted_backend.h"
#include "tests/core/util/test_dir.h"

namespace torch_tensorrt_rtx {
namespace runtime {
namespace {

using testing::CallLog;
using testing::ScriptedRuntime;

class ExecuteEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    settings_.cache_path = testing::MakeTestDir("execute_test") + "/cache.bin";
    engine_ = std::make_unique<TRTEngine>(
        EngineRecord::FromList(testing::MakeRecordList(
            "e", testing::ScriptedEngineBytes({"x"}, {"y", "z"}), {"x"}, {"y", "z"})),
        std::make_shared<ScriptedRuntime>(log_), settings_);
  }
  std::shared_ptr<CallLog> log_ = std::make_shared<CallLog>();
  RuntimeSettings settings_;
  std::unique_ptr<TRTEngine> engine_;
};

TEST_F(ExecuteEngineTest, RunsAndAllocatesOutputsOfTheReportedShape) {
  at::Tensor x = at::arange(6, at::kFloat).reshape({2, 3});
  std::vector<at::Tensor> out = ExecuteEngine({x}, *engine_);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(at::equal(out[0], x * 2));
  EXPECT_TRUE(at::equal(out[1], x * 2));
  EXPECT_EQ(out[0].sizes(), x.sizes());
}

TEST_F(ExecuteEngineTest, NonContiguousInputsAreMadeContiguous) {
  at::Tensor x = at::arange(6, at::kFloat).reshape({2, 3}).t();
  EXPECT_TRUE(at::equal(ExecuteEngine({x}, *engine_)[0], x * 2));
}

TEST_F(ExecuteEngineTest, JitsOncePerShapeAndReusesTheContext) {
  ExecuteEngine({at::ones({4})}, *engine_);
  ExecuteEngine({at::ones({4})}, *engine_);
  ExecuteEngine({at::ones({5})}, *engine_);
  EXPECT_EQ(log_->Count("jit e/4x"), 1);
  EXPECT_EQ(log_->Count("jit e/5x"), 1);
  EXPECT_EQ(log_->Count("engine.create_execution_context"), 1);
}

TEST_F(ExecuteEngineTest, WrongInputCountOrDtypeNamesTheEngineAndBinding) {
  try {
    ExecuteEngine({}, *engine_);
    FAIL() << "no error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("expects 1 inputs, got 0"), std::string::npos);
  }
  try {
    ExecuteEngine({at::ones({2}, at::kInt)}, *engine_);
    FAIL() << "no error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("input 'x': expected dtype Float"), std::string::npos)
        << e.what();
  }
}

// Trailing weight inputs are taken off (and refitted) by refit_engine.h before this point.
TEST_F(ExecuteEngineTest, ExtraInputsAreACountError) {
  try {
    ExecuteEngine({at::ones({4}), at::ones({3})}, *engine_);
    FAIL() << "no error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("engine 'e' expects 1 inputs, got 2"), std::string::npos) << e.what();
  }
  EXPECT_EQ(log_->Count("engine.create_execution_context"), 0);
}

// An engine whose input x has the profile range [1x4, 8x4].
std::unique_ptr<TRTEngine> RangedEngine(std::shared_ptr<CallLog> log, RuntimeSettings settings) {
  std::string bytes = testing::ScriptedEngineBytes({}, {"y"}) + "input x 1x4 8x4\n";
  return std::make_unique<TRTEngine>(
      EngineRecord::FromList(testing::MakeRecordList("blk0", std::move(bytes), {"x"}, {"y"})),
      std::make_shared<ScriptedRuntime>(log), settings);
}

TEST_F(ExecuteEngineTest, ShapeOutsideTheProfileNamesTheDimAndItsRange) {
  auto engine = RangedEngine(log_, settings_);
  EXPECT_TRUE(at::equal(ExecuteEngine({at::ones({8, 4})}, *engine)[0], at::full({8, 4}, 2.0f)));
  const std::pair<at::Tensor, std::string> cases[] = {
      {at::ones({9, 4}),
       "engine 'blk0': input 'x' dimension 0 is 9, allowed range is [1, 8] (optimization profile 0, "
       "shape (9, 4))"},
      {at::ones({4}), "engine 'blk0': input 'x' has rank 1 (shape (4,)), expected rank 2"},
  };
  for (const auto& [input, message] : cases) {
    try {
      ExecuteEngine({input}, *engine);
      ADD_FAILURE() << "no error for " << input.sizes();
    } catch (const c10::Error& e) {
      EXPECT_EQ(e.msg(), message);
    }
  }
}

TEST_F(ExecuteEngineTest, UserManagedAllocationLendsTheContextScratchMemory) {
  settings_.allocation_strategy = AllocationStrategy::kUserManaged;
  engine_->UpdateSettings(settings_);
  at::Tensor x = at::arange(6, at::kFloat).reshape({2, 3});
  EXPECT_TRUE(at::equal(ExecuteEngine({x}, *engine_)[0], x * 2));  // the backend fails without it
  EXPECT_EQ(log_->Count("context.set_device_memory " + std::to_string(64 * 6)), 1);
  EXPECT_EQ(log_->Count("enqueue failed"), 0);
  settings_.allocation_strategy = AllocationStrategy::kStatic;
  engine_->UpdateSettings(settings_);
  ExecuteEngine({x}, *engine_);
  EXPECT_EQ(log_->Count("context.set_device_memory"), 1);  // only user_managed lends memory
}

TEST_F(ExecuteEngineTest, EngineBytesTheBackendRefusesFailWithTheContractMessage) {
  const std::pair<std::string, std::string> cases[] = {
      {"garbage", "engine 'blk0': engine bytes are not a serialized TensorRT-RTX engine (7 bytes)"},
      {testing::ScriptedEngineBytes({"x"}, {"y"}) + "verdict unsupported_cc\n",
       "engine 'blk0': TensorRT-RTX reports that this GPU's compute capability is not one the engine "
       "was built for (UNSUPPORTED_CC); it was built for SM86, SM89."},
  };
  for (const auto& [bytes, message] : cases) {
    auto list = testing::MakeRecordList("blk0", bytes, {"x"}, {"y"});
    list[layout::COMPUTE_CAPABILITIES] = std::string("SM86") + layout::kSeparator + "SM89";
    TRTEngine engine(EngineRecord::FromList(list), std::make_shared<ScriptedRuntime>(log_));
    try {
      ExecuteEngine({at::ones({2})}, engine);
      ADD_FAILURE() << "no error for " << bytes;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(log_->Count("runtime.deserialize"), 0);  // refused before deserializing
}

TEST_F(ExecuteEngineTest, DataDependentOutputsComeFromTheOutputAllocatorInTheirFinalShape) {
  TRTEngine engine(EngineRecord::FromList(testing::MakeRecordList(
                       "dd", testing::ScriptedEngineBytes({"x"}, {"y", "dd_y"}), {"x"}, {"y", "dd_y"})),
                   std::make_shared<ScriptedRuntime>(log_), settings_);
  at::Tensor x = at::tensor({-1.0f, 2.0f, 0.0f, 3.0f});
  std::vector<at::Tensor> out = ExecuteEngine({x}, engine);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(at::equal(out[0], x * 2));
  EXPECT_TRUE(at::equal(out[1], at::tensor({4.0f, 6.0f}))) << out[1];
  EXPECT_EQ(log_->Count("context.set_output_allocator dd_y"), 1);
  EXPECT_EQ(log_->Count("context.set_output_allocator y"), 0);
  std::vector<at::Tensor> none = ExecuteEngine({at::full({3}, -1.0f)}, engine);
  EXPECT_EQ(none[1].sizes(), at::IntArrayRef({0}));
  EXPECT_NE(out[1].data_ptr(), none[1].data_ptr());  // each call's outputs are its own
}

TEST(EngineContractTest, WholeGraphCaptureWithLazyKernelsWarnsOnlyForDynamicShapes) {
  RuntimeSettings s;
  s.cuda_graph_strategy = CudaGraphStrategy::kWholeGraphCapture;
  EXPECT_EQ(IncompatibleStrategies("engine 'e'", s, true),
            "engine 'e': cuda_graph_strategy='whole_graph_capture' with kernel_strategy='lazy' and "
            "dynamic input shapes: lazily specialized kernels cannot be captured in a whole-graph CUDA "
            "graph; use kernel_strategy='eager' or 'none'");
  EXPECT_EQ(IncompatibleStrategies("engine 'e'", s, false), "");
  s.kernel_strategy = KernelStrategy::kEager;
  EXPECT_EQ(IncompatibleStrategies("engine 'e'", s, true), "");
}

}  // namespace
}  // namespace runtime
}  // namespace torch_tensorrt_rtx
