"""3D pose and size of a detected object from aligned depth (ROS-free).

Method (:func:`estimate_object_pose`):
  1. back-project the valid depth pixels inside the box (or mask) and in a ring around it;
  2. fit the support plane with RANSAC on the ring (the table around the object);
  3. keep box points clearly above the plane, split them into 3D clusters (voxel
     connectivity) and keep the biggest, most central cluster (drops background and
     neighbours that leak into the box);
  4. check that the cluster rests on the plane (its visible bottom reaches the plane, or only
     its top is visible), then fit a box standing on the plane:
     the minimum-area rectangle of the points projected on the plane gives the yaw and
     the horizontal extents, the highest point gives the height (the bottom is the plane,
     which the camera cannot see but the object stands on).
  Without a usable support plane the cluster gets a PCA-oriented box instead. Without a
  gravity hint a wall straight behind an object is indistinguishable from a table seen from
  above; pass ``up_hint`` (the table normal in the camera frame, e.g. from TF) to rule it out.

Pose convention: the camera optical frame (x right, y down, z forward). The box axes:
  x = the longer horizontal extent, y = the shorter one, z = "up" = the support-plane
  normal pointing away from the table (towards the camera side). ``size`` is the
  extent along (x, y, z); ``position`` is the box centre (half the height above the plane).
  Without a support plane the axes are the principal axes (x = largest spread).

Failure policy: malformed input (bad intrinsics, multi-channel depth, a box outside the
image, shape mismatch) raises :class:`VlaInputError`; data that cannot support an
estimate (no/too little valid depth, nothing above the table) returns a
:class:`PoseResult` with ``object=None`` and a ``reason`` -- never a guess.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.transform import Rotation

from vla_perception.core.geometry import (CameraIntrinsics, backproject_pixels, backproject_region,
                                          box_pixel_window, box_to_depth_pixels, project_points,
                                          resize_mask_nearest)
from vla_perception.core.types import Box2D, Object3D, VlaInputError


@dataclass
class PoseEstimatorConfig:
    """Tuning of :func:`estimate_object_pose`; lengths in metres."""

    context_margin: float = 0.5  # ring width around the box for the plane fit, in box sizes
    min_context_px: int = 12
    max_box_points: int = 6000  # the box is subsampled with a stride to about this many pixels
    plane_threshold: float = 0.004  # RANSAC inlier distance: max(this, plane_threshold_rel * depth)
    plane_threshold_rel: float = 0.004
    ransac_iterations: int = 150
    min_plane_inliers: int = 30
    height_threshold: float = 0.006  # object points lie at least this far above the plane
    support_gap: float = 0.03  # the cluster's bottom must be this close to the plane ...
    top_only_spread: float = 0.015  # ... unless only its top is visible (height spread below this)
    cluster_voxel: float = 0.01
    min_points: int = 20
    up_hint: Optional[tuple] = None  # expected plane normal in the camera frame (e.g. from TF)
    max_tilt_deg: float = 35.0  # allowed angle between the plane normal and up_hint
    seed: int = 0


@dataclass
class SupportPlane:
    """Plane n.p + d = 0 with n pointing to the camera side (d > 0)."""

    normal: np.ndarray
    d: float
    rms: float
    inliers: np.ndarray  # bool over the points it was fitted to

    def heights(self, points: np.ndarray) -> np.ndarray:
        return points @ self.normal + self.d


@dataclass
class PoseResult:
    """Either an Object3D or the reason why none could be estimated."""

    object: Optional[Object3D]
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.object is not None


def _check_depth(depth_m: np.ndarray, cam: CameraIntrinsics) -> np.ndarray:
    depth_m = np.asarray(depth_m)
    if depth_m.ndim != 2:
        raise VlaInputError(f"depth must be HxW metres (decode_depth first), got shape {depth_m.shape}")
    if depth_m.shape != (cam.height, cam.width):
        raise VlaInputError(f"depth is {depth_m.shape[1]}x{depth_m.shape[0]} but CameraInfo says "
                            f"{cam.width}x{cam.height}: use the depth stream's own CameraInfo")
    if not np.issubdtype(depth_m.dtype, np.floating):
        raise VlaInputError(f"depth must be float metres (decode_depth first), got dtype {depth_m.dtype}")
    return depth_m


def fit_plane_ransac(points: np.ndarray, threshold: float, iterations: int, rng: np.random.Generator,
                     up_hint: Optional[np.ndarray] = None, max_tilt_deg: float = 35.0,
                     min_inliers: int = 3) -> Optional[SupportPlane]:
    """Dominant plane of ``points`` (RANSAC + least-squares refit), oriented towards the origin."""
    n = len(points)
    if n < max(3, min_inliers):
        return None
    idx = rng.integers(0, n, size=(iterations, 3))
    a, b, c = points[idx[:, 0]], points[idx[:, 1]], points[idx[:, 2]]
    normals = np.cross(b - a, c - a)
    norms = np.linalg.norm(normals, axis=1)
    ok = norms > 1e-12
    normals[ok] /= norms[ok, None]
    if up_hint is not None:
        ok &= np.abs(normals @ up_hint) >= np.cos(np.radians(max_tilt_deg))
    if not np.any(ok):
        return None
    normals, a = normals[ok], a[ok]
    offsets = -np.einsum("ij,ij->i", normals, a)
    counts = (np.abs(points @ normals.T + offsets) < threshold).sum(axis=0)
    best = int(np.argmax(counts))
    inliers = np.abs(points @ normals[best] + offsets[best]) < threshold
    if inliers.sum() < max(3, min_inliers):
        return None
    centroid = points[inliers].mean(axis=0)
    normal = np.linalg.svd(points[inliers] - centroid, full_matrices=False)[2][2]
    d = -float(normal @ centroid)
    inliers = np.abs(points @ normal + d) < threshold
    if d < 0:  # orient towards the camera (the origin) so heights above the table are positive
        normal, d = -normal, -d
    rms = float(np.sqrt(np.mean((points[inliers] @ normal + d) ** 2)))
    return SupportPlane(normal=normal, d=d, rms=rms, inliers=inliers)


def cluster_points(points: np.ndarray, voxel: float, max_cells: int = 4_000_000) -> np.ndarray:
    """Connected-component labels (0..k-1) of points on a voxel grid with 26-connectivity."""
    lo = points.min(axis=0)
    span = points.max(axis=0) - lo
    cells = np.prod(np.floor(span / voxel) + 1)
    if cells > max_cells:
        voxel *= (cells / max_cells) ** (1.0 / 3.0)
    keys = np.floor((points - lo) / voxel).astype(np.int64)
    grid = np.zeros(tuple(keys.max(axis=0) + 1), dtype=bool)
    grid[keys[:, 0], keys[:, 1], keys[:, 2]] = True
    labels, _ = ndimage.label(grid, structure=np.ones((3, 3, 3), dtype=bool))
    return labels[keys[:, 0], keys[:, 1], keys[:, 2]] - 1


def min_area_rectangle(xy: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """(centre (2,), angle of the first axis (rad), extents (2,)) of the smallest enclosing rectangle."""
    try:
        hull = xy[ConvexHull(xy).vertices]
    except (QhullError, ValueError):
        hull = xy
    edges = np.diff(np.vstack([hull, hull[:1]]), axis=0)
    angles = np.unique(np.mod(np.arctan2(edges[:, 1], edges[:, 0]), np.pi / 2))
    if len(angles) == 0:
        angles = np.array([0.0])
    cos, sin = np.cos(angles), np.sin(angles)
    u = hull[:, :1] * cos + hull[:, 1:] * sin  # (m, k): coordinate along axis 1 for each angle
    v = -hull[:, :1] * sin + hull[:, 1:] * cos
    areas = np.ptp(u, axis=0) * np.ptp(v, axis=0)
    k = int(np.argmin(areas))
    mid_u = (u[:, k].max() + u[:, k].min()) / 2
    mid_v = (v[:, k].max() + v[:, k].min()) / 2
    centre = np.array([mid_u * cos[k] - mid_v * sin[k], mid_u * sin[k] + mid_v * cos[k]])
    return centre, float(angles[k]), np.array([np.ptp(u[:, k]), np.ptp(v[:, k])])


def _in_plane_basis(normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref = np.array([1.0, 0.0, 0.0]) if abs(normal[0]) < 0.9 else np.array([0.0, 0.0, 1.0])
    e1 = ref - (ref @ normal) * normal
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(normal, e1)


def fit_box_on_plane(points: np.ndarray, plane: SupportPlane) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centre, rotation matrix, size) of a box standing on ``plane`` that encloses ``points``."""
    n = plane.normal
    e1, e2 = _in_plane_basis(n)
    xy = np.stack([points @ e1, points @ e2], axis=1)
    centre2, angle, ext = min_area_rectangle(xy)
    x_axis = np.cos(angle) * e1 + np.sin(angle) * e2
    if ext[1] > ext[0]:
        x_axis, ext = np.cross(n, x_axis), ext[::-1]
    y_axis = np.cross(n, x_axis)
    height = max(float(np.percentile(plane.heights(points), 99.5)), 1e-3)
    centre = -plane.d * n + centre2[0] * e1 + centre2[1] * e2 + n * height / 2
    return centre, np.column_stack([x_axis, y_axis, n]), np.array([ext[0], ext[1], height])


def fit_box_pca(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centre, rotation matrix, size) of the principal-axes box of ``points``."""
    mean = points.mean(axis=0)
    _, vecs = np.linalg.eigh(np.cov((points - mean).T))
    rot = vecs[:, ::-1].copy()
    if np.linalg.det(rot) < 0:
        rot[:, 2] *= -1
    local = (points - mean) @ rot
    lo, hi = local.min(axis=0), local.max(axis=0)
    return mean + rot @ ((lo + hi) / 2), rot, hi - lo


def _pick_cluster(points: np.ndarray, labels: np.ndarray, cam: CameraIntrinsics, box: Box2D,
                  prefer_largest: bool) -> np.ndarray:
    """Mask of the cluster that is biggest, weighted by how close it projects to the box centre."""
    ids, counts = np.unique(labels, return_counts=True)
    if prefer_largest or len(ids) == 1:
        return labels == ids[np.argmax(counts)]
    centre = np.array(box.center) - 0.5  # box coordinates -> pixel-centre coordinates
    half = np.array([box.width, box.height]) / 2
    scores = []
    for cid, count in zip(ids, counts):
        uv = project_points(cam, points[labels == cid].mean(axis=0)[None])[0]
        off = np.linalg.norm((uv - centre) / half)
        scores.append(count * np.exp(-0.5 * (off / 0.6) ** 2))
    return labels == ids[int(np.argmax(scores))]


def _stride_for(window: tuple[int, int, int, int], max_points: int) -> int:
    x0, y0, x1, y1 = window
    return max(1, int(np.ceil(np.sqrt((x1 - x0) * (y1 - y0) / max_points))))


def _box_points(depth_m, cam, window, stride, mask):
    x0, y0, x1, y1 = window
    pts, us, vs = backproject_region(depth_m, cam, x0, y0, x1, y1, stride)
    total = len(range(y0, y1, stride)) * len(range(x0, x1, stride))
    if mask is not None:
        keep = mask[vs, us]
        total = int(mask[y0:y1:stride, x0:x1:stride].sum())
        pts = pts[keep]
    return pts, total


def _ring_points(depth_m, cam, window, stride, margin, min_px):
    x0, y0, x1, y1 = window
    mx = max(min_px, int(margin * (x1 - x0)))
    my = max(min_px, int(margin * (y1 - y0)))
    cx0, cy0 = max(0, x0 - mx), max(0, y0 - my)
    cx1, cy1 = min(cam.width, x1 + mx), min(cam.height, y1 + my)
    pts, us, vs = backproject_region(depth_m, cam, cx0, cy0, cx1, cy1, stride)
    outside = (us < x0) | (us >= x1) | (vs < y0) | (vs >= y1)
    return pts[outside]


def _select_object(points, plane, cfg, cam, box, prefer_largest, stride):
    """(cluster points, fraction of the candidate points in it, "") or (None, 0.0, reason)."""
    candidates = points
    if plane is not None:
        thr = max(cfg.height_threshold, 3 * plane.rms)
        candidates = points[plane.heights(points) > thr]
    if len(candidates) < cfg.min_points:
        return None, 0.0, (f"only {len(candidates)} valid depth points above the support plane "
                           f"(need {cfg.min_points})")
    footprint = float(np.median(candidates[:, 2])) * stride / cam.fx
    labels = cluster_points(candidates, max(cfg.cluster_voxel, 3 * footprint))
    chosen = candidates[_pick_cluster(candidates, labels, cam, box, prefer_largest)]
    if len(chosen) < cfg.min_points:
        return None, 0.0, f"largest depth cluster has only {len(chosen)} points (need {cfg.min_points})"
    return chosen, len(chosen) / len(candidates), ""


def estimate_object_pose(depth_m: np.ndarray, cam: CameraIntrinsics, box: Box2D,
                         image_size: Optional[tuple[int, int]] = None, mask: Optional[np.ndarray] = None,
                         label: str = "", score: float = 1.0,
                         config: Optional[PoseEstimatorConfig] = None) -> PoseResult:
    """Estimate the 3D box of the object inside ``box``.

    depth_m: HxW float metres, NaN where invalid (see ``geometry.decode_depth``), with ``cam``
    its intrinsics. box: pixels of the colour image of size ``image_size`` (width, height);
    None means the box is already in depth pixels. mask: optional bool mask at the colour
    image's resolution that selects the object's pixels inside the box.
    """
    cfg = config or PoseEstimatorConfig()
    depth_m = _check_depth(depth_m, cam)
    dbox = box_to_depth_pixels(box, image_size, cam)
    window = box_pixel_window(dbox)
    stride = _stride_for(window, cfg.max_box_points)
    if mask is not None:
        mask = resize_mask_nearest(mask, cam.width, cam.height)
    points, total = _box_points(depth_m, cam, window, stride, mask)
    if len(points) < cfg.min_points:
        return PoseResult(None, f"not enough valid depth: {len(points)} valid of {total} pixels in the box "
                                f"(need {cfg.min_points})")
    rng = np.random.default_rng(cfg.seed)
    ring = _ring_points(depth_m, cam, window, stride, cfg.context_margin, cfg.min_context_px)
    up = None if cfg.up_hint is None else np.asarray(cfg.up_hint, float) / np.linalg.norm(cfg.up_hint)
    threshold = max(cfg.plane_threshold, cfg.plane_threshold_rel * float(np.median(points[:, 2])))
    last_reason, nothing_above = "no support plane found around the box", ""
    for _ in range(2):  # the dominant plane may be a wall, a floor or an occluder's face: try the next one
        plane = fit_plane_ransac(ring, threshold, cfg.ransac_iterations, rng, up, cfg.max_tilt_deg,
                                 cfg.min_plane_inliers)
        if plane is None:
            break
        chosen, frac, why_none = _select_object(points, plane, cfg, cam, dbox, mask is not None, stride)
        if chosen is not None and _rests_on(plane, chosen, cfg):
            centre, rot, size = fit_box_on_plane(chosen, plane)
            conf = _confidence(len(points), total, len(chosen), frac, True, cfg)
            return PoseResult(_object(label, score, centre, rot, size, len(chosen), conf, box,
                                      {"method": "support_plane", "plane": (*plane.normal, plane.d)}))
        if chosen is None:
            nothing_above = why_none
        else:
            last_reason = "object does not rest on the fitted plane"
        ring = ring[~plane.inliers]
    if nothing_above:  # the box holds nothing but a plane (and noise): no object to report, not a guess
        return PoseResult(None, nothing_above)
    chosen, frac, why_none = _select_object(points, None, cfg, cam, dbox, mask is not None, stride)
    if chosen is None:
        return PoseResult(None, f"{why_none}; {last_reason}")
    centre, rot, size = fit_box_pca(chosen)
    conf = _confidence(len(points), total, len(chosen), frac, False, cfg)
    return PoseResult(_object(label, score, centre, rot, size, len(chosen), conf, box,
                              {"method": "pca", "note": last_reason}))


def _rests_on(plane: SupportPlane, points: np.ndarray, cfg: PoseEstimatorConfig) -> bool:
    """Whether the object plausibly stands on ``plane``.

    Its visible bottom must reach the plane -- except when only its top is visible (seen from
    above or over an occluder): then the plane below is the best available support. An
    object whose sides are visible but end well above the plane stands on something else.
    """
    low, high = np.percentile(plane.heights(points), [2, 98])
    return low < cfg.support_gap or high - low < cfg.top_only_spread


def _confidence(valid: int, total: int, chosen: int, cluster_fraction: float, on_plane: bool,
                cfg: PoseEstimatorConfig) -> float:
    """Heuristic in [0, 1]: valid-depth coverage x cluster purity x point count x plane support."""
    coverage = np.sqrt(valid / max(total, 1))
    count = min(1.0, chosen / (5.0 * cfg.min_points))
    return float(np.clip(coverage * cluster_fraction * count * (1.0 if on_plane else 0.6), 0.0, 1.0))


def _object(label, score, centre, rot, size, num_points, confidence, box, extra) -> Object3D:
    return Object3D(label=label, score=float(score), position=np.asarray(centre, float),
                    orientation=Rotation.from_matrix(rot).as_quat(), size=np.asarray(size, float),
                    num_points=int(num_points), confidence=confidence, box=box, extra=extra)


def estimate_naive(depth_m: np.ndarray, cam: CameraIntrinsics, box: Box2D,
                   image_size: Optional[tuple[int, int]] = None, label: str = "",
                   score: float = 1.0) -> PoseResult:
    """Baseline: median depth in the box, back-projected at the box centre.

    Size is the box's metric width and height at that depth; the third extent repeats the
    smaller of the two (the baseline has no notion of depth extent). Orientation: identity.
    """
    depth_m = _check_depth(depth_m, cam)
    dbox = box_to_depth_pixels(box, image_size, cam)
    x0, y0, x1, y1 = box_pixel_window(dbox)
    z = depth_m[y0:y1, x0:x1]
    z = z[np.isfinite(z)]
    if len(z) == 0:
        return PoseResult(None, "not enough valid depth: no valid pixel in the box")
    zm = float(np.median(z))
    u, v = dbox.center
    centre = backproject_pixels(cam, np.array([u - 0.5]), np.array([v - 0.5]), np.array([zm]))[0]
    w, h = dbox.width * zm / cam.fx, dbox.height * zm / cam.fy
    return PoseResult(Object3D(label=label, score=float(score), position=centre,
                               orientation=np.array([0.0, 0.0, 0.0, 1.0]), size=np.array([w, h, min(w, h)]),
                               num_points=len(z), confidence=0.0, box=box, extra={"method": "naive"}))
