#!/bin/sh
# run-kill-restart.sh — the kill -9 test at full length (100 kills by default; CI runs fewer) and
# the rest of the fault tests, printing their figures. Usage: run-kill-restart.sh BUILD_DIR [KILLS]
set -eu
build=${1:?usage: $0 BUILD_DIR [KILLS]}
kills=${2:-100}
SASLGUARD_FAULTS_KILL_ITERATIONS=$kills exec "$build/tests/saslguard_faults_tests" \
  --gtest_filter='KillRestart.*'
