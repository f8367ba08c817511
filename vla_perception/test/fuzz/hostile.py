"""Seeded structured generators of hostile messages and requests for the fuzz suite.

Every generator returns ``(message, invalid)``: ``invalid`` is True when the generator built
the input to be unusable (the node must answer ``success=false``), False when it built a
usable one, and None when either answer is acceptable (e.g. random but well-formed text).

Structured, not random bytes: each field is drawn from values that once broke or could
break a node (empty, huge, NaN, inf, negative, wrong encoding, lying sizes, control
characters), so 1,000 messages reach the nodes' checks instead of DDS's deserialiser.
A seeded numpy Generator (not Hypothesis) drives them: a fuzz run is many messages to
separate processes, where Hypothesis's shrinking has nothing to replay against.
"""
from __future__ import annotations

import numpy as np

from vla_perception.core.limits import MAX_IMAGE_ASPECT

ENCODINGS = {"rgb8": (np.uint8, 3), "bgr8": (np.uint8, 3), "mono8": (np.uint8, 1), "rgba8": (np.uint8, 4),
             "16UC1": (np.uint16, 1), "32FC1": (np.float32, 1)}
DEPTH_ENCODINGS = ("16UC1", "32FC1")
# Not "rgb8\x00": a NUL ends a ROS string, so it arrives as "rgb8" (and "\x00" text as "").
BAD_ENCODINGS = ["", "yuv422", "8UC7", "jpeg", "32FC3"]
TEXTS = ["", " ", ".", " . . ", ",", "\x00", "\x07\x1b[31m", "cup", "red mug . duck", "🦆 . 杯子",
         "'; DROP TABLE objects; --", "a" * 5000, "cup . " * 400, "\n\t\r", "{}", "%s%n", "ʕ•ᴥ•ʔ",
         "pick up the red mug", "pick up the duck"]
SPECIAL_FLOATS = [0.0, -0.0, -1.0, 1e-30, 1e30, float("nan"), float("inf"), float("-inf"), 0.5, 2.0]


class Hostile:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def pick(self, options):
        return options[int(self.rng.integers(len(options)))]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    # ----------------------------------------------------------------------------- images
    def image(self, frame_id: str = "fuzz_optical_frame", colour: bool = False):
        """A sensor_msgs/Image that is well-formed (invalid=False), malformed (True), or odd but legal.

        ``colour``: for a colour model, a depth encoding is invalid too.
        """
        from sensor_msgs.msg import Image

        msg = Image()
        msg.header.frame_id = frame_id
        width, height = int(self.rng.integers(1, 96)), int(self.rng.integers(1, 72))
        encoding = self.pick(list(ENCODINGS))
        dtype, channels = ENCODINGS[encoding]
        itemsize = np.dtype(dtype).itemsize
        step = width * channels * itemsize
        fault = self.pick(["none", "none", "none", "encoding", "short_step", "short_data", "lying_size", "empty",
                           "padded_step", "big_endian", "nan_depth"])
        msg.width, msg.height, msg.encoding, msg.step = width, height, encoding, step
        pixels = self._pixels(height, width, dtype, channels, nan=fault == "nan_depth")
        data = pixels.tobytes()
        invalid = False
        if fault == "encoding":
            msg.encoding, invalid = self.pick(BAD_ENCODINGS), True
        elif fault == "short_step":
            msg.step, invalid = max(0, step - int(self.rng.integers(1, step + 1))), True
        elif fault == "short_data":
            data, invalid = data[: int(self.rng.integers(0, len(data)))], True
        elif fault == "lying_size":
            msg.width, msg.height, invalid = 100_000, 100_000, True
        elif fault == "empty":
            msg.width = msg.height = msg.step = 0
            data, invalid = b"", None  # an empty image means "the latest frame" to the services
        elif fault == "padded_step":
            pad = int(self.rng.integers(1, 9))
            msg.step = step + pad
            rows = np.frombuffer(data, np.uint8).reshape(height, step)
            data = np.hstack([rows, np.zeros((height, pad), np.uint8)]).tobytes()
        elif fault == "big_endian":
            msg.is_bigendian = 1
        msg.data = data
        if invalid is False and (colour and msg.encoding in DEPTH_ENCODINGS
                                 or max(width, height) > MAX_IMAGE_ASPECT * min(width, height)):
            invalid = True  # a depth image for a colour model, or beyond the documented aspect cap
        return msg, invalid

    def _pixels(self, height, width, dtype, channels, nan=False):
        shape = (height, width, channels) if channels > 1 else (height, width)
        if np.dtype(dtype).kind == "f":
            values = self.rng.uniform(0.1, 3.0, shape).astype(dtype)
            if nan:
                mask = self.rng.random(shape) < 0.3
                values[mask] = self.pick([np.nan, np.inf, -np.inf, 0.0])
            return values
        return self.rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype)

    def rgb_image(self, width=64, height=48, frame_id="fuzz_optical_frame"):
        from vla_perception.bridge.image import cv2_to_imgmsg

        msg = cv2_to_imgmsg(self.rng.integers(0, 255, (height, width, 3), dtype=np.uint8), "rgb8")
        msg.header.frame_id = frame_id
        return msg

    # ----------------------------------------------------------------------------- text
    def text(self) -> str:
        if self.chance(0.2):
            return "".join(chr(int(c)) for c in self.rng.integers(1, 0x2FFF, int(self.rng.integers(0, 40))))
        return self.pick(TEXTS)

    def labels(self) -> list[str]:
        return [self.text() for _ in range(int(self.rng.integers(0, 6)))] if not self.chance(0.05) \
            else ["cup"] * 500

    # ----------------------------------------------------------------------------- geometry
    def box(self):
        from vla_perception_interfaces.msg import BoundingBox2D

        values = [self.pick(SPECIAL_FLOATS) if self.chance(0.3) else float(self.rng.uniform(-50, 150))
                  for _ in range(4)]
        box = BoundingBox2D(center_x=values[0], center_y=values[1], size_x=values[2], size_y=values[3])
        invalid = not all(np.isfinite(values)) or values[2] < 0 or values[3] < 0
        return box, invalid

    def camera_info(self, width: int, height: int, frame_id: str = "fuzz_optical_frame"):
        """CameraInfo for a width x height stream: plausible, or with one broken field (invalid=True)."""
        from sensor_msgs.msg import CameraInfo

        fx = float(self.rng.uniform(0.5, 2.0) * width)
        info = CameraInfo(width=width, height=height, distortion_model="plumb_bob", d=[0.0] * 5)
        info.k = [fx, 0.0, width / 2, 0.0, fx, height / 2, 0.0, 0.0, 1.0]
        info.header.frame_id = frame_id
        fault = self.pick(["none", "none", "focal", "distortion", "size", "principal", "model"])
        if fault == "focal":
            info.k[0] = info.k[4] = self.pick([0.0, -fx, 1e-30, 1e30, float("nan"), float("inf")])
        elif fault == "distortion":
            info.d = [self.pick([float("nan"), float("inf")])] + [0.0] * 4
        elif fault == "size":
            info.width, info.height = width * 2, height * 2
        elif fault == "principal":
            info.k[2] = self.pick([-1e6, 1e6, float("nan")])
        elif fault == "model":  # with D all zero, as uncalibrated drivers send: usable, or refused
            info.distortion_model = self.pick(["", "fisheye9000", "\x00"])
            return info, None
        return info, fault != "none"

    def trajectory(self, joint_names):
        """A JointTrajectory: a sane short one (invalid=False) or one broken field (True)."""
        from builtin_interfaces.msg import Duration
        from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

        points = int(self.rng.integers(2, 6))
        positions = self.rng.uniform(-0.3, 0.3, (points, len(joint_names)))
        times = np.arange(1, points + 1) * 0.1
        fault = self.pick(["none", "nan", "inf", "huge", "times", "backwards", "names", "short_point", "many"])
        names = list(joint_names)
        if fault in ("nan", "inf", "huge"):
            positions[int(self.rng.integers(points)), int(self.rng.integers(len(names)))] = \
                {"nan": np.nan, "inf": np.inf, "huge": 1e9}[fault]
        elif fault == "times":
            times[-1] = 1e9
        elif fault == "backwards":
            times = times[::-1].copy()
        elif fault == "names":
            names = names[:-1] + ["no_such_joint"]
        elif fault == "many":
            positions = np.zeros((5000, len(names)))
            times = np.arange(1, 5001) * 0.01
        msg = JointTrajectory(joint_names=names)
        for index, (row, t) in enumerate(zip(positions, times)):
            values = row.tolist() if not (fault == "short_point" and index == 0) else row[:-1].tolist()
            msg.points.append(JointTrajectoryPoint(positions=values, time_from_start=Duration(
                sec=int(t), nanosec=int((t - int(t)) * 1e9))))
        return msg, fault != "none"

    def stamp(self):
        from builtin_interfaces.msg import Time

        return self.pick([Time(), Time(sec=1), Time(sec=2**31 - 1, nanosec=999_999_999)])
