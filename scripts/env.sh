# Sourced by the other scripts: the venv, loopback-only DDS, and where colcon puts things.
# shellcheck shell=bash
# shellcheck disable=SC1091
source scripts/ros_wheels.sh  # VENV, BUILD_WS for $ROS_WHEELS
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST  # DDS never leaves this machine
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$(( (RANDOM % 100) + 1 ))}
# One-machine Fast DDS profile: shared memory large enough for VGA colour and depth frames.
export FASTDDS_DEFAULT_PROFILES_FILE=${FASTDDS_DEFAULT_PROFILES_FILE:-$PWD/vla_perception/config/fastdds_local.xml}
# shellcheck disable=SC1091
source "$VENV/bin/activate"
# The workspace is installed into the venv itself (merge install), so nothing else is sourced.
export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$VIRTUAL_ENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
COLCON_PATHS=(--base-paths vla_perception_interfaces vla_perception --merge-install --install-base "$VIRTUAL_ENV"
              --build-base "$BUILD_WS/build")
COLCON_LOG=(--log-base "$BUILD_WS/log")
