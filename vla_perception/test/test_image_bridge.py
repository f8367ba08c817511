"""Image conversion: every encoding round-trips, padded rows and big-endian data read right."""
import sys

import numpy as np
import pytest
from sensor_msgs.msg import Image

from vla_perception.bridge.image import (
    ENCODINGS,
    CvBridgeError,
    NumpyCvBridge,
    convert_encoding,
    cv2_to_imgmsg,
    imgmsg_to_cv2,
)

LISTED = ["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "16UC1", "32FC1"]


def random_array(encoding, height=5, width=7, seed=0):
    dtype, channels = ENCODINGS[encoding]
    rng = np.random.default_rng(seed)
    shape = (height, width) if channels == 1 else (height, width, channels)
    if dtype.kind == "f":
        return rng.normal(size=shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)


def padded_message(array, encoding, pad_bytes, big_endian=False):
    """Build a message by hand, independently of cv2_to_imgmsg: rows padded with 0xAB bytes."""
    wire = array.astype(array.dtype.newbyteorder(">" if big_endian else "<"))
    rows = wire.reshape(array.shape[0], -1).view(np.uint8)
    padding = np.full((array.shape[0], pad_bytes), 0xAB, np.uint8)
    data = np.concatenate([rows, padding], axis=1)
    msg = Image(height=array.shape[0], width=array.shape[1], encoding=encoding, is_bigendian=big_endian)
    msg.step = data.shape[1]
    msg.data = data.tobytes()
    return msg


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_round_trip_every_encoding(encoding):
    array = random_array(encoding)
    msg = cv2_to_imgmsg(array, encoding)
    assert (msg.encoding, msg.height, msg.width) == (encoding, 5, 7)
    assert msg.step == 7 * array.itemsize * (1 if array.ndim == 2 else array.shape[2])
    np.testing.assert_array_equal(imgmsg_to_cv2(msg), array)


@pytest.mark.parametrize("encoding", LISTED)
@pytest.mark.parametrize("pad_bytes", [1, 3, 64])
def test_padded_rows(encoding, pad_bytes):
    array = random_array(encoding, seed=pad_bytes)
    np.testing.assert_array_equal(imgmsg_to_cv2(padded_message(array, encoding, pad_bytes)), array)


@pytest.mark.parametrize("encoding", ["mono16", "16UC1", "32FC1"])
@pytest.mark.parametrize("pad_bytes", [0, 2])
def test_big_endian_is_decoded_to_native_values(encoding, pad_bytes):
    array = random_array(encoding, seed=3)
    decoded = imgmsg_to_cv2(padded_message(array, encoding, pad_bytes, big_endian=True))
    np.testing.assert_array_equal(decoded, array)
    assert decoded.dtype.byteorder in ("=", "|", "<" if sys.byteorder == "little" else ">")


def test_big_endian_array_gets_the_flag():
    array = np.arange(12, dtype=">u2").reshape(3, 4)
    msg = cv2_to_imgmsg(array, "16UC1")
    assert msg.is_bigendian
    np.testing.assert_array_equal(imgmsg_to_cv2(msg), np.arange(12).reshape(3, 4))


def test_read_is_zero_copy():
    array = random_array("rgb8", height=48, width=64)
    msg = padded_message(array, "rgb8", 16)
    view = imgmsg_to_cv2(msg)
    assert np.shares_memory(view, np.frombuffer(msg.data, np.uint8))


def test_colour_conversions_match_channel_order():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10, 20, 30
    msg = cv2_to_imgmsg(rgb, "rgb8")
    assert imgmsg_to_cv2(msg, "bgr8")[0, 0].tolist() == [30, 20, 10]
    assert imgmsg_to_cv2(msg, "rgba8")[0, 0].tolist() == [10, 20, 30, 255]
    assert imgmsg_to_cv2(msg, "bgra8")[0, 0].tolist() == [30, 20, 10, 255]
    # ITU-R 601 luma, as OpenCV: 0.299*10 + 0.587*20 + 0.114*30 = 18.15
    assert imgmsg_to_cv2(msg, "mono8")[0, 0] == 18
    grey = cv2_to_imgmsg(np.full((2, 2), 7, np.uint8), "mono8")
    assert imgmsg_to_cv2(grey, "rgb8")[1, 1].tolist() == [7, 7, 7]


def test_mono16_to_mono8_keeps_the_high_byte():
    assert convert_encoding(np.array([[0x1234]], np.uint16), "mono16", "mono8")[0, 0] == 0x12


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda m: setattr(m, "encoding", "yuv422_weird"), "unsupported image encoding 'yuv422_weird'"),
        (lambda m: setattr(m, "step", m.step - 1), "step"),
        (lambda m: setattr(m, "height", m.height + 1), r"height\*step"),
        (lambda m: setattr(m, "data", bytes(m.data)[:-3]), r"height\*step"),
        (lambda m: setattr(m, "width", 0), "empty"),
    ],
)
def test_bad_messages_raise_clear_errors(mutate, message):
    msg = cv2_to_imgmsg(random_array("rgb8"), "rgb8")
    mutate(msg)
    with pytest.raises(CvBridgeError, match=message):
        imgmsg_to_cv2(msg)


def test_impossible_conversion_and_mismatched_array_raise():
    with pytest.raises(CvBridgeError, match="cannot convert"):
        imgmsg_to_cv2(cv2_to_imgmsg(random_array("32FC1"), "32FC1"), "rgb8")
    with pytest.raises(CvBridgeError, match="does not match encoding rgb8"):
        cv2_to_imgmsg(np.zeros((4, 4), np.uint8), "rgb8")


def test_passthrough_names_follow_cv_bridge():
    assert cv2_to_imgmsg(np.zeros((2, 2, 3), np.uint8)).encoding == "8UC3"
    assert cv2_to_imgmsg(np.zeros((2, 2), np.float32)).encoding == "32FC1"
    assert cv2_to_imgmsg(np.zeros((2, 2), np.uint16)).encoding == "16UC1"


def test_bridge_class_has_cv_bridge_api():
    bridge = NumpyCvBridge()
    array = random_array("bgr8")
    header_msg = cv2_to_imgmsg(array, "bgr8")
    header_msg.header.frame_id = "cam"
    msg = bridge.cv2_to_imgmsg(array, encoding="bgr8", header=header_msg.header)
    assert msg.header.frame_id == "cam"
    np.testing.assert_array_equal(bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8"), array[..., ::-1])
