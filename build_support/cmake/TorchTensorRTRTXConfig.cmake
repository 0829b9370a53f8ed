# CMake package of the torch_tensorrt_rtx C++ runtime, as the torch-trtx wheel installs it:
#   site-packages/torch_tensorrt_rtx/{lib/libtorchtrt_rtx_runtime.so, include/, share/cmake/TorchTensorRTRTX/}
#
#   cmake -DCMAKE_PREFIX_PATH="$(python -c 'import torch_tensorrt_rtx as t; print(t.cmake_prefix_path())')" ..
#   find_package(TorchTensorRTRTX REQUIRED)
#   target_link_libraries(app PRIVATE TorchTensorRTRTX::runtime)
#
# TorchTensorRTRTX::runtime links the runtime library (which registers torch.ops.tensorrt.* and
# torch.ops.tensorrt_rtx.execute_engine when the program starts), torch, and the headers
# (torch_tensorrt_rtx/serving.h and the runtime's core/ headers). Torch comes from the torch
# package installed beside this one unless find_package(Torch) found one already.
# Also sets TorchTensorRTRTX_LIBRARY and TorchTensorRTRTX_INCLUDE_DIRS.
get_filename_component(_torch_tensorrt_rtx_root "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)

include(CMakeFindDependencyMacro)
if(NOT TARGET torch)
  find_dependency(Torch CONFIG HINTS "${_torch_tensorrt_rtx_root}/../torch/share/cmake/Torch")
endif()

set(TorchTensorRTRTX_LIBRARY "${_torch_tensorrt_rtx_root}/lib/libtorchtrt_rtx_runtime.so")
set(TorchTensorRTRTX_INCLUDE_DIRS
    "${_torch_tensorrt_rtx_root}/include" "${_torch_tensorrt_rtx_root}/include/torch_tensorrt_rtx")
if(NOT EXISTS "${TorchTensorRTRTX_LIBRARY}")
  set(TorchTensorRTRTX_FOUND FALSE)
  set(TorchTensorRTRTX_NOT_FOUND_MESSAGE
      "${TorchTensorRTRTX_LIBRARY} is missing: this torch_tensorrt_rtx was installed without its C++ runtime")
  return()
endif()

if(NOT TARGET TorchTensorRTRTX::runtime)
  add_library(TorchTensorRTRTX::runtime SHARED IMPORTED)
  set_target_properties(TorchTensorRTRTX::runtime PROPERTIES
    IMPORTED_LOCATION "${TorchTensorRTRTX_LIBRARY}"
    IMPORTED_SONAME "libtorchtrt_rtx_runtime.so"
    INTERFACE_INCLUDE_DIRECTORIES "${TorchTensorRTRTX_INCLUDE_DIRS}"
    INTERFACE_LINK_LIBRARIES torch
    # The program calls no symbol of the library (it reaches the ops through torch's
    # dispatcher): keep it a dependency even where the linker defaults to --as-needed.
    INTERFACE_LINK_OPTIONS "LINKER:--no-as-needed")
endif()
unset(_torch_tensorrt_rtx_root)
