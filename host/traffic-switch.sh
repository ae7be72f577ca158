#!/bin/sh
# traffic-switch.sh: move the edge's live traffic to one colour, health-gated, verified, and
# reverted on failure. Never reloads or restarts HAProxy: it uses the admin socket's runtime API.
#
# Runs on the docker host (POSIX sh; needs socat and curl; flock is used when installed).
#
# Environment (inputs):
#   EDGE_ADMIN_SOCKET   required. Host path of the edge's admin UNIX socket
#                       (haproxy.cfg: stats socket ... level admin).
#   EDGE_STATE_FILE     required. Host path of the server-state file the edge loads at start
#                       (haproxy.cfg: server-state-file + load-server-state-from-file global).
#                       Its folder must be the one mounted into the edge, so the rename is seen.
#   TARGET_COLOUR       required. blue | green.
#   VERIFY_URL          required. A URL through the edge, e.g. http://127.0.0.1:8080/health.
#   EDGE_BACKEND        HAProxy backend holding one server per colour. Default: medusa.
#   EDGE_COLOUR_HEADER  Response header the edge sets to the serving server. Default: X-Medusa-Colour.
#   VERIFY_TIMEOUT      Seconds allowed for verification. Default: 30.
#   HEALTH_WAIT_TIMEOUT Seconds to wait for HAProxy's own checks to call the target UP before
#                       refusing. Default: 30.
#   VERIFY_REQUESTS     Consecutive verified responses required. Default: 5.
#   EDGE_LOCK_FILE      Lock serialising switches. Default: "$EDGE_STATE_FILE.lock".
#   EDGE_LOCK_TIMEOUT   Seconds to wait for another switch to finish. Default: 120.
#   EDGE_LOCK_METHOD    auto | flock | mkdir. Default: auto (flock when installed, else mkdir).
#
# What it does, holding the lock:
#   1. reads both servers' runtime states (show servers state <backend>);
#   2. refuses, changing nothing, when the target is not UP by HAProxy's own health checks;
#   3. if the target is already the only routed colour and the state file says so: "already live";
#   4. set server <be>/<target> state ready + weight 100%, then set server <be>/<old> state drain,
#      in one admin command line (target first, so there is never a moment with no routed server);
#   5. writes `show servers state` to EDGE_STATE_FILE atomically (temp file + mv), so a restarted
#      edge comes back on the target;
#   6. verifies through the edge: VERIFY_REQUESTS consecutive 2xx/3xx responses to VERIFY_URL whose
#      EDGE_COLOUR_HEADER names the target, within VERIFY_TIMEOUT;
#   7. on any failure after step 4 (or SIGINT/SIGTERM): restores both servers' previous admin states
#      and weights and the previous state file (same bytes), and exits non-zero.
#   The last stdout line on success is "live: <colour>".
#
# Why ready/drain and not weights: "drain" is an admin flag, separate from the configured weight;
# the new connections of a drained server go to the others while its in-flight requests finish,
# its health checks keep running (so a switch back is gated on fresh checks), and
# `show servers state` persists it, which a restarted edge re-applies ("remains in forced drain
# mode"). A runtime weight of 0 does the same routing, but HAProxy ties a persisted weight to the
# configured one, so a drain flag is the sturdier thing to persist. Measured: 0 failed requests under
# keep-alive load across repeated switches (tests/host/trafficSwitch.test.ts, bench/switch.ts).
#
# Exit codes:
#   0  target is live (switched, or already live)
#   2  bad input or missing tool; nothing changed
#   3  refused: target not healthy, or edge unreachable; nothing changed
#   4  switch failed after routing changed; routing and state file restored
#   5  switch failed and restoring failed too; stderr says what is left where
#   6  lock not obtained in time; nothing changed

set -u

say() { printf '%s\n' "$*"; }
err() { printf 'traffic-switch: %s\n' "$*" >&2; }
die() { code=$1; shift; err "$*"; exit "$code"; }

# ---- inputs ---------------------------------------------------------------------------------
EDGE_ADMIN_SOCKET=${EDGE_ADMIN_SOCKET:-}
EDGE_STATE_FILE=${EDGE_STATE_FILE:-}
TARGET_COLOUR=${TARGET_COLOUR:-}
VERIFY_URL=${VERIFY_URL:-}
EDGE_BACKEND=${EDGE_BACKEND:-medusa}
EDGE_COLOUR_HEADER=${EDGE_COLOUR_HEADER:-X-Medusa-Colour}
VERIFY_TIMEOUT=${VERIFY_TIMEOUT:-30}
HEALTH_WAIT_TIMEOUT=${HEALTH_WAIT_TIMEOUT:-30}
VERIFY_REQUESTS=${VERIFY_REQUESTS:-5}
EDGE_LOCK_FILE=${EDGE_LOCK_FILE:-${EDGE_STATE_FILE}.lock}
EDGE_LOCK_TIMEOUT=${EDGE_LOCK_TIMEOUT:-120}
EDGE_LOCK_METHOD=${EDGE_LOCK_METHOD:-auto}

case "$TARGET_COLOUR" in
    blue) OTHER_COLOUR=green ;;
    green) OTHER_COLOUR=blue ;;
    *) die 2 "TARGET_COLOUR must be blue or green, got '$TARGET_COLOUR'; nothing changed" ;;
esac
[ -n "$EDGE_ADMIN_SOCKET" ] || die 2 "EDGE_ADMIN_SOCKET is not set; nothing changed"
[ -n "$EDGE_STATE_FILE" ] || die 2 "EDGE_STATE_FILE is not set; nothing changed"
[ -n "$VERIFY_URL" ] || die 2 "VERIFY_URL is not set (a URL through the edge); nothing changed"
for number in VERIFY_TIMEOUT VERIFY_REQUESTS EDGE_LOCK_TIMEOUT HEALTH_WAIT_TIMEOUT; do
    eval "value=\$$number"
    case "$value" in
        ''|*[!0-9]*) die 2 "$number must be a whole number of seconds/requests, got '$value'; nothing changed" ;;
    esac
done
[ "$VERIFY_REQUESTS" -ge 1 ] || die 2 "VERIFY_REQUESTS must be at least 1; nothing changed"
case "$EDGE_BACKEND" in
    ''|*[!A-Za-z0-9_.:-]*) die 2 "EDGE_BACKEND '$EDGE_BACKEND' is not a HAProxy backend name; nothing changed" ;;
esac
for tool in socat curl awk; do
    command -v "$tool" >/dev/null 2>&1 || die 2 "'$tool' is not installed on this host; nothing changed"
done
STATE_DIR=$(dirname "$EDGE_STATE_FILE")
[ -d "$STATE_DIR" ] || die 2 "the state file's folder $STATE_DIR does not exist; nothing changed"

# ---- lock ------------------------------------------------------------------------------------
. "${MEDUSA_DEPLOY_HOST_LIB:-$(dirname "$0")/lib}/edge-lock.sh" # medusa-deploy:inline lib/edge-lock.sh
TEMP_FILES=""
release() {
    [ -n "$LOCK_DIR" ] && rm -rf "$LOCK_DIR"
    # shellcheck disable=SC2086
    [ -n "$TEMP_FILES" ] && rm -f $TEMP_FILES
}
trap release EXIT
take_edge_lock

# ---- admin socket ----------------------------------------------------------------------------
# One command line per connection; HAProxy answers and closes. Several commands may be joined by ';'.
admin() {
    printf '%s\n' "$1" | socat -t 10 -T 10 - "UNIX-CONNECT:$EDGE_ADMIN_SOCKET" 2>&1
}

# Runs "set ..." commands, which print nothing on success: any text back is HAProxy's error.
admin_set() {
    answer=$(admin "$1") || { ADMIN_ERROR="admin socket $EDGE_ADMIN_SOCKET: $answer"; return 1; }
    answer=$(printf '%s' "$answer" | tr -s '\n' ' ' | sed 's/^ *//; s/ *$//')
    [ -z "$answer" ] && return 0
    ADMIN_ERROR="HAProxy refused '$1': $answer"
    return 1
}

# Prints "<op_state> <admin_state> <user_weight>" of server $2 in backend $1 of a
# `show servers state` dump read on stdin; fails when the server is absent.
server_fields() {
    awk -v be="$1" -v srv="$2" '
        $1 !~ /^#/ && NF >= 9 && $2 == be && $4 == srv { print $6, $7, $8; found = 1; exit }
        END { if (!found) exit 1 }'
}

# Admin-state bits (HAProxy's SRV_ADMF_*): 0x01 forced maintenance, 0x02/0x04 inherited/configured
# maintenance, 0x08 forced drain, 0x10 inherited drain, 0x20 DNS-resolution maintenance (name does
# not resolve: container absent), 0x40 hostname-resolution maintenance.
MAINT_BITS=103      # 0x67: any kind of maintenance
ROUTING_BITS=9      # 0x09: forced maintenance or forced drain: what an operator (this script) sets
OP_RUNNING=2

read_runtime() {
    DUMP=$(admin "show servers state $EDGE_BACKEND") ||
        die 3 "cannot reach the edge's admin socket $EDGE_ADMIN_SOCKET ($DUMP); nothing changed"
    fields=$(printf '%s\n' "$DUMP" | server_fields "$EDGE_BACKEND" "$TARGET_COLOUR") ||
        die 3 "the edge has no server $EDGE_BACKEND/$TARGET_COLOUR (answer: $(printf '%s' "$DUMP" | head -n 3 | tr '\n' ' ')); nothing changed"
    set -- $fields
    T_OP=$1 T_ADMIN=$2 T_WEIGHT=$3
    fields=$(printf '%s\n' "$DUMP" | server_fields "$EDGE_BACKEND" "$OTHER_COLOUR") ||
        die 3 "the edge has no server $EDGE_BACKEND/$OTHER_COLOUR; nothing changed"
    set -- $fields
    O_OP=$1 O_ADMIN=$2 O_WEIGHT=$3
}

routed() { [ $(($1 & ROUTING_BITS)) -eq 0 ]; }

# Where traffic goes by admin intent, for messages: "blue", "green", "blue and green" or "none".
live_description() {
    desc=""
    for pair in "blue:$1" "green:$2"; do
        if routed "${pair#*:}"; then desc="${desc:+$desc and }${pair%%:*}"; fi
    done
    printf '%s' "${desc:-none}"
}

# ---- 1. current state --------------------------------------------------------------------------
read_runtime
if [ "$TARGET_COLOUR" = blue ]; then OLD_LIVE=$(live_description "$T_ADMIN" "$O_ADMIN")
else OLD_LIVE=$(live_description "$O_ADMIN" "$T_ADMIN"); fi

# ---- 2. health gate ----------------------------------------------------------------------------
# Docker may call the target healthy a moment before HAProxy's own checks (rise 2, 1 s apart, after
# re-resolving a new container's name) do: wait for HAProxy, up to HEALTH_WAIT_TIMEOUT.
target_up() { [ "$T_OP" -eq "$OP_RUNNING" ] && [ $((T_ADMIN & MAINT_BITS)) -eq 0 ]; }
health_waited=0
while ! target_up && [ "$health_waited" -lt "$HEALTH_WAIT_TIMEOUT" ]; do
    sleep 1
    health_waited=$((health_waited + 1))
    read_runtime
done
if ! target_up; then
    why="HAProxy's health checks report it down"
    [ $((T_ADMIN & 32)) -ne 0 ] && why="its address does not resolve (container absent?)"
    [ $((T_ADMIN & 7)) -ne 0 ] && why="it is in maintenance"
    die 3 "refusing to switch to $TARGET_COLOUR: $why after waiting ${HEALTH_WAIT_TIMEOUT}s (op_state $T_OP, admin_state $T_ADMIN); nothing changed, traffic stays on $OLD_LIVE"
fi

# ---- 3. already live? --------------------------------------------------------------------------
persisted_matches_runtime() {
    [ -f "$EDGE_STATE_FILE" ] || return 1
    fields=$(server_fields "$EDGE_BACKEND" "$TARGET_COLOUR" <"$EDGE_STATE_FILE") || return 1
    set -- $fields
    [ $(($2 & ROUTING_BITS)) -eq $((T_ADMIN & ROUTING_BITS)) ] || return 1
    fields=$(server_fields "$EDGE_BACKEND" "$OTHER_COLOUR" <"$EDGE_STATE_FILE") || return 1
    set -- $fields
    [ $(($2 & ROUTING_BITS)) -eq $((O_ADMIN & ROUTING_BITS)) ]
}

if routed "$T_ADMIN" && ! routed "$O_ADMIN" && persisted_matches_runtime; then
    say "$TARGET_COLOUR is already live; nothing changed"
    say "live: $TARGET_COLOUR"
    exit 0
fi

# ---- 4-7. switch, persist, verify; revert on failure --------------------------------------------
BACKUP="$EDGE_STATE_FILE.previous.$$"
NEW_STATE="$EDGE_STATE_FILE.new.$$"
TEMP_FILES="$BACKUP $NEW_STATE"
HAD_STATE_FILE=no
if [ -f "$EDGE_STATE_FILE" ]; then
    cp -p "$EDGE_STATE_FILE" "$BACKUP" || die 3 "cannot back up $EDGE_STATE_FILE; nothing changed"
    HAD_STATE_FILE=yes
fi
ROUTING_CHANGED=no

# Commands that put one server back as it was: ready, then its old drain/maintenance, then weight.
restore_commands() {
    cmds="set server $EDGE_BACKEND/$1 state ready"
    [ $(($2 & 8)) -ne 0 ] && cmds="$cmds; set server $EDGE_BACKEND/$1 state drain"
    [ $(($2 & 1)) -ne 0 ] && cmds="$cmds; set server $EDGE_BACKEND/$1 state maint"
    printf '%s; set weight %s/%s %s' "$cmds" "$EDGE_BACKEND" "$1" "$3"
}

revert_and_fail() {
    why=$1
    trap - INT TERM HUP
    problems=""
    if [ "$ROUTING_CHANGED" = yes ]; then
        # The old colour first, so that some server stays routed at every moment.
        admin_set "$(restore_commands "$OTHER_COLOUR" "$O_ADMIN" "$O_WEIGHT"); $(restore_commands "$TARGET_COLOUR" "$T_ADMIN" "$T_WEIGHT")" ||
            problems="routing NOT restored ($ADMIN_ERROR): traffic may still go to $TARGET_COLOUR"
    fi
    if [ "$HAD_STATE_FILE" = yes ]; then
        mv -f "$BACKUP" "$EDGE_STATE_FILE" ||
            problems="${problems:+$problems; }state file $EDGE_STATE_FILE NOT restored (previous copy kept in $BACKUP)"
    else
        rm -f "$EDGE_STATE_FILE" ||
            problems="${problems:+$problems; }new state file $EDGE_STATE_FILE could NOT be removed"
    fi
    if [ -n "$problems" ]; then
        TEMP_FILES="$NEW_STATE"
        die 5 "switch to $TARGET_COLOUR failed: $why; restoring failed too: $problems"
    fi
    die 4 "switch to $TARGET_COLOUR failed: $why; traffic restored to $OLD_LIVE"
}
trap 'revert_and_fail "interrupted by a signal"' INT TERM HUP

say "switching $EDGE_BACKEND from $OLD_LIVE to $TARGET_COLOUR"
ROUTING_CHANGED=yes
admin_set "set server $EDGE_BACKEND/$TARGET_COLOUR state ready; set weight $EDGE_BACKEND/$TARGET_COLOUR 100%; set server $EDGE_BACKEND/$OTHER_COLOUR state drain" ||
    revert_and_fail "$ADMIN_ERROR"

# Persist what HAProxy now runs, all backends, in the format it loads at start.
DUMP=$(admin "show servers state") || revert_and_fail "cannot read the server state to persist it ($DUMP)"
printf '%s\n' "$DUMP" >"$NEW_STATE" || revert_and_fail "cannot write $NEW_STATE"
fields=$(server_fields "$EDGE_BACKEND" "$TARGET_COLOUR" <"$NEW_STATE") && [ "$(head -n 1 "$NEW_STATE")" = 1 ] ||
    revert_and_fail "the edge's state dump is not in the expected format (version 1): $(head -n 2 "$NEW_STATE" | tr '\n' ' ')"
set -- $fields
routed "$2" || revert_and_fail "the edge still reports $TARGET_COLOUR as not routed (admin_state $2)"
chmod 0644 "$NEW_STATE" && mv -f "$NEW_STATE" "$EDGE_STATE_FILE" ||
    revert_and_fail "cannot replace $EDGE_STATE_FILE"

# Verify through the edge: the target must answer, and nothing else.
deadline=$(($(date +%s) + VERIFY_TIMEOUT))
streak=0
last_problem="no request completed"
while [ "$streak" -lt "$VERIFY_REQUESTS" ]; do
    now=$(date +%s)
    [ "$now" -ge "$deadline" ] &&
        revert_and_fail "verification through $VERIFY_URL did not see $VERIFY_REQUESTS consecutive responses from $TARGET_COLOUR within ${VERIFY_TIMEOUT}s (last: $last_problem)"
    budget=$((deadline - now))
    [ "$budget" -gt 5 ] && budget=5
    headers=$(curl -sS -o /dev/null -D - --max-time "$budget" "$VERIFY_URL" 2>&1)
    curl_status=$?
    headers=$(printf '%s\n' "$headers" | tr -d '\r')
    status=$(printf '%s\n' "$headers" | awk '/^HTTP\// { code = $2 } END { print code }')
    served_by=$(printf '%s\n' "$headers" | awk -v h="$EDGE_COLOUR_HEADER" '
        { name = $0; sub(/:.*/, "", name) }
        tolower(name) == tolower(h) { value = $0; sub(/^[^:]*:[ \t]*/, "", value); print value; exit }')
    if [ "$curl_status" -ne 0 ]; then
        last_problem=$(printf '%s\n' "$headers" | grep '^curl:' | head -n 1)
        last_problem=${last_problem:-curl exit $curl_status}
    else
        case "$status" in
            2??|3??)
                if [ "$served_by" = "$TARGET_COLOUR" ]; then streak=$((streak + 1)); continue; fi
                last_problem="HTTP $status served by '${served_by:-no $EDGE_COLOUR_HEADER header}'" ;;
            *) last_problem="HTTP ${status:-?} served by '${served_by:-no $EDGE_COLOUR_HEADER header}'" ;;
        esac
    fi
    streak=0
    sleep 0.2
done

trap - INT TERM HUP
[ "$HAD_STATE_FILE" = yes ] && rm -f "$BACKUP"
say "switched $EDGE_BACKEND to $TARGET_COLOUR (verified through $VERIFY_URL)"
say "live: $TARGET_COLOUR"
