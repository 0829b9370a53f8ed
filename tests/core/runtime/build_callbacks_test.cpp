#include "core/runtime/build_callbacks.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace callbacks = torch_tensorrt_rtx::runtime::build_callbacks;

namespace {

struct Passed {
  void* self;
  std::int32_t severity;
  std::string message;
};
std::vector<Passed> passed;

void Record(void* self, std::int32_t severity, const char* message) { passed.push_back({self, severity, message}); }

class LogFilterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    passed.clear();
    callbacks::SetLogForward(&Record);
    callbacks::SetLogLimit(2);
  }
  void TearDown() override { callbacks::SetLogForward(nullptr); }
};

TEST_F(LogFilterTest, PassesMessagesUpToTheLimitWithTheirObjectAndDropsTheRest) {
  int logger = 0;
  const std::uint64_t dropped = callbacks::MessagesDropped();
  for (std::int32_t severity = 0; severity <= 4; ++severity) {
    callbacks::LogFilter(&logger, severity, ("message " + std::to_string(severity)).c_str());
  }
  ASSERT_EQ(passed.size(), 3u);
  for (std::int32_t severity = 0; severity <= 2; ++severity) {
    EXPECT_EQ(passed[severity].self, &logger);
    EXPECT_EQ(passed[severity].severity, severity);
    EXPECT_EQ(passed[severity].message, "message " + std::to_string(severity));
  }
  EXPECT_EQ(callbacks::MessagesDropped() - dropped, 2u);  // info and verbose
}

TEST_F(LogFilterTest, ALimitOfVerboseKeepsEverything) {
  callbacks::SetLogLimit(4);
  callbacks::LogFilter(nullptr, 4, "verbose");
  callbacks::LogFilter(nullptr, 3, "info");
  ASSERT_EQ(passed.size(), 2u);
  EXPECT_EQ(passed[0].message, "verbose");
}

TEST_F(LogFilterTest, NoForwardDropsEvenErrors) {
  EXPECT_EQ(callbacks::SetLogForward(nullptr), &Record);  // the one before
  callbacks::LogFilter(nullptr, 0, "internal error");
  EXPECT_TRUE(passed.empty());
}

TEST(MonitorTest, StepsGoOnAndPhasesAreCounted) {
  EXPECT_TRUE(callbacks::StepComplete(nullptr, "Building", 3));  // false would cancel the build
  const std::uint64_t before = callbacks::PhasesFinished();
  callbacks::PhaseStart(nullptr, "Building", nullptr, 10);
  callbacks::PhaseFinish(nullptr, "Building");
  callbacks::PhaseFinishTrimming(nullptr, "Building");
  EXPECT_EQ(callbacks::PhasesFinished() - before, 2u);
}

}  // namespace
