// Text helpers shared by the Windows platform files (core/util/file_lock_windows.cpp and
// core/runtime/cache_file_io_windows.cpp): paths are UTF-8 everywhere in this project and
// Windows wants UTF-16, and Windows error codes become readable messages.
//
// Example:
//
//   const std::optional<std::wstring> wide = util::windows::Utf8ToWide(path);
//   if (!wide) throw MyError("the path " + path + " is not valid UTF-8");
//   HANDLE h = CreateFileW(wide->c_str(), ...);
//   if (h == INVALID_HANDLE_VALUE) throw MyError(util::windows::DescribeError(GetLastError()));
//
// Contract: declared on every platform, defined only on Windows (windows_strings.cpp
// compiles to nothing elsewhere). Utf8ToWide never mangles a name: invalid UTF-8 gives
// nullopt, and the caller's error names the path. Empty converts to empty both ways.
#ifndef TORCH_TENSORRT_RTX_CORE_UTIL_WINDOWS_STRINGS_H_
#define TORCH_TENSORRT_RTX_CORE_UTIL_WINDOWS_STRINGS_H_

#include <optional>
#include <string>

namespace torch_tensorrt_rtx {
namespace util {
namespace windows {

std::optional<std::wstring> Utf8ToWide(const std::string& utf8);
std::string WideToUtf8(const std::wstring& wide);
// The system's message for a GetLastError() code, e.g. "Access is denied. (Windows error 5)".
// `error` is a DWORD (unsigned long on Windows).
std::string DescribeError(unsigned long error);

}  // namespace windows
}  // namespace util
}  // namespace torch_tensorrt_rtx

#endif  // TORCH_TENSORRT_RTX_CORE_UTIL_WINDOWS_STRINGS_H_
