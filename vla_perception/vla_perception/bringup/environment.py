"""The one environment every rclpy process of this project starts with.

DDS on loopback, a domain id, and the one-machine Fast DDS profile (config/fastdds_local.xml).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional


def ros_environment(default_domain: str = "0") -> dict[str, str]:
    """Set it in os.environ (before rclpy loads) and return a copy for child processes."""
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("ROS_DOMAIN_ID", default_domain)
    profile = fastdds_profile()
    if profile is not None:
        os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(profile))
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def fastdds_profile() -> Optional[Path]:
    """config/fastdds_local.xml of the source tree or the installed share directory (None: not found)."""
    from vla_perception.bringup.graph import package_config_dir

    try:
        path = package_config_dir() / "fastdds_local.xml"
    except Exception:  # noqa: BLE001 - no config dir anywhere: Fast DDS runs with its defaults
        return None
    return path if path.is_file() else None
