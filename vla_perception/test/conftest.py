"""Test-wide setup: DDS on loopback with a per-run domain, before anything imports rclpy."""
import os
import sys

# Non-negotiable: DDS discovery must never leave this machine.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
# Shared memory big enough for VGA frames: best-effort images otherwise go out as UDP fragments and get lost.
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE",
                      os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "config", "fastdds_local.xml"))

sys.path.insert(0, os.path.dirname(__file__))  # shared test helpers (ros_harness, model_fixtures)

from model_fixtures import tiny_models_dir  # noqa: E402,F401 - the tiny models, built once per session
from fake_chat_server import certificate  # noqa: E402,F401 - a self-signed TLS certificate per test module
