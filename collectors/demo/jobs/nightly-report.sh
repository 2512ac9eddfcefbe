#!/bin/sh
# The demo's cron job, a plain shell script run under `faultline run --check nightly-report`: the wrapper
# pings the check before and after it, with the exit code and the end of its stderr as the run's log.
# REPORT_MODE (set by the demo's schedule): ok, fail (exit 3), or slow (waits REPORT_SLOW_S on a lock).
set -eu
echo "building the nightly report" >&2
case "${REPORT_MODE:-ok}" in
  fail)
    echo "cannot write /reports/nightly.csv: disk quota exceeded" >&2
    exit 3
    ;;
  slow)
    echo "waiting for the lock on the orders table" >&2
    sleep "${REPORT_SLOW_S:-12}"
    ;;
esac
echo "report written: 1423 orders" >&2
