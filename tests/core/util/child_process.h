// Test helper: runs a child process with pipes to its stdin and stdout. POSIX
// (posix_spawn) and Windows (CreateProcessW); the Windows tests use it to run a second
// process of the test program itself (see SelfExecutable()).
//
//   ChildProcess child({python, "-c", script, lock_path});
//   child.ReadLine();   // wait for the child to say it is ready
//   child.CloseStdin(); // let it finish
//   int code = child.Wait();
//
// The child's stderr is the parent's. Destroying a ChildProcess that was not waited for
// kills the child. Arguments are UTF-8; on Windows they are quoted for CommandLineToArgvW.
#ifndef TORCH_TENSORRT_RTX_TESTS_CORE_UTIL_CHILD_PROCESS_H_
#define TORCH_TENSORRT_RTX_TESTS_CORE_UTIL_CHILD_PROCESS_H_

#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#else
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef _WIN32
extern char** environ;
#endif

namespace torch_tensorrt_rtx {
namespace testing {

#ifdef _WIN32

class ChildProcess final {
 public:
  explicit ChildProcess(const std::vector<std::string>& argv) {
    SECURITY_ATTRIBUTES inheritable = {sizeof(SECURITY_ATTRIBUTES), nullptr, TRUE};
    HANDLE child_stdin = nullptr;
    HANDLE child_stdout = nullptr;
    if (!CreatePipe(&child_stdin, &stdin_, &inheritable, 0) || !CreatePipe(&stdout_, &child_stdout, &inheritable, 0)) {
      throw std::runtime_error("CreatePipe failed: Windows error " + std::to_string(GetLastError()));
    }
    // Only the child's ends are inherited.
    SetHandleInformation(stdin_, HANDLE_FLAG_INHERIT, 0);
    SetHandleInformation(stdout_, HANDLE_FLAG_INHERIT, 0);
    std::wstring command_line;
    for (const auto& arg : argv) {
      if (!command_line.empty()) command_line += L' ';
      command_line += Quote(ToWide(arg));
    }
    STARTUPINFOW startup = {};
    startup.cb = sizeof(startup);
    startup.dwFlags = STARTF_USESTDHANDLES;
    startup.hStdInput = child_stdin;
    startup.hStdOutput = child_stdout;
    startup.hStdError = GetStdHandle(STD_ERROR_HANDLE);
    PROCESS_INFORMATION info = {};
    BOOL started = FALSE;
    DWORD error = 0;
    // Wine has been seen to fail a process start with ERROR_INTERNAL_ERROR once, right after
    // creating its prefix; a second try is harmless on Windows.
    for (int attempt = 0; attempt < 3 && !started; ++attempt) {
      if (attempt > 0) Sleep(200);
      started = CreateProcessW(ToWide(argv.at(0)).c_str(), &command_line[0], nullptr, nullptr, TRUE, 0, nullptr,
                               nullptr, &startup, &info);
      error = started ? 0 : GetLastError();
      if (error != ERROR_INTERNAL_ERROR) break;
    }
    CloseHandle(child_stdin);
    CloseHandle(child_stdout);
    if (!started) {
      throw std::runtime_error("cannot start " + argv[0] + ": Windows error " + std::to_string(error));
    }
    CloseHandle(info.hThread);
    process_ = info.hProcess;
  }

  ~ChildProcess() {
    CloseStdin();
    if (stdout_ != nullptr) CloseHandle(stdout_);
    if (process_ != nullptr) {
      TerminateProcess(process_, 137);
      Wait();
    }
  }

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Reads one line of the child's stdout (without the newline or a CR); "" at end of file.
  std::string ReadLine() {
    std::string line;
    char c;
    DWORD got = 0;
    while (::ReadFile(stdout_, &c, 1, &got, nullptr) && got == 1 && c != '\n') {
      if (c != '\r') line.push_back(c);
    }
    return line;
  }

  void CloseStdin() {
    if (stdin_ != nullptr) {
      CloseHandle(stdin_);
      stdin_ = nullptr;
    }
  }

  // Waits for the child and returns its exit code.
  int Wait() {
    if (process_ == nullptr) return exit_code_;
    WaitForSingleObject(process_, INFINITE);
    DWORD code = 0;
    GetExitCodeProcess(process_, &code);
    CloseHandle(process_);
    process_ = nullptr;
    exit_code_ = static_cast<int>(code);
    return exit_code_;
  }

 private:
  static std::wstring ToWide(const std::string& utf8) {
    const int length = MultiByteToWideChar(CP_UTF8, 0, utf8.data(), static_cast<int>(utf8.size()), nullptr, 0);
    std::wstring wide(static_cast<size_t>(length), L'\0');
    MultiByteToWideChar(CP_UTF8, 0, utf8.data(), static_cast<int>(utf8.size()), &wide[0], length);
    return wide;
  }

  // Quotes one argument so that CommandLineToArgvW (and the C runtime) give it back.
  static std::wstring Quote(const std::wstring& arg) {
    std::wstring quoted = L"\"";
    size_t backslashes = 0;
    for (wchar_t c : arg) {
      if (c == L'\\') {
        ++backslashes;
        continue;
      }
      quoted.append(c == L'"' ? 2 * backslashes + 1 : backslashes, L'\\');
      backslashes = 0;
      quoted.push_back(c);
    }
    quoted.append(2 * backslashes, L'\\');
    quoted.push_back(L'"');
    return quoted;
  }

  HANDLE process_ = nullptr;
  HANDLE stdin_ = nullptr;
  HANDLE stdout_ = nullptr;
  int exit_code_ = -1;
};

// The path of the running test program, to start a second process of it.
inline std::string SelfExecutable() {
  wchar_t path[32768];
  const DWORD n = GetModuleFileNameW(nullptr, path, 32768);
  const int length = WideCharToMultiByte(CP_UTF8, 0, path, static_cast<int>(n), nullptr, 0, nullptr, nullptr);
  std::string utf8(static_cast<size_t>(length), '\0');
  WideCharToMultiByte(CP_UTF8, 0, path, static_cast<int>(n), &utf8[0], length, nullptr, nullptr);
  return utf8;
}

#else

class ChildProcess final {
 public:
  explicit ChildProcess(const std::vector<std::string>& argv) {
    int to_child[2];
    int from_child[2];
    if (pipe(to_child) != 0 || pipe(from_child) != 0) {
      throw std::runtime_error("pipe failed");
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, to_child[0], 0);
    posix_spawn_file_actions_adddup2(&actions, from_child[1], 1);
    posix_spawn_file_actions_addclose(&actions, to_child[1]);
    posix_spawn_file_actions_addclose(&actions, from_child[0]);
    std::vector<char*> args;
    for (const auto& arg : argv) {
      args.push_back(const_cast<char*>(arg.c_str()));
    }
    args.push_back(nullptr);
    const int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(to_child[0]);
    close(from_child[1]);
    stdin_ = to_child[1];
    stdout_ = from_child[0];
    if (rc != 0) {
      throw std::runtime_error("cannot start " + argv[0] + ": error " + std::to_string(rc));
    }
  }

  ~ChildProcess() {
    CloseStdin();
    if (stdout_ >= 0) {
      close(stdout_);
    }
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      Wait();
    }
  }

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Reads one line of the child's stdout (without the newline); "" at end of file.
  std::string ReadLine() {
    std::string line;
    char c;
    while (read(stdout_, &c, 1) == 1 && c != '\n') {
      line.push_back(c);
    }
    return line;
  }

  void CloseStdin() {
    if (stdin_ >= 0) {
      close(stdin_);
      stdin_ = -1;
    }
  }

  // Waits for the child and returns its exit code (128 + signal if killed).
  int Wait() {
    if (pid_ <= 0) {
      return exit_code_;
    }
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return exit_code_;
  }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  int stdout_ = -1;
  int exit_code_ = -1;
};

// The path of the running test program, to start a second process of it.
inline std::string SelfExecutable() {
  std::string path(4096, '\0');
  const ssize_t n = readlink("/proc/self/exe", &path[0], path.size());
  if (n <= 0) throw std::runtime_error("readlink /proc/self/exe failed");
  path.resize(static_cast<size_t>(n));
  return path;
}

#endif  // _WIN32

// A Python script that holds filelock.FileLock(argv[1]) until its stdin closes; it prints
// "locked" once it holds the lock.
constexpr const char* kPythonHolder = R"(
import sys, filelock
lock = filelock.FileLock(sys.argv[1])
lock.acquire()
print("locked", flush=True)
sys.stdin.read()
lock.release()
)";

// The project's Python (with filelock installed), passed in by Bazel.
inline std::string ProjectPython() {
  const char* python = std::getenv("TTRX_PYTHON");
  if (python == nullptr || *python == '\0') {
    throw std::runtime_error("TTRX_PYTHON is not set; run this test through Bazel");
  }
  return python;
}

}  // namespace testing
}  // namespace torch_tensorrt_rtx

#endif  // TORCH_TENSORRT_RTX_TESTS_CORE_UTIL_CHILD_PROCESS_H_
