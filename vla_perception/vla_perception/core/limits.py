"""Caps on the work one message or request may ask of a node (no ROS here).

A request over a cap is refused up front with a message naming the cap, instead of
keeping a node busy for a minute (1,000 boxes once took pose_node 55 s) or growing its
memory (an 8K frame is 100 MB as rgb8). docs/nodes.md lists them.
"""
from __future__ import annotations

from vla_perception.core.types import VlaInputError

MAX_IMAGE_PIXELS = 4096 * 4096  # 16.8 MP: 4K UHD fits; an 8K frame does not
MAX_IMAGE_ASPECT = 20.0  # width/height or height/width: beyond it no model's resize keeps a usable image
MAX_BOXES = 100  # boxes (detections) per request
MAX_LABELS = 100  # labels or prompt phrases per request or setting


def check_image_size(width: int, height: int, what: str = "image") -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise VlaInputError(f"{what} is {width}x{height} = {width * height / 1e6:.1f} MP; at most "
                            f"{MAX_IMAGE_PIXELS / 1e6:.1f} MP is accepted: downscale it")
    if width and height and max(width / height, height / width) > MAX_IMAGE_ASPECT:
        raise VlaInputError(f"{what} is {width}x{height}: an aspect ratio beyond {MAX_IMAGE_ASPECT:.0f}:1 "
                            "is refused")


def check_count(count: int, cap: int, what: str) -> None:
    if count > cap:
        raise VlaInputError(f"{count} {what} in one request; at most {cap} are accepted")
