#!/usr/bin/env bash
# colcon test over both packages; exits non-zero when any test fails (colcon test alone
# exits 0 on failures), and ends with one 'N passed, N failed, N skipped' line.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
echo "tests: ROS 2 ${ROS_DISTRO:-$ROS_WHEELS}, ROS_DOMAIN_ID=$ROS_DOMAIN_ID ROS_AUTOMATIC_DISCOVERY_RANGE=$ROS_AUTOMATIC_DISCOVERY_RANGE"
rm -rf "$BUILD_WS"/test_results
colcon "${COLCON_LOG[@]}" test "${COLCON_PATHS[@]}" --test-result-base "$BUILD_WS"/test_results \
  --event-handlers console_direct+ --return-code-on-test-failure \
  --pytest-args -p no:cacheprovider -ra ${PYTEST_ARGS:-}
status=$?
colcon test-result --test-result-base "$BUILD_WS"/test_results --verbose > "$BUILD_WS"/test_result.txt 2>&1
python scripts/junit_summary.py "$BUILD_WS"/test_results || status=1
exit $status
