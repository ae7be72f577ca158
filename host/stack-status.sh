#!/bin/sh
# stack-status.sh — what `npm run status` reads on the docker host: `docker inspect` of the stack's
# containers that exist, and the edge's statistics for its backend from the admin socket. Changes
# nothing. Runs on the docker host (POSIX sh; socat), as the user the switch runs as (it opens the
# edge's admin socket).
#
# Environment (inputs):
#   CONTAINERS         required. Space-separated container names ([a-zA-Z0-9][a-zA-Z0-9_.-]*).
#   EDGE_ADMIN_SOCKET  required. The edge's admin socket.
#   EDGE_BACKEND       required. The edge's backend name.
#   EDGE_MAINTENANCE_MAP, EDGE_PREVIEW_MAP  The edge's runtime maps, at the paths the edge sees them
#                      (lib/edgeControls.ts). When set, their state is reported too.
#
# Stdout: "--- inspect", then a JSON array of `docker inspect` (only the containers that exist;
# [] when none does), then "--- stat", then the CSV of `show stat <backend> 4 -1` (a header line
# "# pxname,svname,…" and one line per server), or nothing when the edge does not answer (stderr
# says why); with the maps set, "--- maintenance" and the `show map` of the maintenance map, and
# "--- preview" and the colour of each preview route (one a line: never the token's hash).
# Exit codes: 0 read; 2 bad input or no docker.

set -u
err() { printf 'stack-status: %s\n' "$*" >&2; }

CONTAINERS=${CONTAINERS:-}
EDGE_ADMIN_SOCKET=${EDGE_ADMIN_SOCKET:-}
EDGE_BACKEND=${EDGE_BACKEND:-}
[ -n "$CONTAINERS" ] || { err "CONTAINERS is required"; exit 2; }
case "$EDGE_ADMIN_SOCKET" in /*) ;; *) err "EDGE_ADMIN_SOCKET must be an absolute path"; exit 2 ;; esac
case "$EDGE_BACKEND" in '' | *[!a-zA-Z0-9_.-]*) err "EDGE_BACKEND '$EDGE_BACKEND' is not a backend name"; exit 2 ;; esac
command -v docker >/dev/null 2>&1 || { err "the docker CLI is not installed"; exit 2; }

set -f
existing=""
for name in $CONTAINERS; do
    case "$name" in [!a-zA-Z0-9]* | *[!a-zA-Z0-9_.-]*) err "'$name' is not a container name"; exit 2 ;; esac
    if docker container inspect --format '{{.Id}}' "$name" >/dev/null 2>&1 </dev/null; then existing="$existing $name"; fi
done

echo "--- inspect"
if [ -n "$existing" ]; then
    # shellcheck disable=SC2086 # names are checked words
    docker container inspect $existing </dev/null || { err "docker inspect failed"; exit 2; }
else
    echo "[]"
fi
echo "--- stat"
if [ ! -S "$EDGE_ADMIN_SOCKET" ]; then
    err "the edge's admin socket $EDGE_ADMIN_SOCKET is not there: the edge is not running"
elif ! command -v socat >/dev/null 2>&1; then
    err "socat is not installed: no edge statistics"
else
    printf 'show stat %s 4 -1\n' "$EDGE_BACKEND" | socat -t 5 -T 5 - "UNIX-CONNECT:$EDGE_ADMIN_SOCKET" ||
        err "the edge's admin socket did not answer"
    EDGE_MAINTENANCE_MAP=${EDGE_MAINTENANCE_MAP:-}
    EDGE_PREVIEW_MAP=${EDGE_PREVIEW_MAP:-}
    if [ -n "$EDGE_MAINTENANCE_MAP" ] && [ -n "$EDGE_PREVIEW_MAP" ]; then
        echo "--- maintenance"
        printf 'show map %s\n' "$EDGE_MAINTENANCE_MAP" | socat -t 5 -T 5 - "UNIX-CONNECT:$EDGE_ADMIN_SOCKET"
        echo "--- preview"
        printf 'show map %s\n' "$EDGE_PREVIEW_MAP" | socat -t 5 -T 5 - "UNIX-CONNECT:$EDGE_ADMIN_SOCKET" | awk 'NF == 3 { print $3 }'
    fi
fi
exit 0
