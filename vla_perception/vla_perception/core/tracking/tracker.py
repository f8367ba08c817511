"""Hybrid tracking: slow open-vocabulary detections name the objects, optical flow carries them.

Feed every camera frame to :meth:`HybridTracker.add_frame` and every detector result to
:meth:`HybridTracker.add_detections` with the stamp of the frame the detector ran on. That
frame is usually older than the newest one (the detector takes a while), so the tracker
keeps the last ``history_time`` seconds of frames and of each track's boxes: detections are
associated with the tracks as they were at the detection's own frame, then carried forward.

Between detections, a track whose box overlaps another track's and whose flow disagrees
with its own recent motion is taken to be behind the other (its corners now show the
occluder) and coasts at its recent velocity instead of following the flow.

Association is ByteTrack's, on those boxes:
  1. high-score detections vs all tracks: IoU (gated) blended with colour appearance;
  2. low-score detections vs the remaining followed tracks: IoU only (occluded or blurred
     objects keep their track even when the detector is unsure);
  3. remaining high-score detections vs lost tracks and followed tracks left unmatched:
     appearance only (re-identification after an occlusion, after leaving the view, or after
     the box drifted off its object).
Tracks are tentative until ``confirm_hits`` detections matched them, confirmed after, and
lost when ``max_misses`` detector updates in a row missed them or they left the image; a lost
track is frozen (not propagated) and forgotten after ``max_lost_time`` seconds. Only
confirmed tracks are reported. A track carries the label, phrase and score of its last
detection, and its age is the time since that detection's frame.
"""
from __future__ import annotations

from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Optional, Sequence

import cv2
import numpy as np

from vla_perception.core.tracking.association import (appearance_matrix, assign, boxes_array, colour_histogram,
                                                       iou_matrix)
from vla_perception.core.tracking.flow import FlowParams, FlowPropagator, FlowResult
from vla_perception.core.types import Box2D, Detection


class TrackState(str, Enum):
    TENTATIVE = "tentative"
    CONFIRMED = "confirmed"
    LOST = "lost"


@dataclass(frozen=True)
class TrackerParams:
    high_threshold: float = 0.35  # detections at or above: first association pass
    low_threshold: float = 0.1  # [low, high): second pass only; below: ignored
    new_track_threshold: float = 0.4  # an unmatched detection at or above starts a track
    min_iou: float = 0.2  # first pass: pairs below this overlap are never matched
    appearance_weight: float = 0.3  # first pass similarity = (1 - w) * IoU + w * appearance
    min_similarity: float = 0.3  # first pass: weaker pairs are not matched
    low_score_min_iou: float = 0.4  # second pass gate
    reid_min_appearance: float = 0.85  # third pass: colour similarity needed to re-identify a lost track
    label_must_match: bool = True  # a detection never continues a track of another label
    confirm_hits: int = 1  # matched detections before a track is confirmed (reported)
    max_misses: int = 1  # detector updates in a row a followed track may be missed before it is lost
    max_lost_time: float = 10.0  # seconds a lost track is kept for re-identification
    min_visible_fraction: float = 0.3  # a box with less of its area inside the image is lost (left the view)
    history_time: float = 3.0  # seconds of frames and boxes kept for late detections
    max_stamp_gap: float = 0.1  # stamp tolerance (s) between a detection and the frames kept
    max_catch_up_steps: int = 8  # flow steps used to carry a new track from its detection to the newest frame
    appearance_momentum: float = 0.7  # weight of the old appearance when a detection updates it
    velocity_momentum: float = 0.7  # weight of the old velocity when a flow step updates it
    max_flow_disagreement: float = 2.0  # pixels per frame: an overlapped track whose flow differs more coasts
    appearance_downscale: int = 4  # colour histograms are taken on the image shrunk by this factor
    flow_max_width: int = 320  # wider frames are shrunk to this width for the flow (0: full size)
    flow: FlowParams = field(default_factory=FlowParams)


@dataclass
class Track:
    track_id: int
    label: str
    phrase: str
    score: float
    box: Box2D
    appearance: np.ndarray
    detected_at: float  # stamp of the frame of the last matched detection
    state: TrackState = TrackState.TENTATIVE
    hits: int = 1
    misses: int = 0
    lost_since: Optional[float] = None
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # box centre, pixels per second
    history: "OrderedDict[float, Box2D]" = field(default_factory=OrderedDict)

    def age(self, now: float) -> float:
        """Seconds since the detection that last confirmed this track's label and score."""
        return max(0.0, now - self.detected_at)


@dataclass(frozen=True)
class TrackedObject:
    """What the tracker reports for one confirmed track at one frame (box clipped to the image)."""

    track_id: int
    label: str
    phrase: str
    score: float
    box: Box2D
    age: float


@dataclass
class _Frame:
    stamp: float
    size: tuple[int, int]  # (width, height) of the camera image
    gray: np.ndarray  # at the flow's resolution
    flow_scale: float  # flow pixels per image pixel
    hsv_small: np.ndarray


def prompt_phrases(prompt: str) -> set[str]:
    """'red cup . blue bottle .' -> {'red cup', 'blue bottle'}."""
    return {phrase.strip() for phrase in prompt.split(".") if phrase.strip()}


class HybridTracker:
    def __init__(self, params: TrackerParams = TrackerParams()):
        self.params = params
        self.flow = FlowPropagator(params.flow)
        self.tracks: list[Track] = []
        self.prompt = ""
        self.counts: Counter = Counter()  # frames, out_of_order_frames, stale_detections, size_changes, ...
        self._frames: deque[_Frame] = deque()
        self._pending: Optional[tuple] = None
        self._next_id = 1

    # ------------------------------------------------------------------ inputs
    @property
    def newest_stamp(self) -> Optional[float]:
        return self._frames[-1].stamp if self._frames else None

    @property
    def image_size(self) -> Optional[tuple[int, int]]:
        """(width, height) of the newest frame."""
        return self._frames[-1].size if self._frames else None

    def add_frame(self, image_rgb: np.ndarray, stamp: float) -> bool:
        """Move every followed track into this frame. False (frame ignored) when not newer than the last.

        A frame more than ``history_time`` older than the newest is a clock jump (a bag replayed from
        its start, a restarted simulator, or one frame stamped far in the future before it): the
        tracker starts over from it instead of ignoring every frame until the clock catches up.
        """
        if self._frames and stamp <= self._frames[-1].stamp:
            if self._frames[-1].stamp - stamp <= self.params.history_time:
                self.counts["out_of_order_frames"] += 1
                return False
            self._start_over()
        frame = self._make_frame(image_rgb, stamp)
        if self._frames and frame.size != self._frames[-1].size:
            self._restart_on_new_size(frame)
        elif self._frames:
            self._propagate(self._frames[-1], frame)
        self._frames.append(frame)
        self.counts["frames"] += 1
        while self._frames[0].stamp < stamp - self.params.history_time:
            self._frames.popleft()
        for track in self._followed():
            self._remember(track, stamp, track.box)
        self._lose_tracks_outside(frame)
        self.tracks = [t for t in self.tracks if t.state != TrackState.LOST
                       or stamp - t.lost_since <= self.params.max_lost_time]
        if self._pending is not None and self._pending[1] <= stamp + self.params.max_stamp_gap:
            pending, self._pending = self._pending, None
            self.add_detections(*pending)
        return True

    def add_detections(self, detections: Sequence[Detection], stamp: float,
                       image_size: Optional[tuple[int, int]] = None, prompt: str = "") -> str:
        """Associate one detector result (made on the frame stamped ``stamp``).

        Returns what happened: "applied", "pending" (its frame has not arrived yet; applied when
        it does), or "stale" (its frame is no longer buffered: ignored).
        """
        self._follow_prompt(prompt)
        if not self._frames or stamp > self._frames[-1].stamp + self.params.max_stamp_gap:
            self._pending = (detections, stamp, image_size, prompt)
            return "pending"
        index = self._frame_index(stamp)
        if index is None:
            self.counts["stale_detections"] += 1
            return "stale"
        frame = self._frames[index]
        detections = self._in_frame_pixels(detections, image_size, frame)
        self._associate(detections, index)
        self.counts["detection_updates"] += 1
        return "applied"

    def tracked_objects(self) -> list[TrackedObject]:
        """Confirmed, followed tracks at the newest frame."""
        if not self._frames:
            return []
        now, (width, height) = self._frames[-1].stamp, self.image_size
        return [TrackedObject(t.track_id, t.label, t.phrase, t.score, _clip(t.box, width, height), t.age(now))
                for t in self.tracks if t.state == TrackState.CONFIRMED]

    # ------------------------------------------------------------------ frames
    def _make_frame(self, image_rgb: np.ndarray, stamp: float) -> _Frame:
        if image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
            raise ValueError(f"need an HxWx3 RGB image, got shape {image_rgb.shape}")
        height, width = image_rgb.shape[:2]
        max_width = self.params.flow_max_width
        scale = min(1.0, max_width / width) if max_width else 1.0
        gray = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            gray = cv2.resize(gray, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        factor = self.params.appearance_downscale
        small = cv2.resize(image_rgb, (max(1, width // factor), max(1, height // factor)), interpolation=cv2.INTER_AREA)
        return _Frame(stamp, (width, height), gray, scale, cv2.cvtColor(small, cv2.COLOR_RGB2HSV))

    def _flow(self, previous: _Frame, current: _Frame, boxes: list[Box2D]) -> list:
        """Flow results for image-pixel boxes, computed at the flow's resolution and returned in image pixels."""
        s = current.flow_scale
        results = self.flow.propagate(previous.gray, current.gray, [b.scaled(s, s) for b in boxes])
        return [FlowResult(r.box.scaled(1 / s, 1 / s), r.points, r.moved) for r in results]

    def _frame_index(self, stamp: float) -> Optional[int]:
        """The kept frame nearest ``stamp``; None when ``stamp`` is older than every kept frame."""
        if stamp < self._frames[0].stamp - self.params.max_stamp_gap:
            return None
        gaps = [abs(f.stamp - stamp) for f in self._frames]
        best = int(np.argmin(gaps))
        if gaps[best] > self.params.max_stamp_gap:  # its frame was skipped (tracker behind): use the nearest
            self.counts["inexact_placements"] += 1
        return best

    def _restart_on_new_size(self, frame: _Frame) -> None:
        """The camera changed resolution: scale the tracks' boxes and drop the old frames' history."""
        old_w, old_h = self._frames[-1].size
        new_w, new_h = frame.size
        for track in self.tracks:
            track.box = track.box.scaled(new_w / old_w, new_h / old_h)
            track.history.clear()
        self._frames.clear()
        self._pending = None
        self.counts["size_changes"] += 1

    def _start_over(self) -> None:
        """Forget frames, tracks and a pending result; new tracks keep getting new ids."""
        self._frames.clear()
        self.tracks = []
        self._pending = None
        self.counts["clock_jumps"] += 1

    def _followed(self) -> list[Track]:
        return [t for t in self.tracks if t.state != TrackState.LOST]

    def _propagate(self, previous: _Frame, current: _Frame) -> None:
        tracks = self._followed()
        dt = current.stamp - previous.stamp
        results = self._flow(previous, current, [t.box for t in tracks])
        overlapped = self._overlapped(tracks)
        p = self.params
        for track, result, covered in zip(tracks, results, overlapped):
            expected = track.velocity * dt
            shift = np.subtract(result.box.center, track.box.center)
            if covered and np.linalg.norm(shift - expected) > max(p.max_flow_disagreement,
                                                                  0.5 * np.linalg.norm(expected)):
                track.box = _shifted(track.box, expected)  # behind another object: coast
                continue
            if result.moved and dt > 0:
                track.velocity = p.velocity_momentum * track.velocity + (1 - p.velocity_momentum) * shift / dt
            track.box = result.box

    @staticmethod
    def _overlapped(tracks: list[Track]) -> list[bool]:
        if len(tracks) < 2:
            return [False] * len(tracks)
        overlap = iou_matrix(*(boxes_array([t.box for t in tracks]),) * 2)
        np.fill_diagonal(overlap, 0.0)
        return list(overlap.max(axis=1) > 0.0)

    def _remember(self, track: Track, stamp: float, box: Box2D) -> None:
        track.history[stamp] = box
        oldest = self._frames[0].stamp if self._frames else stamp
        while track.history and next(iter(track.history)) < oldest:
            track.history.popitem(last=False)

    def _lose_tracks_outside(self, frame: _Frame) -> None:
        width, height = frame.size
        for track in self._followed():
            inside = _clip(track.box, width, height).area
            if inside < self.params.min_visible_fraction * max(track.box.area, 1e-9):
                self._lose(track, frame.stamp)

    def _lose(self, track: Track, stamp: float) -> None:
        if track.state == TrackState.TENTATIVE:
            self.tracks.remove(track)
            return
        track.state, track.lost_since = TrackState.LOST, stamp
        self.counts["lost"] += 1

    # ------------------------------------------------------------------ detections
    def _follow_prompt(self, prompt: str) -> None:
        """A new detector prompt: forget tracks of labels it no longer asks for. Empty: prompt unknown."""
        phrases = prompt_phrases(prompt or "")
        if not phrases or phrases == prompt_phrases(self.prompt):
            return
        if self.prompt:
            self.tracks = [t for t in self.tracks if t.label in phrases]
        self.prompt = " . ".join(sorted(phrases))

    def _in_frame_pixels(self, detections, image_size, frame: _Frame) -> list[Detection]:
        width, height = frame.size
        if not image_size or tuple(image_size) == (width, height) or 0 in image_size:
            return list(detections)
        sx, sy = width / image_size[0], height / image_size[1]
        return [Detection(d.label, d.score, d.box.scaled(sx, sy), d.phrase, None) for d in detections]

    def _associate(self, detections: list[Detection], index: int) -> None:
        p, frame = self.params, self._frames[index]
        valid = [d for d in detections if d.score >= p.low_threshold and d.box.area > 0]
        high = [d for d in valid if d.score >= p.high_threshold]
        low = [d for d in valid if d.score < p.high_threshold]
        high_looks = [self._appearance(frame, d.box) for d in high]
        then = {t.track_id: (t.history.get(frame.stamp, t.box) if t.state != TrackState.LOST else t.box)
                for t in self.tracks}

        # 1. high-score detections vs every track: gated IoU blended with appearance
        tracks = list(self.tracks)
        iou = self._iou(tracks, then, high)
        similarity = (1 - p.appearance_weight) * iou + p.appearance_weight * appearance_matrix(
            [t.appearance for t in tracks], high_looks)
        similarity[iou < p.min_iou] = np.nan
        pairs, left_tracks, left_high = assign(self._gate_labels(similarity, tracks, high), p.min_similarity)
        matches = [(tracks[r], high[c], high_looks[c]) for r, c in pairs]

        # 2. low-score detections vs followed tracks left over: IoU only
        followed = [tracks[r] for r in left_tracks if tracks[r].state != TrackState.LOST]
        low_iou = self._gate_labels(self._iou(followed, then, low), followed, low)
        pairs, left_followed, _ = assign(low_iou, p.low_score_min_iou)
        matches += [(followed[r], low[c], self._appearance(frame, low[c].box)) for r, c in pairs]
        unmatched_followed = [followed[r] for r in left_followed]

        # 3. high-score detections left vs lost tracks and unmatched confirmed ones: appearance only
        lost = [tracks[r] for r in left_tracks if tracks[r].state == TrackState.LOST]
        lost += [t for t in unmatched_followed if t.state == TrackState.CONFIRMED]
        remaining = [high[c] for c in left_high]
        remaining_looks = [high_looks[c] for c in left_high]
        looks = self._gate_labels(appearance_matrix([t.appearance for t in lost], remaining_looks), lost, remaining)
        pairs, _, left_remaining = assign(looks, p.reid_min_appearance)
        matches += [(lost[r], remaining[c], remaining_looks[c]) for r, c in pairs]
        if pairs:
            self.counts["reidentified"] += len(pairs)

        for track, detection, look in matches:
            self._update(track, detection, look, index, then[track.track_id])
        rematched = {id(track) for track, _, _ in matches}
        for track in (t for t in unmatched_followed if id(t) not in rematched):
            track.misses += 1
            if track.state == TrackState.TENTATIVE or track.misses > p.max_misses:
                self._lose(track, frame.stamp)
        births = [(remaining[c], remaining_looks[c]) for c in left_remaining
                  if remaining[c].score >= p.new_track_threshold]
        self._start_tracks(births, index)

    def _iou(self, tracks: list[Track], then: dict, detections: list[Detection]) -> np.ndarray:
        if not tracks or not detections:
            return np.zeros((len(tracks), len(detections)))
        return iou_matrix(boxes_array([then[t.track_id] for t in tracks]), boxes_array([d.box for d in detections]))

    def _gate_labels(self, similarity: np.ndarray, tracks: list[Track], detections: list[Detection]) -> np.ndarray:
        if self.params.label_must_match and similarity.size:
            different = np.array([[t.label != d.label for d in detections] for t in tracks])
            similarity = np.where(different, np.nan, similarity)
        return similarity

    def _appearance(self, frame: _Frame, box: Box2D) -> np.ndarray:
        factor = 1.0 / self.params.appearance_downscale
        return colour_histogram(frame.hsv_small, box.scaled(factor, factor))

    def _update(self, track: Track, detection: Detection, look: np.ndarray, index: int, box_then: Box2D) -> None:
        p, frame = self.params, self._frames[index]
        if track.state == TrackState.LOST:  # frozen while lost: carry the detection forward like a new track
            self._carry_forward([track], [detection.box], index)
            track.state, track.velocity = TrackState.CONFIRMED, np.zeros(2)
        else:
            for stamp, box in list(track.history.items()):
                if stamp >= frame.stamp:
                    track.history[stamp] = _moved_like(detection.box, box_then, box)
            track.box = _moved_like(detection.box, box_then, track.box)
            if track.state == TrackState.TENTATIVE and track.hits + 1 >= p.confirm_hits:
                track.state = TrackState.CONFIRMED
        track.label, track.phrase, track.score = detection.label, detection.phrase or detection.label, detection.score
        track.detected_at = max(track.detected_at, frame.stamp)
        track.hits, track.misses, track.lost_since = track.hits + 1, 0, None
        track.appearance = p.appearance_momentum * track.appearance + (1 - p.appearance_momentum) * look

    def _start_tracks(self, births: list[tuple[Detection, np.ndarray]], index: int) -> None:
        stamp = self._frames[index].stamp
        new = []
        for detection, look in births:
            state = TrackState.CONFIRMED if self.params.confirm_hits <= 1 else TrackState.TENTATIVE
            new.append(Track(self._next_id, detection.label, detection.phrase or detection.label, detection.score,
                             detection.box, look, stamp, state))
            self._next_id += 1
        self._carry_forward(new, [d.box for d, _ in births], index)
        self.tracks.extend(new)

    def _carry_forward(self, tracks: list[Track], boxes: list[Box2D], index: int) -> None:
        """Place ``boxes`` (on frame ``index``) on the newest frame by flow, in a few strided steps."""
        if not tracks:
            return
        later = list(range(index, len(self._frames)))
        steps = max(1, min(self.params.max_catch_up_steps, len(later) - 1))
        chosen = sorted({later[round(k * (len(later) - 1) / steps)] for k in range(steps + 1)})
        for track, box in zip(tracks, boxes):
            track.history.clear()
            self._remember(track, self._frames[index].stamp, box)
        for previous, current in zip(chosen, chosen[1:]):
            results = self._flow(self._frames[previous], self._frames[current], boxes)
            boxes = [r.box for r in results]
            for track, box in zip(tracks, boxes):
                self._remember(track, self._frames[current].stamp, box)
        for track, box in zip(tracks, boxes):
            track.box = box


def _moved_like(detected: Box2D, reference: Box2D, later: Box2D) -> Box2D:
    """The detected box moved and scaled the way the track went from ``reference`` to ``later``."""
    sx = later.width / reference.width if reference.width > 0 else 1.0
    sy = later.height / reference.height if reference.height > 0 else 1.0
    (dx0, dy0), (lx, ly), (rx, ry) = detected.center, later.center, reference.center
    return Box2D.from_center_size(dx0 + lx - rx, dy0 + ly - ry, detected.width * sx, detected.height * sy)


def _shifted(box: Box2D, offset) -> Box2D:
    return Box2D(box.x_min + offset[0], box.y_min + offset[1], box.x_max + offset[0], box.y_max + offset[1])


def _clip(box: Box2D, width: int, height: int) -> Box2D:
    x0, x1 = float(np.clip(box.x_min, 0, width)), float(np.clip(box.x_max, 0, width))
    y0, y1 = float(np.clip(box.y_min, 0, height)), float(np.clip(box.y_max, 0, height))
    return Box2D(x0, y0, max(x0, x1), max(y0, y1))
