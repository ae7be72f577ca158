#!/bin/sh
# traffic-switch.sh: move the edge's live traffic to one colour, health-gated, verified, reverted on
# failure, then watched for a while and switched back if the new colour fails under real traffic.
# Never reloads or restarts HAProxy: it uses the admin socket's runtime API.
#
# Runs on the docker host (POSIX sh; needs socat, curl, awk and mktemp; flock is used when installed),
# often as root: see "Host layout and what is checked" below.
#
# Environment (inputs):
#   EDGE_ADMIN_SOCKET   required. Host path of the edge's admin UNIX socket, <hostStateDir>/edge-run/
#                       admin.sock (haproxy.cfg: stats socket ... level admin).
#   EDGE_STATE_FILE     required. Absolute host path of the server-state file the edge loads at start,
#                       <hostStateDir>/edge/server-state (haproxy.cfg: server-state-file +
#                       load-server-state-from-file global). Its folder must be the one mounted
#                       (read-only) into the edge, so the rename is seen.
#   EDGE_CONTROL_DIR    required. Absolute host folder <hostStateDir>/edge-control, never mounted into
#                       the edge: the lock, the backup of the state file and every temporary file that
#                       is not renamed into the edge folder. Created (0700) when absent.
#   TARGET_COLOUR       required. blue | green.
#   VERIFY_URL          required. A URL through the edge, e.g. http://127.0.0.1:8080/health, or, with
#                       VERIFY_UNIX_SOCKET, http://edge/health (curl ignores the host part then).
#   VERIFY_UNIX_SOCKET  Host path of the edge's operator socket, <hostStateDir>/edge-run/operator.sock:
#                       every verification request goes through it (curl --unix-socket). Only the
#                       operator frontend bound there sets EDGE_COLOUR_HEADER; the public one strips
#                       it. Unset: requests go to VERIFY_URL over TCP.
#   EDGE_BACKEND        HAProxy backend holding one server per colour. Default: medusa.
#   EDGE_COLOUR_HEADER  Response header the edge sets to the serving server. Default: X-Medusa-Colour.
#   VERIFY_TIMEOUT      Seconds allowed for verification. Default: 30.
#   HEALTH_WAIT_TIMEOUT Seconds to wait for the edge's admin socket to answer (an edge just created
#                       or restarted) and for HAProxy's own checks to call the target UP before
#                       refusing. Default: 30.
#   VERIFY_REQUESTS     Consecutive verified responses required. Default: 5.
#   WATCH_SECONDS       Seconds to watch the new colour under real traffic after the switch; 0 turns
#                       the watch off. Default: 30.
#   WATCH_MAX_ERROR_RATE  Share of the new colour's requests that may fail during the watch (5xx,
#                       connection or response errors, by HAProxy's counters), 0..1. Default: 0.05.
#   WATCH_MIN_REQUESTS  Requests a rate is computed over, at least: fewer say nothing. Default: 20.
#   EDGE_LOCK_FILE      Lock serialising switches and config installs. Default:
#                       "$EDGE_CONTROL_DIR/edge.lock" ("edge.lock.d" with the mkdir method).
#   EDGE_LOCK_TIMEOUT   Seconds to wait for another switch to finish. Default: 120.
#   EDGE_LOCK_METHOD    auto | flock | mkdir. Default: auto (flock when installed, else mkdir).
#   (components/trafficSwitch.ts passes the watch settings explicitly; its defaults must match these.)
#
# Host layout and what is checked (issue 19: a link planted where a root-run script writes must not
# make it write elsewhere):
#   <hostStateDir>/edge/          the config folder: haproxy.cfg, server-state. Owned by the user this
#                                 script runs as, 0755, mounted READ-ONLY into the edge container.
#   <hostStateDir>/edge-control/  the lock, the state file's backup, temporary files. Owned by that
#                                 user, 0700, not mounted into the edge.
#   <hostStateDir>/edge-run/      the edge's sockets (admin.sock, operator.sock): the only folder the
#                                 edge can write. This script never writes there.
#   Before anything changes, edge/ and edge-control/ must be folders (not symbolic links), owned by
#   the uid this script runs as, writable by nobody else, in a folder nobody else can rename them in;
#   edge-control/ is created when absent. The lock file and lock folder, the state file and its
#   backup must not be symbolic links and must be a regular file (a folder for the mkdir lock) when
#   they exist, checked again right before each use. New files are only made by mktemp: the new
#   state file in edge/ (so mv is an atomic rename the edge sees), everything else in edge-control/;
#   nothing is written through a name this script did not just create. Each socket must be a socket
#   and not a symbolic link before every connection. A refusal says which path and what is wrong,
#   and exits 2 with nothing changed (before the switch; after it, the revert says what was left).
#   (A check and the connect that follows are not one step: the edge's user, who can write edge-run/,
#   could swap a socket for a link in between. What it reaches that way is a connection, made by this
#   script, that sends admin commands or an HTTP GET; no file is written through it.)
#
# What it does, holding the lock:
#   1. reads both servers' runtime states (show servers state <backend>);
#   2. refuses, changing nothing, when the target is not UP by HAProxy's own health checks, or its
#      last check failed (connection refused, wrong status: it is on its way down);
#   3. if the target is already the only routed colour and the state file says so: "already live";
#   4. set server <be>/<target> state ready + weight 100%, then set server <be>/<old> state drain,
#      in one admin command line (target first, so there is never a moment with no routed server);
#   5. writes `show servers state` to EDGE_STATE_FILE atomically (a mktemp file in the same folder,
#      then mv), so a restarted edge comes back on the target (the previous file is first copied to a
#      mktemp backup in EDGE_CONTROL_DIR);
#   6. verifies through the edge: VERIFY_REQUESTS consecutive 2xx/3xx responses to VERIFY_URL (through
#      VERIFY_UNIX_SOCKET when set) whose EDGE_COLOUR_HEADER names the target, within VERIFY_TIMEOUT. It gives up at the FIRST failed
#      answer: another status, a request error, or another colour once the switch has settled (after
#      the target's first answer, or 2 s). While a request is in flight it also asks HAProxy about the
#      target: DOWN, address gone, or a failed health check that is not a timeout fail it at once. A
#      process that died after the gate is found by its next health check (inter 1s), before HAProxy
#      has failed a single client request (those wait on connection retries);
#   7. on any failure after step 4 (or SIGINT/SIGTERM): restores both servers' previous admin states
#      and weights and the previous state file (same bytes, same mtime), and exits 4.
# Then, without the lock (see "The watch and the lock"):
#   8. for WATCH_SECONDS, right away and then every 0.25 s, reads HAProxy's counters of the
#      target's server (show stat: stot, hrsp_5xx, econ, eresp, chkdown) and its state. It switches
#      back to the previous colour when the target is DOWN, lost its address, went down and up
#      again, failed a health check (not a timeout), or failed more than WATCH_MAX_ERROR_RATE of its
#      requests. The rate is taken over the most recent polls that hold at least WATCH_MIN_REQUESTS
#      requests (one poll under real load, the whole watch under a trickle), so a failure that
#      starts late is not diluted by the good requests before it. Requests that HAProxy answers 503
#      because no server is up are not in the server's counters: DOWN covers them. SIGINT/SIGTERM
#      during the watch switch back too: a switch that exits non-zero leaves traffic where it was;
#   9. switching back = taking the lock again, checking nobody else changed the routing meanwhile,
#      checking the previous colour is UP, set <old> ready + weight 100% and <target> drain, persisting
#      that atomically, then verifying the previous colour through the edge the same way as step 6.
#      It never flips a second time: if the previous colour fails its verification too, it says so.
# A switch to the previous colour needs a previous colour: one that was routed before this switch
# (not on the very first deploy, where the other colour does not exist). Without it a failing target
# is reported (exit 5) and left serving.
#
# The watch and the lock: the watch does not hold the edge lock. Holding it would make any other
# switch (an operator's manual rollback, a later deploy) or config install wait up to
# EDGE_LOCK_TIMEOUT for a process that only reads counters. Instead the switch is complete (verified
# and persisted) when the watch starts; the watch takes the lock only to switch back, and then first
# re-reads the routing: if another switch moved traffic since (or is moving it now: the watch waits for
# its lock), that switch owns the edge, and the watch stands down (exit 8) instead of undoing it. A
# switch to the same colour ("already live") changes nothing and does not disturb the watch. A config
# install reloads HAProxy: its counters restart from zero, and the watch counts again from there;
# while the admin socket does not answer (a reload or restart), the watch has no evidence and does
# nothing.
#
# Stdout: progress lines, and a last line that is always machine-readable:
#   "live: <colour>"                                 exit 0
#   "result: unchanged"                              exit 2, 3, 6 (nothing changed)
#   "result: refused live=<colours>"                 exit 3 (target not healthy)
#   "result: reverted stage=verify live=<colours>"   exit 4
#   "result: reverted stage=watch live=<colour>"     exit 7
#   "result: superseded live=<colours>"              exit 8
#   "result: failed stage=<verify|watch> live=<colours>"  exit 5
# where <colours> is what the edge routes by admin state at that moment: blue, green, blue,green,
# none, or unknown when the edge cannot be asked.
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
#   0  target is live (switched, verified, and it passed the watch; or already live)
#   2  bad input, a missing tool, or a path refused by the checks above (a symbolic link, a folder
#      that others can write or that another uid owns, a state file or lock of the wrong type, a
#      socket path that is not a socket); nothing changed
#   3  refused: target not healthy, or edge unreachable; nothing changed
#   4  switch failed during verification; routing and state file restored
#   5  switch failed and could not be undone: restoring failed, the previous colour is not healthy,
#      or there is none; stderr and the last line say what serves
#   6  lock not obtained in time; nothing changed
#   7  the target failed during the watch; traffic switched back to the previous colour, verified
#   8  during the watch another switch changed the edge; this one stood down, the edge is as it left it

set -u

say() { printf '%s\n' "$*"; }
err() { printf 'traffic-switch: %s\n' "$*" >&2; }
# finish <code> <last stdout line> <message for stderr>
finish() {
    code=$1 line=$2
    shift 2
    err "$*"
    say "$line"
    exit "$code"
}
die() {
    code=$1
    shift
    finish "$code" "result: unchanged" "$*"
}

# ---- inputs ---------------------------------------------------------------------------------
EDGE_ADMIN_SOCKET=${EDGE_ADMIN_SOCKET:-}
EDGE_STATE_FILE=${EDGE_STATE_FILE:-}
EDGE_CONTROL_DIR=${EDGE_CONTROL_DIR:-}
TARGET_COLOUR=${TARGET_COLOUR:-}
VERIFY_URL=${VERIFY_URL:-}
VERIFY_UNIX_SOCKET=${VERIFY_UNIX_SOCKET:-}
EDGE_BACKEND=${EDGE_BACKEND:-medusa}
EDGE_COLOUR_HEADER=${EDGE_COLOUR_HEADER:-X-Medusa-Colour}
VERIFY_TIMEOUT=${VERIFY_TIMEOUT:-30}
HEALTH_WAIT_TIMEOUT=${HEALTH_WAIT_TIMEOUT:-30}
VERIFY_REQUESTS=${VERIFY_REQUESTS:-5}
WATCH_SECONDS=${WATCH_SECONDS:-30}
WATCH_MAX_ERROR_RATE=${WATCH_MAX_ERROR_RATE:-0.05}
WATCH_MIN_REQUESTS=${WATCH_MIN_REQUESTS:-20}
EDGE_CONTROL_DIR=${EDGE_CONTROL_DIR%/}
EDGE_LOCK_FILE=${EDGE_LOCK_FILE:-$EDGE_CONTROL_DIR/edge.lock}
EDGE_LOCK_TIMEOUT=${EDGE_LOCK_TIMEOUT:-120}
EDGE_LOCK_METHOD=${EDGE_LOCK_METHOD:-auto}

case "$TARGET_COLOUR" in
    blue) OTHER_COLOUR=green ;;
    green) OTHER_COLOUR=blue ;;
    *) die 2 "TARGET_COLOUR must be blue or green, got '$TARGET_COLOUR'; nothing changed" ;;
esac
[ -n "$EDGE_ADMIN_SOCKET" ] || die 2 "EDGE_ADMIN_SOCKET is not set; nothing changed"
case "$EDGE_STATE_FILE" in
    /*) ;;
    '') die 2 "EDGE_STATE_FILE is not set; nothing changed" ;;
    *) die 2 "EDGE_STATE_FILE must be an absolute path, got '$EDGE_STATE_FILE'; nothing changed" ;;
esac
case "$EDGE_CONTROL_DIR" in
    /?*) ;;
    '') die 2 "EDGE_CONTROL_DIR is not set (the folder for the lock and the switch's own files, not mounted into the edge); nothing changed" ;;
    *) die 2 "EDGE_CONTROL_DIR must be an absolute path, got '$EDGE_CONTROL_DIR'; nothing changed" ;;
esac
[ -n "$VERIFY_URL" ] || die 2 "VERIFY_URL is not set (a URL through the edge); nothing changed"
value=""
for number in VERIFY_TIMEOUT VERIFY_REQUESTS EDGE_LOCK_TIMEOUT HEALTH_WAIT_TIMEOUT WATCH_SECONDS WATCH_MIN_REQUESTS; do
    eval "value=\$$number"
    case "$value" in
        ''|*[!0-9]*) die 2 "$number must be a whole number of seconds/requests, got '$value'; nothing changed" ;;
    esac
done
[ "$VERIFY_REQUESTS" -ge 1 ] || die 2 "VERIFY_REQUESTS must be at least 1; nothing changed"
[ "$WATCH_MIN_REQUESTS" -ge 1 ] || die 2 "WATCH_MIN_REQUESTS must be at least 1; nothing changed"
case "$EDGE_BACKEND" in
    ''|*[!A-Za-z0-9_.:-]*) die 2 "EDGE_BACKEND '$EDGE_BACKEND' is not a HAProxy backend name; nothing changed" ;;
esac
for tool in socat curl awk mktemp; do
    command -v "$tool" >/dev/null 2>&1 || die 2 "'$tool' is not installed on this host; nothing changed"
done
awk -v r="$WATCH_MAX_ERROR_RATE" 'BEGIN { exit !(r ~ /^([0-9]+|[0-9]*\.[0-9]+)$/ && r + 0 <= 1) }' ||
    die 2 "WATCH_MAX_ERROR_RATE must be a share between 0 and 1 such as 0.05, got '$WATCH_MAX_ERROR_RATE'; nothing changed"
STATE_DIR=$(dirname "$EDGE_STATE_FILE")
STATE_NAME=$(basename "$EDGE_STATE_FILE")

# ---- folders and paths (see "Host layout and what is checked") ---------------------------------
. "${MEDUSA_DEPLOY_HOST_LIB:-$(dirname "$0")/lib}/safe-files.sh" # medusa-deploy:inline lib/safe-files.sh
refuse() { die 2 "$1; refusing to switch, nothing changed"; }
safe_dir "$STATE_DIR" - existing || refuse "the state file's folder cannot be used: $SAFE_PROBLEM"
safe_dir_state "$EDGE_CONTROL_DIR"
case $? in
    1) refuse "EDGE_CONTROL_DIR cannot be used: $SAFE_PROBLEM" ;;
esac
safe_parent_ok "$EDGE_CONTROL_DIR" || refuse "EDGE_CONTROL_DIR cannot be used: $SAFE_PROBLEM"
# The same folder under two names would put the lock and backups where the edge can see them.
if [ -d "$EDGE_CONTROL_DIR" ] && [ "$(cd "$EDGE_CONTROL_DIR" && pwd -P)" = "$(cd "$STATE_DIR" && pwd -P)" ]; then
    refuse "EDGE_CONTROL_DIR $EDGE_CONTROL_DIR is the state file's folder (mounted into the edge); it must be a folder of its own"
fi

# The edge loads EDGE_STATE_FILE at start and the switch replaces it with mv: a directory there
# would receive the new file inside it (and a restarted edge would route to every colour), a
# symlink would be followed by the edge to wherever it points. Both are refused, before and under
# the lock, and again right before every replacement.
state_path_ok() {
    if safe_file_ok "$EDGE_STATE_FILE"; then return 0; fi
    STATE_PATH_PROBLEM="the state file $SAFE_PROBLEM"
    return 1
}
state_path_ok || refuse "$STATE_PATH_PROBLEM"
# Sockets are checked again before every connection (admin, verify_request).
if [ -L "$EDGE_ADMIN_SOCKET" ] || { [ -e "$EDGE_ADMIN_SOCKET" ] && [ ! -S "$EDGE_ADMIN_SOCKET" ]; }; then
    safe_socket_ok "$EDGE_ADMIN_SOCKET"
    refuse "the admin socket $SAFE_PROBLEM"
fi
if [ -n "$VERIFY_UNIX_SOCKET" ] && { [ -L "$VERIFY_UNIX_SOCKET" ] || { [ -e "$VERIFY_UNIX_SOCKET" ] && [ ! -S "$VERIFY_UNIX_SOCKET" ]; }; }; then
    safe_socket_ok "$VERIFY_UNIX_SOCKET"
    refuse "the operator socket (VERIFY_UNIX_SOCKET) $SAFE_PROBLEM"
fi
safe_dir "$EDGE_CONTROL_DIR" 0700 create || refuse "EDGE_CONTROL_DIR cannot be used: $SAFE_PROBLEM"

# ---- lock ------------------------------------------------------------------------------------
. "${MEDUSA_DEPLOY_HOST_LIB:-$(dirname "$0")/lib}/edge-lock.sh" # medusa-deploy:inline lib/edge-lock.sh
BACKUP=""
KEEP_BACKUP=no
VERIFY_PID=""
release() {
    [ -n "$VERIFY_PID" ] && kill "$VERIFY_PID" 2>/dev/null
    [ -n "$LOCK_DIR" ] && rm -rf "$LOCK_DIR"
    safe_cleanup
    [ -n "$BACKUP" ] && [ "$KEEP_BACKUP" = no ] && rm -f "$BACKUP"
}
trap release EXIT
take_edge_lock
state_path_ok || refuse "$STATE_PATH_PROBLEM"

# ---- admin socket ----------------------------------------------------------------------------
# One command line per connection; HAProxy answers and closes. Several commands may be joined by ';'.
# Refuses (exit status 3, the reason on stdout) a socket path that is a link or not a socket.
admin() {
    if ! safe_socket_ok "$EDGE_ADMIN_SOCKET"; then
        printf '%s' "$SAFE_PROBLEM"
        [ -L "$EDGE_ADMIN_SOCKET" ] || [ -e "$EDGE_ADMIN_SOCKET" ] && return 3
        return 1
    fi
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

# Reads both servers' runtime states into <$1>T_OP, <$1>T_ADMIN, <$1>T_WEIGHT and the same with O_
# for the other colour ($1: a variable prefix, may be empty). Returns 1 with RUNTIME_ERROR when the
# edge cannot say.
load_runtime() {
    prefix=$1
    dump=$(admin "show servers state $EDGE_BACKEND")
    case $? in
        0) ;;
        3) RUNTIME_ERROR="refusing to use the edge's admin socket: $dump"; return 1 ;;
        *) RUNTIME_ERROR="cannot reach the edge's admin socket $EDGE_ADMIN_SOCKET ($dump)"; return 1 ;;
    esac
    t_fields=$(printf '%s\n' "$dump" | server_fields "$EDGE_BACKEND" "$TARGET_COLOUR") || {
        RUNTIME_ERROR="the edge has no server $EDGE_BACKEND/$TARGET_COLOUR (answer: $(printf '%s' "$dump" | head -n 3 | tr '\n' ' '))"
        return 1
    }
    o_fields=$(printf '%s\n' "$dump" | server_fields "$EDGE_BACKEND" "$OTHER_COLOUR") || {
        RUNTIME_ERROR="the edge has no server $EDGE_BACKEND/$OTHER_COLOUR"
        return 1
    }
    # shellcheck disable=SC2086
    set -- $t_fields $o_fields
    eval "${prefix}T_OP=\$1 ${prefix}T_ADMIN=\$2 ${prefix}T_WEIGHT=\$3 ${prefix}O_OP=\$4 ${prefix}O_ADMIN=\$5 ${prefix}O_WEIGHT=\$6"
}

read_runtime() {
    load_runtime "" || die 3 "$RUNTIME_ERROR; nothing changed"
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

# What the edge routes right now, for the last line: blue, green, blue,green, none or unknown.
live_now() {
    if load_runtime NOW_; then
        if [ "$TARGET_COLOUR" = blue ]; then live_description "$NOW_T_ADMIN" "$NOW_O_ADMIN"
        else live_description "$NOW_O_ADMIN" "$NOW_T_ADMIN"; fi | sed 's/ and /,/'
    else
        printf 'unknown'
    fi
}

# HAProxy's statistics of server $1 (show stat): S_STATUS (spaces as _, e.g. UP, UP_1/2, DOWN,
# MAINT_(resolution), DRAIN), S_CHECK (last check result, e.g. L7OK, L4CON), S_STOT (requests sent
# to it), S_ERRS (hrsp_5xx + econ + eresp), S_CHKDOWN (UP->DOWN transitions). Columns are found by
# name in the header line. Returns 1 when the edge does not answer.
read_stat() {
    S_READ=no
    csv=$(admin "show stat $EDGE_BACKEND 4 -1") || return 1
    fields=$(printf '%s\n' "$csv" | awk -F, -v be="$EDGE_BACKEND" -v srv="$1" '
        /^# / { sub(/^# /, ""); for (i = 1; i <= NF; i++) col[$i] = i; next }
        $1 == be && $2 == srv && ("stot" in col) {
            status = $col["status"]; gsub(/[ \t]+/, "_", status)
            check = $col["check_status"]; sub(/^\* /, "", check); gsub(/[ \t]+/, "_", check)
            printf "%s %s %d %d %d\n", (status == "" ? "-" : status), (check == "" ? "-" : check),
                $col["stot"], $col["hrsp_5xx"] + $col["econ"] + $col["eresp"], $col["chkdown"]
            found = 1
            exit
        }
        END { if (!found) exit 1 }') || return 1
    # shellcheck disable=SC2086
    set -- $fields
    S_STATUS=$1 S_CHECK=$2 S_STOT=$3 S_ERRS=$4 S_CHKDOWN=$5 S_READ=yes
}

# Check results that mean the server is broken, not slow: connection refused, a bad or wrong
# response, a socket error. A timeout (L4TOUT, L6TOUT, L7TOUT) can be a busy host: HAProxy's own
# "fall 2" decides those.
HARD_CHECK_FAILURES="L4CON L6RSP L7RSP L7STS SOCKERR"

# HAProxy's own evidence that server $1 is failing now. Sets FAIL_WHY. No answer is no evidence.
colour_failing() {
    read_stat "$1" || return 1
    case "$S_STATUS" in
        DOWN*) FAIL_WHY="HAProxy's health checks report $1 DOWN (last check: $S_CHECK)"; return 0 ;;
        MAINT*resolution*) FAIL_WHY="$1's address no longer resolves (its container is gone?)"; return 0 ;;
        MAINT*) FAIL_WHY="$1 is in maintenance ($S_STATUS)"; return 0 ;;
    esac
    case " $HARD_CHECK_FAILURES " in
        *" $S_CHECK "*) FAIL_WHY="a health check of $1 failed ($S_CHECK) although HAProxy still calls it $(printf '%s' "$S_STATUS" | tr _ ' ')"; return 0 ;;
    esac
    return 1
}

# ---- 1. current state --------------------------------------------------------------------------
# A new or restarted edge opens its admin socket a moment after its container starts (a first deploy
# creates the edge right before this switch): wait for it, up to HEALTH_WAIT_TIMEOUT.
edge_waited=0
while ! load_runtime ""; do
    case "$RUNTIME_ERROR" in
        "cannot reach"*) [ "$edge_waited" -lt "$HEALTH_WAIT_TIMEOUT" ] || die 3 "$RUNTIME_ERROR, after waiting ${HEALTH_WAIT_TIMEOUT}s for it; nothing changed" ;;
        "refusing"*) die 2 "$RUNTIME_ERROR; nothing changed" ;;
        *) die 3 "$RUNTIME_ERROR; nothing changed" ;;
    esac
    sleep 1
    edge_waited=$((edge_waited + 1))
done
if [ "$TARGET_COLOUR" = blue ]; then OLD_LIVE=$(live_description "$T_ADMIN" "$O_ADMIN")
else OLD_LIVE=$(live_description "$O_ADMIN" "$T_ADMIN"); fi
OLD_LIVE_LIST=$(printf '%s' "$OLD_LIVE" | sed 's/ and /,/')

# ---- 2. health gate ----------------------------------------------------------------------------
# Docker may call the target healthy a moment before HAProxy's own checks (rise 2, 1 s apart, after
# re-resolving a new container's name) do: wait for HAProxy, up to HEALTH_WAIT_TIMEOUT. A target
# whose last check failed hard is on its way down: wait for it too.
target_up() { [ "$T_OP" -eq "$OP_RUNNING" ] && [ $((T_ADMIN & MAINT_BITS)) -eq 0 ]; }
target_ready() {
    GATE_STAT_READ=no
    target_up || return 1
    if colour_failing "$TARGET_COLOUR"; then GATE_PROBLEM=$FAIL_WHY; return 1; fi
    # colour_failing read the target's statistics (S_*) unless the edge did not answer.
    [ "$S_READ" = yes ] && GATE_STAT_READ=yes
    return 0
}
GATE_PROBLEM=""
health_waited=0
while ! target_ready && [ "$health_waited" -lt "$HEALTH_WAIT_TIMEOUT" ]; do
    sleep 1
    health_waited=$((health_waited + 1))
    GATE_PROBLEM=""
    read_runtime
done
if ! target_ready; then
    why="HAProxy's health checks report it down"
    [ $((T_ADMIN & 32)) -ne 0 ] && why="its address does not resolve (container absent?)"
    [ $((T_ADMIN & 7)) -ne 0 ] && why="it is in maintenance"
    target_up && why=$GATE_PROBLEM
    finish 3 "result: refused live=$OLD_LIVE_LIST" "refusing to switch to $TARGET_COLOUR: $why after waiting ${HEALTH_WAIT_TIMEOUT}s (op_state $T_OP, admin_state $T_ADMIN); nothing changed, traffic stays on $OLD_LIVE"
fi

# ---- 3. already live? --------------------------------------------------------------------------
persisted_matches_runtime() {
    [ -f "$EDGE_STATE_FILE" ] || return 1
    fields=$(server_fields "$EDGE_BACKEND" "$TARGET_COLOUR" <"$EDGE_STATE_FILE") || return 1
    # shellcheck disable=SC2086
    set -- $fields
    [ $(($2 & ROUTING_BITS)) -eq $((T_ADMIN & ROUTING_BITS)) ] || return 1
    fields=$(server_fields "$EDGE_BACKEND" "$OTHER_COLOUR" <"$EDGE_STATE_FILE") || return 1
    # shellcheck disable=SC2086
    set -- $fields
    [ $(($2 & ROUTING_BITS)) -eq $((O_ADMIN & ROUTING_BITS)) ]
}

if routed "$T_ADMIN" && ! routed "$O_ADMIN" && persisted_matches_runtime; then
    say "$TARGET_COLOUR is already live; nothing changed"
    say "live: $TARGET_COLOUR"
    exit 0
fi

# ---- 4-7. switch, persist, verify; revert on failure --------------------------------------------
# The operator socket: the edge has answered on its admin socket, so it has bound this one too.
if [ -n "$VERIFY_UNIX_SOCKET" ] && ! safe_socket_ok "$VERIFY_UNIX_SOCKET"; then
    if [ -e "$VERIFY_UNIX_SOCKET" ] || [ -L "$VERIFY_UNIX_SOCKET" ]; then refuse "the operator socket (VERIFY_UNIX_SOCKET) $SAFE_PROBLEM"; fi
    die 3 "cannot reach the edge's operator socket: $SAFE_PROBLEM; nothing changed"
fi
# The backup is a mktemp copy in EDGE_CONTROL_DIR (same bytes, mode and mtime, so a revert restores
# exactly); a new state file is a mktemp file beside the state file (same filesystem: mv is an
# atomic rename).
HAD_STATE_FILE=no
if [ -f "$EDGE_STATE_FILE" ]; then
    state_path_ok || refuse "$STATE_PATH_PROBLEM"
    if ! safe_copy "$EDGE_STATE_FILE" BACKUP "$EDGE_CONTROL_DIR" "$STATE_NAME.previous"; then
        die 3 "cannot back up $EDGE_STATE_FILE: $SAFE_PROBLEM; nothing changed"
    fi
    HAD_STATE_FILE=yes
fi
VERIFY_OUT=""
safe_temp VERIFY_OUT "$EDGE_CONTROL_DIR" traffic-switch.verify || die 2 "$SAFE_PROBLEM; nothing changed"
# The target's counters before it takes traffic, as the gate's last look read them (a drained
# server's counters do not move): the watch counts from here.
if [ "$GATE_STAT_READ" != yes ]; then
    read_stat "$TARGET_COLOUR" ||
        die 3 "cannot read the edge's statistics (show stat $EDGE_BACKEND) for $TARGET_COLOUR; nothing changed"
fi
BASE_STOT=$S_STOT BASE_ERRS=$S_ERRS BASE_CHKDOWN=$S_CHKDOWN
ROUTING_CHANGED=no

# Writes what HAProxy now runs (all backends, the format it loads at start) to EDGE_STATE_FILE:
# a mktemp file beside it, checked, then renamed over it. $1: the colour that must be routed in it.
persist_runtime() {
    dump=$(admin "show servers state") || { PERSIST_ERROR="cannot read the server state to persist it ($dump)"; return 1; }
    new_state=""
    safe_temp new_state "$STATE_DIR" "$STATE_NAME.new" || { PERSIST_ERROR="$SAFE_PROBLEM, beside $EDGE_STATE_FILE"; return 1; }
    printf '%s\n' "$dump" >"$new_state" || { PERSIST_ERROR="cannot write $new_state"; return 1; }
    if ! fields=$(server_fields "$EDGE_BACKEND" "$1" <"$new_state") || [ "$(head -n 1 "$new_state")" != 1 ]; then
        PERSIST_ERROR="the edge's state dump is not in the expected format (version 1): $(head -n 2 "$new_state" | tr '\n' ' ')"
        return 1
    fi
    # shellcheck disable=SC2086
    set -- $fields
    routed "$2" || { PERSIST_ERROR="the edge still reports $1 as not routed (admin_state $2)"; return 1; }
    state_path_ok || { PERSIST_ERROR="$STATE_PATH_PROBLEM (appeared during the switch)"; return 1; }
    chmod 0644 "$new_state" || { PERSIST_ERROR="cannot chmod $new_state"; return 1; }
    safe_replace "$new_state" "$EDGE_STATE_FILE" || { PERSIST_ERROR="cannot replace the state file: $SAFE_PROBLEM"; return 1; }
}

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
        # The backup is in EDGE_CONTROL_DIR: its copy goes to a mktemp file beside the state file,
        # renamed over it (atomic, and never a write through the state file's name).
        restored=""
        if ! state_path_ok; then
            problems="${problems:+$problems; }state file NOT restored: $STATE_PATH_PROBLEM (previous copy kept in $BACKUP)"
            KEEP_BACKUP=yes
        elif ! safe_file_ok "$BACKUP" || ! safe_copy "$BACKUP" restored "$STATE_DIR" "$STATE_NAME.restore" ||
            ! safe_replace "$restored" "$EDGE_STATE_FILE"; then
            problems="${problems:+$problems; }state file $EDGE_STATE_FILE NOT restored: $SAFE_PROBLEM (previous copy kept in $BACKUP)"
            KEEP_BACKUP=yes
        fi
    elif ! state_path_ok; then
        problems="${problems:+$problems; }new state file NOT removed: $STATE_PATH_PROBLEM"
    else
        rm -f "$EDGE_STATE_FILE" ||
            problems="${problems:+$problems; }new state file $EDGE_STATE_FILE could NOT be removed"
    fi
    if [ -n "$problems" ]; then
        finish 5 "result: failed stage=verify live=$(live_now)" "switch to $TARGET_COLOUR failed: $why; restoring failed too: $problems"
    fi
    finish 4 "result: reverted stage=verify live=$(live_now)" "switch to $TARGET_COLOUR failed: $why; traffic restored to $OLD_LIVE"
}

# One verification request to VERIFY_URL ($2: seconds allowed), run in the background so that
# HAProxy can be asked about colour $1 while it waits: a request to a dead server waits on HAProxy's
# connection retries, while the dead server's next health check already tells. Returns 1 with
# VERIFY_PROBLEM when HAProxy sees $1 failing; else sets CURL_STATUS, HTTP_STATUS and SERVED_BY.
verify_request() {
    # VERIFY_OUT is our mktemp file in EDGE_CONTROL_DIR: refuse it if it is not that any more.
    if ! safe_file_ok "$VERIFY_OUT" || [ ! -f "$VERIFY_OUT" ]; then
        VERIFY_PROBLEM="the verification's temporary file ${SAFE_PROBLEM:-$VERIFY_OUT is gone}"
        return 1
    fi
    if [ -n "$VERIFY_UNIX_SOCKET" ]; then
        if ! safe_socket_ok "$VERIFY_UNIX_SOCKET"; then
            VERIFY_PROBLEM="refusing to verify through the operator socket: $SAFE_PROBLEM"
            return 1
        fi
        curl -sS -o /dev/null -D - --max-time "$2" --unix-socket "$VERIFY_UNIX_SOCKET" "$VERIFY_URL" >"$VERIFY_OUT" 2>&1 9>&- &
    else
        curl -sS -o /dev/null -D - --max-time "$2" "$VERIFY_URL" >"$VERIFY_OUT" 2>&1 9>&- &
    fi
    VERIFY_PID=$!
    polls=0
    while kill -0 "$VERIFY_PID" 2>/dev/null; do
        sleep 0.02
        polls=$((polls + 1))
        if [ $((polls % 10)) -eq 0 ] && colour_failing "$1"; then
            kill "$VERIFY_PID" 2>/dev/null
            wait "$VERIFY_PID" 2>/dev/null
            VERIFY_PID=""
            VERIFY_PROBLEM="$FAIL_WHY (while a verification request was waiting for an answer)"
            return 1
        fi
    done
    wait "$VERIFY_PID"
    CURL_STATUS=$?
    VERIFY_PID=""
    headers=$(tr -d '\r' <"$VERIFY_OUT")
    HTTP_STATUS=$(printf '%s\n' "$headers" | awk '/^HTTP\// { code = $2 } END { print code }')
    SERVED_BY=$(printf '%s\n' "$headers" | awk -v h="$EDGE_COLOUR_HEADER" '
        { name = $0; sub(/:.*/, "", name) }
        tolower(name) == tolower(h) { value = $0; sub(/^[^:]*:[ \t]*/, "", value); print value; exit }')
    CURL_ERROR=$(printf '%s\n' "$headers" | grep '^curl:' | head -n 1)
    return 0
}

# Verifies through the edge that colour $1 serves: VERIFY_REQUESTS answers from it in a row within
# VERIFY_TIMEOUT. Stops at the first failed answer. Returns 1 with VERIFY_PROBLEM.
verify_through_edge() {
    want=$1
    started=$(date +%s)
    deadline=$((started + VERIFY_TIMEOUT))
    settled=no
    streak=0
    while [ "$streak" -lt "$VERIFY_REQUESTS" ]; do
        now=$(date +%s)
        if [ "$now" -ge "$deadline" ]; then
            VERIFY_PROBLEM="verification through $VERIFY_URL did not see $VERIFY_REQUESTS responses from $want within ${VERIFY_TIMEOUT}s ($streak so far)"
            return 1
        fi
        [ "$now" -ge $((started + 2)) ] && settled=yes
        budget=$((deadline - now))
        [ "$budget" -gt 5 ] && budget=5
        verify_request "$want" "$budget" || return 1
        if [ "$CURL_STATUS" -ne 0 ]; then
            VERIFY_PROBLEM="verification request to $VERIFY_URL failed: ${CURL_ERROR:-curl exit $CURL_STATUS}"
            return 1
        fi
        answer="HTTP ${HTTP_STATUS:-?} served by '${SERVED_BY:-no $EDGE_COLOUR_HEADER header}'"
        case "$HTTP_STATUS" in
            2??|3??)
                if [ "$SERVED_BY" = "$want" ]; then
                    streak=$((streak + 1))
                    settled=yes
                    continue
                fi
                if [ "$settled" = no ]; then
                    sleep 0.05 # the colour traffic is leaving answered a request started a moment ago
                    continue
                fi
                VERIFY_PROBLEM="verification through $VERIFY_URL: $answer instead of $want"
                return 1 ;;
            *)
                VERIFY_PROBLEM="verification through $VERIFY_URL: $answer"
                return 1 ;;
        esac
    done
    if colour_failing "$want"; then
        VERIFY_PROBLEM=$FAIL_WHY
        return 1
    fi
    return 0
}

trap 'revert_and_fail "interrupted by a signal"' INT TERM HUP

say "switching $EDGE_BACKEND from $OLD_LIVE to $TARGET_COLOUR"
ROUTING_CHANGED=yes
admin_set "set server $EDGE_BACKEND/$TARGET_COLOUR state ready; set weight $EDGE_BACKEND/$TARGET_COLOUR 100%; set server $EDGE_BACKEND/$OTHER_COLOUR state drain" ||
    revert_and_fail "$ADMIN_ERROR"
persist_runtime "$TARGET_COLOUR" || revert_and_fail "$PERSIST_ERROR"
verify_through_edge "$TARGET_COLOUR" || revert_and_fail "$VERIFY_PROBLEM"

trap - INT TERM HUP
say "switched $EDGE_BACKEND to $TARGET_COLOUR (verified through $VERIFY_URL)"

if [ "$WATCH_SECONDS" -eq 0 ]; then
    say "live: $TARGET_COLOUR"
    exit 0
fi

# ---- 8-9. watch the new colour; switch back if it fails -------------------------------------------
# The switch is complete: let other switches and config installs in (see "The watch and the lock").
release_edge_lock
[ -n "$BACKUP" ] && rm -f "$BACKUP"
BACKUP=""
FALLBACK=no
routed "$O_ADMIN" && FALLBACK=yes

# Prints "over|ok|few <errors> <requests>" for the history of "requests:errors" samples in $1 (totals
# since the switch, oldest first): the rate over the most recent samples holding WATCH_MIN_REQUESTS.
error_rate_verdict() {
    awk -v h="$1" -v min="$WATCH_MIN_REQUESTS" -v max="$WATCH_MAX_ERROR_RATE" 'BEGIN {
        n = split(h, s, " ")
        split(s[n], cur, ":")
        r = cur[1]; e = cur[2]
        for (i = n - 1; i >= 1; i--) {
            split(s[i], p, ":")
            if (cur[1] - p[1] >= min) { r = cur[1] - p[1]; e = cur[2] - p[2]; break }
        }
        if (r < min) print "few", e, r
        else print (e > r * max ? "over" : "ok"), e, r
    }'
}

WATCH_SIGNAL=no
trap 'WATCH_SIGNAL=yes' INT TERM HUP

# Returns 0 when the window passed, 1 with WATCH_WHY when the target failed, 2 when another switch
# changed the routing.
watch_target() {
    # date +%s counts whole seconds: +1 makes the watch last at least WATCH_SECONDS (at most 1 s more).
    end=$(($(date +%s) + WATCH_SECONDS + 1))
    history="0:0"
    samples=1
    last_stot=$BASE_STOT
    WATCH_TOTALS="no answer from the edge"
    first=yes
    while [ "$first" = yes ] || [ "$(date +%s)" -lt "$end" ]; do
        # The first look right away: real traffic has been on the target since the switch.
        [ "$first" = yes ] || sleep 0.25
        first=no
        [ "$WATCH_SIGNAL" = yes ] && return 1
        load_runtime NOW_ || continue
        if ! routed "$NOW_T_ADMIN" || routed "$NOW_O_ADMIN"; then return 2; fi
        read_stat "$TARGET_COLOUR" || continue
        if [ "$S_STOT" -lt "$last_stot" ]; then
            # The edge restarted or reloaded (a config install): its counters start again at zero.
            err "the edge's counters restarted (reload?); counting $TARGET_COLOUR's requests again from zero"
            BASE_STOT=0 BASE_ERRS=0 BASE_CHKDOWN=0 history="0:0" samples=1
        fi
        last_stot=$S_STOT
        if colour_failing "$TARGET_COLOUR"; then WATCH_WHY=$FAIL_WHY; return 1; fi
        if [ "$S_CHKDOWN" -gt "$BASE_CHKDOWN" ]; then
            WATCH_WHY="HAProxy's health checks took $TARGET_COLOUR down since the switch ($((S_CHKDOWN - BASE_CHKDOWN)) times)"
            return 1
        fi
        requests=$((S_STOT - BASE_STOT)) errors=$((S_ERRS - BASE_ERRS))
        history="$history $requests:$errors"
        samples=$((samples + 1))
        if [ "$samples" -gt 480 ]; then history=${history#* }; samples=$((samples - 1)); fi
        # shellcheck disable=SC2046
        set -- $(error_rate_verdict "$history")
        WATCH_TOTALS="$requests requests, $errors failed"
        if [ "$1" = over ]; then
            WATCH_WHY="$2 of its last $3 requests failed (5xx, connection or response errors by HAProxy's counters), over WATCH_MAX_ERROR_RATE=$WATCH_MAX_ERROR_RATE"
            return 1
        fi
    done
    return 0
}

superseded() {
    now=$(live_now)
    finish 8 "result: superseded live=$now" "while $TARGET_COLOUR was being watched, another switch changed the edge (it now routes to $(printf '%s' "$now" | sed 's/,/ and /')); this switch stands down${1:+ (without acting on: $1)}"
}

# Switch back to the previous colour after the target failed during the watch ($1: what happened).
switch_back() {
    fault=$1
    trap '' INT TERM HUP
    [ "$FALLBACK" = yes ] ||
        finish 5 "result: failed stage=watch live=$(live_now)" "$fault; $OTHER_COLOUR did not serve before this switch, so there is nothing to switch back to: traffic stays on $TARGET_COLOUR"
    try_edge_lock ||
        finish 5 "result: failed stage=watch live=$(live_now)" "$fault; cannot take the edge lock to switch back ($LOCK_ERROR): traffic stays on $TARGET_COLOUR"
    load_runtime NOW_ ||
        finish 5 "result: failed stage=watch live=unknown" "$fault; cannot switch back: $RUNTIME_ERROR"
    if ! routed "$NOW_T_ADMIN" || routed "$NOW_O_ADMIN"; then superseded "$fault"; fi
    other_problem=""
    if [ "$NOW_O_OP" -ne "$OP_RUNNING" ] || [ $((NOW_O_ADMIN & MAINT_BITS)) -ne 0 ]; then
        other_problem="HAProxy does not call it UP (op_state $NOW_O_OP, admin_state $NOW_O_ADMIN)"
    elif colour_failing "$OTHER_COLOUR"; then
        other_problem=$FAIL_WHY
    fi
    [ -z "$other_problem" ] ||
        finish 5 "result: failed stage=watch live=$(live_now)" "$fault; $OTHER_COLOUR is not healthy either ($other_problem): traffic stays on $TARGET_COLOUR"
    say "switching $EDGE_BACKEND back to $OTHER_COLOUR: $fault"
    admin_set "set server $EDGE_BACKEND/$OTHER_COLOUR state ready; set weight $EDGE_BACKEND/$OTHER_COLOUR 100%; set server $EDGE_BACKEND/$TARGET_COLOUR state drain" ||
        finish 5 "result: failed stage=watch live=$(live_now)" "$fault; switching back to $OTHER_COLOUR failed: $ADMIN_ERROR"
    persist_runtime "$OTHER_COLOUR" ||
        finish 5 "result: failed stage=watch live=$(live_now)" "$fault; traffic switched back to $OTHER_COLOUR but $EDGE_STATE_FILE was not updated ($PERSIST_ERROR): a restarted edge would route to $TARGET_COLOUR"
    verify_through_edge "$OTHER_COLOUR" ||
        finish 5 "result: failed stage=watch live=$(live_now)" "$fault; traffic switched back to $OTHER_COLOUR, which does not verify either: $VERIFY_PROBLEM"
    finish 7 "result: reverted stage=watch live=$OTHER_COLOUR" "$fault; traffic switched back to $OTHER_COLOUR (verified through $VERIFY_URL)"
}

say "watching $TARGET_COLOUR for ${WATCH_SECONDS}s (switching back to $OTHER_COLOUR if it fails more than $WATCH_MAX_ERROR_RATE of at least $WATCH_MIN_REQUESTS requests, or its health checks fail)"
watch_target
case $? in
    0) ;;
    1)
        if [ "$WATCH_SIGNAL" = yes ]; then switch_back "the watch of $TARGET_COLOUR was interrupted by a signal"
        else switch_back "$TARGET_COLOUR failed during the watch: $WATCH_WHY"; fi ;;
    *) superseded "" ;;
esac
trap - INT TERM HUP
say "watched $TARGET_COLOUR for ${WATCH_SECONDS}s: $WATCH_TOTALS; it stays live"
say "live: $TARGET_COLOUR"
