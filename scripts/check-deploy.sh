#!/usr/bin/env bash
# Checks deploy/hubbub.service with `systemd-analyze verify`.
#
# Usage: scripts/check-deploy.sh [PATH-TO-HUBBUB-BINARY]
#
# The unit runs /usr/local/bin/hubbub, which a CI machine does not have, and
# verify fails on a missing executable. So the unit is checked from a copy
# whose ExecStart= runs the given binary (e.g. target/release/hubbub) or, by
# default, `true`. Any verify message about hubbub.service (unknown keys,
# bad values, a missing executable) fails the check. Without systemd-analyze
# the check is skipped (exit 0).
set -euo pipefail

cd "$(dirname "$0")/.."
UNIT=deploy/hubbub.service

if ! command -v systemd-analyze > /dev/null 2>&1; then
  echo "check-deploy: systemd-analyze not found; skipped the check of $UNIT"
  exit 0
fi

if [ $# -ge 1 ]; then
  [ -x "$1" ] && [ -f "$1" ] || { echo "check-deploy: $1 is not an executable file" >&2; exit 2; }
  BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
else
  # An absolute path: `command -v true` would name the shell builtin.
  BIN=$(type -P true || echo /bin/true)
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Copy the unit, keeping its name, with the first word of every ExecStart=
# (after systemd's prefixes such as `-` or `+`) replaced by $BIN.
substituted=0
while IFS= read -r line || [ -n "$line" ]; do
  if [[ $line =~ ^(ExecStart=[-@:+!]*)([^[:space:]]+)(.*)$ ]]; then
    line="${BASH_REMATCH[1]}$BIN${BASH_REMATCH[3]}"
    substituted=$((substituted + 1))
  fi
  printf '%s\n' "$line"
done < "$UNIT" > "$TMP/hubbub.service"
if [ "$substituted" = 0 ]; then
  echo "check-deploy: $UNIT has no ExecStart= line" >&2
  exit 1
fi

status=0
output=$(systemd-analyze verify "$TMP/hubbub.service" 2>&1) || status=$?
# Messages about other units (the system's own) are not ours to fix.
problems=$(grep -F 'hubbub.service' <<< "$output" || true)
if [ "$status" != 0 ] || [ -n "$problems" ]; then
  echo "check-deploy: systemd-analyze verify $UNIT failed (exit $status):" >&2
  printf '%s\n' "${problems:-$output}" | sed "s|$TMP/hubbub.service|$UNIT|g" >&2
  exit 1
fi
echo "check-deploy: $UNIT verified ($(systemd-analyze --version | head -n 1), ExecStart=$BIN)"
