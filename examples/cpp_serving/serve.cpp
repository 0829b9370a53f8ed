// cpp_serving: runs a program saved by torch_tensorrt_rtx.save(..., output_format=
// "aot_inductor") from C++, with no Python in the process.
//
// Usage:
//
//   cpp_serving --library /path/libtorchtrt_rtx_runtime.so [--kernel-strategy eager]
//               model.pt2 2x128 [more input shapes...]
//
// It loads the runtime library (which registers torch.ops.tensorrt_rtx.execute_engine, the
// op the package calls for every engine), loads the package with
// torch::inductor::AOTIModelPackageLoader, runs it once on float32 inputs filled with
// 0, 0.1, 0.2, ... in each given shape (CPU, or CUDA with --cuda) and prints every output as
// "output K SHAPE: v0 v1 ...". Serving code does the same with its own tensors; the
// engines are built at the first run and belong to the loader (freed with it).
//
// Runtime settings: the engines of a package follow the calling thread's settings scope;
// --kernel-strategy shows how C++ sets it, through the runtime library's op
// tensorrt::set_scope_settings(str? cache_path, kernel_strategy, cuda_graph_strategy,
// allocation_strategy) -- the same op Python's runtime.settings(...) calls.
#include <dlfcn.h>

#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

namespace {

int Usage(const char* why) {
  std::cerr << "cpp_serving: " << why
            << "\nusage: cpp_serving --library RUNTIME.so [--kernel-strategy NAME] [--cuda] "
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

void SetKernelStrategy(const std::string& name) {
  auto op = c10::Dispatcher::singleton()
                .findSchemaOrThrow("tensorrt::set_scope_settings", "")
                .typed<void(std::optional<std::string>, std::string, std::string, std::string)>();
  // cache_path "" = the per-user default cache file; std::nullopt = no runtime cache file.
  op.call(std::string(""), name, "disabled", "static");
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
  if (library.empty() || package.empty()) return Usage("need --library and a package");
  // RTLD_GLOBAL is not needed: loading registers the ops with torch's dispatcher.
  if (dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL) == nullptr) {
    std::cerr << "cpp_serving: cannot load runtime library " << library << ": " << dlerror()
              << "\n";
    return 1;
  }
  try {
    if (!kernel_strategy.empty()) SetKernelStrategy(kernel_strategy);
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
