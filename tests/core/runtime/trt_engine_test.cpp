// TRTEngine: record handling, lazy deserialization, no engine-byte copies, settings API,
// and the clear error of a build without TensorRT-RTX.
#include "core/runtime/trt_engine.h"

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
using testing::MakeRecordList;
using testing::ScriptedEngineBytes;
using testing::ScriptedRuntime;

std::vector<std::string> List() {
  return MakeRecordList("blk0", ScriptedEngineBytes({"x"}, {"y"}), {"x"}, {"y"});
}

TEST(EngineRecordTest, RejectsWrongLengthAndAbiWithClearMessages) {
  std::vector<std::string> shorter = List();
  shorter.pop_back();
  try {
    EngineRecord::FromList(shorter);
    FAIL() << "no error";
  } catch (const EngineRecordError& e) {
    EXPECT_NE(std::string(e.what()).find("expected " + std::to_string(layout::kNumFields)),
              std::string::npos)
        << e.what();
  }
  std::vector<std::string> abi = List();
  abi[layout::ABI_VERSION] = "999";
  EXPECT_THROW(EngineRecord::FromList(abi), EngineRecordError);
}

TEST(EngineRecordTest, SplitsNamesAndMapsSentinelToNullopt) {
  auto list = MakeRecordList("e", "bytes", {"a", "b"}, {"c"});
  EngineRecord r = EngineRecord::FromList(list);
  EXPECT_EQ(r.input_names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.output_names(), (std::vector<std::string>{"c"}));
  EXPECT_TRUE(r.optional(layout::ENGINE_FLAVOR).has_value());
  EXPECT_EQ(r.ToList(), list);
  list[layout::ENGINE_FLAVOR] = layout::kSentinel;
  EXPECT_FALSE(EngineRecord::FromList(list).optional(layout::ENGINE_FLAVOR).has_value());
}

TEST(EngineRecordTest, PackRoundTripsAndRejectsTruncation) {
  auto list = MakeRecordList("e", std::string("\0\xff bin", 6), {"a"}, {"b"});
  EngineRecord r = EngineRecord::FromList(list);
  const std::string packed = r.Pack();
  EXPECT_EQ(packed.compare(0, 8, "TRXREC01"), 0);
  EXPECT_EQ(EngineRecord::Unpack(packed.data(), packed.size()).ToList(), list);
  EXPECT_THROW(EngineRecord::Unpack(packed.data(), packed.size() - 1), EngineRecordError);
  EXPECT_THROW(EngineRecord::Unpack("garbage!garbage!", 16), EngineRecordError);
}

TEST(TRTEngineTest, EngineBytesAreMovedNotCopied) {
  std::vector<std::string> list = List();
  list[layout::ENGINE].append(1 << 20, 'z');  // large enough to be heap allocated
  const char* bytes = list[layout::ENGINE].data();
  TRTEngine engine(EngineRecord::FromList(std::move(list)));
  EXPECT_EQ(engine.record().engine_bytes().data(), bytes);
}

TEST(TRTEngineTest, DeserializesLazilyOnFirstUse) {
  auto log = std::make_shared<CallLog>();
  TRTEngine engine(EngineRecord::FromList(List()), std::make_shared<ScriptedRuntime>(log));
  EXPECT_EQ(log->Count("runtime.deserialize"), 0);
  EXPECT_NE(engine.ToString().find("deserialized=no"), std::string::npos) << engine.ToString();
  std::lock_guard<std::mutex> guard(engine.mutex());
  engine.Context();
  engine.Context();
  EXPECT_EQ(log->Count("runtime.deserialize blk0"), 1);
  EXPECT_NE(engine.ToString().find("deserialized=yes"), std::string::npos) << engine.ToString();
}

TEST(TRTEngineTest, WithoutTensorRTConstructionAndPrintingWorkButUseSaysHowToFix) {
  TRTEngine engine(EngineRecord::FromList(List()));  // default runtime: unavailable
  EXPECT_NE(engine.ToString().find("name=blk0"), std::string::npos) << engine.ToString();
  std::lock_guard<std::mutex> guard(engine.mutex());
  try {
    engine.Context();
    FAIL() << "no error";
  } catch (const trt::BackendUnavailableError& e) {
    EXPECT_NE(std::string(e.what()).find("built without TensorRT-RTX"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("--config=rtx"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("RTX GPU"), std::string::npos);
  }
}

TEST(TRTEngineTest, GarbageEngineBytesFailAtDeserializationNamingTheEngine) {
  auto list = List();
  list[layout::ENGINE] = "garbage";
  TRTEngine engine(EngineRecord::FromList(list), std::make_shared<ScriptedRuntime>());
  std::lock_guard<std::mutex> guard(engine.mutex());
  try {
    engine.Engine();
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("blk0"), std::string::npos) << e.what();
  }
}

TEST(EngineRecordTest, ComputeCapabilitiesArePortableOrSmNames) {
  auto list = List();
  list[layout::COMPUTE_CAPABILITIES] = std::string("SM86") + layout::kSeparator + "SM120";
  EXPECT_NE(TRTEngine(EngineRecord::FromList(list)).ToString().find("compute_capabilities=SM86%SM120"),
            std::string::npos);
  for (const std::string bad : {"", "sm86", "SM8", "SM1234", "SM86%", "GPU", "<unset>"}) {
    list[layout::COMPUTE_CAPABILITIES] = bad;
    try {
      EngineRecord::FromList(list);
      ADD_FAILURE() << "COMPUTE_CAPABILITIES '" << bad << "' was accepted";
    } catch (const EngineRecordError& e) {
      EXPECT_NE(std::string(e.what()).find("COMPUTE_CAPABILITIES is '" + bad + "'"), std::string::npos)
          << e.what();
    }
  }
}

// A record of the previous ABI version: its fields by name, SERIALIZED_METADATA as given.
std::vector<std::string> PreviousList(const std::string& metadata) {
  std::vector<std::string> old(layout::previous::kNumFields, layout::kSentinel);
  old[layout::previous::ABI_VERSION] = layout::previous::kAbiVersionText;
  old[layout::previous::NAME] = "blk0";
  old[layout::previous::ENGINE] = ScriptedEngineBytes({"x"}, {"y"});
  old[layout::previous::INPUT_BINDING_NAMES] = "x";
  old[layout::previous::OUTPUT_BINDING_NAMES] = "y";
  old[layout::previous::HW_COMPATIBLE] = "0";
  old[layout::previous::SERIALIZED_METADATA] = metadata;
  old[layout::previous::ENGINE_FLAVOR] = "tensorrt_rtx";
  return old;
}

TEST(EngineRecordTest, ReadsThePreviousAbiVersionIntoTheCurrentFields) {
  // base64 of {"compute_capabilities": ["SM86", "sm89"], "name": "blk0"}
  const EngineRecord r = EngineRecord::FromList(
      PreviousList("eyJjb21wdXRlX2NhcGFiaWxpdGllcyI6IFsiU004NiIsICJzbTg5Il0sICJuYW1lIjogImJsazAifQ=="));
  EXPECT_EQ(r.ToList(), []() {
    auto list = List();
    list[layout::COMPUTE_CAPABILITIES] = std::string("SM86") + layout::kSeparator + "SM89";
    return list;
  }());
  const std::string packed = EngineRecord::FromList(PreviousList(layout::kSentinel)).Pack();
  EXPECT_EQ(EngineRecord::Unpack(packed.data(), packed.size()).field(layout::COMPUTE_CAPABILITIES),
            layout::kPortable);
  // {"compute_capabilities": "portable"} and metadata without the key are both portable.
  EXPECT_EQ(EngineRecord::FromList(PreviousList("eyJjb21wdXRlX2NhcGFiaWxpdGllcyI6ICJwb3J0YWJsZSJ9"))
                .field(layout::COMPUTE_CAPABILITIES),
            layout::kPortable);
  EXPECT_EQ(EngineRecord::FromList(PreviousList("eyJrIjogWzEsIDJdfQ==")).field(layout::COMPUTE_CAPABILITIES),
            layout::kPortable);
  for (const std::string bad : {"not base64!", "eyJjb21wdXRlX2NhcGFiaWxpdGllcyI6IDN9"}) {
    EXPECT_THROW(EngineRecord::FromList(PreviousList(bad)), EngineRecordError) << bad;
  }
}

TEST(TRTEngineTest, SettingsApiRecreatesTheContextAndDestructorSavesTheCache) {
  const std::string dir = testing::MakeTestDir("engine_test");
  auto log = std::make_shared<CallLog>();
  RuntimeSettings s;
  s.cache_path = dir + "/cache.bin";
  {
    TRTEngine engine(EngineRecord::FromList(List()), std::make_shared<ScriptedRuntime>(log), s);
    {
      std::lock_guard<std::mutex> guard(engine.mutex());
      engine.Context();
    }
    s.kernel_strategy = KernelStrategy::kEager;
    engine.UpdateSettings(s);
    EXPECT_EQ(engine.settings().kernel_strategy, KernelStrategy::kEager);
    std::lock_guard<std::mutex> guard(engine.mutex());
    engine.Context();
    EXPECT_EQ(log->Count("engine.create_execution_context"), 2);
  }
  // The engine's entry is keyed by the SHA-256 of its serialized engine.
  const std::string engine_bytes = ScriptedEngineBytes({"x"}, {"y"});
  const std::optional<CachedEntry> entry =
      RuntimeCacheFile(s.cache_path).TryLoadEntry(Sha256(engine_bytes.data(), engine_bytes.size()));
  ASSERT_TRUE(entry.has_value());
  EXPECT_EQ(entry->data, testing::ScriptedCacheBytes({"blk0/eager"}));
}

TEST(RuntimeSettingsTest, ParsesPythonNamesAndRejectsUnknownOnes) {
  EXPECT_EQ(ParseStrategy<KernelStrategy>("EAGER"), KernelStrategy::kEager);
  EXPECT_EQ(ParseStrategy<CudaGraphStrategy>("whole_graph_capture"), CudaGraphStrategy::kWholeGraphCapture);
  EXPECT_EQ(ParseStrategy<AllocationStrategy>("user_managed"), AllocationStrategy::kUserManaged);
  EXPECT_STREQ(Name(AllocationStrategy::kOnProfileChange), "on_profile_change");
  try {
    ParseStrategy<KernelStrategy>("fast");
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("unknown kernel_strategy 'fast': expected one of 'lazy', 'eager', 'none'"),
              std::string::npos) << e.what();
  }
}

TEST(RuntimeSettingsTest, EntriesRoundTripEverySettingAndNameTheBadOnes) {
  RuntimeSettings s;
  s.cache_path = "/data/c.bin";
  s.kernel_strategy = KernelStrategy::kNone;
  s.allocation_strategy = AllocationStrategy::kUserManaged;
  EXPECT_EQ(ToEntries(s), (std::vector<std::string>{"cache_path=/data/c.bin", "kernel_strategy=none",
                                                    "cuda_graph_strategy=disabled",
                                                    "allocation_strategy=user_managed"}));
  EXPECT_EQ(SettingsOverrides::Parse(ToEntries(s)).ApplyTo(RuntimeSettings{}), s);
  SettingsOverrides o = SettingsOverrides::Parse({"cache_disabled", "cuda_graph_strategy=whole_graph_capture"});
  EXPECT_EQ(o.ToEntries(), (std::vector<std::string>{"cache_disabled", "cuda_graph_strategy=whole_graph_capture"}));
  const RuntimeSettings applied = o.ApplyTo(s);
  EXPECT_FALSE(applied.cache_enabled);
  EXPECT_EQ(applied.kernel_strategy, KernelStrategy::kNone);  // not overridden: the scope's
  EXPECT_EQ(applied.cuda_graph_strategy, CudaGraphStrategy::kWholeGraphCapture);
  try {
    SettingsOverrides::Parse({"speed=1"});
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "unknown runtime setting 'speed': expected cache_path, cache_disabled, "
                           "kernel_strategy, cuda_graph_strategy, allocation_strategy");
  }
}

}  // namespace
}  // namespace runtime
}  // namespace torch_tensorrt_rtx
