#!/usr/bin/env bash
# Signaling benchmark: the same WebSocket MUC presence load against `oxbridge serve`
# and Debian's Prosody on this machine, reported side by side.
#
#   bench/signaling-vs-prosody.sh [oxbridge bench signaling flags...]
#   e.g. bench/signaling-vs-prosody.sh --sessions 2000 --room-size 10 --rate 2 --duration 20
#
# Installs prosody from Debian when missing. Both servers bind to 127.0.0.1 only, are
# started here and stopped by their PID when the run ends.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/target/bench-signaling}
mkdir -p "$OUT"
command -v prosody >/dev/null || { SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo; $SUDO apt-get install -y -qq prosody; }
cargo build --release --quiet
BIN=$ROOT/target/release/oxbridge

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "no answer at $1" >&2; return 1; }
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# --- oxbridge: rooms open to any joiner, as Prosody's default; no per-session rate limit in the way.
PORT=$(free_port)
OXBRIDGE_MUC__RESTRICT_ROOM_CREATION=false OXBRIDGE_XMPP__LIMITS__STANZAS_PER_SECOND=100000 \
  OXBRIDGE_XMPP__LIMITS__STANZA_BURST=100000 OXBRIDGE_LOG=warn \
  "$BIN" serve --listen "127.0.0.1:$PORT" --xmpp-listen "127.0.0.1:$(free_port)" >"$OUT/oxbridge.log" 2>&1 &
OX=$!; PIDS+=("$OX")
wait_http "http://127.0.0.1:$PORT/about/health"
"$BIN" bench signaling --url "ws://127.0.0.1:$PORT/xmpp-websocket" --server-pid "$OX" \
  --label oxbridge --json "$OUT/oxbridge.json" "$@"
kill "$OX"; wait "$OX" 2>/dev/null || true

# --- Prosody 0.12 with the modules a Jitsi deployment uses for this load.
PDIR=$OUT/prosody; rm -rf "$PDIR"; mkdir -p "$PDIR/data"
PPORT=$(free_port)
cat >"$PDIR/prosody.cfg.lua" <<CFG
run_as_root = true
daemonize = false
pidfile = "$PDIR/prosody.pid"
data_path = "$PDIR/data"
log = { warn = "$PDIR/prosody.log" }
modules_enabled = { "disco", "ping", "saslauth", "websocket" }
modules_disabled = { "s2s", "offline" }
c2s_ports = { $(free_port) }
c2s_interfaces = { "127.0.0.1" }
c2s_require_encryption = false
consider_websocket_secure = true
cross_domain_websocket = true
http_ports = { $PPORT }
http_interfaces = { "127.0.0.1" }
https_ports = { }
network_settings = { read_timeout = 300 }
limits = { }
VirtualHost "localhost"
  authentication = "anonymous"
Component "conference.localhost" "muc"
  restrict_room_creation = false
  muc_room_locking = false
  max_history_messages = 0
CFG
prosody -F --config "$PDIR/prosody.cfg.lua" >"$PDIR/stdout.log" 2>&1 &
PR=$!; PIDS+=("$PR")
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PPORT/xmpp-websocket" && break; sleep 0.1; done
"$BIN" bench signaling --url "ws://127.0.0.1:$PPORT/xmpp-websocket" --server-pid "$PR" \
  --label prosody --json "$OUT/prosody.json" "$@"
kill "$PR"; wait "$PR" 2>/dev/null || true

echo
"$BIN" bench compare "$OUT/oxbridge.json" "$OUT/prosody.json"
