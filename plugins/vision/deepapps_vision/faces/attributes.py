"""Face attributes from the 68 dlib landmarks: head pose (solvePnP) and eye aspect ratio.

Head pose fits six landmarks to a generic 3-D face (nose tip, chin, outer eye corners, mouth
corners) with ``cv2.solvePnP`` and a pinhole camera whose focal length is the image width.
Angles are in degrees: ``yaw`` > 0 when the face turns toward the image's right side,
``pitch`` > 0 when it looks up, ``roll`` > 0 when it tilts clockwise in the image. They are
rough (a generic face, an assumed camera) and meant for "frontal or not", not for metrology.

The eye aspect ratio (Soukupová & Čech, 2016) is the eye's height over its width from six
landmarks per eye; it drops toward 0 when the eye closes. ``eyes_closed`` uses 0.2.
"""

from __future__ import annotations

import math

import numpy as np

EAR_CLOSED = 0.2

# Generic 3-D face model in the camera's axes (millimetres, nose tip at the origin; x right,
# y down, z away from the camera), so a frontal, upright face has the identity rotation.
_MODEL_POINTS = np.array(
    [
        (0.0, 0.0, 0.0),  # nose tip (30)
        (0.0, 330.0, 65.0),  # chin (8)
        (-225.0, -170.0, 135.0),  # image-left eye outer corner (36)
        (225.0, -170.0, 135.0),  # image-right eye outer corner (45)
        (-150.0, 150.0, 125.0),  # image-left mouth corner (48)
        (150.0, 150.0, 125.0),  # image-right mouth corner (54)
    ],
    dtype=np.float64,
)
_LANDMARK_IDS = [30, 8, 36, 45, 48, 54]


def head_pose(landmarks: np.ndarray, image_size: tuple[int, int]) -> dict[str, float] | None:
    """Yaw, pitch and roll in degrees from 68 landmarks (``(68, 2)`` pixel x, y); None if it fails."""
    import cv2

    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.shape != (68, 2):
        return None
    width, height = image_size
    image_points = pts[_LANDMARK_IDS]
    focal = float(width)
    camera = np.array([[focal, 0, width / 2.0], [0, focal, height / 2.0], [0, 0, 1]], dtype=np.float64)
    ok, rvec, _tvec = cv2.solvePnP(
        _MODEL_POINTS, image_points, camera, np.zeros(4), flags=cv2.SOLVEPNP_ITERATIVE
    )
    if not ok:
        return None
    rot, _ = cv2.Rodrigues(rvec)
    # R maps model -> camera; decompose as R = Rz(roll) @ Ry(yaw) @ Rx(pitch)
    sy = math.hypot(rot[0, 0], rot[1, 0])
    pitch = math.degrees(math.atan2(rot[2, 1], rot[2, 2]))
    yaw = math.degrees(math.atan2(-rot[2, 0], sy))
    roll = math.degrees(math.atan2(rot[1, 0], rot[0, 0]))
    return {"yaw": round(yaw, 2), "pitch": round(pitch, 2), "roll": round(roll, 2)}


def eye_aspect_ratio(eye: np.ndarray) -> float:
    """(|p2-p6| + |p3-p5|) / (2 |p1-p4|) for six eye landmarks p1..p6."""
    p = np.asarray(eye, dtype=np.float64)
    width = np.linalg.norm(p[0] - p[3])
    if width <= 0:
        return 0.0
    return float((np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2.0 * width))


def eye_attributes(landmarks: np.ndarray) -> dict[str, float | bool]:
    """Eye aspect ratios of both eyes (68-point landmarks) and whether they look closed."""
    pts = np.asarray(landmarks, dtype=np.float64)
    right = eye_aspect_ratio(pts[36:42])  # the subject's right eye (image left)
    left = eye_aspect_ratio(pts[42:48])
    mean = (left + right) / 2.0
    return {
        "ear_left": round(left, 4),
        "ear_right": round(right, 4),
        "ear": round(mean, 4),
        "eyes_closed": bool(mean < EAR_CLOSED),
    }


def face_attributes(landmarks: np.ndarray | None, image_size: tuple[int, int]) -> dict:
    """All attributes computable from 68 landmarks (empty for 5-point landmarks)."""
    if landmarks is None or len(landmarks) != 68:
        return {}
    out: dict = {}
    pose = head_pose(landmarks, image_size)
    if pose:
        out.update(pose)
    out.update(eye_attributes(landmarks))
    return out
