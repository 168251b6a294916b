"""Writing outputs safely: atomic writes and the checks made on an output before any work.

* Every output is written under a temporary name beside its destination (:func:`temp_beside`: a hidden
  ``.NAME.HOST-PID.XXXX.part`` file or folder in the same folder, so the final rename never crosses file
  systems) and renamed into place when complete (:func:`commit_file`, :func:`commit_folder`); on any
  error the temporary is removed (:func:`removed_on_error`), so a failed or interrupted write never
  leaves a partial output and an existing file is replaced in one step. :func:`atomic_write` does all
  of that for a file written in one go.
* A process killed outright (SIGKILL, a crash, a power cut) cannot remove its temporaries: the next
  temporary made for the same output first removes those of that output whose owner (the host and
  process id in the name) is this host's and no longer running (:func:`remove_stale_temps`). Another
  live run's temporaries, another host's, and files not named like ours are never touched.
* Finished outputs get the usual permissions (``0o666`` or ``0o777`` less the umask), not the
  private ones of a temporary file.
* The checks refuse, with a one-line :class:`~masquerade.errors.OutputError`, an output that would
  overwrite an input, replace a file without ``--force``, or land in a missing or read-only folder:
  :func:`check_output_path` for a file, :func:`check_output_folder` for a folder written whole and
  :func:`prepare_out_folder` for a folder written into.
* Inputs (photos, videos) must be regular files: :func:`check_input_file` refuses a FIFO, a device
  (``/dev/zero``), a socket or a folder, from its ``stat`` alone, before anything opens it; and
  :func:`read_input_bytes` reads a file into memory only when its size is under a limit, and never
  more than that.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
import uuid
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from .errors import InputError, LimitError, OutputError


def current_umask() -> int:
    """The process's umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _parent(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def owner_tag() -> str:
    """``HOST-PID`` of this process, as temporaries carry it: the host as 6 hex digits (a hash of its
    name: any characters, fixed length), then the process id."""
    host = zlib.crc32(os.uname().nodename.encode()) & 0xFFFFFF
    return f"{host:06x}-{os.getpid()}"


# what follows ``.NAME.`` in a temporary of ours: the owner, tempfile's 8 random characters, a suffix
_TEMP_TAIL = re.compile(
    r"(?P<host>[0-9a-f]{6})-(?P<pid>[0-9]+)\.[a-z0-9_]{8}"
    r"(?:\.part(?:\.[A-Za-z0-9]{1,5})?|\.c2pa-part(?:\.[A-Za-z0-9]{1,5})?|\.segments)"
)


def temp_beside(path: Path, suffix: str = ".part", folder: bool = False) -> Path:
    """A new, empty temporary file (or with ``folder`` a folder) named ``.NAME.HOST-PID.XXXX<suffix>``
    in ``path``'s folder, private to the user until it is committed. Stale temporaries of the same
    output left by a killed process are removed first (:func:`remove_stale_temps`)."""
    remove_stale_temps(path)
    prefix = f".{path.name}.{owner_tag()}."
    if folder:
        return Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=_parent(path)))
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=_parent(path))
    os.close(fd)
    return Path(tmp)


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host (one of another user counts as running)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, it is not ours to signal
        return True
    return True


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove the temporaries of the output ``path`` (:func:`temp_beside`'s, and the signing
    temporaries named after them) whose owner, named in them, is a process of this host that has
    ended; returns what was removed. A temporary of a live process, of another host, a link, or any
    name not exactly of our form is left alone. Nothing is raised: a file that cannot be removed
    stays."""
    parent, lead = _parent(path), f".{path.name}."
    removed: list[Path] = []
    try:
        with os.scandir(parent) as it:
            names = [e.name for e in it if e.name.startswith(lead)]
    except OSError:
        return removed
    host = owner_tag().split("-")[0]
    for name in names:
        m = _TEMP_TAIL.fullmatch(name, len(lead))
        if m is None or m["host"] != host:
            continue
        pid = int(m["pid"])
        if pid == os.getpid() or process_alive(pid):
            continue
        tmp = parent / name
        removed += remove_stale_temps(tmp)  # a signing temporary of a stale temporary
        try:
            st = os.lstat(tmp)
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(tmp)
            elif stat.S_ISREG(st.st_mode):
                tmp.unlink()
            else:
                continue
        except OSError:
            continue
        removed.append(tmp)
    return removed


@contextlib.contextmanager
def removed_on_error(tmp: Path) -> Iterator[None]:
    """Remove the temporary file or folder ``tmp`` when the block raises (anything, interrupts too)."""
    try:
        yield
    except BaseException:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise


def commit_file(tmp: Path, path: Path) -> None:
    """Give the finished temporary file ``tmp`` the usual permissions and rename it over ``path``."""
    os.chmod(tmp, 0o666 & ~current_umask())
    os.replace(tmp, path)


def commit_folder(tmp: Path, out: Path) -> None:
    """Give the finished temporary folder ``tmp`` the usual permissions and move it to ``out``; an
    existing ``out`` (an empty folder, or one the caller may replace) is replaced, and put back if the
    move fails."""
    os.chmod(tmp, 0o777 & ~current_umask())
    old = None
    if out.exists() or out.is_symlink():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        if old is not None:
            os.rename(old, out)
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` atomically: ``write(file)`` fills a temporary file in the same folder (created
    with its parents), which is flushed to disk and renamed over ``path``; on any error the temporary
    file is removed and ``path`` is left as it was."""
    _parent(path).mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(path)
    with removed_on_error(tmp):
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        commit_file(tmp, path)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write bytes to ``path`` atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda fh: fh.write(data))


def check_output_path(
    output: str | os.PathLike[str], inputs: Sequence[Path], force: bool, extensions: Mapping[str, str]
) -> Path:
    """Validate an output file's path before any work is done: its extension is one of ``extensions``
    (e.g. :data:`masquerade.imageio.IMAGE_EXTENSIONS`), it is none of the ``inputs``, it does not exist
    (unless ``force``) and is not a folder, and its folder exists and is writable."""
    out = Path(output)
    if out.suffix.lower() not in extensions:
        raise OutputError(
            f"{out}: unsupported output extension {out.suffix!r} (use {', '.join(sorted(extensions))})"
        )
    for src in inputs:
        try:
            same = out.exists() and src.exists() and os.path.samefile(out, src)
        except OSError:
            same = False
        if same or out.resolve() == src.resolve():
            raise OutputError(f"{out}: output would overwrite the input {src}; choose another path")
    if out.exists() and not force:
        raise OutputError(f"{out}: already exists (use --force to replace it)")
    if out.is_dir():
        raise OutputError(f"{out}: is a directory")
    parent = _parent(out)
    if not parent.is_dir():
        raise OutputError(f"{out}: {_missing_folder(parent)}")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{out}: folder {parent} is not writable")
    return out


def _missing_folder(folder: Path) -> str:
    """Why ``folder`` (not a folder) cannot hold an output: it, or a folder above it, is a file; else
    it does not exist."""
    for anc in (folder, *folder.parents):
        if anc.exists():
            if not anc.is_dir():
                what = "a file" if anc.is_file() else file_kind(anc.stat().st_mode)
                return f"{anc} is {what}, not a folder"
            break
    return f"folder {folder} does not exist"


def check_output_folder(
    out_dir: str | os.PathLike[str], inputs: Sequence[str | os.PathLike[str]], force: bool = False
) -> Path:
    """Check a folder that will be written whole and committed with :func:`commit_folder`: refuse one
    that exists with files in it (unless ``force``: it is then replaced at the end), is a file, holds or
    is an input, lies inside an input folder, or has no writable parent. Returns the absolute path."""
    given = Path(out_dir)
    out = Path(os.path.abspath(given))  # ".." and "." resolved by name, links kept
    if out.parent == out:
        raise OutputError(f"{given}: choose a named output folder")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{given}: exists and is not a folder")
    if out.is_dir() and not force:
        with contextlib.suppress(OSError):
            if any(out.iterdir()):
                raise OutputError(f"{given}: folder is not empty (use --force to replace it)")
    out_r = out.resolve()
    cwd = Path.cwd().resolve()
    if out_r == cwd or out_r in cwd.parents:
        raise OutputError(f"{given}: the output folder holds the current folder; choose another")
    for raw in inputs:
        src_r = Path(raw).resolve()
        if out_r == src_r or out_r in src_r.parents:
            raise OutputError(f"{given}: the output folder would replace the input {raw}; choose another")
        if Path(raw).is_dir() and src_r in out_r.parents:
            raise OutputError(f"{given}: the output folder is inside the input folder {raw}; choose another")
    parent = out.parent
    if not parent.is_dir():
        raise OutputError(f"{given}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{given}: folder {parent} is not writable")
    return out


def prepare_out_folder(folder: str | os.PathLike[str], force: bool = False, create: bool = True) -> Path:
    """Create ``folder`` (and parents) or accept an existing empty one, for files written into it one
    by one; a non-empty one only with ``force`` (files of the same names are then replaced, others left
    alone). ``create=False`` only checks, so a run can refuse before doing any work and leave nothing
    behind."""
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise OutputError(f"{out}: folder is not empty (use --force to write into it)")
    if not create:
        anc = out.absolute()
        while not anc.exists():
            anc = anc.parent
        if not anc.is_dir() or not os.access(anc, os.W_OK):
            raise OutputError(f"{out}: cannot create it ({anc} is not a writable folder)")
        return out
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot create the folder ({exc.strerror or exc})") from None
    if not os.access(out, os.W_OK):
        raise OutputError(f"{out}: folder is not writable")
    return out


def file_kind(mode: int) -> str:
    """What a file that is not a regular file is, for a message: "a FIFO (named pipe)" …"""
    for test, what in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return what
    return "not a regular file"


def check_input_file(path: str | os.PathLike[str], what: str = "a file") -> os.stat_result:
    """The ``stat`` of the input ``path`` (links followed), or a one-line :class:`InputError` when it is
    missing or not a regular file: a folder ("is a directory, not ``what``"), a FIFO, a device such as
    ``/dev/zero``, a socket. Nothing is opened, so a FIFO cannot block and a device cannot be read."""
    p = Path(path)
    try:
        st = os.stat(p)
    except (FileNotFoundError, NotADirectoryError):
        raise InputError(f"{p}: no such file") from None
    except (OSError, ValueError) as exc:  # ELOOP, EACCES on a folder on the way, a NUL in the name …
        raise InputError(f"{p}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{p}: is a directory, not {what}")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{p}: is {file_kind(st.st_mode)}, not a regular file")
    return st


def read_input_bytes(path: str | os.PathLike[str], limit: int, what: str = "a file", why: str = "") -> bytes:
    """The bytes of the regular file ``path`` (:func:`check_input_file`), refused with a one-line
    :class:`InputError` when it is over ``limit`` bytes: its size is checked before it is read, and no
    more than ``limit + 1`` bytes are ever read (a file that grows meanwhile is refused too). ``why``
    ends the message (e.g. how to raise the limit)."""
    p = Path(path)
    st = check_input_file(p, what)

    def too_big(size: str) -> LimitError:
        return LimitError(f"{p}: file is {size}, over the {_bytes(limit)} limit{why}")

    if st.st_size > limit:
        raise too_big(_bytes(st.st_size))
    try:
        # non-blocking: should it have become a FIFO since the check, opening it must not wait
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror or exc})") from None
    with open(fd, "rb", closefd=True) as fh:
        mode = os.fstat(fh.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise InputError(f"{p}: is {file_kind(mode)}, not a regular file")
        try:
            # (a read of n bytes reserves n at once: ask for the size the file has, not the limit)
            data = fh.read(min(st.st_size, limit) + 1)
            if len(data) > st.st_size:  # grown since the stat (or a /proc file): read on, to the limit
                data += fh.read(limit + 1 - len(data))
        except OSError as exc:
            raise InputError(f"{p}: cannot read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise too_big(f"over {_bytes(limit)}")
    return data


def _bytes(n: int) -> str:
    """A file size for a message: "16.8 MB", or "1,000 bytes" under a megabyte (never "0.0 MB")."""
    return f"{n / 1e6:.1f} MB" if n >= 1_000_000 else f"{n:,} bytes"
