#!/usr/bin/env bash
# Runs every test of oxbridge: Rust unit and doc tests, then the whole-stack suites
# (slixmpp and aiortc from PyPI, xmpp.js and strophe.js from npm, lib-jitsi-meet in Debian's Chromium)
# against the built server. Installs what it needs on a fresh Debian machine.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD

step() { printf '\n== %s\n' "$*"; }
results=()
failed=0
suite() {
  local name=$1; shift
  step "$name"
  if "$@"; then results+=("ok    $name"); else results+=("FAIL  $name"); failed=$((failed + 1)); fi
}

step "system packages"
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if ((${#need[@]})); then
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${need[@]}"
fi

step "build"
cargo build --workspace --all-targets
export OXBRIDGE_BIN="$ROOT/target/debug/oxbridge"

step "test dependencies"
[ -d tests/python/.venv ] || python3 -m venv tests/python/.venv
tests/python/.venv/bin/pip install -q -r tests/python/requirements.txt
npm ci --prefix tests --no-audit --no-fund --loglevel=error

suite "cargo test" cargo test --workspace
suite "slixmpp / aiortc whole-stack tests" bash -c 'cd tests/python && .venv/bin/pytest -q'
suite "xmpp.js / strophe.js whole-stack tests" bash -c 'cd tests && node --test --test-concurrency=1 js/'
suite "browser tests (lib-jitsi-meet in Chromium)" bash -c 'cd tests && node --test --test-concurrency=1 browser/'

step "summary"
printf '%s\n' "${results[@]}"
echo "$(( ${#results[@]} - failed )) suites passed, $failed failed"
exit $((failed > 0))
