#!/bin/sh
# edge-maintenance.sh: turn the edge's maintenance mode on or off, through HAProxy's runtime API
# (set map), never by reload. `page` answers every public request with the 503 maintenance page and
# Retry-After; `hold` keeps new requests waiting (up to HOLD_SECONDS each, then the page) and lets
# them through the moment the mode is `off`. A request that got past the edge's rules before the
# change is served as usual; a request with the operator's preview cookie is never held.
# Runs on the docker host (POSIX sh; needs socat, awk, mktemp), as the user of the other edge scripts.
#
# Environment (inputs):
#   EDGE_ADMIN_SOCKET   required. Host path of the edge's admin socket (<hostStateDir>/edge-run/admin.sock).
#   EDGE_DIR            required. Host folder of haproxy.cfg and maintenance.map (<hostStateDir>/edge).
#   EDGE_CONTROL_DIR    required. Host folder of the edge lock (<hostStateDir>/edge-control).
#   EDGE_DIR_IN_EDGE    Where the edge process sees EDGE_DIR: the map's name in the admin API.
#                       Default: EDGE_DIR (an edge run on the host itself).
#   MODE                required. page | hold | off | show (show changes nothing).
#   HOLD_SECONDS        How long a held request waits before it gets the page, 1-120. Default: 30.
#   EDGE_LOCK_FILE, EDGE_LOCK_TIMEOUT, EDGE_LOCK_METHOD  as host/traffic-switch.sh.
#
# Output: a sentence for the operator, and a last line "maintenance: <mode> hold=<seconds>".
# Exit: 0 done; 2 bad input or an unsafe folder, nothing changed; 1 the edge refused or the file could
# not be written (what was left is said).
set -u

err() { printf 'edge-maintenance: %s\n' "$*" >&2; }
die() { code=$1; shift; err "$*"; exit "$code"; }

EDGE_ADMIN_SOCKET=${EDGE_ADMIN_SOCKET:-}
EDGE_DIR=${EDGE_DIR:-}
EDGE_CONTROL_DIR=${EDGE_CONTROL_DIR:-}
MODE=${MODE:-}
HOLD_SECONDS=${HOLD_SECONDS:-30}
EDGE_LOCK_TIMEOUT=${EDGE_LOCK_TIMEOUT:-120}
EDGE_LOCK_METHOD=${EDGE_LOCK_METHOD:-auto}

for pair in "EDGE_ADMIN_SOCKET=$EDGE_ADMIN_SOCKET" "EDGE_DIR=$EDGE_DIR" "EDGE_CONTROL_DIR=$EDGE_CONTROL_DIR"; do
    case "${pair#*=}" in
        /?*) ;;
        *) die 2 "${pair%%=*} must be an absolute path, got '${pair#*=}'; nothing changed" ;;
    esac
done
EDGE_DIR=${EDGE_DIR%/}
EDGE_DIR_IN_EDGE=${EDGE_DIR_IN_EDGE:-$EDGE_DIR}
EDGE_DIR_IN_EDGE=${EDGE_DIR_IN_EDGE%/}
case "$MODE" in
    page | hold | off | show) ;;
    *) die 2 "MODE must be page, hold, off or show, got '$MODE'; nothing changed" ;;
esac
case "$HOLD_SECONDS" in
    '' | *[!0-9]*) die 2 "HOLD_SECONDS must be a whole number of seconds 1-120, got '$HOLD_SECONDS'; nothing changed" ;;
esac
if [ "$HOLD_SECONDS" -lt 1 ] || [ "$HOLD_SECONDS" -gt 120 ]; then
    die 2 "HOLD_SECONDS must be 1-120 (clients give up on a longer wait), got $HOLD_SECONDS; nothing changed"
fi
command -v socat >/dev/null 2>&1 || die 2 "socat is not installed on this host; nothing changed"
case "$EDGE_LOCK_METHOD" in
    auto) if command -v flock >/dev/null 2>&1; then EDGE_LOCK_METHOD="flock"; else EDGE_LOCK_METHOD="mkdir"; fi ;;
    flock | mkdir) ;;
    *) die 2 "EDGE_LOCK_METHOD must be auto, flock or mkdir, got '$EDGE_LOCK_METHOD'; nothing changed" ;;
esac
EDGE_LOCK_FILE=${EDGE_LOCK_FILE:-$EDGE_CONTROL_DIR/edge.lock}

. "${MEDUSA_DEPLOY_HOST_LIB:-$(dirname "$0")/lib}/safe-files.sh" # medusa-deploy:inline lib/safe-files.sh
. "${MEDUSA_DEPLOY_HOST_LIB:-$(dirname "$0")/lib}/edge-map.sh" # medusa-deploy:inline lib/edge-map.sh

MAP_FILE="$EDGE_DIR/maintenance.map"
MAP_REF="$EDGE_DIR_IN_EDGE/maintenance.map"

# The mode and bound the edge is running with now.
current() {
    dump=$(map_admin "show map $MAP_REF") || die 1 "cannot read the edge's maintenance state: admin socket $EDGE_ADMIN_SOCKET: ${SAFE_PROBLEM:-$dump}"
    case "$dump" in
        *"Unknown map identifier"*) die 1 "the edge has no maintenance map $MAP_REF: its config predates maintenance mode; run pulumi up once to install it" ;;
    esac
    printf '%s\n' "$dump" | awk '
        $2 == "mode" { mode = $3 } $2 == "hold" { hold = $3 }
        END { printf "%s %s\n", (mode == "" ? "off" : mode), (hold == "" ? 30 : hold) }'
}

if [ "$MODE" = show ]; then
    # shellcheck disable=SC2046 # two words: mode and bound
    set -- $(current)
    echo "maintenance: $1 hold=$2"
    exit 0
fi

map_folders_ok
safe_file_ok "$MAP_FILE" || die 2 "$SAFE_PROBLEM; refusing, nothing changed"

. "${MEDUSA_DEPLOY_HOST_LIB:-$(dirname "$0")/lib}/edge-lock.sh" # medusa-deploy:inline lib/edge-lock.sh
cleanup() {
    safe_cleanup
    [ -n "$LOCK_DIR" ] && rm -rf "$LOCK_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
take_edge_lock

# shellcheck disable=SC2046 # two words: mode and bound
set -- $(current)
before=$1
# The bound first: a hold that starts now already reads it.
map_put "$MAP_REF" hold "$HOLD_SECONDS" || die 1 "$MAP_ERROR; the edge's mode is still $before"
map_put "$MAP_REF" mode "$MODE" || die 1 "$MAP_ERROR; the edge's mode is still $before"
if ! map_write "$MAP_FILE" "mode $MODE
hold $HOLD_SECONDS
"; then
    die 1 "the edge is in mode $MODE now, but $MAP_FILE could not be written ($MAP_ERROR): a restarted edge would come back in its previous mode; run this again"
fi

case "$MODE" in
    page) echo "maintenance is on: every request gets the maintenance page (503, Retry-After) until you turn it off" ;;
    hold) echo "maintenance is on: new requests wait (up to $HOLD_SECONDS s each, then the maintenance page) until you turn it off" ;;
    off) [ "$before" = hold ] && echo "maintenance is off: held requests are on their way to the live colour" || echo "maintenance is off" ;;
esac
echo "maintenance: $MODE hold=$HOLD_SECONDS"
