#include "core/util/file_lock.h"

#include <thread>
#include <utility>

#include "core/util/file_lock_platform.h"

namespace torch_tensorrt_rtx {
namespace util {
namespace {

// A peer that unlinks the lock file on every release can, in theory, make each of our
// attempts stale. Give up on one attempt after this many reopens; a caller polling
// with a timeout simply tries again on the next tick.
constexpr int kMaxReopensPerAttempt = 64;

}  // namespace

std::string LockPathFor(const std::string& guarded_path) {
  return guarded_path + kLockFileSuffix;
}

FileLock::FileLock(std::string lock_path, LockMode mode)
    : path_(std::move(lock_path)), mode_(mode), handle_(platform::OpenLockFile(path_, mode == LockMode::kShared)) {}

FileLock::~FileLock() {
  unlock();
  Close();
}

FileLock::FileLock(FileLock&& other) noexcept
    : path_(std::move(other.path_)), mode_(other.mode_), handle_(other.handle_), owned_(other.owned_) {
  other.handle_ = platform::kInvalidHandle;
  other.owned_ = false;
}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    unlock();
    Close();
    path_ = std::move(other.path_);
    mode_ = other.mode_;
    handle_ = other.handle_;
    owned_ = other.owned_;
    other.handle_ = platform::kInvalidHandle;
    other.owned_ = false;
  }
  return *this;
}

void FileLock::lock() {
  while (!AcquireOnce(/*blocking=*/true)) {
  }
}

bool FileLock::try_lock() {
  return AcquireOnce(/*blocking=*/false);
}

bool FileLock::try_lock_for(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (AcquireOnce(/*blocking=*/false)) {
      return true;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(kLockPollInterval, deadline - now));
  }
}

void FileLock::unlock() noexcept {
  if (owned_) {
    platform::UnlockFile(handle_);
    owned_ = false;
  }
}

bool FileLock::AcquireOnce(bool blocking) {
  if (owned_) {
    return true;
  }
  if (handle_ == platform::kInvalidHandle) {
    throw FileLockError("FileLock for " + path_ + " was moved from; it holds no file");
  }
  for (int reopens = 0; reopens <= kMaxReopensPerAttempt; ++reopens) {
    if (!platform::LockFile(handle_, mode_, blocking, path_)) {
      return false;
    }
    // The file may have been unlinked (and maybe recreated) by a peer's release between
    // our open and our lock: then we hold a lock nobody else will ever look at.
    if (platform::IsStillAtPath(handle_, path_)) {
      owned_ = true;
      return true;
    }
    platform::UnlockFile(handle_);
    Reopen();
  }
  return false;
}

void FileLock::Reopen() {
  Close();
  handle_ = platform::OpenLockFile(path_, mode_ == LockMode::kShared);
}

void FileLock::Close() noexcept {
  if (handle_ != platform::kInvalidHandle) {
    platform::CloseLockFile(handle_);
    handle_ = platform::kInvalidHandle;
  }
}

}  // namespace util
}  // namespace torch_tensorrt_rtx
