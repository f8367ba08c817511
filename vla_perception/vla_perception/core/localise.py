"""Localise every detection of a frame: the batch form of ``estimate_object_pose``."""
from __future__ import annotations

from typing import Optional

import numpy as np

from vla_perception.core.geometry import CameraIntrinsics
from vla_perception.core.pose_estimation import PoseEstimatorConfig, estimate_object_pose
from vla_perception.core.types import Detection, Object3D, VlaInputError


def estimate_objects(depth_m: np.ndarray, cam: CameraIntrinsics, detections: list[Detection],
                     image_size: Optional[tuple[int, int]] = None,
                     config: Optional[PoseEstimatorConfig] = None) -> tuple[list[Optional[Object3D]], list[str]]:
    """One Object3D (or None) per detection, in order, and a '<label>: <reason>' line per None.

    image_size: (width, height) of the image the boxes are in; None when it is the depth image's.
    """
    objects, rejected = [], []
    for detection in detections:
        try:  # one bad box (outside the image, say) must not cost the others their poses
            result = estimate_object_pose(depth_m, cam, detection.box, image_size, detection.mask, detection.label,
                                          detection.score, config)
            obj, reason = result.object, result.reason
            if obj is not None:
                obj.track_id = detection.track_id
        except VlaInputError as error:
            obj, reason = None, str(error)
        objects.append(obj)
        if obj is None:
            rejected.append(f"{detection.label}: {reason}")
    return objects, rejected
