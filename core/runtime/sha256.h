// Sha256: the SHA-256 digest (FIPS 180-4) of a byte string -- the runtime cache's engine
// identity, the same value Python's hashlib.sha256(engine_bytes).digest() gives.
//
// Example:
//
//   EngineKey key = Sha256(engine_bytes.data(), engine_bytes.size());
//
// Contract: pure function, no allocation beyond the result, any input length.
#ifndef TORCH_TENSORRT_RTX_CORE_RUNTIME_SHA256_H_
#define TORCH_TENSORRT_RTX_CORE_RUNTIME_SHA256_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace torch_tensorrt_rtx {
namespace runtime {

using EngineKey = std::array<std::uint8_t, 32>;

EngineKey Sha256(const void* data, std::size_t size);

// Lower-case hex of the first `bytes` bytes of `key` (for log messages).
std::string KeyPrefixHex(const EngineKey& key, std::size_t bytes = 8);

}  // namespace runtime
}  // namespace torch_tensorrt_rtx

#endif  // TORCH_TENSORRT_RTX_CORE_RUNTIME_SHA256_H_
