"""Write requirements/lock.txt: the exact versions of every pip-installed distribution in this venv.

``pip freeze`` is not enough: the ROS wheels also drop ``*.egg-info`` directories of
their inner Python packages (action_msgs, rclpy, ...) that are not on PyPI, and colcon
adds our own packages. Only distributions that pip itself installed are locked.

The Jazzy lock (``python scripts/freeze_lock.py requirements/lock-jazzy.txt``) is frozen in a
venv holding ``requirements/ros-wheels-jazzy.txt`` plus exactly the non-ROS pins of lock.txt,
so that the two runs differ only in ROS 2.
"""
import sys
from importlib import metadata
from pathlib import Path

HEADER = """# Exact versions CI and 'make' install on a fresh machine (python scripts/freeze_lock.py).
# setuptools stays <80: colcon-core requires it.
"""


def pip_installed() -> list[str]:
    pins = {}
    for dist in metadata.distributions():
        if (dist.read_text("INSTALLER") or "").strip() == "pip":
            pins[dist.metadata["Name"].lower()] = f"{dist.metadata['Name']}=={dist.version}"
    pins.pop("pip", None)
    return sorted(pins.values(), key=str.lower)


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "requirements/lock.txt")
    lines = pip_installed()
    target.write_text(HEADER + "\n".join(lines) + "\n")
    print(f"wrote {len(lines)} pins to {target}")
