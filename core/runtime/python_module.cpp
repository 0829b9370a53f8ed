// torch_tensorrt_rtx._C: the C++ FileLock and runtime cache file store for Python tools
// and the cross-runtime tests. No torch dependency.
//
//   from torch_tensorrt_rtx import _C
//   with _C.FileLock("/c/cache.bin.lock", shared=True) as lock:   # 10 s timeout
//       ...
//   store = _C.RuntimeCacheFile("/c/cache.bin", timeout=10.0, max_bytes=None)
//   store.try_save_entry(key, b"...") -> bool   store.try_load_entry(key) -> (bytes, last_use) | None
//   store.try_read_index() -> [(key, last_use, size, offset, checksum | None)] | None
//
// FileLock.acquire(timeout) returns False on timeout (the context manager raises
// TimeoutError); the RuntimeCacheFile methods never raise: their warnings go to stderr and,
// once per path and reason, to Python's `warnings` as runtime.RuntimeCacheWarning. Paths are
// str or bytes, passed as os.fsencode gives them (non-UTF-8 POSIX paths work).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <new>
#include <cstdint>
#include <vector>

#include <chrono>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>

#include "core/runtime/build_callbacks.h"
#include "core/runtime/cache_container.h"
#include "core/runtime/log.h"
#include "core/runtime/runtime_cache_file.h"
#include "core/runtime/runtime_settings.h"
#include "core/runtime/sha256.h"
#include "core/util/file_lock.h"

namespace py = pybind11;
using torch_tensorrt_rtx::runtime::CachedEntry;
using torch_tensorrt_rtx::runtime::RuntimeCacheFile;
using torch_tensorrt_rtx::util::FileLock;
using torch_tensorrt_rtx::util::LockMode;

namespace {

std::chrono::milliseconds Millis(double seconds) {
  if (!(seconds >= 0.0) || seconds > 1e9) {  // NaN, negative, or beyond any sensible wait
    throw py::value_error("runtime cache lock_timeout must be a number of seconds >= 0, found " +
                          std::to_string(seconds));
  }
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000.0));
}

double DefaultTimeoutSeconds() {
  return static_cast<double>(torch_tensorrt_rtx::util::kDefaultLockTimeout.count()) / 1000.0;
}

torch_tensorrt_rtx::runtime::EngineKey KeyFrom(const py::bytes& key) {
  const std::string text = key;
  torch_tensorrt_rtx::runtime::EngineKey out{};
  if (text.size() != out.size()) {
    throw py::value_error("engine key must be 32 bytes (a SHA-256 digest), found " +
                          std::to_string(text.size()));
  }
  std::copy(text.begin(), text.end(), out.begin());
  return out;
}

py::bytes KeyBytes(const torch_tensorrt_rtx::runtime::EngineKey& key) {
  return py::bytes(reinterpret_cast<const char*>(key.data()), key.size());
}

py::list EntriesToList(const std::vector<torch_tensorrt_rtx::runtime::container::Entry>& entries) {
  py::list out;
  for (const auto& e : entries) {
    out.append(py::make_tuple(KeyBytes(e.key), e.last_use, e.size, e.offset,
                              e.checksum ? py::object(py::int_(*e.checksum)) : py::object(py::none())));
  }
  return out;
}

// Paths cross as the OS's bytes: os.fsencode / os.fsdecode, as the Python store does, so a
// non-UTF-8 path (POSIX) names the same file in both.
std::string PathBytes(const py::object& path) {
  return py::module_::import("os").attr("fsencode")(path).cast<std::string>();
}

py::object PathText(const std::string& path) {
  return py::module_::import("os").attr("fsdecode")(py::bytes(path));
}

// The store's warnings reach Python's `warnings` as RuntimeCacheWarning, once per path and
// reason (runtime_cache_file.warn_once keeps that set for both stores).
void WarnInPython(const char* path, const char* kind, const char* text) {
  py::gil_scoped_acquire gil;
  try {
    py::module_::import("torch_tensorrt_rtx.runtime.runtime_cache_file")
        .attr("warn_once")(PathText(path), kind, text);
  } catch (py::error_already_set& e) {
    e.discard_as_unraisable("torch_tensorrt_rtx runtime cache warning");
  }
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

  torch_tensorrt_rtx::runtime::SetCacheWarningSink(&WarnInPython);
  // Not after the interpreter is gone: stores destroyed at exit must not call into Python.
  py::module_::import("atexit").attr("register")(
      py::cpp_function([] { torch_tensorrt_rtx::runtime::SetCacheWarningSink(nullptr); }));

  py::class_<RuntimeCacheFile>(m, "RuntimeCacheFile")
      .def(py::init([](const py::object& path, double timeout, std::optional<std::uint64_t> max_bytes) {
             try {
               return new RuntimeCacheFile(PathBytes(path), Millis(timeout), max_bytes);
             } catch (const std::invalid_argument& e) {
               throw py::value_error(e.what());
             }
           }),
           py::arg("path"), py::arg("timeout") = DefaultTimeoutSeconds(),
           py::arg("max_bytes") = py::none())
      .def_property_readonly("path", [](const RuntimeCacheFile& self) { return PathText(self.path()); })
      .def_property_readonly("lock_path", [](const RuntimeCacheFile& self) { return PathText(self.lock_path()); })
      .def_property_readonly("max_bytes", &RuntimeCacheFile::max_bytes)
      .def("try_load_entry",
           [](const RuntimeCacheFile& self, const py::bytes& key) -> py::object {
             const auto engine_key = KeyFrom(key);
             // Read straight into the bytes object returned: one copy of the entry, not two.
             py::object data;
             std::optional<std::uint64_t> last_use;
             {
               py::gil_scoped_release release;
               last_use = self.TryLoadEntryInto(engine_key, [&data](std::size_t size) -> char* {
                 py::gil_scoped_acquire gil;
                 PyObject* bytes = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(size));
                 if (bytes == nullptr) {
                   PyErr_Clear();
                   throw std::bad_alloc();
                 }
                 data = py::reinterpret_steal<py::object>(bytes);
                 return PyBytes_AS_STRING(bytes);
               });
             }
             if (!last_use) return py::none();
             return py::make_tuple(data, *last_use);
           })
      .def("try_read_index",
           [](const RuntimeCacheFile& self) -> py::object {
             std::optional<std::vector<torch_tensorrt_rtx::runtime::container::Entry>> index;
             {
               py::gil_scoped_release release;
               index = self.TryReadIndex();
             }
             if (!index) return py::none();
             return EntriesToList(*index);
           })
      .def("try_save_entry",
           [](const RuntimeCacheFile& self, const py::bytes& key, const py::bytes& blob,
              std::optional<std::uint64_t> now) {
             const auto engine_key = KeyFrom(key);
             // Written straight from the bytes object: immutable, and `blob` keeps it
             // alive for the whole call, so its buffer stays valid without the GIL.
             char* data = nullptr;
             Py_ssize_t size = 0;
             if (PyBytes_AsStringAndSize(blob.ptr(), &data, &size) != 0) {
               throw py::error_already_set();
             }
             py::gil_scoped_release release;
             return self.TrySaveEntry(engine_key, data, static_cast<std::size_t>(size), now);
           },
           py::arg("key"), py::arg("blob"), py::arg("now") = py::none());

  // The container decoder and the engine key, for the conformance and fuzz tests.
  m.def("decode_cache_container", [](const py::bytes& data) {
    const std::string bytes = data;
    std::vector<torch_tensorrt_rtx::runtime::container::Entry> entries;
    const auto verdict = torch_tensorrt_rtx::runtime::container::Decode(bytes.data(), bytes.size(), &entries);
    return py::make_tuple(torch_tensorrt_rtx::runtime::container::Name(verdict), EntriesToList(entries));
  });
  m.def("encode_cache_prefix", [](const py::list& index) {
    std::vector<torch_tensorrt_rtx::runtime::container::Entry> entries;
    for (const py::handle& item : index) {
      const auto t = item.cast<py::tuple>();
      torch_tensorrt_rtx::runtime::container::Entry e;
      e.key = KeyFrom(t[0].cast<py::bytes>());
      e.last_use = t[1].cast<std::uint64_t>();
      e.size = t[2].cast<std::uint64_t>();
      e.checksum = t[3].cast<std::uint32_t>();
      entries.push_back(e);
    }
    try {
      return py::bytes(torch_tensorrt_rtx::runtime::container::EncodePrefix(entries));
    } catch (const std::invalid_argument& e) {
      throw py::value_error(e.what());
    }
  });
  m.def("engine_key", [](const py::bytes& data) {
    const std::string bytes = data;
    return KeyBytes(torch_tensorrt_rtx::runtime::Sha256(bytes.data(), bytes.size()));
  });
  m.def("default_cache_path", [] { return PathText(torch_tensorrt_rtx::runtime::DefaultCachePath()); });

  // Builder callbacks without Python (build_callbacks.h): the functions' addresses, for
  // dynamo/conversion/_vtable.py to write into the Python logger's and monitor's tables.
  namespace callbacks = torch_tensorrt_rtx::runtime::build_callbacks;
  m.def("build_callback_addresses", [] {
    auto address = [](auto function) { return reinterpret_cast<std::uintptr_t>(function); };
    py::dict found;
    found["log_filter"] = address(&callbacks::LogFilter);
    found["phase_start"] = address(&callbacks::PhaseStart);
    found["step_complete"] = address(&callbacks::StepComplete);
    found["phase_finish_trimming"] = address(&callbacks::PhaseFinishTrimming);
    found["phase_finish"] = address(&callbacks::PhaseFinish);
    return found;
  });
  m.def("set_log_forward", [](std::uintptr_t forward) {
    return reinterpret_cast<std::uintptr_t>(callbacks::SetLogForward(reinterpret_cast<callbacks::LogFunction>(forward)));
  });
  m.def("set_log_limit", [](std::int32_t least_severe_kept) { callbacks::SetLogLimit(least_severe_kept); });
  m.def("log_messages_dropped", [] { return callbacks::MessagesDropped(); });
  m.def("build_phases_finished", [] { return callbacks::PhasesFinished(); });
}
