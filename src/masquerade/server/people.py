"""The people in a video: faces found in frames sampled across the whole video, grouped by identity.

:func:`find_people` decodes up to ``samples`` frames spread evenly over the video, at least ``min_gap``
seconds apart (the middles of equal parts of it: 6 for a 4-second clip, 24 from about 17 seconds on),
only reference frames and seeking to a keyframe only when that skips decoding (:func:`sample_frames`).
It finds the faces with their identity embeddings in each (faces whose boxes overlap are one:
:func:`distinct_faces`), and groups them by identity: average-linkage clustering of the embeddings up
to :data:`GROUP_DISTANCE`, where two faces of one frame are never the same person (two lone faces are
one person up to :data:`PAIR_DISTANCE` only). Out of :data:`FAINT_MIN_SAMPLES` samples or more, a
person is left out when it is unsure and rare — none of its faces scored :data:`FAINT_SCORE` by the
detector and it is in under half the samples — or met once as a small face (under half the median
size of the video's faces): such detections are mostly false ones (an ear, the back of a head), or
faces too small for their identity to be told.

Each person's embedding is the mean of its faces' embeddings. Means of a video's people lie near
one another (on the group clip, faces of 40 to 110 pixels, other people's faces come within
:data:`~masquerade.identity.encoder.SAME_PERSON_DISTANCE` of a person's mean), so a job that picks
people (``target_faces: "one"``, ``"many"`` + ``reference_faces``) also names the people *not* picked
(:func:`~masquerade.server.requests.swap_request`): a face is swapped only when it is nearer to the
picked person than to any of the others (:func:`~masquerade.analysis.selection.match_reference`).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..analysis.detection import iou
from ..video.probe import check_frame_size, frame_rgb, frame_rotation, open_input, upright, video_stream_in

log = logging.getLogger(__name__)

SAMPLES = 24  # frames sampled across a video, at most
MIN_GAP = 0.7  # seconds between samples, at least (a short clip gets fewer samples)
GROUP_DISTANCE = 0.55  # average embedding distance up to which faces are one person
PAIR_DISTANCE = 0.5  # the same for two lone faces
FAINT_MIN_SAMPLES = 4  # with fewer samples, every person found is kept
FAINT_SCORE = 0.7

FacesOf = Callable[[np.ndarray], Sequence[Any]]  # RGB → faces with .box, .score, .embedding


@dataclass(frozen=True)
class Person:
    """One person of a video. ``box``, ``time`` and ``thumbnail`` are those of its largest appearance,
    ``score`` its best detection score; ``seconds`` is its estimated time on screen (appearances × the
    sampling interval, at most the video's duration)."""

    embedding: np.ndarray  # the matching reference (see the module docstring)
    box: np.ndarray
    score: float
    time: float
    thumbnail: bytes  # JPEG
    seconds: float
    first_seen: float
    appearances: int
    seen_at: tuple[float, ...]  # the times of the samples it is in (one face a sample)

    def describe(self, index: int, thumbnail_url: str) -> dict[str, Any]:
        """The person in an upload's description (times floored to the millisecond, so that asking
        for the frame at ``time`` gets this frame back)."""
        return {
            "index": index, "box": [round(float(v), 1) for v in self.box[:4]], "score": round(self.score, 3),
            "thumbnail": thumbnail_url, "time": math.floor(self.time * 1000) / 1000,
            "seconds": round(self.seconds, 2), "first_seen": math.floor(self.first_seen * 1000) / 1000,
            "appearances": self.appearances,
        }  # fmt: skip


@dataclass(frozen=True)
class PeopleFound:
    people: tuple[Person, ...]  # by seconds on screen (most first), then from the left
    sampled_frames: int
    interval: float  # seconds of video each sample stands for
    duration: float  # seconds, the video stream's span


@dataclass(frozen=True)
class _Seen:
    sample: int
    time: float
    box: np.ndarray
    score: float
    embedding: np.ndarray
    thumbnail: bytes

    @property
    def area(self) -> float:
        return float(max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1]))

    @property
    def side(self) -> float:
        return float(min(self.box[2] - self.box[0], self.box[3] - self.box[1]))


def thumbnail(rgb: np.ndarray, box: np.ndarray, size: int = 128) -> bytes:
    """A JPEG of the face in ``box`` with some margin, its longest side at most ``size``."""
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, 0.65 * max(x1 - x0, y1 - y0)
    h, w = rgb.shape[:2]
    a, b = int(max(0, cx - half)), int(max(0, cy - half))
    c, d = int(min(w, cx + half)), int(min(h, cy + half))
    crop = rgb[b:d, a:c] if d > b and c > a else rgb
    scale = size / max(crop.shape[:2])
    if scale < 1:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return buf.tobytes() if ok else b""


@dataclass(frozen=True)
class _Stream:
    """A video stream's timing, from its packets (nothing decoded): pts of its keyframes, of its first
    and last frames, its time base and frame period (seconds)."""

    keys: tuple[int, ...]
    first: int
    last: int
    time_base: float
    period: float

    @property
    def start(self) -> float:
        return self.first * self.time_base

    @property
    def duration(self) -> float:
        return max(0, self.last - self.first) * self.time_base + self.period


def _stream(path: Path) -> _Stream:
    with open_input(path) as c:
        v = video_stream_in(c, path)
        tb = float(v.time_base) if v.time_base else 1 / 90000
        rate = v.average_rate or v.guessed_rate
        period = 1 / float(rate) if rate else 0.04
        keys: list[int] = []
        first = last = None
        for packet in c.demux(v):
            if packet.pts is None:
                continue
            first = packet.pts if first is None else min(first, packet.pts)
            last = packet.pts if last is None else max(last, packet.pts)
            if packet.is_keyframe:
                keys.append(packet.pts)
    return _Stream(tuple(sorted(keys)), first or 0, last or 0, tb, period)


def sample_times(start: float, duration: float, samples: int, min_gap: float = MIN_GAP) -> list[float]:
    """Up to ``samples`` times at the middles of equal parts of ``duration`` seconds from ``start``, at
    least ``min_gap`` apart (one at least)."""
    n = max(1, min(samples, math.floor(duration / min_gap) if min_gap > 0 else samples))
    return [start + (i + 0.5) * duration / n for i in range(n)]


def sample_frames(
    path: str | os.PathLike[str], times: Sequence[float], max_pixels: int | None = None
) -> Iterator[tuple[float, np.ndarray]]:
    """(time, upright RGB) of the first frame at or after each of ``times`` (ascending) less half a
    frame, each frame given once. Only reference frames are decoded (FFmpeg's ``skip_frame``: the
    others are never a reference, so the frames decoded are the same; the time a sample lands on moves
    by a frame or two at most), forward, seeking to a keyframe only when it lies past what was decoded.
    Stops quietly at a decode error. A stream whose frames are all skipped is decoded whole."""
    yield from _sample_frames(Path(path), _stream(Path(path)), times, max_pixels)


def _sample_frames(
    p: Path, stream: _Stream, times: Sequence[float], max_pixels: int | None
) -> Iterator[tuple[float, np.ndarray]]:
    given = False
    for t, rgb in _decode_at(p, stream, times, max_pixels, "NONREF"):
        given = True
        yield t, rgb
    if not given:
        yield from _decode_at(p, stream, times, max_pixels, "DEFAULT")


def _decode_at(
    p: Path, stream: _Stream, times: Sequence[float], max_pixels: int | None, skip: str
) -> Iterator[tuple[float, np.ndarray]]:
    import av

    keys, tb, period = stream.keys, stream.time_base, stream.period
    with open_input(p) as c:
        v = video_stream_in(c, p)
        check_frame_size(p, v.codec_context.width or 0, v.codec_context.height or 0, max_pixels)
        v.thread_type = "AUTO"
        v.codec_context.skip_frame = skip
        frames = c.decode(v)
        at = -math.inf  # pts of the last frame decoded
        given = None
        try:
            for t in times:
                target = int(math.floor((t - period / 2) / tb))
                key = max((k for k in keys if k <= target), default=None)
                if key is not None and key > at:
                    c.seek(key, stream=v, backward=True, any_frame=False)
                    frames = c.decode(v)
                for frame in frames:
                    if frame.pts is None:
                        continue
                    at = frame.pts
                    if frame.pts >= target:
                        break
                else:
                    return
                if frame.pts != given:
                    given = frame.pts
                    seconds = float(frame.pts * (v.time_base or tb))  # as iter_frames gives it
                    yield seconds, upright(frame_rgb(frame), frame_rotation(frame))
        except av.error.FFmpegError as exc:
            log.warning("%s: decoding stopped early (%s)", p, exc)


def group_faces(
    embeddings: np.ndarray,
    samples: Sequence[int],
    distance: float = GROUP_DISTANCE,
    pair_distance: float = PAIR_DISTANCE,
) -> list[list[int]]:
    """Faces grouped by identity: average-linkage clustering of ``embeddings`` up to ``distance`` (two
    lone faces: up to ``pair_distance``, one distance being weaker evidence than an average), never
    putting two faces of one sample (``samples[i]``: face i's) in a group. Groups of face indices, each
    ascending."""
    n = len(embeddings)
    if n == 0:
        return []
    e = np.asarray(embeddings, np.float64).reshape(n, -1)
    s = np.asarray(samples)
    total = np.sqrt(np.maximum(0.0, (e * e).sum(1)[:, None] + (e * e).sum(1)[None] - 2 * e @ e.T))
    apart = s[:, None] == s[None]  # groups that share a sample
    size = np.ones(n)
    link = np.where(apart | (total > pair_distance), np.inf, total)
    members: list[list[int] | None] = [[i] for i in range(n)]
    while True:
        i, j = divmod(int(np.argmin(link)), n)
        if not link[i, j] <= distance:
            break
        total[i] += total[j]
        total[:, i] = total[i]
        apart[i] |= apart[j]
        apart[:, i] = apart[i]
        size[i] += size[j]
        mi, mj = members[i], members[j]
        assert mi is not None and mj is not None
        members[i], members[j] = mi + mj, None
        row = np.where(apart[i], np.inf, total[i] / (size[i] * size))
        row[[m is None for m in members]] = np.inf
        link[i], link[:, i] = row, row
        link[j], link[:, j] = np.inf, np.inf
    return [sorted(m) for m in members if m is not None]


def distinct_faces(faces: Sequence[Any], overlap: float = 0.5) -> list[Any]:
    """The faces that have an embedding, one of each group whose boxes overlap by more than ``overlap``
    (IoU; the best scored): two detections of neighbours can end in landmarks on the same face."""
    out: list[Any] = []
    for f in sorted(faces, key=lambda f: -float(f.score)):
        if f.embedding is not None and all(iou(f.box, o.box) <= overlap for o in out):
            out.append(f)
    return out


def find_people(
    path: str | os.PathLike[str],
    faces: FacesOf,
    *,
    samples: int = SAMPLES,
    min_gap: float = MIN_GAP,
    max_pixels: int | None = None,
) -> PeopleFound:
    """The people of the video at ``path`` (see the module docstring); ``faces(rgb)`` finds the faces of
    a frame with their identity embeddings (faces without one are left out). With ``max_pixels``,
    frames larger than that are refused (:class:`~masquerade.errors.LimitError`) before any is
    decoded. On the 4-second 1080p group clip: 6 samples, about 4 s on 2 busy CPU cores."""
    p = Path(path)
    stream = _stream(p)
    duration = stream.duration
    times = sample_times(stream.start, duration, samples, min_gap)
    seen: list[_Seen] = []
    n = 0
    for t, rgb in _sample_frames(p, stream, times, max_pixels):
        for f in distinct_faces(faces(rgb)):
            box = np.asarray(f.box[:4], np.float64)
            seen.append(
                _Seen(n, t, box, float(f.score), np.asarray(f.embedding, np.float32), thumbnail(rgb, box))
            )
        n += 1
    interval = duration / len(times)
    if not seen:
        return PeopleFound((), n, interval, duration)
    emb = np.stack([s.embedding for s in seen])
    groups = group_faces(emb, [s.sample for s in seen])
    median_side = float(np.median([s.side for s in seen]))
    people = []
    for g in groups:
        members = [seen[i] for i in g]
        best = max(members, key=lambda s: s.area)
        top = max(s.score for s in members)
        if n >= FAINT_MIN_SAMPLES and (
            (top < FAINT_SCORE and 2 * len(members) < n)
            or (len(members) == 1 and best.side < median_side / 2)
        ):
            log.debug("a faint face at %.2f s left out (score %.2f, %.0f px)", best.time, top, best.side)
            continue
        people.append(
            Person(
                embedding=emb[g].mean(0).astype(np.float32), box=best.box, score=top, time=best.time,
                thumbnail=best.thumbnail, seconds=min(duration, len(members) * interval),
                first_seen=min(s.time for s in members), appearances=len(members),
                seen_at=tuple(sorted(s.time for s in members)),
            )
        )  # fmt: skip
    people.sort(key=lambda q: (-q.seconds, float(q.box[0])))
    return PeopleFound(tuple(people), n, interval, duration)
