#!/bin/sh
# install-edge-config.sh — install a new haproxy.cfg for the edge so that an invalid config is never
# left in place, and reload the running edge when the config changed. Also prepares the edge's host
# folders and says which user the edge runs as.
# Runs on the docker host (POSIX sh), often as root. The new config comes on stdin.
#
# Host layout (issue 19: a link planted where a root-run script writes must not make it write
# elsewhere), three folders under the stack's hostStateDir:
#   edge/          EDGE_DIR: haproxy.cfg, haproxy.cfg.previous, server-state and install candidates.
#                  Owned by the user this script runs as, mode 0755, files 0644. Mounted READ-ONLY
#                  into the edge container (at /usr/local/etc/haproxy).
#   edge-control/  EDGE_CONTROL_DIR: the edge lock (shared with host/traffic-switch.sh) and the
#                  switch's backups and temporary files. Owned by that user, mode 0700, never mounted.
#   edge-run/      EDGE_RUN_DIR: where HAProxy creates its sockets (admin.sock, operator.sock); the only
#                  folder the edge can write (mounted at /run/medusa-edge). Created 0700 and owned by
#                  the edge user. This script never writes into it.
#
# Environment (inputs):
#   EDGE_DIR             required. Absolute host folder holding haproxy.cfg (see the layout). Created
#                        0755 when absent. The candidate file is written here too, so it can be
#                        validated through the same mount and renamed atomically.
#   EDGE_CONTROL_DIR     required. Absolute host folder for the lock (see the layout). Created 0700.
#   EDGE_RUN_DIR         Absolute host folder for the edge's sockets. Default: edge-run beside EDGE_DIR.
#   EDGE_USER            The edge's "<uid>:<gid>" (numbers). Run as root: required, and not uid 0;
#                        EDGE_RUN_DIR is given to it. Run as another user: the edge runs as that same
#                        user (so it can open the sockets HAProxy creates), and EDGE_USER must be unset
#                        or equal to "$(id -u):$(id -g)".
#   EDGE_IMAGE           HAProxy image used by the default validation, e.g. haproxy:2.8 (the image the
#                        edge runs). Required unless EDGE_CHECK_COMMAND is set.
#   EDGE_CONTAINER       Name of the edge container; it may not exist yet. Required unless both
#                        EDGE_RUNNING_COMMAND and EDGE_RELOAD_COMMAND are set.
#   EDGE_CHECK_COMMAND   Command that validates a config file; the file's path is appended as the last
#                        argument and a zero exit means valid. Default: validate with the image, as the
#                        edge user, with no network and the folder mounted read-only:
#                          docker run --rm --user "$EDGE_USER" --network none \
#                            -v "$EDGE_DIR:/usr/local/etc/haproxy:ro" "$EDGE_IMAGE" \
#                            haproxy -c -f /usr/local/etc/haproxy/<candidate file name>
#                        (the appended path is then the one inside the container).
#   EDGE_RUNNING_COMMAND Command that prints "true" when the edge is running (anything else, or a
#                        failure, means it is not running and nothing is reloaded).
#                        Default: docker inspect -f '{{.State.Running}}' "$EDGE_CONTAINER"
#   EDGE_RELOAD_COMMAND  Command that makes the running edge load haproxy.cfg again. Default:
#                        docker kill -s HUP "$EDGE_CONTAINER" (the official image runs HAProxy in
#                        master-worker mode, whose master reloads on SIGHUP without dropping
#                        connections). Commands are run by this shell (eval), so they may use quotes.
#   EDGE_LOCK_FILE       Lock serialising installs and traffic switches. Default:
#                        "$EDGE_CONTROL_DIR/edge.lock", as host/traffic-switch.sh (give it the same
#                        EDGE_LOCK_FILE and EDGE_LOCK_METHOD when changing them).
#   EDGE_LOCK_TIMEOUT    Seconds to wait for the lock. Default: 120.
#   EDGE_LOCK_METHOD     auto | flock | mkdir. Default: auto (flock when installed, else a lock folder
#                        "$EDGE_LOCK_FILE.d" holding the owner's pid).
#   EDGE_SIDE_FILES      Names of files the config reads (lib/edgeControls.ts: the maintenance Lua
#                        and page), each named by its content's hash, so a new one never changes what a
#                        running config uses: "maintenance-hold-<12 hex>.lua ...". The n-th file's
#                        content is in EDGE_SIDE_FILE_<n>. A name that exists is left as it is.
#   EDGE_MAPS            Map files the edge's runtime controls change (maintenance.map preview.map
#                        assets.map): created in EDGE_DIR, 0644, when absent (maintenance.map with
#                        "mode off"), never overwritten: they hold the operator's current maintenance
#                        and preview state and the asset routing of the last switch.
#   DOCKER_HOST          honoured by the docker CLI of the default commands.
#
# What is checked before anything changes: EDGE_DIR and EDGE_CONTROL_DIR are folders, not symbolic
# links, owned by the uid this script runs as, writable by nobody else, in a folder where only its
# owner can rename them (absent ones are then created); EDGE_RUN_DIR
# is a folder and not a link; haproxy.cfg, haproxy.cfg.previous and the lock are regular files (a
# folder for the mkdir lock) and not symbolic links when they exist. Any other finding is refused with
# the path and what is wrong, exit 2, nothing changed. New files are only made by mktemp in EDGE_DIR
# and put in place with mv -f; nothing is written through a name this script did not just create.
#
# What it does, holding the lock:
#   1. gives EDGE_RUN_DIR to the edge user (mode 0700), EDGE_DIR mode 0755;
#   2. writes stdin to a mktemp candidate file in EDGE_DIR (mode 0644: the edge reads it as its user);
#   3. byte-identical to the current haproxy.cfg: removes the candidate, prints
#      "edge config: unchanged", touches nothing else (no backup, no reload);
#   4. validates the candidate; invalid: removes it, quotes HAProxy's messages, exits 1 leaving the
#      current haproxy.cfg as it was;
#   5. copies the current file to a mktemp file renamed over haproxy.cfg.previous, renames the
#      candidate over haproxy.cfg;
#   6. if the edge is running, reloads it: "edge config: installed and reloaded"; otherwise
#      "edge config: installed" (the edge reads it when it starts);
#   7. if the reload command fails: puts the previous haproxy.cfg back (same bytes) and exits 1.
# The reload is asynchronous in HAProxy: a zero exit of the reload command means the signal was
# delivered. The candidate was validated by the same HAProxy build, so the new workers load it.
#
# Stdout on success (exit 0): "edge config: <installed|installed and reloaded|unchanged>", then, always
# the last line, "edge user: <uid>:<gid>": the user to run the edge container as.
# Exit codes: 0 installed or unchanged; 1 invalid config, failed check or failed reload (the edge
# keeps its current config; stderr says what is where); 2 bad input or a refused path, nothing
# changed; 6 lock not obtained in time.

set -u

err() { printf 'install-edge-config: %s\n' "$*" >&2; }
die() { code=$1; shift; err "$*"; exit "$code"; }

EDGE_DIR=${EDGE_DIR:-}
EDGE_CONTROL_DIR=${EDGE_CONTROL_DIR:-}
EDGE_RUN_DIR=${EDGE_RUN_DIR:-}
EDGE_USER=${EDGE_USER:-}
EDGE_IMAGE=${EDGE_IMAGE:-}
EDGE_CONTAINER=${EDGE_CONTAINER:-}
EDGE_CHECK_COMMAND=${EDGE_CHECK_COMMAND:-}
EDGE_RUNNING_COMMAND=${EDGE_RUNNING_COMMAND:-}
EDGE_RELOAD_COMMAND=${EDGE_RELOAD_COMMAND:-}
EDGE_LOCK_TIMEOUT=${EDGE_LOCK_TIMEOUT:-120}
EDGE_LOCK_METHOD=${EDGE_LOCK_METHOD:-auto}

# ---- inputs ---------------------------------------------------------------------------------
absolute_dir() {
    case "$2" in
        /?*) ;;
        '') die 2 "$1 is required ($3); nothing changed" ;;
        *) die 2 "$1 must be an absolute path, got '$2'; nothing changed" ;;
    esac
}
absolute_dir EDGE_DIR "$EDGE_DIR" "the host folder holding haproxy.cfg"
absolute_dir EDGE_CONTROL_DIR "$EDGE_CONTROL_DIR" "the host folder for the edge lock, not mounted into the edge"
EDGE_DIR=${EDGE_DIR%/}
EDGE_CONTROL_DIR=${EDGE_CONTROL_DIR%/}
EDGE_RUN_DIR=${EDGE_RUN_DIR:-$(dirname "$EDGE_DIR")/edge-run}
absolute_dir EDGE_RUN_DIR "$EDGE_RUN_DIR" "the host folder for the edge's sockets"
EDGE_RUN_DIR=${EDGE_RUN_DIR%/}
for pair in "EDGE_DIR=$EDGE_DIR:EDGE_CONTROL_DIR=$EDGE_CONTROL_DIR" "EDGE_DIR=$EDGE_DIR:EDGE_RUN_DIR=$EDGE_RUN_DIR" \
    "EDGE_CONTROL_DIR=$EDGE_CONTROL_DIR:EDGE_RUN_DIR=$EDGE_RUN_DIR"; do
    first=${pair%%:*} second=${pair#*:}
    [ "${first#*=}" = "${second#*=}" ] && die 2 "${first%%=*} and ${second%%=*} are the same folder ${first#*=}; each must be a folder of its own; nothing changed"
done
CONFIG="$EDGE_DIR/haproxy.cfg"
BACKUP="$CONFIG.previous"
EDGE_LOCK_FILE=${EDGE_LOCK_FILE:-$EDGE_CONTROL_DIR/edge.lock}

# The edge's user: never root; the script's own user when it is not root.
script_user="$(id -u):$(id -g)"
case "$EDGE_USER" in
    '') ;;
    *[!0-9:]* | *:*:* | :* | *:) die 2 "EDGE_USER must be <uid>:<gid> in numbers, got '$EDGE_USER'; nothing changed" ;;
    *:*) ;;
    *) die 2 "EDGE_USER must be <uid>:<gid> in numbers, got '$EDGE_USER'; nothing changed" ;;
esac
if [ "$(id -u)" -eq 0 ]; then
    [ -n "$EDGE_USER" ] || die 2 "EDGE_USER is required when run as root (the <uid>:<gid> the edge runs as, not root); nothing changed"
    [ "${EDGE_USER%%:*}" -ne 0 ] || die 2 "EDGE_USER must not be uid 0, got '$EDGE_USER': the edge does not run as root; nothing changed"
else
    [ -z "$EDGE_USER" ] || [ "$EDGE_USER" = "$script_user" ] ||
        die 2 "EDGE_USER is '$EDGE_USER', but run as $script_user (not root) this script cannot give the edge's folder to another user: the edge runs as $script_user; unset EDGE_USER or set it to $script_user; nothing changed"
    EDGE_USER=$script_user
fi
EDGE_UID=${EDGE_USER%%:*}
EDGE_GID=${EDGE_USER#*:}

case "$EDGE_LOCK_TIMEOUT" in
    '' | *[!0-9]*) die 2 "EDGE_LOCK_TIMEOUT must be a whole number of seconds, got '$EDGE_LOCK_TIMEOUT'; nothing changed" ;;
esac
# shellcheck disable=SC2209 # "mkdir" is the method's name, not a command to run
case "$EDGE_LOCK_METHOD" in
    auto) if command -v flock >/dev/null 2>&1; then EDGE_LOCK_METHOD=flock; else EDGE_LOCK_METHOD=mkdir; fi ;;
    flock) command -v flock >/dev/null 2>&1 || die 2 "EDGE_LOCK_METHOD=flock but flock is not installed; nothing changed" ;;
    mkdir) ;;
    *) die 2 "EDGE_LOCK_METHOD must be auto, flock or mkdir, got '$EDGE_LOCK_METHOD'; nothing changed" ;;
esac
if [ -z "$EDGE_CHECK_COMMAND" ] && [ -z "$EDGE_IMAGE" ]; then
    die 2 "EDGE_IMAGE is required to validate the config (or set EDGE_CHECK_COMMAND); nothing changed"
fi
if [ -z "$EDGE_CONTAINER" ] && { [ -z "$EDGE_RUNNING_COMMAND" ] || [ -z "$EDGE_RELOAD_COMMAND" ]; }; then
    die 2 "EDGE_CONTAINER is required (or set both EDGE_RUNNING_COMMAND and EDGE_RELOAD_COMMAND); nothing changed"
fi
[ -t 0 ] && die 2 "the new haproxy.cfg is read from stdin, which is a terminal; pipe the config in; nothing changed"

# ---- folders (see "What is checked") --------------------------------------------------------
. "${MEDUSA_DEPLOY_HOST_LIB:-$(dirname "$0")/lib}/safe-files.sh" # medusa-deploy:inline lib/safe-files.sh
refuse() { die 2 "$1; refusing to install, nothing changed"; }

# edge-run/ belongs to the edge user: a folder, not a link; as root, whoever owns it, it is then given
# to the edge user; not as root, owned by this user (who is the edge user).
run_dir_ok() {
    if [ -L "$EDGE_RUN_DIR" ]; then SAFE_PROBLEM="$EDGE_RUN_DIR is a symbolic link"; return 1; fi
    [ -e "$EDGE_RUN_DIR" ] || return 0
    if [ ! -d "$EDGE_RUN_DIR" ]; then SAFE_PROBLEM="$EDGE_RUN_DIR exists and is not a folder"; return 1; fi
    # shellcheck disable=SC2046
    set -- $(ls -ldn "$EDGE_RUN_DIR")
    if [ "$3" != "$EDGE_UID" ] && [ "$3" != "$SAFE_UID" ]; then
        [ "$SAFE_UID" -eq 0 ] ||
            { SAFE_PROBLEM="$EDGE_RUN_DIR is owned by uid $3, not by uid $SAFE_UID that this script and the edge run as"; return 1; }
    fi
    return 0
}

# Everything is checked first; only then are absent folders created.
for dir in "$EDGE_DIR" "$EDGE_CONTROL_DIR"; do
    safe_dir_state "$dir"
    [ $? -eq 1 ] && refuse "$SAFE_PROBLEM"
done
run_dir_ok || refuse "$SAFE_PROBLEM"
parent=$(dirname "$EDGE_DIR")
if [ ! -d "$parent" ] && [ ! -L "$parent" ]; then
    (umask 022 && mkdir -p "$parent") || die 1 "cannot create $parent; nothing changed"
fi
for dir in "$EDGE_DIR" "$EDGE_CONTROL_DIR" "$EDGE_RUN_DIR"; do
    safe_parent_ok "$dir" || refuse "$SAFE_PROBLEM"
done
safe_file_ok "$CONFIG" || refuse "$SAFE_PROBLEM"
safe_file_ok "$BACKUP" || refuse "$SAFE_PROBLEM"
safe_dir "$EDGE_DIR" 0755 create || refuse "$SAFE_PROBLEM"
safe_dir "$EDGE_CONTROL_DIR" 0700 create || refuse "$SAFE_PROBLEM"

. "${MEDUSA_DEPLOY_HOST_LIB:-$(dirname "$0")/lib}/edge-lock.sh" # medusa-deploy:inline lib/edge-lock.sh
CANDIDATE=""
cleanup() {
    safe_cleanup
    [ -n "$LOCK_DIR" ] && rm -rf "$LOCK_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
take_edge_lock

# ---- 1. the edge's socket folder --------------------------------------------------------------
run_dir_ok || refuse "$SAFE_PROBLEM"
if [ ! -d "$EDGE_RUN_DIR" ]; then
    mkdir -m 0700 "$EDGE_RUN_DIR" 2>/dev/null || [ -d "$EDGE_RUN_DIR" ] || die 1 "cannot create $EDGE_RUN_DIR; nothing changed"
    run_dir_ok || refuse "$SAFE_PROBLEM"
fi
if [ "$SAFE_UID" -eq 0 ]; then
    chown -h "$EDGE_UID:$EDGE_GID" "$EDGE_RUN_DIR" || die 1 "cannot give $EDGE_RUN_DIR to the edge user $EDGE_USER; $CONFIG was not touched"
fi
chmod 0700 "$EDGE_RUN_DIR" || die 1 "cannot set mode 0700 on $EDGE_RUN_DIR; $CONFIG was not touched"

# ---- 1b. the files the config reads besides itself -----------------------------------------------
# Written before the check, which loads them. New names only: a running edge never sees a change.
EDGE_SIDE_FILES=${EDGE_SIDE_FILES:-}
EDGE_MAPS=${EDGE_MAPS:-}
side_index=0
for side_name in $EDGE_SIDE_FILES; do
    side_index=$((side_index + 1))
    case "$side_name" in
        *[!a-z0-9.-]* | -* | *..*) die 2 "EDGE_SIDE_FILES: '$side_name' is not a side-file name (lowercase words, a 12-digit hash, .lua or .html); nothing changed" ;;
        *-????????????.lua | *-????????????.html) ;;
        *) die 2 "EDGE_SIDE_FILES: '$side_name' is not a side-file name (lowercase words, a 12-digit hash, .lua or .html); nothing changed" ;;
    esac
    side_path="$EDGE_DIR/$side_name"
    safe_file_ok "$side_path" || refuse "$SAFE_PROBLEM"
    [ -f "$side_path" ] && continue
    eval "side_content=\${EDGE_SIDE_FILE_$side_index-}"
    [ -n "$side_content" ] || die 2 "EDGE_SIDE_FILE_$side_index (the content of $side_name) is empty or unset; nothing changed"
    side_temp=""
    safe_temp side_temp "$EDGE_DIR" "$side_name" || die 1 "$SAFE_PROBLEM; $CONFIG was not touched"
    printf '%s' "$side_content" >"$side_temp" && chmod 0644 "$side_temp" ||
        die 1 "cannot write $side_temp (disk full?); $CONFIG was not touched"
    safe_replace "$side_temp" "$side_path" || die 1 "$SAFE_PROBLEM; $CONFIG was not touched"
done
for map_name in $EDGE_MAPS; do
    case "$map_name" in
        maintenance.map | preview.map | assets.map) ;;
        *) die 2 "EDGE_MAPS: '$map_name' is not one of maintenance.map, preview.map, assets.map; nothing changed" ;;
    esac
    map_path="$EDGE_DIR/$map_name"
    safe_file_ok "$map_path" || refuse "$SAFE_PROBLEM"
    [ -f "$map_path" ] && continue
    map_temp=""
    safe_temp map_temp "$EDGE_DIR" "$map_name" || die 1 "$SAFE_PROBLEM; $CONFIG was not touched"
    if [ "$map_name" = maintenance.map ]; then printf 'mode off\n' >"$map_temp"; fi
    chmod 0644 "$map_temp" && safe_replace "$map_temp" "$map_path" || die 1 "cannot create $map_path: ${SAFE_PROBLEM:-chmod failed}; $CONFIG was not touched"
done

# ---- 2. candidate -----------------------------------------------------------------------------
# A dot name inside EDGE_DIR: same filesystem as haproxy.cfg (atomic rename) and visible through the
# mount used by the default check. The edge never reads it: it loads haproxy.cfg only.
safe_temp CANDIDATE "$EDGE_DIR" haproxy.cfg.candidate || die 1 "$SAFE_PROBLEM; nothing changed"
cat >"$CANDIDATE" || die 1 "cannot write the candidate $CANDIDATE (disk full?); $CONFIG was not touched"
[ -s "$CANDIDATE" ] || die 2 "the config on stdin is empty; $CONFIG was not touched"
chmod 0644 "$CANDIDATE" || die 1 "cannot chmod $CANDIDATE; $CONFIG was not touched"

safe_file_ok "$CONFIG" || refuse "$SAFE_PROBLEM"
if [ -f "$CONFIG" ] && cmp -s "$CANDIDATE" "$CONFIG"; then
    echo "edge config: unchanged"
    echo "edge user: $EDGE_USER"
    exit 0
fi

# ---- 3. validation --------------------------------------------------------------------------
candidate_name=$(basename "$CANDIDATE")
if [ -n "$EDGE_CHECK_COMMAND" ]; then
    check_output=$(eval "$EDGE_CHECK_COMMAND \"\$CANDIDATE\"" 2>&1 </dev/null 9>&-)
    check_status=$?
else
    check_output=$(docker run --rm --user "$EDGE_USER" --network none -v "$EDGE_DIR:/usr/local/etc/haproxy:ro" \
        "$EDGE_IMAGE" haproxy -c -f "/usr/local/etc/haproxy/$candidate_name" 2>&1 </dev/null 9>&-)
    check_status=$?
fi
if [ "$check_status" -ne 0 ]; then
    case "$check_status" in
        125 | 126 | 127) what="the config check could not run (exit $check_status)" ;;
        *) what="the new config is invalid (check exit $check_status)" ;;
    esac
    err "$what; $CONFIG was not changed and the running edge keeps its current config."
    err "check output (the candidate file was $candidate_name):"
    printf '%s\n' "$check_output" | sed 's/^/    /' >&2
    exit 1
fi
# Warnings do not block, but an operator wants to see them.
printf '%s\n' "$check_output" | grep -E '\[(WARNING|ALERT)\]' | sed 's/^/install-edge-config: check: /' >&2

# ---- 4. install -------------------------------------------------------------------------------
had_previous=no
safe_file_ok "$CONFIG" || refuse "$SAFE_PROBLEM"
if [ -f "$CONFIG" ]; then
    previous=""
    if ! safe_copy "$CONFIG" previous "$EDGE_DIR" haproxy.cfg.previous || ! safe_replace "$previous" "$BACKUP"; then
        die 1 "cannot keep a backup of $CONFIG as $BACKUP: $SAFE_PROBLEM; $CONFIG was not changed"
    fi
    had_previous=yes
fi
safe_replace "$CANDIDATE" "$CONFIG" || die 1 "$SAFE_PROBLEM; $CONFIG was not changed"
CANDIDATE=""

# ---- 5. reload --------------------------------------------------------------------------------
if [ -n "$EDGE_RUNNING_COMMAND" ]; then
    running=$(eval "$EDGE_RUNNING_COMMAND" 2>/dev/null </dev/null 9>&-)
else
    running=$(docker inspect -f '{{.State.Running}}' "$EDGE_CONTAINER" 2>/dev/null </dev/null 9>&-)
fi
if [ "$running" != true ]; then
    echo "edge config: installed"
    echo "edge user: $EDGE_USER"
    exit 0
fi

if [ -n "$EDGE_RELOAD_COMMAND" ]; then
    reload_output=$(eval "$EDGE_RELOAD_COMMAND" 2>&1 </dev/null 9>&-)
else
    reload_output=$(docker kill -s HUP "$EDGE_CONTAINER" 2>&1 </dev/null 9>&-)
fi
reload_status=$?
if [ "$reload_status" -eq 0 ]; then
    echo "edge config: installed and reloaded"
    echo "edge user: $EDGE_USER"
    exit 0
fi

# ---- 6. reload failed: put the previous config back -------------------------------------------
err "reloading the edge failed (exit $reload_status):"
printf '%s\n' "$reload_output" | sed 's/^/    /' >&2
if [ "$had_previous" = yes ]; then
    restored=""
    if safe_file_ok "$BACKUP" && safe_copy "$BACKUP" restored "$EDGE_DIR" haproxy.cfg.restore && safe_replace "$restored" "$CONFIG"; then
        die 1 "restored the previous $CONFIG; the running edge keeps the config it was running."
    fi
    die 1 "could not restore $BACKUP over $CONFIG ($SAFE_PROBLEM): $CONFIG holds the NEW config, which the running edge did not load; restore it by hand (cp -p '$BACKUP' '$CONFIG')."
fi
safe_file_ok "$CONFIG" && rm -f "$CONFIG" && die 1 "removed the new $CONFIG (there was none before); the running edge keeps the config it was running."
die 1 "could not remove the new $CONFIG (there was none before): the running edge did not load it; remove it by hand."
