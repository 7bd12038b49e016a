#!/bin/sh
# expect_failure.sh SECONDS PATTERN COMMAND...
# Passes when COMMAND ends within SECONDS with a non-zero status and its output matches the
# extended regular expression PATTERN; fails if it succeeds, hangs, or says something else.
set -u
limit=$1
pattern=$2
shift 2
output=$(timeout -k 5 "$limit" "$@" 2>&1)
status=$?
printf '%s\n' "$output"
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  echo "expect_failure: FAILED: still running after ${limit} s" >&2
  exit 1
fi
if [ "$status" -eq 0 ]; then
  echo "expect_failure: FAILED: exited with status 0" >&2
  exit 1
fi
if ! printf '%s\n' "$output" | grep -Eq -- "$pattern"; then
  echo "expect_failure: FAILED: output does not match '$pattern'" >&2
  exit 1
fi
echo "expect_failure: ok (status $status)"
