"""File operations of the runtime cache store, with the platform made explicit.

Every function that behaves differently on Windows takes ``platform`` (``"posix"`` or
``"windows"``, default: this machine's), so both branches run in tests on any machine.
The C++ twin is ``core/runtime/cache_file_io.h``; the two resolve the same default path
and refuse the same files.

- ``default_cache_path``: ``$XDG_CACHE_HOME`` (absolute) or the home directory's
  ``.cache`` (``$HOME`` if absolute, else the password database); on Windows
  ``%LOCALAPPDATA%``. Then ``torch_tensorrt_rtx/runtime_cache.bin``.
- ``open_cache_for_reading``: never blocks (``O_NONBLOCK``, so a FIFO cannot hang us),
  never follows a symlink, accepts only a regular file no other user can write
  (``CacheFileRefused`` says why otherwise); its directory is the caller's to check first.
- Temp files are ``<name><temp_marker><random>``; ``remove_stale_temp_files`` deletes only
  names of exactly that shape, never a user's ``<name>.backup.tmp``.
"""
from __future__ import annotations

import errno
import logging
import os
import re
import secrets
import stat
import sys
import tempfile
from pathlib import Path
from typing import Mapping, Optional

from torch_tensorrt_rtx.runtime.definitions import CACHE_PROTOCOL

logger = logging.getLogger(__name__)

POSIX, WINDOWS = "posix", "windows"
TEMP_MARKER = CACHE_PROTOCOL.temp_marker
# Python's mkstemp uses 8 characters of [a-z0-9_]; C++ mkostemps 6 of [A-Za-z0-9].
_TEMP_RANDOM = re.compile(r"[A-Za-z0-9_]{6,8}")
_TEMP_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789_"


class CacheFileRefused(OSError):
    """The path holds something the store must not read or replace (the message says why)."""


def current_platform() -> str:
    return WINDOWS if sys.platform == "win32" else POSIX


def check_path(path: "os.PathLike[str] | str") -> str:
    """The path as text; ValueError for an embedded NUL (the OS would truncate it)."""
    text = os.fspath(path)
    if not isinstance(text, str):
        text = os.fsdecode(text)
    if "\0" in text:
        raise ValueError(f"runtime cache path {text!r} contains a NUL character; expected a "
                         f"file path")
    if not text:
        raise ValueError("runtime cache path is empty; expected a file path (or cache_path=None "
                         "to disable the cache)")
    return text


def default_cache_dir(*, platform: Optional[str] = None,
                      environ: Optional[Mapping[str, str]] = None) -> str:
    platform = platform or current_platform()
    env = os.environ if environ is None else environ
    if platform == WINDOWS:
        base = env.get("LOCALAPPDATA", "")
        if not base:
            base = (env.get("USERPROFILE", "") or "C:").rstrip("\\/") + "\\AppData\\Local"
        return base.rstrip("\\/") + "\\" + CACHE_PROTOCOL.default_cache_dir
    xdg = env.get("XDG_CACHE_HOME", "")
    # The XDG spec says a relative XDG_CACHE_HOME is invalid and must be ignored.
    if xdg and os.path.isabs(xdg):
        base = xdg
    else:
        base = os.path.join(_posix_home(env), ".cache")
    return os.path.join(base, CACHE_PROTOCOL.default_cache_dir)


def _posix_home(env: Mapping[str, str]) -> str:
    home = env.get("HOME", "")
    if home and os.path.isabs(home):
        return home
    import pwd  # the password database, as the C++ runtime's getpwuid_r

    return pwd.getpwuid(os.geteuid()).pw_dir


def default_cache_path(create_dir: bool = True, *, platform: Optional[str] = None,
                       environ: Optional[Mapping[str, str]] = None) -> Path:
    """The per-user runtime cache file; its directory is created with mode 0o700."""
    platform = platform or current_platform()
    directory = default_cache_dir(platform=platform, environ=environ)
    sep = "\\" if platform == WINDOWS else "/"
    path = directory + sep + CACHE_PROTOCOL.default_cache_file
    if create_dir and platform == current_platform():
        try:
            make_private_dirs(Path(directory))
        except OSError as exc:
            logger.warning("cannot create runtime cache directory %s: %s", directory, exc)
    return Path(path)


def make_private_dirs(directory: Path) -> None:
    """Create missing directories, every level with mode 0o700."""
    if os.path.exists(directory) or directory.parent == directory:
        return
    make_private_dirs(directory.parent)
    try:
        directory.mkdir(mode=0o700)
    except FileExistsError:
        pass


def untrusted_reason(info: os.stat_result, what: str, platform: Optional[str] = None) -> str:
    """Why a file or directory with this lstat is writable by other users ("" if it is not).

    Owned by us or root, not writable by others, and group-writable only for our own
    primary group. Windows ACLs are not inspected (not available from a stat).
    """
    if (platform or current_platform()) == WINDOWS:
        return ""
    euid, egid = os.geteuid(), os.getegid()
    if info.st_uid not in (euid, 0):
        return f"{what} is owned by user id {info.st_uid}, not by you ({euid}) or root"
    if info.st_mode & stat.S_IWOTH:
        return f"{what} is writable by every user (mode {stat.S_IMODE(info.st_mode):o})"
    if info.st_mode & stat.S_IWGRP and info.st_gid != egid:
        return (f"{what} is writable by group id {info.st_gid} (mode "
                f"{stat.S_IMODE(info.st_mode):o})")
    return ""


def check_directory(directory: Path, platform: Optional[str] = None) -> None:
    """CacheFileRefused if other users can write into ``directory``."""
    try:
        info = os.stat(directory)
    except FileNotFoundError:
        return
    reason = untrusted_reason(info, f"directory {directory}", platform)
    if reason:
        raise CacheFileRefused(f"{reason}; use a directory only you can write")


def open_cache_for_reading(path: Path, max_bytes: Optional[int]) -> Optional[int]:
    """A descriptor of the cache file, or None if missing. CacheFileRefused if it is not a
    regular file that only we (or root) can write, or larger than ``max_bytes`` (None: any
    size). The caller has checked the directory (``check_directory``) before, once."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | \
        getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CacheFileRefused(f"{path} is a symlink (expected a regular file); set the "
                                   f"cache path to the link's target instead") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CacheFileRefused(f"{path} is not a regular file (mode "
                                   f"{stat.filemode(info.st_mode)})")
        reason = untrusted_reason(info, f"file {path}")
        if reason:
            raise CacheFileRefused(reason)
        if max_bytes is not None and info.st_size > max_bytes:
            raise CacheFileRefused(f"{path} is {info.st_size} bytes, more than the cache size "
                                   f"cap of {max_bytes} bytes")
        return fd
    except BaseException:
        os.close(fd)
        raise


def read_exactly(fd: int, offset: int, size: int, path: Path) -> bytearray:
    """``size`` bytes at ``offset`` (bounded by the caller), read straight into one buffer;
    OSError if the file is shorter. Callers own the descriptor."""
    buffer = bytearray(size)
    read_into(fd, offset, memoryview(buffer), path)
    return buffer


def read_into(fd: int, offset: int, view: memoryview, path: Path) -> None:
    """Fill the byte memoryview ``view`` with the file's bytes at ``offset``; OSError if the file
    is shorter. lseek + readv/read rather than pread, which Windows lacks."""
    size, done = view.nbytes, 0
    os.lseek(fd, offset, os.SEEK_SET)
    while done < size:
        if hasattr(os, "readv"):
            n = os.readv(fd, [view[done:]])
        else:
            chunk = os.read(fd, size - done)
            n = len(chunk)
            view[done:done + n] = chunk
        if n == 0:
            raise OSError(errno.EIO, f"{path} ended {size - done} bytes early at {offset + done}")
        done += n


def create_temp_file(path: Path):
    """An open binary file ``<name><marker><random>`` beside ``path`` (mode 0o600)."""
    fd, temp = tempfile.mkstemp(prefix=path.name + TEMP_MARKER, dir=path.parent)
    return os.fdopen(fd, "wb"), Path(temp)


def temp_name(path: Path) -> Path:
    """A fresh name ``<name><marker><random>`` beside ``path``, as `create_temp_file` makes, for a
    file that gets its name later (an unnamed file linked into place under the exclusive lock)."""
    return path.parent / (path.name + TEMP_MARKER + "".join(secrets.choice(_TEMP_ALPHABET) for _ in range(8)))


def is_own_temp_name(cache_name: str, file_name: str) -> bool:
    prefix = cache_name + TEMP_MARKER
    return file_name.startswith(prefix) and bool(_TEMP_RANDOM.fullmatch(file_name[len(prefix):]))


def remove_stale_temp_files(path: Path) -> None:
    """Delete temp files left by killed writers (call only under the exclusive lock: a temp
    file lives only while its writer holds it)."""
    try:
        names = os.listdir(path.parent)
    except OSError:
        return
    for name in names:
        if is_own_temp_name(path.name, name):
            try:
                os.unlink(path.parent / name)
                logger.info("runtime cache: removed %s left by an interrupted save",
                            path.parent / name)
            except OSError:
                pass  # a leftover temp file costs disk space, nothing else


def replace_file(temp: Path, path: Path) -> None:
    """Atomically put ``temp`` at ``path``: os.replace (rename(2) / MoveFileEx with
    MOVEFILE_REPLACE_EXISTING), which unlike os.rename also replaces on Windows."""
    os.replace(temp, path)


def install_temp_file(temp: Path, path: Path) -> None:
    """``replace_file``, refused when a symlink appeared at ``path`` since it was first checked."""
    if os.path.islink(path):
        raise CacheFileRefused(f"{path} became a symlink")
    replace_file(temp, path)


def remove_quietly(path: Path) -> None:
    """Delete a temp file of ours that a failed save leaves; one already gone is fine."""
    try:
        os.unlink(path)
    except OSError:
        pass


def fsync_directory(directory: Path, platform: Optional[str] = None) -> None:
    """Make a rename durable. Windows has no directory fsync (directories cannot be opened
    as files); NTFS journals the rename's metadata instead, so there is nothing to do."""
    if (platform or current_platform()) == WINDOWS:
        return
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
