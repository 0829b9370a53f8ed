// Native stand-ins for TensorRT-RTX's builder callbacks, so that a build which nobody watches
// makes no call into Python.
//
// The Python package routes TensorRT-RTX's messages into `logging` (an ILogger written in Python)
// and follows a build's phases (an IProgressMonitor written in Python). Each of their calls takes
// Python's GIL: a ResNet-50 build makes about 4,500 of them (almost all VERBOSE messages, then
// about 450 steps), and while another thread runs Python each one waits for that thread to let the
// GIL go, so the build hardly moves. The functions below are written into the virtual tables of
// those two Python objects (see dynamo/conversion/_vtable.py), in the slots the public ABI gives
// ILogger::log and IProgressMonitor::phaseStart/stepComplete/phaseFinish:
//   - LogFilter drops a message less severe than the limit without touching Python, and passes
//     the others to the slot's previous function (the binding's, which calls Python);
//   - the monitor's three do nothing, answer "go on", and hand freed heap memory back to the
//     system at each phase's end (glibc's malloc_trim; nothing elsewhere), as the Python monitor does.
// Each is a plain function called as the member function it replaces (Itanium C++ ABI: the
// object's address comes first).
#pragma once

#include <cstdint>

namespace torch_tensorrt_rtx::runtime::build_callbacks {

// TensorRT-RTX's ILogger::Severity values: 0 internal error, 1 error, 2 warning, 3 info, 4 verbose.
using LogFunction = void (*)(void* self, std::int32_t severity, const char* message);

void LogFilter(void* self, std::int32_t severity, const char* message) noexcept;
// The function LogFilter passes kept messages to (nullptr: keep none; returns the one before) and
// the least severe message kept (e.g. 2: warnings and errors only). Both may change while builds run.
LogFunction SetLogForward(LogFunction forward) noexcept;
void SetLogLimit(std::int32_t least_severe_kept) noexcept;
std::uint64_t MessagesDropped() noexcept;

void PhaseStart(void* self, const char* phase, const char* parent, std::int32_t steps) noexcept;
bool StepComplete(void* self, const char* phase, std::int32_t step) noexcept;
void PhaseFinishTrimming(void* self, const char* phase) noexcept;  // trims the heap
void PhaseFinish(void* self, const char* phase) noexcept;          // does nothing
std::uint64_t PhasesFinished() noexcept;

}  // namespace torch_tensorrt_rtx::runtime::build_callbacks
