"""The part format of segmented video swapping: a segment encoded as the output will hold it, joined by
stream copy.

:func:`encode_part` encodes frames with the settings :func:`~masquerade.video.transcode.transcode` uses and
stores the packets as they are, each as a small record after the :data:`PART_MAGIC` header (no container:
none keeps every time base and negative decode timestamps exactly; each keyframe carries its own parameter
sets). :func:`concat_parts` joins the parts' packets in order, with the original's audio, into the output
(atomically, like ``transcode``), decoding and encoding no frame. :mod:`masquerade.video.segments` plans,
swaps and joins the segments.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import OutputError
from .probe import open_input, stream_timing, video_stream_in
from .transcode import (
    EncodeOptions,
    FrameMark,
    TranscodeStats,
    audio_out,
    audio_stream,
    commit_output,
    configure_encoder,
    discard_on_error,
    encoder_frame,
    mux_audio,
    temp_output,
    video_stream,
)

log = logging.getLogger(__name__)

PART_MAGIC = b"MQPART1\n"
_PART_RECORD = struct.Struct("<qqBI")  # pts, dts, keyframe, size; then the packet's bytes


def encode_part(
    path: str | os.PathLike[str], options: EncodeOptions, width: int, height: int, rate: Fraction,
    tb: Fraction, mark: FrameMark | None = None,
) -> Callable[..., None]:  # fmt: skip
    """An encoder for one part of a video that :func:`concat_parts` will join by stream copy: frames
    (stored orientation, RGB) are scaled to ``width``×``height`` and encoded with the settings
    ``transcode`` uses, with the given pts (in ``tb``, counted from the output's start; made
    increasing). The packets go to ``path`` as they are (no container: none keeps every time base and
    negative decode timestamps exactly); each keyframe carries its own parameter sets. Call with
    ``None`` to finish. ``mark`` watermarks each frame as :func:`transcode` does (``put(rgb, pts,
    rotation)``: the frame's display rotation, so the mark is upright)."""
    import av

    cc = av.CodecContext.create(options.codec, "w")
    cc.framerate = rate
    configure_encoder(cc, options, width, height, tb)
    fh = open(path, "wb")  # noqa: SIM115 - closed by the final call
    fh.write(PART_MAGIC)
    last = [-(1 << 62)]

    def save(packets: list) -> None:
        for p in packets:
            data = bytes(p)
            dts = p.dts if p.dts is not None else p.pts
            fh.write(_PART_RECORD.pack(p.pts, dts, 1 if p.is_keyframe else 0, len(data)))
            fh.write(data)

    def put(rgb: np.ndarray | None, pts: int, rotation: int = 0) -> None:
        if rgb is None:
            try:
                if cc.is_open:
                    save(cc.encode(None))
            finally:
                fh.close()
            return
        frame = encoder_frame(rgb, cc.pix_fmt, width, height, mark, rotation)
        frame.pts, frame.time_base = max(pts, last[0] + 1), tb
        last[0] = frame.pts
        save(cc.encode(frame))

    return put


def _part_packets(path: Path, tb: Fraction) -> Iterator:
    import av

    with open(path, "rb") as fh:
        if fh.read(len(PART_MAGIC)) != PART_MAGIC:
            raise OutputError(f"{path}: not a masquerade video part")
        while head := fh.read(_PART_RECORD.size):
            pts, dts, key, size = _PART_RECORD.unpack(head)
            packet = av.Packet(fh.read(size))
            packet.pts, packet.dts, packet.time_base = pts, dts, tb
            packet.is_keyframe = bool(key)
            yield packet


def concat_parts(
    src: str | os.PathLike[str],
    parts: Sequence[str | os.PathLike[str]],
    dst: str | os.PathLike[str],
    width: int,
    height: int,
    options: EncodeOptions | None = None,
    progress: Callable[[int, float], None] | None = None,
    before_commit: Callable[[], None] | None = None,
    finalize: Callable[[Path], None] | None = None,
    rotation: int = 0,
    expect_frames: int | None = None,
) -> TranscodeStats:
    """``dst`` from the encoded video ``parts`` (made by :func:`encode_part`, in order), joined by stream
    copy, and ``src``'s audio, trimmed and copied (or re-encoded) exactly as :func:`transcode` does,
    with the display ``rotation`` (the input's, as the parts hold stored frames) and
    ``options.metadata``; with ``expect_frames`` a different number of frames is an error (nothing is
    written). Nothing is decoded or encoded but audio that the container cannot take as it is.
    Atomic, like :func:`transcode`."""
    import av

    opts = options or EncodeOptions()
    srcp, dstp = Path(src), Path(dst)
    stats = TranscodeStats()
    tmp, fmt = temp_output(dstp)
    with discard_on_error(tmp, srcp, dstp):
        with open_input(srcp) as inp, av.open(str(tmp), mode="w", format=fmt) as out:
            ain = next((a for a in inp.streams.audio if a.codec_context is not None), None)
            for key, value in opts.metadata:
                out.metadata[key] = value
            vin = video_stream_in(inp, srcp)
            tb, rate = stream_timing(vin)
            # the same stream transcode makes (its encoder opened only for the codec parameters);
            # the parts' packets go in unchanged
            vout = video_stream(out, opts, width, height, rate, tb, rotation)
            aout, resampler = audio_stream(out, ain, fmt, stats)

            def video():
                for part in parts:
                    for packet in _part_packets(Path(part), tb):
                        yield float(packet.dts * tb), packet

            def audio():
                if aout is None:
                    return
                for packet in inp.demux(ain):
                    if packet.pts is None:
                        continue
                    t = float(packet.pts * packet.time_base)
                    for item in audio_out(packet, t, opts, resampler):
                        yield t - (opts.start or 0.0), item

            vit, ait = video(), audio()
            nv, na = next(vit, None), next(ait, None)
            while nv is not None or na is not None:
                if na is None or (nv is not None and nv[0] <= na[0]):
                    assert nv is not None
                    packet = nv[1]
                    packet.stream = vout
                    out.mux(packet)
                    if packet.size:
                        stats.frames_out += 1
                        if progress is not None:
                            progress(stats.frames_out, nv[0])
                    nv = next(vit, None)
                else:
                    mux_audio(out, aout, na[1], resampler is None, stats)
                    na = next(ait, None)
            stats.frames_in = stats.frames_out
            if aout is not None and resampler is not None:
                for p in aout.encode(None):
                    out.mux(p)
        if expect_frames is not None and stats.frames_out != expect_frames:
            raise OutputError(f"the joined parts hold {stats.frames_out} frames, not {expect_frames}")
        commit_output(tmp, dstp, before_commit, finalize)
        if stats.audio_dropped:
            log.warning("%s: dropped %d damaged audio packets", srcp, stats.audio_dropped)
    return stats
