// torch_tensorrt_rtx._C: the C++ FileLock and runtime cache file store for Python tools
// and the cross-runtime tests. No torch dependency.
//
//   from torch_tensorrt_rtx import _C
//   with _C.FileLock("/c/cache.bin.lock", shared=True) as lock:   # 10 s timeout
//       ...
//   store = _C.RuntimeCacheFile("/c/cache.bin", timeout=10.0)
//   store.try_save_bytes(b"...")  -> bool      store.try_read() -> bytes | None
//
// FileLock.acquire(timeout) returns False on timeout (the context manager raises
// TimeoutError); the RuntimeCacheFile methods never raise for I/O or lock trouble.
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>

#include <chrono>
#include <string>

#include "core/runtime/runtime_cache_file.h"
#include "core/util/file_lock.h"

namespace py = pybind11;
using torch_tensorrt_rtx::runtime::RuntimeCacheFile;
using torch_tensorrt_rtx::util::FileLock;
using torch_tensorrt_rtx::util::LockMode;

namespace {

std::chrono::milliseconds Millis(double seconds) {
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000.0));
}

double DefaultTimeoutSeconds() {
  return static_cast<double>(torch_tensorrt_rtx::util::kDefaultLockTimeout.count()) / 1000.0;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "C++ FileLock and runtime cache file store of torch_tensorrt_rtx";
  m.attr("DEFAULT_LOCK_TIMEOUT_S") = DefaultTimeoutSeconds();
  m.def("lock_path_for", &torch_tensorrt_rtx::util::LockPathFor);

  py::class_<FileLock>(m, "FileLock")
      .def(py::init([](const std::string& path, bool shared) {
             return new FileLock(path, shared ? LockMode::kShared : LockMode::kExclusive);
           }),
           py::arg("path"), py::arg("shared") = false)
      .def(
          "acquire",
          [](FileLock& self, double timeout) {
            py::gil_scoped_release release;
            return timeout < 0 ? (self.lock(), true) : self.try_lock_for(Millis(timeout));
          },
          py::arg("timeout") = DefaultTimeoutSeconds())
      .def("release", &FileLock::unlock)
      .def_property_readonly("is_locked", &FileLock::owns_lock)
      .def_property_readonly("path", &FileLock::path)
      .def_property_readonly("shared",
                             [](const FileLock& self) { return self.mode() == LockMode::kShared; })
      .def("__enter__",
           [](FileLock& self) -> FileLock& {
             bool ok;
             {
               py::gil_scoped_release release;
               ok = self.try_lock_for(torch_tensorrt_rtx::util::kDefaultLockTimeout);
             }
             if (!ok) {
               PyErr_SetString(PyExc_TimeoutError, ("could not lock " + self.path()).c_str());
               throw py::error_already_set();
             }
             return self;
           },
           py::return_value_policy::reference)
      .def("__exit__", [](FileLock& self, py::args) { self.unlock(); });

  py::class_<RuntimeCacheFile>(m, "RuntimeCacheFile")
      .def(py::init([](const std::string& path, double timeout) {
             return new RuntimeCacheFile(path, Millis(timeout));
           }),
           py::arg("path"), py::arg("timeout") = DefaultTimeoutSeconds())
      .def_property_readonly("path", &RuntimeCacheFile::path)
      .def_property_readonly("lock_path", &RuntimeCacheFile::lock_path)
      .def("try_read",
           [](const RuntimeCacheFile& self) -> py::object {
             std::optional<std::string> data;
             {
               py::gil_scoped_release release;
               data = self.TryRead();
             }
             if (!data) return py::none();
             return py::bytes(*data);
           })
      .def("try_save_bytes",
           [](const RuntimeCacheFile& self, const py::bytes& blob) {
             std::string data = blob;
             py::gil_scoped_release release;
             return self.TrySaveBytes(data.data(), data.size());
           })
      .def("try_load", [](const RuntimeCacheFile& self, const py::function& deserialize) {
        // The callback runs with the GIL held (TryLoad is called with it held).
        return self.TryLoad([&](const void* data, std::size_t size) {
          return py::cast<bool>(deserialize(py::bytes(static_cast<const char*>(data), size)));
        });
      });
}
