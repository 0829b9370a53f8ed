// cpp_serving: runs a program saved by torch_tensorrt_rtx.save(..., output_format=
// "aot_inductor") from C++, with no Python in the process.
//
// Usage:
//
//   cpp_serving [--library /path/libtorchtrt_rtx_runtime.so] [--kernel-strategy eager]
//               model.pt2 2x128 [more input shapes...]
//
// The runtime library registers torch.ops.tensorrt_rtx.execute_engine, the op the package
// calls for every engine. Two builds of this file: the CMake one (CMakeLists.txt, against the
// installed wheel) links the library, so it is loaded at start-up; the Bazel one
// (`bazel build //examples/cpp_serving`) links libtorch only and dlopens the library that
// --library names. The program loads the package with torch::inductor::AOTIModelPackageLoader,
// runs it once on float32 inputs filled with 0, 0.1, 0.2, ... in each given shape (CPU, or
// CUDA with --cuda) and prints every output as "output K SHAPE: v0 v1 ...". Serving code does
// the same with its own tensors; the engines are built at the first run and belong to the
// loader (freed with it).
//
// Runtime settings: the engines of a package follow the calling thread's settings scope;
// --kernel-strategy shows how C++ sets it, torch_tensorrt_rtx::SetScopeSettings
// (torch_tensorrt_rtx/serving.h) -- the op Python's runtime.settings(...) calls.
#include <dlfcn.h>

#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch_tensorrt_rtx/serving.h>

namespace {

int Usage(const char* why) {
  std::cerr << "cpp_serving: " << why
            << "\nusage: cpp_serving [--library RUNTIME.so] [--kernel-strategy NAME] [--cuda] "
               "PACKAGE.pt2 SHAPE...   (SHAPE like 2x128)\n";
  return 2;
}

std::vector<int64_t> ParseShape(const std::string& text) {
  std::vector<int64_t> shape;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = text.find('x', start);
    const std::string part = text.substr(start, end == std::string::npos ? end : end - start);
    char* stop = nullptr;
    const long long value = std::strtoll(part.c_str(), &stop, 10);
    if (part.empty() || *stop != '\0' || value < 0) {
      throw std::invalid_argument("input shape '" + text + "': expected sizes like 2x128");
    }
    shape.push_back(value);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return shape;
}

// Loads the runtime library unless it is linked into this program already (loading a second
// one would register the tensorrt op namespace twice, which ends the process).
bool LoadRuntime(const std::string& library) {
  if (torch_tensorrt_rtx::RuntimeLoaded()) {
    if (library.empty()) return true;
    std::cerr << "cpp_serving: --library " << library
              << ": this build links the runtime library already; drop --library\n";
    return false;
  }
  if (library.empty()) {
    std::cerr << "cpp_serving: this build does not link the runtime library: pass --library "
                 "/path/libtorchtrt_rtx_runtime.so\n";
    return false;
  }
  // RTLD_GLOBAL is not needed: loading registers the ops with torch's dispatcher.
  if (dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL) == nullptr) {
    std::cerr << "cpp_serving: cannot load runtime library " << library << ": " << dlerror()
              << "\n";
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string library, package, kernel_strategy;
  bool cuda = false;
  std::vector<std::string> shapes;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--library" && i + 1 < argc) {
      library = argv[++i];
    } else if (arg == "--kernel-strategy" && i + 1 < argc) {
      kernel_strategy = argv[++i];
    } else if (arg == "--cuda") {
      cuda = true;
    } else if (package.empty()) {
      package = arg;
    } else {
      shapes.push_back(arg);
    }
  }
  if (package.empty()) return Usage("need a package");
  if (!LoadRuntime(library)) return 1;
  try {
    // cache_path "" = the per-user default runtime cache file.
    if (!kernel_strategy.empty()) {
      torch_tensorrt_rtx::SetScopeSettings(std::string(""), kernel_strategy, "disabled", "static");
    }
    const std::string missing = torch_tensorrt_rtx::EngineOpMissingReason();
    if (!missing.empty()) {
      std::cerr << "cpp_serving: " << missing << "\n";
      return 1;
    }
    std::vector<at::Tensor> inputs;
    for (const std::string& shape : shapes) {
      const std::vector<int64_t> sizes = ParseShape(shape);
      int64_t n = 1;
      for (int64_t s : sizes) n *= s;
      at::Tensor t = (at::arange(n, at::kFloat) * 0.1).reshape(sizes);
      inputs.push_back(cuda ? t.cuda() : t);
    }
    torch::inductor::AOTIModelPackageLoader loader(package);
    const std::vector<at::Tensor> outputs = loader.run(inputs);
    std::cout << "python: " << (dlsym(RTLD_DEFAULT, "Py_IsInitialized") ? "present" : "absent")
              << "\n";
    for (std::size_t k = 0; k < outputs.size(); ++k) {
      const at::Tensor out = outputs[k].cpu().to(at::kFloat).contiguous();
      std::cout << "output " << k << " " << out.sizes() << ":";
      const float* data = out.data_ptr<float>();
      for (int64_t i = 0; i < out.numel(); ++i) std::cout << " " << data[i];
      std::cout << "\n";
    }
  } catch (const std::exception& e) {
    std::cerr << "cpp_serving: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
