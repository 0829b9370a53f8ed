// TRTRuntimeConfig with the scripted backend: every context creation saves the cache
// first and applies every strategy, including the NCCL bind/release path.
#include "core/runtime/trt_runtime_config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <ctime>

#include <memory>
#include <string>

#include "core/runtime/runtime_cache_file.h"

#include "gtest/gtest.h"
#include "tests/core/runtime/scripted_backend.h"
#include "tests/core/util/test_dir.h"

namespace torch_tensorrt_rtx {
namespace runtime {
namespace {

using testing::CallLog;
using testing::ScriptedRuntime;

const EngineKey kKey = Sha256("engine e", 8);
const EngineKey kOtherKey = Sha256("engine f", 8);

// This engine's entry in the cache file ("" if none).
std::string EntryOf(const std::string& path, const EngineKey& key = kKey) {
  std::optional<CachedEntry> entry = RuntimeCacheFile(path).TryLoadEntry(key);
  return entry ? entry->data : std::string();
}

void SaveEntry(const std::string& path, const EngineKey& key, const std::string& bytes) {
  ASSERT_TRUE(RuntimeCacheFile(path).TrySaveEntry(key, bytes.data(), bytes.size()));
}

class TRTRuntimeConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTestDir("config_test");
    settings_.cache_path = dir_ + "/cache.bin";
    settings_.kernel_strategy = KernelStrategy::kLazy;
    settings_.cuda_graph_strategy = CudaGraphStrategy::kWholeGraphCapture;
    settings_.allocation_strategy = AllocationStrategy::kOnProfileChange;
    runtime_ = std::make_shared<ScriptedRuntime>(log_);
    engine_ = runtime_->DeserializeEngine(
        "e", testing::ScriptedEngineBytes({"x"}, {"y"}));
    log_->Clear();
  }

  // Runs one lazy enqueue with a new shape, so the context JIT-compiles a kernel.
  static void RunShape(trt::ExecutionContext& ctx, int64_t n) {
    static float in[64], out[64];
    ctx.SetInputShape("x", {n});
    ctx.SetTensorAddress("x", in);
    ctx.SetTensorAddress("y", out);
    ctx.Enqueue(nullptr);
  }

  // Every context creation in the log is preceded (since the previous one) by a
  // runtime config with all three strategies set to `s` and the cache attached.
  void ExpectEveryCreationFullyConfigured(const RuntimeSettings& s) {
    const auto calls = log_->calls();
    int created = 0;
    int from = 0;
    for (int i = 0; i < static_cast<int>(calls.size()); ++i) {
      if (calls[i].rfind("engine.create_execution_context", 0) != 0) continue;
      ++created;
      const std::string expected = std::string("engine.create_execution_context kernel=") +
                                   Name(s.kernel_strategy) + " graph=" +
                                   Name(s.cuda_graph_strategy) + " allocation=" +
                                   Name(s.allocation_strategy) + " cache=yes";
      EXPECT_EQ(calls[i], expected);
      const int config = log_->Find("engine.create_runtime_config", from);
      EXPECT_TRUE(config >= 0 && config < i) << "context " << created << " without a new config";
      from = i + 1;
    }
    EXPECT_GT(created, 0);
  }

  // A new config running shape 6, which the cache file already has: no save, the file is not replaced.
  void ExpectARunServedFromTheCacheLeavesTheFile() {
    struct stat before;
    ASSERT_EQ(stat(settings_.cache_path.c_str(), &before), 0);
    {
      TRTRuntimeConfig config(kKey, settings_);
      RunShape(config.Context(*engine_), 6);  // served from the cache: nothing new
      EXPECT_FALSE(config.SaveRuntimeCache());
    }
    struct stat after;
    ASSERT_EQ(stat(settings_.cache_path.c_str(), &after), 0);
    EXPECT_EQ(before.st_ino, after.st_ino) << "the file was replaced although nothing changed";
  }

  std::shared_ptr<CallLog> log_ = std::make_shared<CallLog>();
  std::shared_ptr<ScriptedRuntime> runtime_;
  std::unique_ptr<trt::Engine> engine_;
  std::string dir_;
  RuntimeSettings settings_;
};

TEST_F(TRTRuntimeConfigTest, FirstContextAppliesEveryStrategyAndAttachesCache) {
  TRTRuntimeConfig config(kKey, settings_);
  EXPECT_EQ(log_->Count("engine.create_execution_context"), 0) << "construction must not create a context";
  config.Context(*engine_);
  EXPECT_EQ(log_->Count("engine.create_execution_context"), 1);
  ExpectEveryCreationFullyConfigured(settings_);
  EXPECT_GE(log_->Find("config.set_runtime_cache"), 0);
}

TEST_F(TRTRuntimeConfigTest, ContextIsReusedUntilSettingsChange) {
  TRTRuntimeConfig config(kKey, settings_);
  trt::ExecutionContext* first = &config.Context(*engine_);
  EXPECT_EQ(&config.Context(*engine_), first);
  config.UpdateSettings(settings_);  // no change: no recreation
  config.Context(*engine_);
  EXPECT_EQ(log_->Count("engine.create_execution_context"), 1);
  RuntimeSettings eager = settings_;
  eager.kernel_strategy = KernelStrategy::kEager;
  config.UpdateSettings(eager);
  EXPECT_EQ(log_->Count("engine.create_execution_context"), 1) << "recreation must be lazy";
  config.Context(*engine_);
  EXPECT_EQ(log_->Count("engine.create_execution_context"), 2);
  EXPECT_EQ(log_->calls().back(), "jit e/eager");
}

TEST_F(TRTRuntimeConfigTest, RecreationSavesCacheBeforeCreatingTheNewContext) {
  TRTRuntimeConfig config(kKey, settings_);
  RunShape(config.Context(*engine_), 4);  // JIT e/4x
  log_->Clear();
  RuntimeSettings changed = settings_;
  changed.allocation_strategy = AllocationStrategy::kUserManaged;
  config.UpdateSettings(changed);
  config.Context(*engine_);
  const int save = log_->Find("cache.serialize");
  const int create = log_->Find("engine.create_execution_context");
  ASSERT_GE(save, 0);
  EXPECT_LT(save, create);
  EXPECT_EQ(EntryOf(settings_.cache_path), testing::ScriptedCacheBytes({"e/4x"}));
  ExpectEveryCreationFullyConfigured(changed);
}

TEST_F(TRTRuntimeConfigTest, ProfilingToggleRecreatesThroughTheSamePath) {
  TRTRuntimeConfig config(kKey, settings_);
  RunShape(config.Context(*engine_), 3);
  log_->Clear();
  config.SetProfiling(true);
  config.Context(*engine_);
  EXPECT_LT(log_->Find("cache.serialize"), log_->Find("engine.create_execution_context"));
  EXPECT_GE(log_->Find("context.profiling on"), 0);
  ExpectEveryCreationFullyConfigured(settings_);
}

// Releasing an NCCL communicator recreates the execution context like every other
// recreation: the cache is saved first and the new context carries every strategy and
// the cache.
TEST_F(TRTRuntimeConfigTest, NcclReleaseSavesCacheAndReappliesEveryStrategy) {
  TRTRuntimeConfig config(kKey, settings_);
  int communicator = 0;
  config.BindCommunicator(*engine_, &communicator);
  EXPECT_GE(log_->Find("context.set_communicator"), 0);
  RunShape(config.Context(*engine_), 7);  // JIT e/7x in the communicator's context
  log_->Clear();

  config.ReleaseCommunicator(*engine_);
  const int save = log_->Find("cache.serialize");
  const int create = log_->Find("engine.create_execution_context");
  ASSERT_GE(save, 0) << "release must flush the runtime cache";
  ASSERT_GE(create, 0) << "release must recreate the context";
  EXPECT_LT(save, create);
  EXPECT_EQ(log_->Find("config.kernel_strategy lazy"), log_->Find("config.kernel_strategy"));
  EXPECT_GE(log_->Find("config.cuda_graph_strategy whole_graph_capture"), 0);
  EXPECT_GE(log_->Find("config.allocation_strategy on_profile_change"), 0);
  EXPECT_EQ(log_->Count("context.set_communicator"), 0) << "released communicator re-bound";
  ExpectEveryCreationFullyConfigured(settings_);
  EXPECT_EQ(EntryOf(settings_.cache_path), testing::ScriptedCacheBytes({"e/7x"}));
  // The kernel survives the recreation: no second JIT for the same shape.
  log_->Clear();
  RunShape(config.Context(*engine_), 7);
  EXPECT_EQ(log_->Count("jit"), 0);
}

TEST_F(TRTRuntimeConfigTest, NewProcessLoadsKernelsFromTheCacheFile) {
  {
    TRTRuntimeConfig config(kKey, settings_);
    RunShape(config.Context(*engine_), 5);
  }  // destructor saves
  EXPECT_EQ(EntryOf(settings_.cache_path), testing::ScriptedCacheBytes({"e/5x"}));
  log_->Clear();
  TRTRuntimeConfig again(kKey, settings_);
  RunShape(again.Context(*engine_), 5);
  EXPECT_EQ(log_->Count("jit"), 0);
  EXPECT_GE(log_->Find("cache.deserialize 1"), 0);
}

TEST_F(TRTRuntimeConfigTest, CachePathChangeSavesOldFileAndLoadsNewOne) {
  TRTRuntimeConfig config(kKey, settings_);
  RunShape(config.Context(*engine_), 2);
  RuntimeSettings moved = settings_;
  moved.cache_path = dir_ + "/other.bin";
  SaveEntry(moved.cache_path, kKey, testing::ScriptedCacheBytes({"e/9x"}));
  config.UpdateSettings(moved);
  RunShape(config.Context(*engine_), 9);
  EXPECT_EQ(EntryOf(settings_.cache_path), testing::ScriptedCacheBytes({"e/2x"}));
  EXPECT_EQ(log_->Count("jit e/9x"), 0) << "kernel from the new cache file not used";
}

TEST_F(TRTRuntimeConfigTest, CorruptCacheFileWarnsAndStartsEmpty) {
  SaveEntry(settings_.cache_path, kKey, "not a scripted cache");
  TRTRuntimeConfig config(kKey, settings_);
  ::testing::internal::CaptureStderr();
  RunShape(config.Context(*engine_), 1);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("cannot use"), std::string::npos) << err;
  EXPECT_EQ(log_->Count("jit e/1x"), 1);
}

TEST_F(TRTRuntimeConfigTest, TwoEnginesSharingOneFileKeepEachOthersKernels) {
  std::unique_ptr<trt::Engine> other =
      runtime_->DeserializeEngine("f", testing::ScriptedEngineBytes({"x"}, {"y"}));
  {
    TRTRuntimeConfig first(kKey, settings_);
    TRTRuntimeConfig second(kOtherKey, settings_);
    RunShape(first.Context(*engine_), 3);
    RunShape(second.Context(*other), 4);
    EXPECT_TRUE(first.SaveRuntimeCache());
    EXPECT_TRUE(second.SaveRuntimeCache());
  }
  EXPECT_EQ(EntryOf(settings_.cache_path, kKey), testing::ScriptedCacheBytes({"e/3x"}));
  EXPECT_EQ(EntryOf(settings_.cache_path, kOtherKey), testing::ScriptedCacheBytes({"f/4x"}));
  log_->Clear();
  TRTRuntimeConfig again(kKey, settings_);
  TRTRuntimeConfig again_other(kOtherKey, settings_);
  RunShape(again.Context(*engine_), 3);
  RunShape(again_other.Context(*other), 4);
  EXPECT_EQ(log_->Count("jit"), 0) << "a fresh run JIT-compiled a kernel the file had";
}

TEST_F(TRTRuntimeConfigTest, UnchangedCacheIsNotRewritten) {
  {
    TRTRuntimeConfig config(kKey, settings_);
    RunShape(config.Context(*engine_), 6);
  }
  ExpectARunServedFromTheCacheLeavesTheFile();
}

TEST_F(TRTRuntimeConfigTest, AnEntryFromTheFutureIsNotRewrittenWhenUnchanged) {
  // Saved by a process whose clock ran a day ahead: to us the clock went back. Unsigned
  // arithmetic once made that look a century old, and every save rewrote the file.
  const std::string bytes = testing::ScriptedCacheBytes({"e/6x"});
  const auto future = static_cast<std::uint64_t>(std::time(nullptr)) + 86400;
  ASSERT_TRUE(RuntimeCacheFile(settings_.cache_path).TrySaveEntry(kKey, bytes.data(), bytes.size(), future));
  ExpectARunServedFromTheCacheLeavesTheFile();  // the clock went back: still fresh
}

TEST_F(TRTRuntimeConfigTest, AChdirBetweenLoadAndSaveKeepsTheFile) {
  char previous[4096];
  ASSERT_NE(getcwd(previous, sizeof(previous)), nullptr);
  ASSERT_EQ(mkdir((dir_ + "/elsewhere").c_str(), 0700), 0);
  ASSERT_EQ(chdir(dir_.c_str()), 0);
  RuntimeSettings relative = settings_;
  relative.cache_path = "relative.bin";
  {
    TRTRuntimeConfig config(kKey, relative);
    RunShape(config.Context(*engine_), 3);  // loads (nothing there yet) from dir_/relative.bin
    ASSERT_EQ(chdir((dir_ + "/elsewhere").c_str()), 0);
    EXPECT_TRUE(config.SaveRuntimeCache());
  }
  ASSERT_EQ(chdir(previous), 0);
  EXPECT_EQ(EntryOf(dir_ + "/relative.bin"), testing::ScriptedCacheBytes({"e/3x"}));
  struct stat info;
  EXPECT_NE(stat((dir_ + "/elsewhere/relative.bin").c_str(), &info), 0) << "saved to another file than loaded";
}

TEST_F(TRTRuntimeConfigTest, DisabledCacheNeitherLoadsNorSaves) {
  SaveEntry(settings_.cache_path, kKey, testing::ScriptedCacheBytes({"e/8x"}));
  RuntimeSettings off = settings_;
  off.cache_enabled = false;
  {
    TRTRuntimeConfig config(kKey, off);
    RunShape(config.Context(*engine_), 8);
    RunShape(config.Context(*engine_), 2);
    EXPECT_FALSE(config.SaveRuntimeCache());
  }
  EXPECT_EQ(log_->Count("jit e/8x"), 1) << "the disabled cache was loaded";
  EXPECT_EQ(EntryOf(settings_.cache_path), testing::ScriptedCacheBytes({"e/8x"}))
      << "the disabled cache was saved";
}

}  // namespace
}  // namespace runtime
}  // namespace torch_tensorrt_rtx
