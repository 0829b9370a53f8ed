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
#include <sys/stat.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>

#include "core/runtime/runtime_cache_file.h"
#include "core/util/file_lock.h"

namespace py = pybind11;
using torch_tensorrt_rtx::runtime::ReadBuffer;
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

// Reads a cache file straight into the bytes object handed to Python: one buffer, as
// Python's own f.read() uses. The object is allocated (with the GIL) before the read, sized
// from a stat() taken before locking plus the store's spare byte; Reserve() runs under the
// file lock with the GIL released and so never touches Python. If the file grew between
// that stat() and the read, the bytes continue in a C++ string and are copied once.
// Construct, Finish() and destroy with the GIL held; only Reserve() runs without it.
class BytesBuffer final : public ReadBuffer {
 public:
  explicit BytesBuffer(const std::string& path) {
    struct stat info;
    const Py_ssize_t expected = stat(path.c_str(), &info) == 0 && info.st_size > 0
                                    ? static_cast<Py_ssize_t>(info.st_size)
                                    : 0;
    bytes_ = py::reinterpret_steal<py::object>(PyBytes_FromStringAndSize(nullptr, expected + 1));
    if (!bytes_) throw py::error_already_set();
    data_ = PyBytes_AS_STRING(bytes_.ptr());
    capacity_ = static_cast<std::size_t>(expected) + 1;
  }

  char* Reserve(std::size_t capacity, std::size_t keep) override {
    if (!overflowed_ && capacity <= capacity_) return data_;
    if (!overflowed_) {
      overflow_.assign(data_, keep);
      overflowed_ = true;
    }
    overflow_.resize(capacity);
    return &overflow_[0];
  }

  // The first `size` bytes read, as the bytes object (shrunk in place) or, after an
  // overflow, a copy of the C++ string.
  py::bytes Finish(std::size_t size) {
    if (overflowed_) return py::bytes(overflow_.data(), size);
    PyObject* object = bytes_.release().ptr();
    // Sole owner of a fresh object: resizing it is allowed and frees the spare byte.
    if (_PyBytes_Resize(&object, static_cast<Py_ssize_t>(size)) != 0) {
      throw py::error_already_set();  // _PyBytes_Resize already released `object`
    }
    return py::reinterpret_steal<py::bytes>(object);
  }

 private:
  py::object bytes_;
  char* data_ = nullptr;
  std::size_t capacity_ = 0;
  bool overflowed_ = false;
  std::string overflow_;
};

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
             BytesBuffer buffer(self.path());
             std::optional<std::size_t> size;
             {
               py::gil_scoped_release release;
               size = self.TryReadInto(buffer);
             }
             if (!size) return py::none();
             return buffer.Finish(*size);
           })
      .def("try_save_bytes",
           [](const RuntimeCacheFile& self, const py::bytes& blob) {
             // Written straight from the bytes object: immutable, and `blob` keeps it
             // alive for the whole call, so its buffer stays valid without the GIL.
             char* data = nullptr;
             Py_ssize_t size = 0;
             if (PyBytes_AsStringAndSize(blob.ptr(), &data, &size) != 0) {
               throw py::error_already_set();
             }
             py::gil_scoped_release release;
             return self.TrySaveBytes(data, static_cast<std::size_t>(size));
           })
      .def("try_load", [](const RuntimeCacheFile& self, const py::function& deserialize) {
        BytesBuffer buffer(self.path());
        py::gil_scoped_release release;  // the file is read without the GIL
        // Called after the lock is released: taking the GIL here cannot deadlock with it.
        return self.TryLoad(buffer, [&](const void*, std::size_t size) {
          py::gil_scoped_acquire gil;
          try {
            return py::cast<bool>(deserialize(buffer.Finish(size)));
          } catch (py::error_already_set& e) {
            // Keep the message, drop the Python objects while the GIL is held.
            throw std::runtime_error(e.what());
          }
        });
      });
}
