#!/bin/sh
# install-edge-config.sh — install a new haproxy.cfg for the edge so that an invalid config is never
# left in place, and reload the running edge when the config changed.
# Runs on the docker host (POSIX sh). The new config comes on stdin.
#
# Environment (inputs):
#   EDGE_DIR             required. Absolute host folder holding haproxy.cfg; the edge container mounts
#                        it (at /usr/local/etc/haproxy for the official image). Created with mode 0750
#                        when absent. The candidate file is written here too, so it can be validated
#                        through the same mount and renamed atomically.
#   EDGE_IMAGE           HAProxy image used by the default validation, e.g. haproxy:2.8 (the image the
#                        edge runs). Required unless EDGE_CHECK_COMMAND is set.
#   EDGE_CONTAINER       Name of the edge container; it may not exist yet. Required unless both
#                        EDGE_RUNNING_COMMAND and EDGE_RELOAD_COMMAND are set.
#   EDGE_CHECK_COMMAND   Command that validates a config file; the file's path is appended as the last
#                        argument and a zero exit means valid. Default: validate with the image, with
#                        no network and the folder mounted read-only:
#                          docker run --rm --user 0 --network none -v "$EDGE_DIR:/usr/local/etc/haproxy:ro" \
#                            "$EDGE_IMAGE" haproxy -c -f /usr/local/etc/haproxy/<candidate file name>
#                        (the appended path is then the one inside the container). As root: the folder
#                        is root-owned 0750 and the official image's default user cannot read it.
#   EDGE_RUNNING_COMMAND Command that prints "true" when the edge is running (anything else, or a
#                        failure, means it is not running and nothing is reloaded).
#                        Default: docker inspect -f '{{.State.Running}}' "$EDGE_CONTAINER"
#   EDGE_RELOAD_COMMAND  Command that makes the running edge load haproxy.cfg again. Default:
#                        docker kill -s HUP "$EDGE_CONTAINER" (the official image runs HAProxy in
#                        master-worker mode, whose master reloads on SIGHUP without dropping
#                        connections). Commands are run by this shell (eval), so they may use quotes.
#   EDGE_LOCK_FILE       Lock serialising installs. Default: "$EDGE_DIR/haproxy.cfg.lock". Give
#                        host/traffic-switch.sh the same EDGE_LOCK_FILE (and EDGE_LOCK_METHOD) to keep
#                        a reload from interleaving with a switch.
#   EDGE_LOCK_TIMEOUT    Seconds to wait for the lock. Default: 120.
#   EDGE_LOCK_METHOD     auto | flock | mkdir. Default: auto (flock when installed, else a lock folder
#                        "$EDGE_LOCK_FILE.d" holding the owner's pid).
#   EDGE_ADMIN_SOCKET_OWNER  `installer`: the admin socket is made the property of the user running
#                        this script (its uid and gid are added to the config's `stats socket` line
#                        that has none), so the traffic switch, run by the same unprivileged user over
#                        ssh, can use it. Unset: the config is installed as given.
#   DOCKER_HOST          honoured by the docker CLI of the default commands.
#
# What it does, holding the lock:
#   1. writes stdin to a candidate file in EDGE_DIR (mode 0644: the edge may run as a non-root user);
#   2. byte-identical to the current haproxy.cfg: removes the candidate, prints
#      "edge config: unchanged", touches nothing else (no backup, no reload);
#   3. validates the candidate; invalid: removes it, quotes HAProxy's messages, exits 1 leaving the
#      current haproxy.cfg as it was;
#   4. keeps the current file as haproxy.cfg.previous, renames the candidate over haproxy.cfg;
#   5. if the edge is running, reloads it: "edge config: installed and reloaded"; otherwise
#      "edge config: installed" (the edge reads it when it starts);
#   6. if the reload command fails: puts the previous haproxy.cfg back (same bytes) and exits 1.
# The reload is asynchronous in HAProxy: a zero exit of the reload command means the signal was
# delivered. The candidate was validated by the same HAProxy build, so the new workers load it.
#
# Exit codes: 0 installed or unchanged; 1 invalid config, failed check or failed reload (the edge
# keeps its current config; stderr says what is where); 2 bad input; 6 lock not obtained in time.

set -u

err() { printf 'install-edge-config: %s\n' "$*" >&2; }
die() { code=$1; shift; err "$*"; exit "$code"; }

EDGE_DIR=${EDGE_DIR:-}
EDGE_IMAGE=${EDGE_IMAGE:-}
EDGE_CONTAINER=${EDGE_CONTAINER:-}
EDGE_CHECK_COMMAND=${EDGE_CHECK_COMMAND:-}
EDGE_RUNNING_COMMAND=${EDGE_RUNNING_COMMAND:-}
EDGE_RELOAD_COMMAND=${EDGE_RELOAD_COMMAND:-}
EDGE_LOCK_TIMEOUT=${EDGE_LOCK_TIMEOUT:-120}
EDGE_LOCK_METHOD=${EDGE_LOCK_METHOD:-auto}

# ---- inputs ---------------------------------------------------------------------------------
case "$EDGE_DIR" in
    /*) ;;
    '') die 2 "EDGE_DIR is required (the host folder holding haproxy.cfg); nothing changed" ;;
    *) die 2 "EDGE_DIR must be an absolute path, got '$EDGE_DIR'; nothing changed" ;;
esac
EDGE_DIR=${EDGE_DIR%/}
CONFIG="$EDGE_DIR/haproxy.cfg"
BACKUP="$CONFIG.previous"
EDGE_LOCK_FILE=${EDGE_LOCK_FILE:-$CONFIG.lock}

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

# ---- folder and lock ------------------------------------------------------------------------
if [ ! -d "$EDGE_DIR" ]; then
    mkdir -p "$(dirname "$EDGE_DIR")" && mkdir -m 0750 "$EDGE_DIR" 2>/dev/null || [ -d "$EDGE_DIR" ] ||
        die 1 "cannot create $EDGE_DIR; nothing changed"
fi

. "${MEDUSA_DEPLOY_HOST_LIB:-$(dirname "$0")/lib}/edge-lock.sh" # medusa-deploy:inline lib/edge-lock.sh
CANDIDATE=""
cleanup() {
    [ -n "$CANDIDATE" ] && rm -f "$CANDIDATE"
    [ -n "$LOCK_DIR" ] && rm -rf "$LOCK_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
take_edge_lock

# ---- candidate ------------------------------------------------------------------------------
# A dot name inside EDGE_DIR: same filesystem as haproxy.cfg (atomic rename) and visible through the
# mount used by the default check. The edge never reads it: it loads haproxy.cfg only.
CANDIDATE=$(mktemp "$EDGE_DIR/.haproxy.cfg.candidate.XXXXXX") ||
    die 1 "cannot create a candidate file in $EDGE_DIR; nothing changed"
cat >"$CANDIDATE" || die 1 "cannot write the candidate $CANDIDATE (disk full?); $CONFIG was not touched"
[ -s "$CANDIDATE" ] || die 2 "the config on stdin is empty; $CONFIG was not touched"
case "${EDGE_ADMIN_SOCKET_OWNER:-}" in
    '') ;;
    installer)
        owner="uid $(id -u) gid $(id -g)"
        # Only a socket line without an owner of its own; the same input gives the same bytes.
        sed "/^[[:space:]]*stats socket /{/ uid /!s/ mode \([0-7]*\)/ mode \1 $owner/;}" "$CANDIDATE" >"$CANDIDATE.owned" &&
            mv -f "$CANDIDATE.owned" "$CANDIDATE" ||
            die 1 "cannot set the admin socket's owner in $CANDIDATE; $CONFIG was not touched"
        grep -q "^[[:space:]]*stats socket .* $owner" "$CANDIDATE" ||
            die 2 "EDGE_ADMIN_SOCKET_OWNER=installer, but the config has no 'stats socket ... mode N' line to give an owner; $CONFIG was not touched" ;;
    *) die 2 "EDGE_ADMIN_SOCKET_OWNER must be 'installer' or unset, got '$EDGE_ADMIN_SOCKET_OWNER'; nothing changed" ;;
esac
chmod 0644 "$CANDIDATE" || die 1 "cannot chmod $CANDIDATE; $CONFIG was not touched"

if [ -f "$CONFIG" ] && cmp -s "$CANDIDATE" "$CONFIG"; then
    echo "edge config: unchanged"
    exit 0
fi

# ---- validation -----------------------------------------------------------------------------
candidate_name=$(basename "$CANDIDATE")
if [ -n "$EDGE_CHECK_COMMAND" ]; then
    check_output=$(eval "$EDGE_CHECK_COMMAND \"\$CANDIDATE\"" 2>&1 </dev/null 9>&-)
    check_status=$?
else
    check_output=$(docker run --rm --user 0 --network none -v "$EDGE_DIR:/usr/local/etc/haproxy:ro" \
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

# ---- install --------------------------------------------------------------------------------
had_previous=no
if [ -f "$CONFIG" ]; then
    cp -p "$CONFIG" "$BACKUP.tmp.$$" && mv -f "$BACKUP.tmp.$$" "$BACKUP" || {
        rm -f "$BACKUP.tmp.$$"
        die 1 "cannot keep a backup of $CONFIG as $BACKUP; $CONFIG was not changed"
    }
    had_previous=yes
fi
mv -f "$CANDIDATE" "$CONFIG" || die 1 "cannot rename the candidate over $CONFIG; $CONFIG was not changed"
CANDIDATE=""

# ---- reload ---------------------------------------------------------------------------------
if [ -n "$EDGE_RUNNING_COMMAND" ]; then
    running=$(eval "$EDGE_RUNNING_COMMAND" 2>/dev/null </dev/null 9>&-)
else
    running=$(docker inspect -f '{{.State.Running}}' "$EDGE_CONTAINER" 2>/dev/null </dev/null 9>&-)
fi
if [ "$running" != true ]; then
    echo "edge config: installed"
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
    exit 0
fi

err "reloading the edge failed (exit $reload_status):"
printf '%s\n' "$reload_output" | sed 's/^/    /' >&2
if [ "$had_previous" = yes ]; then
    if cp -p "$BACKUP" "$CONFIG.restore.$$" && mv -f "$CONFIG.restore.$$" "$CONFIG"; then
        die 1 "restored the previous $CONFIG; the running edge keeps the config it was running."
    fi
    rm -f "$CONFIG.restore.$$"
    die 1 "could not restore $BACKUP over $CONFIG: $CONFIG holds the NEW config, which the running edge did not load; restore it by hand (cp -p '$BACKUP' '$CONFIG')."
fi
rm -f "$CONFIG" && die 1 "removed the new $CONFIG (there was none before); the running edge keeps the config it was running."
die 1 "could not remove the new $CONFIG (there was none before): the running edge did not load it; remove it by hand."
