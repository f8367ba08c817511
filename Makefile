# The two commands a newcomer needs: `make demo` and `make test`. Both bootstrap a
# fresh machine first (venv, pinned dependencies, colcon build) via scripts/setup.sh.
SHELL := /bin/bash
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export ROS_DOMAIN_ID ?= $(shell shuf -i 1-100 -n 1)

.PHONY: demo test setup
demo: setup
	source scripts/env.sh && vla-perception demo $(ARGS)

test: setup
	scripts/run_tests.sh

setup:
	scripts/setup.sh
