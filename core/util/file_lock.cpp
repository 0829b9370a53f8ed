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
    : path_(std::move(lock_path)), mode_(mode), handle_(platform::OpenLockFile(path_)) {}

FileLock::~FileLock() {
  unlock();
  Close();
}

FileLock::FileLock(FileLock&& other) noexcept
    : path_(std::move(other.path_)), mode_(other.mode_), handle_(other.handle_), owned_(other.owned_) {
  other.path_.clear();  // an empty path marks a moved-from lock
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
    other.path_.clear();
    other.handle_ = platform::kInvalidHandle;
    other.owned_ = false;
  }
  return *this;
}

void FileLock::lock() {
  // A blocking attempt fails only while the file cannot be opened for a moment or keeps
  // being replaced: wait a poll interval and try again.
  while (!AcquireOnce(/*blocking=*/true)) {
    std::this_thread::sleep_for(kLockPollInterval);
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
  if (path_.empty()) {
    throw FileLockError("FileLock was moved from; it holds no file");
  }
  for (int reopens = 0; reopens <= kMaxReopensPerAttempt; ++reopens) {
    if (handle_ == platform::kInvalidHandle) {
      handle_ = platform::OpenLockFile(path_);
      if (handle_ == platform::kInvalidHandle) {
        return false;  // the name is momentarily unusable (a peer's delete is pending)
      }
    }
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
    Close();  // closing may be what lets a pending delete of the old file complete
  }
  return false;
}

void FileLock::Close() noexcept {
  if (handle_ != platform::kInvalidHandle) {
    platform::CloseLockFile(handle_);
    handle_ = platform::kInvalidHandle;
  }
}

}  // namespace util
}  // namespace torch_tensorrt_rtx
