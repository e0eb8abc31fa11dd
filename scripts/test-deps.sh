#!/usr/bin/env bash
# Install what the interop tests need; safe to run again (does nothing when done).
#   - Chromium at /usr/bin/chromium (Debian package), for the browser test
#   - openssl, which the Node TLS test makes its certificate with
#   - tests/interop/node/node_modules (npm ci from package-lock.json)
#   - a Python venv at target/pyenv with tests/interop/python/requirements.txt
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

log() { printf 'test-deps: %s\n' "$*" >&2; }

# --- Chromium -------------------------------------------------------------
if [ ! -x /usr/bin/chromium ]; then
  log "installing chromium (apt-get)"
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get update -q
  "${sudo_cmd[@]}" apt-get install -y -q chromium
fi

# --- openssl --------------------------------------------------------------
if ! command -v openssl >/dev/null; then
  log "installing openssl (apt-get)"
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get update -q
  "${sudo_cmd[@]}" apt-get install -y -q openssl
fi

# --- Node packages --------------------------------------------------------
command -v node >/dev/null || { log "node is required"; exit 1; }
node_dir=tests/interop/node
stamp="$node_dir/node_modules/.hubbub-deps-stamp"
if [ -f "$node_dir/package-lock.json" ]; then
  want="$(sha256sum "$node_dir/package-lock.json" "$node_dir/package.json" | sha256sum | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "npm ci in $node_dir"
    (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
  fi
else
  log "npm install in $node_dir (no lockfile)"
  (cd "$node_dir" && npm install --no-audit --no-fund --loglevel=error)
fi

# --- Python venv ----------------------------------------------------------
venv=target/pyenv
req=tests/interop/python/requirements.txt
if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv"
  python3 -m venv "$venv"
fi
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ "$(cat "$venv/.hubbub-req-stamp" 2>/dev/null)" != "$want" ] \
  || ! "$venv/bin/python" -c 'import socketio, websocket, pytest' 2>/dev/null; then
  log "pip install -r $req"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
  echo "$want" > "$venv/.hubbub-req-stamp"
fi
log "ok"
