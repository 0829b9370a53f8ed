// Test helper: runs a child process with pipes to its stdin and stdout (POSIX only).
//
//   ChildProcess child({python, "-c", script, lock_path});
//   child.ReadLine();   // wait for the child to say it is ready
//   child.CloseStdin(); // let it finish
//   int code = child.Wait();
#ifndef TORCH_TENSORRT_RTX_TESTS_CORE_UTIL_CHILD_PROCESS_H_
#define TORCH_TENSORRT_RTX_TESTS_CORE_UTIL_CHILD_PROCESS_H_

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace torch_tensorrt_rtx {
namespace testing {

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
