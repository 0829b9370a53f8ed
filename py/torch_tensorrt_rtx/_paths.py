"""Where an installed platform wheel keeps its C++ files, for C++ users (imports no torch)."""
from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CMAKE_PACKAGE_DIR = PACKAGE_DIR / "share" / "cmake"  # holds TorchTensorRTRTX/TorchTensorRTRTXConfig.cmake


def cmake_prefix_path() -> str:
    """The directory to put on ``CMAKE_PREFIX_PATH`` for ``find_package(TorchTensorRTRTX)``
    (like ``torch.utils.cmake_prefix_path``); the package finds torch beside it by itself."""
    if not (CMAKE_PACKAGE_DIR / "TorchTensorRTRTX" / "TorchTensorRTRTXConfig.cmake").is_file():
        raise FileNotFoundError(
            f"{CMAKE_PACKAGE_DIR / 'TorchTensorRTRTX'} has no TorchTensorRTRTXConfig.cmake: this installation of "
            "torch_tensorrt_rtx has no C++ runtime (an editable or Python-only install). Install the platform "
            "wheel, which `pip wheel .` builds from the source tree.")
    return str(CMAKE_PACKAGE_DIR)
