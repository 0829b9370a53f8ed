// execute_engine on CPU tensors with the scripted backend.
#include "core/runtime/execute_engine.h"

#include <memory>

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

}  // namespace
}  // namespace runtime
}  // namespace torch_tensorrt_rtx
