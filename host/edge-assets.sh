#!/bin/sh
# edge-assets.sh: before traffic moves to TARGET_COLOUR, tell the edge which of the admin's
# content-hashed asset files only the other colour has, so a browser tab opened on the other colour's
# release keeps loading its chunks after the switch. Everything else (the admin page itself, every
# asset the target has, every other path) goes to the live colour as before.
#
# The edge routes a request for <ASSET_URL_PREFIX><file> to the colour its asset map names, and only
# when the map names one (lib/haproxyConfig.ts). This script makes that map exactly
#     { <prefix><file> -> <other> : file in the other colour's ASSET_FOLDER, not in the target's }
# A function of the two running releases only, so it is right before the switch (the other colour is
# live and has those files anyway), after it, and after a switch back; it is rebuilt at every switch.
# The map is replaced whole and at once through the runtime API (prepare map, add map, commit map:
# no request sees half a map, nothing is reloaded) and then in the file, so a restarted edge comes
# back with it.
#
# Runs on the docker host (POSIX sh; needs docker, socat, awk, sort, mktemp; flock when installed).
#
# Environment (inputs):
#   EDGE_ADMIN_SOCKET  required. Host path of the edge's admin socket.
#   EDGE_DIR           required. The edge's config folder on the host (holds assets.map).
#   EDGE_DIR_IN_EDGE   The same folder as the edge container sees it (the map's name in the runtime
#                      API). Default: EDGE_DIR.
#   EDGE_CONTROL_DIR   required. The folder of the edge lock, never mounted into the edge.
#   TARGET_COLOUR      required. blue | green: the colour traffic is about to move to.
#   SERVER_BLUE, SERVER_GREEN  required. The colours' server container names.
#   ASSET_FOLDER       Folder of the hashed files inside a server container. Default:
#                      /server/public/admin/assets (docker/medusa.Dockerfile's layout of `medusa build`).
#   ASSET_URL_PREFIX   The URL path those files are served under. Default: /app/assets/.
#   EDGE_LOCK_TIMEOUT, EDGE_LOCK_METHOD  as for host/traffic-switch.sh.
#
# A file name listed by a container is its word only: a name that is not [A-Za-z0-9][A-Za-z0-9_.-]*
# (at most 200 characters) is left out, so a compromised colour cannot write anything else into the
# edge's map. A colour whose files cannot be listed (not running, no admin build) counts as having none.
#
# Stdout: progress, then one last machine-readable line:
#   "assets: <n> kept on <other>"     exit 0: the map is in place (0 entries is a valid, empty map)
#   "assets: unchanged (<reason>)"    exit 0: the edge refused or could not be reached; the map is as it
#                                     was. Not a reason to keep traffic where it is (the release is
#                                     healthy; only tabs opened on the other release may miss chunks):
#                                     the deploy warns and the switch goes ahead.
#                                     exit 2: bad input or unsafe folders; nothing changed

set -u

say() { printf '%s\n' "$*"; }
err() { printf 'edge-assets: %s\n' "$*" >&2; }
die() {
    code=$1
    shift
    err "$*"
    say "assets: unchanged ($*)"
    exit "$code"
}
unchanged() { die 0 "$@"; }

EDGE_ADMIN_SOCKET=${EDGE_ADMIN_SOCKET:-}
EDGE_DIR=${EDGE_DIR:-}
EDGE_CONTROL_DIR=${EDGE_CONTROL_DIR:-}
TARGET_COLOUR=${TARGET_COLOUR:-}
SERVER_BLUE=${SERVER_BLUE:-}
SERVER_GREEN=${SERVER_GREEN:-}
ASSET_FOLDER=${ASSET_FOLDER:-/server/public/admin/assets}
ASSET_URL_PREFIX=${ASSET_URL_PREFIX:-/app/assets/}
EDGE_LOCK_TIMEOUT=${EDGE_LOCK_TIMEOUT:-120}
EDGE_LOCK_METHOD=${EDGE_LOCK_METHOD:-auto}
# Entries per `add map` command: its payload must fit in one HAProxy buffer (16 KiB by default).
BATCH_LINES=100

for pair in "EDGE_ADMIN_SOCKET=$EDGE_ADMIN_SOCKET" "EDGE_DIR=$EDGE_DIR" "EDGE_CONTROL_DIR=$EDGE_CONTROL_DIR" "ASSET_FOLDER=$ASSET_FOLDER"; do
    case "${pair#*=}" in
        /?*) ;;
        *) die 2 "${pair%%=*} must be an absolute path, got '${pair#*=}'; nothing changed" ;;
    esac
done
case "$ASSET_FOLDER" in *[!A-Za-z0-9_./-]*) die 2 "ASSET_FOLDER must be a path of letters, digits, '_', '.', '-', '/', got '$ASSET_FOLDER'; nothing changed" ;; esac
case "$ASSET_URL_PREFIX" in
    /*/) case "$ASSET_URL_PREFIX" in *[!A-Za-z0-9_./-]*) die 2 "ASSET_URL_PREFIX '$ASSET_URL_PREFIX' has characters a map key cannot hold; nothing changed" ;; esac ;;
    *) die 2 "ASSET_URL_PREFIX must start and end with '/', e.g. /app/assets/, got '$ASSET_URL_PREFIX'; nothing changed" ;;
esac
case "$TARGET_COLOUR" in
    blue) OTHER_COLOUR=green OTHER_SERVER=$SERVER_GREEN TARGET_SERVER=$SERVER_BLUE ;;
    green) OTHER_COLOUR=blue OTHER_SERVER=$SERVER_BLUE TARGET_SERVER=$SERVER_GREEN ;;
    *) die 2 "TARGET_COLOUR must be blue or green, got '$TARGET_COLOUR'; nothing changed" ;;
esac
for server in "$SERVER_BLUE" "$SERVER_GREEN"; do
    case "$server" in
        '' | [!a-zA-Z0-9]* | *[!a-zA-Z0-9_.-]*) die 2 "SERVER_BLUE and SERVER_GREEN must be container names, got '$server'; nothing changed" ;;
    esac
done
for tool in docker socat awk sort mktemp; do
    command -v "$tool" >/dev/null 2>&1 || die 2 "$tool is not installed on this host; nothing changed"
done
case "$EDGE_LOCK_METHOD" in
    auto) if command -v flock >/dev/null 2>&1; then EDGE_LOCK_METHOD="flock"; else EDGE_LOCK_METHOD="mkdir"; fi ;;
    flock | mkdir) ;;
    *) die 2 "EDGE_LOCK_METHOD must be auto, flock or mkdir, got '$EDGE_LOCK_METHOD'; nothing changed" ;;
esac
EDGE_DIR=${EDGE_DIR%/}
EDGE_CONTROL_DIR=${EDGE_CONTROL_DIR%/}
EDGE_DIR_IN_EDGE=${EDGE_DIR_IN_EDGE:-$EDGE_DIR}
EDGE_DIR_IN_EDGE=${EDGE_DIR_IN_EDGE%/}
EDGE_LOCK_FILE=${EDGE_LOCK_FILE:-$EDGE_CONTROL_DIR/edge.lock}

. "${MEDUSA_DEPLOY_HOST_LIB:-$(dirname "$0")/lib}/safe-files.sh" # medusa-deploy:inline lib/safe-files.sh
. "${MEDUSA_DEPLOY_HOST_LIB:-$(dirname "$0")/lib}/edge-map.sh" # medusa-deploy:inline lib/edge-map.sh

MAP_FILE="$EDGE_DIR/assets.map"
MAP_REF="$EDGE_DIR_IN_EDGE/assets.map"

map_folders_ok
safe_file_ok "$MAP_FILE" || die 2 "$SAFE_PROBLEM; refusing, nothing changed"

# The hashed file names a colour's server has, one per line, sorted; nothing when it cannot tell.
asset_names() {
    docker exec "$1" ls -1A -- "$ASSET_FOLDER" 2>/dev/null |
        awk 'length($0) <= 200 && /^[A-Za-z0-9][A-Za-z0-9_.-]*$/' | LC_ALL=C sort -u
}

target_names=$(asset_names "$TARGET_SERVER")
other_names=$(asset_names "$OTHER_SERVER")
[ -n "$target_names" ] || say "the target's server $TARGET_SERVER lists no files in $ASSET_FOLDER (no admin build, or not running)"
[ -n "$other_names" ] || say "the other colour's server $OTHER_SERVER lists no files in $ASSET_FOLDER (no admin build, or not running)"
# Lines of the other colour's list that are not in the target's.
map_text=$(printf '%s\n' "$other_names" | awk -v target="$target_names" -v prefix="$ASSET_URL_PREFIX" -v colour="$OTHER_COLOUR" '
    BEGIN { n = split(target, names, "\n"); for (i = 1; i <= n; i++) have[names[i]] = 1 }
    $0 != "" && !($0 in have) { print prefix $0 " " colour }')
kept=0
[ -n "$map_text" ] && kept=$(printf '%s\n' "$map_text" | awk 'END { print NR }')

. "${MEDUSA_DEPLOY_HOST_LIB:-$(dirname "$0")/lib}/edge-lock.sh" # medusa-deploy:inline lib/edge-lock.sh
cleanup() {
    safe_cleanup
    [ -n "$LOCK_DIR" ] && rm -rf "$LOCK_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
take_edge_lock

# A new version of the map, filled in batches, then made current in one step.
prepared=$(map_admin "prepare map $MAP_REF") || unchanged "cannot reach the edge: ${SAFE_PROBLEM:-$prepared}; the asset map is as it was"
version=$(printf '%s\n' "$prepared" | awk '/^New version created: [0-9]+$/ { print $4 }')
if [ -z "$version" ]; then
    case "$prepared" in
        *"Unknown map identifier"*) unchanged "the edge has no map $MAP_REF: its config predates asset routing (the next pulumi up installs it); the asset map is as it was" ;;
    esac
    unchanged "HAProxy refused 'prepare map $MAP_REF': $(printf '%s' "$prepared" | tr -s '\n' ' ')"
fi
if [ -n "$map_text" ]; then
    batches=$(printf '%s\n' "$map_text" | awk -v size="$BATCH_LINES" 'END { print int((NR + size - 1) / size) }')
    batch=1
    while [ "$batch" -le "$batches" ]; do
        payload=$(printf '%s\n' "$map_text" | awk -v size="$BATCH_LINES" -v b="$batch" 'NR > (b - 1) * size && NR <= b * size')
        answer=$(printf 'add map @%s %s <<\n%s\n\n' "$version" "$MAP_REF" "$payload" | socat -t 10 -T 10 - "UNIX-CONNECT:$EDGE_ADMIN_SOCKET" 2>&1) ||
            unchanged "the edge did not take the new asset map ($answer); the asset map is as it was"
        [ -z "$(printf '%s' "$answer" | tr -d '\n')" ] || unchanged "HAProxy refused the new asset map: $(printf '%s' "$answer" | tr -s '\n' ' '); the asset map is as it was"
        batch=$((batch + 1))
    done
fi
committed=$(map_admin "commit map @$version $MAP_REF") || unchanged "cannot reach the edge to commit the asset map: ${SAFE_PROBLEM:-$committed}; the asset map is as it was"
[ -z "$(printf '%s' "$committed" | tr -d '\n')" ] || unchanged "HAProxy refused 'commit map @$version': $(printf '%s' "$committed" | tr -s '\n' ' '); the asset map is as it was"

file_text=""
[ -n "$map_text" ] && file_text="$map_text
"
if ! map_write "$MAP_FILE" "$file_text"; then
    # The edge routes by the new map already; only a restart before the next switch would lose it.
    err "the edge has the new asset map, but $MAP_FILE could not be written ($MAP_ERROR): a restarted edge would route by the old one until the next switch"
fi
say "assets: $kept kept on $OTHER_COLOUR"
