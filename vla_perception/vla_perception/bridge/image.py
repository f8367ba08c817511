"""sensor_msgs/Image <-> numpy with cv_bridge's API, and no OpenCV needed.

``CvBridge`` here is cv_bridge's ``CvBridge`` when that package is importable (a robot
with ROS 2 installed) and our numpy implementation otherwise (PyPI-only machines,
where the ``cv-bridge`` on PyPI is a broken ROS 1 repackage). Both expose
``imgmsg_to_cv2(msg, desired_encoding="passthrough")`` and
``cv2_to_imgmsg(array, encoding="passthrough", header=None)``.

Reads are zero-copy views of ``msg.data`` whenever no conversion is needed: rows padded
past ``width * channels`` (``step``) become a strided view, not a copy.
"""
from __future__ import annotations

import sys

import numpy as np
from sensor_msgs.msg import Image


class CvBridgeError(TypeError):
    """An image that cannot be converted: unknown encoding, bad size, impossible conversion."""


# encoding -> (numpy dtype, channels)
ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "mono16": (np.dtype(np.uint16), 1),
    "8UC1": (np.dtype(np.uint8), 1),
    "8UC3": (np.dtype(np.uint8), 3),
    "8UC4": (np.dtype(np.uint8), 4),
    "16UC1": (np.dtype(np.uint16), 1),
    "16SC1": (np.dtype(np.int16), 1),
    "32SC1": (np.dtype(np.int32), 1),
    "32FC1": (np.dtype(np.float32), 1),
    "64FC1": (np.dtype(np.float64), 1),
}

# channel order of the colour encodings, for conversions between them
_COLOUR_ORDER = {"rgb8": "rgb", "bgr8": "bgr", "rgba8": "rgba", "bgra8": "bgra", "mono8": "l"}
_SAME_LAYOUT = {"8UC1": "mono8", "8UC3": "bgr8", "8UC4": "bgra8", "16UC1": "mono16"}


def encoding_info(encoding: str) -> tuple[np.dtype, int]:
    try:
        return ENCODINGS[encoding]
    except KeyError:
        supported = ", ".join(ENCODINGS)
        raise CvBridgeError(f"unsupported image encoding '{encoding}'; supported: {supported}") from None


def imgmsg_to_cv2(msg: Image, desired_encoding: str = "passthrough") -> np.ndarray:
    """Return the image as an HxW or HxWxC array; a view of msg.data when possible."""
    dtype, channels = encoding_info(msg.encoding)
    array = _view(msg, dtype, channels)
    if desired_encoding in ("passthrough", msg.encoding):
        return array
    return convert_encoding(array, msg.encoding, desired_encoding)


def _view(msg: Image, dtype: np.dtype, channels: int) -> np.ndarray:
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height == 0 or width == 0:
        raise CvBridgeError(f"image is empty ({width}x{height})")
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise CvBridgeError(f"step {step} is smaller than width*channels*bytes = {row_bytes} for {msg.encoding}")
    buffer = np.frombuffer(msg.data, dtype=np.uint8)
    if buffer.size != height * step:
        raise CvBridgeError(
            f"data holds {buffer.size} bytes but height*step = {height}*{step} = {height * step} ({msg.encoding})"
        )
    byte_order = ">" if msg.is_bigendian else "<"
    wire_dtype = dtype.newbyteorder(byte_order) if dtype.itemsize > 1 else dtype
    array = _rows_view(buffer, wire_dtype, height, step, width * channels)
    array = array.reshape(height, width, channels) if channels > 1 else array.reshape(height, width)
    if wire_dtype.byteorder not in ("=", "|", _native_order()):
        array = array.astype(dtype)  # byte swap: the one case that must copy
    return array


def _rows_view(buffer: np.ndarray, dtype: np.dtype, height: int, step: int, values_per_row: int) -> np.ndarray:
    """View height rows of ``step`` bytes as ``values_per_row`` values each, without copying."""
    if step % dtype.itemsize == 0:
        return buffer.view(dtype).reshape(height, step // dtype.itemsize)[:, :values_per_row]
    usable = buffer.size - buffer.size % dtype.itemsize  # odd padding: rows start off the value grid
    return np.lib.stride_tricks.as_strided(
        buffer[:usable].view(dtype), shape=(height, values_per_row), strides=(step, dtype.itemsize), writeable=False
    )


def _native_order() -> str:
    return "<" if sys.byteorder == "little" else ">"


def convert_encoding(array: np.ndarray, source: str, target: str) -> np.ndarray:
    """Convert between colour/mono encodings (rgb8, bgr8, rgba8, bgra8, mono8, mono16, 16UC1 ...)."""
    encoding_info(target)
    source, target_layout = _SAME_LAYOUT.get(source, source), _SAME_LAYOUT.get(target, target)
    if source == target_layout:
        return array
    if source in _COLOUR_ORDER and target_layout in _COLOUR_ORDER:
        return _convert_colour(array, _COLOUR_ORDER[source], _COLOUR_ORDER[target_layout])
    if source == "mono16" and target_layout == "mono8":
        return (array >> 8).astype(np.uint8)
    if source == "mono8" and target_layout == "mono16":
        return array.astype(np.uint16) << 8
    raise CvBridgeError(f"cannot convert image from '{source}' to '{target}'")


def _convert_colour(array: np.ndarray, source: str, target: str) -> np.ndarray:
    if source == "l":
        grey = array[..., np.newaxis]
        channels = {"r": grey, "g": grey, "b": grey, "a": np.full_like(grey, 255)}
    else:
        channels = {name: array[..., index : index + 1] for index, name in enumerate(source)}
        channels.setdefault("a", np.full_like(channels["r"], 255))
    if target == "l":
        rgb = np.concatenate([channels["r"], channels["g"], channels["b"]], axis=-1).astype(np.float32)
        return np.rint(rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).astype(np.uint8)
    return np.ascontiguousarray(np.concatenate([channels[name] for name in target], axis=-1))


def cv2_to_imgmsg(array: np.ndarray, encoding: str = "passthrough", header=None) -> Image:
    """Build a sensor_msgs/Image; bytes are copied once with ``tobytes`` (fast, unlike list assignment)."""
    array = np.asarray(array)
    if encoding == "passthrough":
        encoding = _guess_encoding(array)
    dtype, channels = encoding_info(encoding)
    actual_channels = 1 if array.ndim == 2 else array.shape[2] if array.ndim == 3 else -1
    if array.dtype.newbyteorder("=") != dtype or actual_channels != channels:
        raise CvBridgeError(
            f"array of dtype {array.dtype} with shape {array.shape} does not match encoding {encoding} "
            f"({dtype}, {channels} channel(s))"
        )
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(array.shape[0]), int(array.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = array.dtype.byteorder == ">" or (array.dtype.byteorder == "=" and sys.byteorder == "big")
    msg.step = msg.width * channels * dtype.itemsize
    msg.data = np.ascontiguousarray(array).tobytes()
    return msg


def _guess_encoding(array: np.ndarray) -> str:
    """cv_bridge's passthrough naming: 8UC3, 16UC1, 32FC1 ..."""
    channels = 1 if array.ndim == 2 else array.shape[2]
    name = f"{_DEPTH_NAMES.get(array.dtype.newbyteorder('='), '?')}C{channels}"
    if name not in ENCODINGS:
        raise CvBridgeError(f"no encoding for an array of dtype {array.dtype} with {channels} channel(s)")
    return name


_DEPTH_NAMES = {np.dtype(np.uint8): "8U", np.dtype(np.uint16): "16U", np.dtype(np.int16): "16S",
                np.dtype(np.int32): "32S", np.dtype(np.float32): "32F", np.dtype(np.float64): "64F"}


class NumpyCvBridge:
    """cv_bridge.CvBridge's image API, implemented with numpy."""

    def imgmsg_to_cv2(self, img_msg: Image, desired_encoding: str = "passthrough") -> np.ndarray:
        return imgmsg_to_cv2(img_msg, desired_encoding)

    def cv2_to_imgmsg(self, cvim: np.ndarray, encoding: str = "passthrough", header=None) -> Image:
        return cv2_to_imgmsg(cvim, encoding, header)


try:  # a robot's cv_bridge when it exists; ours otherwise
    from cv_bridge import CvBridge  # noqa: F401
    from cv_bridge import CvBridgeError as _RosCvBridgeError

    BRIDGE_ERRORS: tuple[type[Exception], ...] = (CvBridgeError, _RosCvBridgeError)
except ImportError:
    CvBridge = NumpyCvBridge
    BRIDGE_ERRORS = (CvBridgeError,)
