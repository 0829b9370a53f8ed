// RecordEngine: the engine of a packed record tensor is built once, owned by that tensor,
// independent per tensor, and follows the thread's scope settings and its overrides.
#include "core/runtime/record_engine.h"

#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "tests/core/runtime/packed_record.h"
#include "tests/core/runtime/scripted_backend.h"
#include "tests/core/util/test_dir.h"

namespace torch_tensorrt_rtx {
namespace runtime {
namespace {

at::Tensor PackedRecord(const std::string& name = "e") {
  return testing::PackedRecordTensor(
      testing::MakeRecordList(name, testing::ScriptedEngineBytes({"x"}, {"y"}), {"x"}, {"y"}));
}

TEST(RecordEngineTest, BuiltOnceAndFreedWithItsTensor) {
  const testing::ScriptedStats before = testing::Stats();
  {
    at::Tensor record = PackedRecord();
    EXPECT_EQ(RecordEngine::Find(record), nullptr);
    at::Tensor x = at::arange(4, at::kFloat);
    EXPECT_TRUE(at::equal(ExecuteRecordEngine({x}, record)[0], x * 2));
    ExecuteRecordEngine({x}, record);
    EXPECT_NE(RecordEngine::Find(record), nullptr);
    const testing::ScriptedStats during = testing::Stats();
    EXPECT_EQ(during.deserializations - before.deserializations, 1);
    EXPECT_EQ(during.contexts_created - before.contexts_created, 1);
    EXPECT_EQ(during.live_engines - before.live_engines, 1);
  }
  const testing::ScriptedStats after = testing::Stats();
  EXPECT_EQ(after.live_engines, before.live_engines);
  EXPECT_EQ(after.live_contexts, before.live_contexts);
}

TEST(RecordEngineTest, TwoTensorsOfOneRecordHaveIndependentEnginesAndOverrides) {
  at::Tensor a = PackedRecord(), b = PackedRecord();
  at::Tensor x = at::ones({2});
  ExecuteRecordEngine({x}, a);
  ExecuteRecordEngine({x}, b);
  EXPECT_NE(RecordEngine::Find(a), RecordEngine::Find(b));
  RecordEngine::For(a).SetOverrides(SettingsOverrides::Parse({"kernel_strategy=none"}));
  ExecuteRecordEngine({x}, a);
  ExecuteRecordEngine({x}, b);
  EXPECT_EQ(RecordEngine::Find(a)->engine().settings().kernel_strategy, KernelStrategy::kNone);
  EXPECT_EQ(RecordEngine::Find(b)->engine().settings().kernel_strategy, KernelStrategy::kLazy);
}

TEST(RecordEngineTest, FollowsTheThreadScopeAndRestoresIt) {
  at::Tensor record = PackedRecord();
  at::Tensor x = at::ones({2});
  RuntimeSettings eager;
  eager.cache_path = testing::MakeTestDir("record_engine_scope") + "/cache.bin";
  eager.kernel_strategy = KernelStrategy::kEager;
  {
    ScopedRuntimeSettings scope(eager);
    ExecuteRecordEngine({x}, record);
    EXPECT_EQ(RecordEngine::Find(record)->engine().settings(), eager);
    // Another thread has its own scope (the defaults).
    std::thread([&] {
      EXPECT_EQ(RecordEngine::For(record).EffectiveSettings(), RuntimeSettings{});
    }).join();
  }
  ExecuteRecordEngine({x}, record);
  EXPECT_EQ(RecordEngine::Find(record)->engine().settings(), RuntimeSettings{});
}

TEST(RecordEngineTest, BadRecordsAndOverridesAreRejectedWithTheReason) {
  at::Tensor record = PackedRecord();
  at::Tensor trailing = at::cat({record, at::zeros({1}, at::kByte)});
  EXPECT_THROW(ExecuteRecordEngine({at::ones({2})}, trailing), EngineRecordError);
  EXPECT_THROW(ExecuteRecordEngine({at::ones({2})}, at::ones({4})), c10::Error);
  std::vector<std::string> fields = testing::MakeRecordList(
      "bad\xff", testing::ScriptedEngineBytes({"x"}, {"y"}), {"x"}, {"y"});
  try {
    EngineRecord::FromList(fields);
    FAIL() << "accepted a NAME that is not UTF-8";
  } catch (const EngineRecordError& e) {
    EXPECT_NE(std::string(e.what()).find("NAME is not UTF-8 text"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("bad\\xff"), std::string::npos) << e.what();
  }
  fields[layout::NAME] = "caf\xc3\xa9";  // valid UTF-8
  EXPECT_EQ(EngineRecord::FromList(fields).name(), "caf\xc3\xa9");
  try {
    SettingsOverrides::Parse({"kernel_strategy=fast"});
    FAIL() << "accepted an unknown strategy";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'fast'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(SettingsOverrides::Parse({"speed=1"}), std::invalid_argument);
  EXPECT_THROW(SettingsOverrides::Parse({"kernel_strategy"}), std::invalid_argument);
}

}  // namespace
}  // namespace runtime
}  // namespace torch_tensorrt_rtx
