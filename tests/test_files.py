"""masquerade.files: atomic writes, folder commits and the output checks, on real files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pytest

from masquerade import OutputError
from masquerade.files import (
    atomic_write,
    atomic_write_bytes,
    check_output_folder,
    check_output_path,
    commit_folder,
    current_umask,
    prepare_out_folder,
    removed_on_error,
    temp_beside,
)
from masquerade.imageio import IMAGE_EXTENSIONS
from masquerade.video.writer import VideoWriter


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_atomic_write_replaces_or_leaves_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "out.bin"
    atomic_write_bytes(path, b"first")  # the folder is created
    assert path.read_bytes() == b"first"
    assert path.stat().st_mode & 0o777 == 0o666 & ~current_umask()

    def broken(fh: BinaryIO) -> None:
        fh.write(b"half")
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError):
        atomic_write(path, broken)
    assert path.read_bytes() == b"first"
    assert _leftovers(path.parent) == []
    atomic_write_bytes(path, b"second")
    assert path.read_bytes() == b"second" and _leftovers(path.parent) == []


@pytest.mark.parametrize("folder", [False, True])
def test_temporaries_are_removed_on_any_error(tmp_path: Path, folder: bool) -> None:
    dest = tmp_path / "result.mp4"
    tmp = temp_beside(dest, ".part.mp4", folder=folder)
    assert tmp.parent == tmp_path and tmp.name.startswith(".result.mp4.") and tmp.name.endswith(".part.mp4")
    assert tmp.is_dir() == folder
    if folder:
        (tmp / "inner").mkdir()
        (tmp / "inner" / "x.png").write_bytes(b"x")
    with pytest.raises(KeyboardInterrupt), removed_on_error(tmp):
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    kept = temp_beside(dest)
    with removed_on_error(kept):
        pass
    assert kept.exists()  # only an error removes it


def test_commit_folder_replaces_an_old_folder_and_restores_it_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "faceset"
    out.mkdir()
    (out / "old.txt").write_text("old")
    tmp = temp_beside(out, folder=True)
    (tmp / "new.txt").write_text("new")
    commit_folder(tmp, out)
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert out.stat().st_mode & 0o777 == 0o777 & ~current_umask()  # not mkdtemp's 0700
    assert _leftovers(tmp_path) == []

    # the final rename fails (say, the disk is full): the existing folder is put back, untouched
    tmp = temp_beside(out, folder=True)
    real_rename = os.rename

    def failing_rename(src: Path, dst: Path) -> None:
        if Path(src) == tmp:
            raise OSError(28, "No space left on device")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(OSError, match="No space"), removed_on_error(tmp):
        commit_folder(tmp, out)
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert _leftovers(tmp_path) == []


def test_check_output_path(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    src.write_bytes(b"x")
    with pytest.raises(OutputError, match="would overwrite the input"):
        check_output_path(src, [src], True, IMAGE_EXTENSIONS)
    with pytest.raises(OutputError, match=r"unsupported output extension '\.gif'"):
        check_output_path(tmp_path / "o.gif", [src], False, IMAGE_EXTENSIONS)
    (tmp_path / "o.png").write_bytes(b"y")
    with pytest.raises(OutputError, match="already exists"):
        check_output_path(tmp_path / "o.png", [src], False, IMAGE_EXTENSIONS)
    assert check_output_path(tmp_path / "o.png", [src], True, IMAGE_EXTENSIONS) == tmp_path / "o.png"
    with pytest.raises(OutputError, match="does not exist"):
        check_output_path(tmp_path / "no" / "o.json", [], False, {".json": "json"})


def test_check_output_folder_and_prepare_out_folder(tmp_path: Path) -> None:
    inputs = tmp_path / "photos"
    inputs.mkdir()
    (inputs / "a.png").write_bytes(b"x")
    with pytest.raises(OutputError, match="inside the input folder"):
        check_output_folder(inputs / "faces", [inputs])
    with pytest.raises(OutputError, match="would replace the input"):
        check_output_folder(inputs, [inputs / "a.png"], force=True)
    with pytest.raises(OutputError, match="not empty"):
        check_output_folder(inputs, [])
    assert check_output_folder(tmp_path / "new", [inputs]) == tmp_path / "new"
    assert not (tmp_path / "new").exists()  # a check only

    with pytest.raises(OutputError, match="not empty"):
        prepare_out_folder(inputs)
    assert prepare_out_folder(tmp_path / "report", create=False) == tmp_path / "report"
    assert not (tmp_path / "report").exists()
    assert prepare_out_folder(tmp_path / "report" / "deep").is_dir()


def test_video_writer_output_is_committed_like_every_output(tmp_path: Path) -> None:
    dest = tmp_path / "live.mp4"
    writer = VideoWriter(dest, 25)
    for i in range(3):
        writer.write(np.full((64, 48, 3), 40 * i, np.uint8), i / 25)
    writer.close()
    assert dest.stat().st_size > 0 and writer.frames == 3
    assert dest.stat().st_mode & 0o777 == 0o666 & ~current_umask()
    assert _leftovers(tmp_path) == []
    with pytest.raises(OutputError, match="unsupported video extension"):
        VideoWriter(tmp_path / "live.avi", 25)
    assert _leftovers(tmp_path) == []
