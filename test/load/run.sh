#!/usr/bin/env bash
# npm run test:load [-- RUNS]: the whole suite RUNS times in a row (default 3) while stress-ng keeps both
# cores busy, the check that no test depends on timing. Stops at the first failing run; stress-ng is bounded
# by a timeout and stopped on exit. Needs stress-ng (Debian: apt-get install -y stress-ng; .ci/run installs it).
set -euo pipefail
cd "$(dirname "$0")/../.."

case "${1:-}" in
  -h|--help) sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
runs="${1:-3}"
if ! [[ "$runs" =~ ^[1-9][0-9]?$ ]]; then echo "test:load: RUNS must be 1-99, not \"$runs\"" >&2; exit 2; fi
command -v stress-ng >/dev/null || { echo "test:load: stress-ng is not installed (apt-get install -y stress-ng)" >&2; exit 2; }

# At most 20 minutes a run; stress-ng ends by itself even if this script is killed.
stress-ng --cpu "$(nproc)" --timeout "$((runs * 1200))s" --quiet &
load=$!
trap 'kill "$load" 2>/dev/null || true' EXIT

for run in $(seq "$runs"); do
  start=$(date +%s)
  echo "== test:load run $run of $runs under stress-ng --cpu $(nproc)"
  npm test
  echo "== run $run passed in $(( $(date +%s) - start )) s"
done
