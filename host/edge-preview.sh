#!/bin/sh
# edge-preview.sh: let the operator reach one colour (by default the idle one: the release `up` just
# gated, or the previous one) on the public frontend, before or without moving traffic. A request
# carrying the cookie medusa_preview=<token> goes to that colour, skips maintenance mode and shows
# which colour answered (X-Medusa-Colour); every other request is untouched. The token is 32 random
# bytes kept in the edge-control folder (0600, never mounted into the edge); the edge holds only its
# sha256, in preview.map, changed through the runtime API (never by reload).
# Runs on the docker host (POSIX sh; needs socat, awk, od, sha256sum, mktemp).
#
# Environment (inputs):
#   EDGE_ADMIN_SOCKET   required. Host path of the edge's admin socket.
#   EDGE_DIR            required. Host folder of haproxy.cfg and preview.map.
#   EDGE_CONTROL_DIR    required. Host folder of the edge lock and of the token (preview-token).
#   EDGE_DIR_IN_EDGE    Where the edge process sees EDGE_DIR (the map's name). Default: EDGE_DIR.
#   EDGE_BACKEND        Backend of the colours. Default: medusa.
#   ACTION              on | off. Default: on. off removes the route (the token stays, unless ROTATE).
#   COLOUR              blue | green | idle. Default: idle (the colour the switch drained).
#   ROTATE              1: make a new token first (the old one stops working at once). Default: 0.
#   EDGE_LOCK_FILE, EDGE_LOCK_TIMEOUT, EDGE_LOCK_METHOD  as host/traffic-switch.sh.
#
# Output: with ACTION=on, "preview: <colour>" and "preview token: <64 hex digits>" (for the operator's
# terminal only); with off, "preview: off".
# Exit: 0 done; 2 bad input, an unsafe folder or a colour that is not up, nothing changed; 1 failure.
set -u

err() { printf 'edge-preview: %s\n' "$*" >&2; }
die() { code=$1; shift; err "$*"; exit "$code"; }

EDGE_ADMIN_SOCKET=${EDGE_ADMIN_SOCKET:-}
EDGE_DIR=${EDGE_DIR:-}
EDGE_CONTROL_DIR=${EDGE_CONTROL_DIR:-}
EDGE_BACKEND=${EDGE_BACKEND:-medusa}
ACTION=${ACTION:-on}
COLOUR=${COLOUR:-idle}
ROTATE=${ROTATE:-0}
EDGE_LOCK_TIMEOUT=${EDGE_LOCK_TIMEOUT:-120}
EDGE_LOCK_METHOD=${EDGE_LOCK_METHOD:-auto}

for pair in "EDGE_ADMIN_SOCKET=$EDGE_ADMIN_SOCKET" "EDGE_DIR=$EDGE_DIR" "EDGE_CONTROL_DIR=$EDGE_CONTROL_DIR"; do
    case "${pair#*=}" in
        /?*) ;;
        *) die 2 "${pair%%=*} must be an absolute path, got '${pair#*=}'; nothing changed" ;;
    esac
done
EDGE_DIR=${EDGE_DIR%/}
EDGE_CONTROL_DIR=${EDGE_CONTROL_DIR%/}
EDGE_DIR_IN_EDGE=${EDGE_DIR_IN_EDGE:-$EDGE_DIR}
EDGE_DIR_IN_EDGE=${EDGE_DIR_IN_EDGE%/}
case "$ACTION" in on | off) ;; *) die 2 "ACTION must be on or off, got '$ACTION'; nothing changed" ;; esac
case "$COLOUR" in blue | green | idle) ;; *) die 2 "COLOUR must be blue, green or idle, got '$COLOUR'; nothing changed" ;; esac
case "$ROTATE" in 0 | 1) ;; *) die 2 "ROTATE must be 0 or 1, got '$ROTATE'; nothing changed" ;; esac
case "$EDGE_BACKEND" in '' | *[!A-Za-z0-9_-]*) die 2 "EDGE_BACKEND must be a backend name, got '$EDGE_BACKEND'; nothing changed" ;; esac
for tool in socat awk od sha256sum mktemp; do
    command -v "$tool" >/dev/null 2>&1 || die 2 "$tool is not installed on this host; nothing changed"
done
case "$EDGE_LOCK_METHOD" in
    auto) if command -v flock >/dev/null 2>&1; then EDGE_LOCK_METHOD="flock"; else EDGE_LOCK_METHOD="mkdir"; fi ;;
    flock | mkdir) ;;
    *) die 2 "EDGE_LOCK_METHOD must be auto, flock or mkdir, got '$EDGE_LOCK_METHOD'; nothing changed" ;;
esac
EDGE_LOCK_FILE=${EDGE_LOCK_FILE:-$EDGE_CONTROL_DIR/edge.lock}

. "${MEDUSA_DEPLOY_HOST_LIB:-$(dirname "$0")/lib}/safe-files.sh" # medusa-deploy:inline lib/safe-files.sh
. "${MEDUSA_DEPLOY_HOST_LIB:-$(dirname "$0")/lib}/edge-map.sh" # medusa-deploy:inline lib/edge-map.sh

MAP_FILE="$EDGE_DIR/preview.map"
MAP_REF="$EDGE_DIR_IN_EDGE/preview.map"
TOKEN_FILE="$EDGE_CONTROL_DIR/preview-token"

map_folders_ok
safe_file_ok "$MAP_FILE" || die 2 "$SAFE_PROBLEM; refusing, nothing changed"
safe_file_ok "$TOKEN_FILE" || die 2 "$SAFE_PROBLEM; refusing, nothing changed"

. "${MEDUSA_DEPLOY_HOST_LIB:-$(dirname "$0")/lib}/edge-lock.sh" # medusa-deploy:inline lib/edge-lock.sh
cleanup() {
    safe_cleanup
    [ -n "$LOCK_DIR" ] && rm -rf "$LOCK_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
take_edge_lock

if [ "$ACTION" = off ] || [ "$ROTATE" = 1 ]; then
    map_clear "$MAP_REF" || die 1 "$MAP_ERROR; the preview route is as it was"
    map_write "$MAP_FILE" "" || die 1 "the edge has no preview route now, but $MAP_FILE could not be emptied ($MAP_ERROR): a restarted edge would bring it back; run this again"
    if [ "$ROTATE" = 1 ]; then
        safe_file_ok "$TOKEN_FILE" && rm -f -- "$TOKEN_FILE" || die 1 "cannot remove the old token $TOKEN_FILE"
    fi
    if [ "$ACTION" = off ]; then
        echo "preview: off"
        exit 0
    fi
fi

# Which colour: the one named, or the one the switch drained (the idle one). It must be up.
states=$(map_admin "show servers state $EDGE_BACKEND") || die 1 "cannot read the edge's servers: ${SAFE_PROBLEM:-$states}"
if [ "$COLOUR" = idle ]; then
    # admin_state (7th field) bit 0x08: drained by the traffic switch.
    COLOUR=$(printf '%s\n' "$states" | awk -v be="$EDGE_BACKEND" '$1 !~ /^#/ && $2 == be && int($7 / 8) % 2 == 1 { print $4; exit }')
    [ -n "$COLOUR" ] || die 2 "no colour is idle (drained) on the edge: a second release has not been deployed yet; name one with COLOUR; nothing changed"
fi
op_state=$(printf '%s\n' "$states" | awk -v be="$EDGE_BACKEND" -v srv="$COLOUR" '$1 !~ /^#/ && $2 == be && $4 == srv { print $6; exit }')
[ "$op_state" = 2 ] || die 2 "$COLOUR is not up on the edge (its health checks fail or it is not running: state ${op_state:-absent}); nothing to preview; nothing changed"

if [ ! -f "$TOKEN_FILE" ]; then
    token_temp=""
    safe_temp token_temp "$EDGE_CONTROL_DIR" preview-token || die 1 "$SAFE_PROBLEM"
    od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$token_temp" || die 1 "cannot write a token to $token_temp"
    safe_replace "$token_temp" "$TOKEN_FILE" || die 1 "$SAFE_PROBLEM"
fi
token=$(cat -- "$TOKEN_FILE")
case "$token" in
    *[!0-9a-f]*) die 1 "$TOKEN_FILE does not hold a token (64 hex digits); remove it, or run with ROTATE=1" ;;
esac
[ "${#token}" -eq 64 ] || die 1 "$TOKEN_FILE does not hold a token (64 hex digits); remove it, or run with ROTATE=1"
hash=$(printf '%s' "$token" | sha256sum | cut -c1-64)

map_clear "$MAP_REF" || die 1 "$MAP_ERROR; the preview route is as it was"
map_put "$MAP_REF" "$hash" "$COLOUR" || die 1 "$MAP_ERROR; the edge has no preview route now"
map_write "$MAP_FILE" "$hash $COLOUR
" || die 1 "the preview reaches $COLOUR now, but $MAP_FILE could not be written ($MAP_ERROR): a restarted edge would forget it"
echo "preview: $COLOUR"
echo "preview token: $token"
