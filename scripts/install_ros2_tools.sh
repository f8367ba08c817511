#!/usr/bin/env bash
# Install the upstream ROS 2 launch/CLI tools, message_filters and vision_msgs of ../shared/ros2-tools
# (beside the repository) into a venv, so the tests can run `ros2 launch`, `ros2 service call`, ... as a
# robot user types them. Without that folder this says so and does nothing: those tests then skip.
#   usage: scripts/install_ros2_tools.sh VENV
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:?usage: scripts/install_ros2_tools.sh VENV}
tools=${ROS2_TOOLS_DIR:-$PWD/../shared/ros2-tools}
if [ ! -x "$tools/install.sh" ]; then
  echo "ros2-tools: $tools not found: ros2 launch/CLI, message_filters and vision_msgs tests will skip"
  exit 0
fi
"$tools/install.sh" "$venv" "$PWD/build_ws/ros2-tools"
