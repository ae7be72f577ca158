#!/bin/sh
# apply-daemon-json.sh — merge settings into dockerd's daemon.json and apply them safely.
# Runs on a docker host as root (or through sudo). POSIX sh.
#
# Inputs (environment):
#   DAEMON_JSON_DESIRED     required. A JSON object deep-merged into the existing file: objects merge
#                           key by key, any other value (arrays included) replaces the existing one.
#                           Keys it does not mention are kept as they are.
#   DAEMON_JSON_PATH        default /etc/docker/daemon.json. An absent or empty file counts as {}.
#   DAEMON_RELOADABLE_KEYS  space-separated top-level keys dockerd applies on a reload (SIGHUP).
#                           A change touching only these keys is reloaded; any other change restarts
#                           dockerd. Default: empty (every change restarts). lib/daemonJson.ts has the list.
#   DOCKER_RELOAD_COMMAND   default "systemctl reload docker".
#   DOCKER_RESTART_COMMAND  default "systemctl restart docker".
#   DOCKER_LOGS_COMMAND     prints dockerd's recent log, quoted when dockerd rejects the new file.
#                           Default "journalctl -u docker.service --no-pager -n 30" when journalctl exists.
#   DOCKER_READY_TIMEOUT    seconds to wait for dockerd to answer after a reload/restart (default 60).
#   DOCKER_HOST             honoured by the docker CLI used to check that dockerd answers.
#   DAEMON_JSON_DRY_RUN     "1": print the file that would be installed on stdout, the plan on stderr,
#                           change nothing.
#
# What it does:
#   - merged == current: prints "daemon.json unchanged", touches nothing (no reload, no backup).
#   - otherwise validates the merged file (dockerd --validate, Docker 23+), keeps the current file as
#     <path>.bak-medusa-deploy, installs the new one atomically (temp file in the same folder + mv), then:
#       only reloadable keys changed -> reload, confirm dockerd logged the reload;
#       anything else                -> if the new file enables live-restore and the running daemon does
#                                       not have it yet, first turn it on with a reload (so running
#                                       containers survive), then restart.
#   - if dockerd does not come back, or rejects a reload: restores the previous file byte for byte,
#     reloads/restarts again, says whether dockerd is running, exits 1.
# Output: progress on stdout, errors on stderr; the last stdout line is
#   "result: unchanged" | "result: reloaded" | "result: restarted" | "result: rolled back" | "result: failed".
# Needs python3 or jq for the JSON work, and the docker CLI.

set -u

DAEMON_JSON_PATH=${DAEMON_JSON_PATH:-/etc/docker/daemon.json}
DAEMON_RELOADABLE_KEYS=${DAEMON_RELOADABLE_KEYS:-}
DOCKER_RELOAD_COMMAND=${DOCKER_RELOAD_COMMAND:-systemctl reload docker}
DOCKER_RESTART_COMMAND=${DOCKER_RESTART_COMMAND:-systemctl restart docker}
DOCKER_READY_TIMEOUT=${DOCKER_READY_TIMEOUT:-60}
DAEMON_JSON_DRY_RUN=${DAEMON_JSON_DRY_RUN:-0}
if [ -z "${DOCKER_LOGS_COMMAND:-}" ]; then
    if command -v journalctl >/dev/null 2>&1; then
        DOCKER_LOGS_COMMAND="journalctl -u docker.service --no-pager -n 30"
    else
        DOCKER_LOGS_COMMAND=""
    fi
fi
BACKUP_PATH="$DAEMON_JSON_PATH.bak-medusa-deploy"

say() { printf '%s\n' "$*"; }
err() { printf 'apply-daemon-json: %s\n' "$*" >&2; }
# fail MESSAGE: nothing was changed on the host.
fail() { err "error: $1"; say "result: failed"; exit 1; }

case "$DOCKER_READY_TIMEOUT" in
    '' | *[!0-9]*) fail "DOCKER_READY_TIMEOUT must be a whole number of seconds, got '$DOCKER_READY_TIMEOUT'. Nothing was changed." ;;
esac
[ -n "${DAEMON_JSON_DESIRED:-}" ] || fail "DAEMON_JSON_DESIRED is empty: pass the daemon.json settings to merge as a JSON object. Nothing was changed."

# ---------------------------------------------------------------------------------------------------
# JSON helpers. Both tools write the same canonical form: keys sorted at every level, two-space
# indent, UTF-8 kept as is, one trailing newline. Operations:
#   canon FILE [NAME]    the object in FILE (empty file = {}); fails on invalid JSON, several values
#                        (e.g. two objects appended one after the other) or a non-object
#   merge FILE DESIRED   FILE's object with DESIRED deep-merged in
#   changed FILE1 FILE2  space-separated top-level keys whose values differ
#   get FILE KEY         the value of a top-level key as compact JSON (null when absent)
#   set FILE KEY JSON    FILE's object with KEY set to JSON
if command -v python3 >/dev/null 2>&1; then
    JSON_TOOL=python3
elif command -v jq >/dev/null 2>&1; then
    JSON_TOOL=jq
else
    fail "neither python3 nor jq is installed; install python3 or jq (e.g. apt-get install -y jq). Nothing was changed."
fi

PY_JSON='
import json, sys

def reject_constant(name):
    raise ValueError("%s is not valid JSON" % name)

def parse(text, what):
    try:
        value = json.loads(text, parse_constant=reject_constant)
    except ValueError as e:
        sys.exit("%s is not valid JSON: %s" % (what, e))
    if not isinstance(value, dict):
        sys.exit("%s must hold a JSON object, found %s" % (what, type(value).__name__))
    return value

def load(path, name=None):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.strip() == "":
        return {}
    return parse(text, name or path)

def merge(base, extra):
    out = dict(base)
    for key, value in extra.items():
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out

def dump(value):
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n")

op = sys.argv[1]
if op == "canon":
    dump(load(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None))
elif op == "merge":
    dump(merge(load(sys.argv[2]), parse(sys.argv[3], "DAEMON_JSON_DESIRED")))
elif op == "changed":
    a, b = load(sys.argv[2]), load(sys.argv[3])
    print(" ".join(sorted(k for k in set(a) | set(b) if k not in a or k not in b or a[k] != b[k])))
elif op == "get":
    print(json.dumps(load(sys.argv[2]).get(sys.argv[3]), sort_keys=True, separators=(",", ":")))
elif op == "set":
    value = load(sys.argv[2])
    value[sys.argv[3]] = json.loads(sys.argv[4])
    dump(value)
'

# jq reads a file as a stream of values (-s / --slurpfile make it an array), so "load" checks there
# is exactly one, and that it is an object.
JQ_LOAD='def load(what): if length == 0 then {}
    elif length > 1 then error("\(what) holds \(length) JSON values, expected one object")
    elif (.[0] | type) != "object" then error("\(what) must hold a JSON object, found \(.[0] | type)")
    else .[0] end;'

json() {
    if [ "$JSON_TOOL" = python3 ]; then
        python3 -c "$PY_JSON" "$@"
        return
    fi
    op=$1
    shift
    case "$op" in
        canon) jq -S -s --arg f "${2:-$1}" "$JQ_LOAD load(\$f)" "$1" ;;
        merge)
            printf '%s' "$2" | jq -e -s 'length == 1 and (.[0] | type) == "object"' >/dev/null 2>&1 ||
                { printf '%s\n' "DAEMON_JSON_DESIRED must be one JSON object" >&2; return 1; }
            jq -S -s --arg f "$1" --argjson d "$2" "$JQ_LOAD load(\$f) * \$d" "$1" ;;
        changed)
            jq -r -n --arg f1 "$1" --arg f2 "$2" --slurpfile a "$1" --slurpfile b "$2" "$JQ_LOAD"'
                ($a | load($f1)) as $x | ($b | load($f2)) as $y
                | [($x | keys[]), ($y | keys[])] | unique
                | map(. as $k | select(($x | has($k)) != ($y | has($k)) or $x[$k] != $y[$k])) | join(" ")' ;;
        get) jq -c -S -s --arg f "$1" --arg k "$2" "$JQ_LOAD load(\$f) | .[\$k]" "$1" ;;
        set) jq -S -s --arg f "$1" --arg k "$2" --argjson v "$3" "$JQ_LOAD load(\$f) | .[\$k] = \$v" "$1" ;;
        *) return 2 ;;
    esac
}

# ---------------------------------------------------------------------------------------------------
# dockerd helpers.
docker_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# wait_ready: 0 once dockerd answers, 1 after DOCKER_READY_TIMEOUT seconds.
wait_ready() {
    deadline=$(($(date +%s) + DOCKER_READY_TIMEOUT))
    while :; do
        docker_answers && return 0
        [ "$(date +%s)" -ge "$deadline" ] && return 1
        sleep 0.25 2>/dev/null || sleep 1
    done
}

live_restore_active() { [ "$(docker info --format '{{.LiveRestoreEnabled}}' 2>/dev/null)" = true ]; }

# wait_live_restore: 0 once the running daemon reports live-restore on, 1 after the timeout.
wait_live_restore() {
    deadline=$(($(date +%s) + DOCKER_READY_TIMEOUT))
    while :; do
        live_restore_active && return 0
        [ "$(date +%s)" -ge "$deadline" ] && return 1
        sleep 0.25 2>/dev/null || sleep 1
    done
}

# reload_seen SINCE: 0 once dockerd has logged a "reload" daemon event at or after SINCE (epoch
# seconds). dockerd logs it only when the reload was accepted; a rejected file leaves only a line
# in its log.
reload_seen() {
    deadline=$(($(date +%s) + DOCKER_READY_TIMEOUT))
    while :; do
        until=$(($(date +%s) + 1))
        docker events --since "$1" --until "$until" --filter type=daemon --filter event=reload \
            --format '{{.Action}}' 2>/dev/null | grep -q reload && return 0
        [ "$(date +%s)" -ge "$deadline" ] && return 1
    done
}

run_reload() { sh -c "$DOCKER_RELOAD_COMMAND" >"$WORK/reload.out" 2>&1; }
run_restart() { sh -c "$DOCKER_RESTART_COMMAND" >"$WORK/restart.out" 2>&1; }

daemon_log() {
    [ -n "$DOCKER_LOGS_COMMAND" ] || return 0
    sh -c "$DOCKER_LOGS_COMMAND" 2>&1 | tail -n 30
}

# install_file SOURCE: atomically replace DAEMON_JSON_PATH with SOURCE's bytes.
# A fresh mktemp name in the same folder, never a predictable one a link could stand in for.
install_file() {
    tmp=$(mktemp "$(dirname "$DAEMON_JSON_PATH")/.daemon.json.medusa-deploy.XXXXXX") || return 1
    cat "$1" >"$tmp" && chmod 0644 "$tmp" && mv -f "$tmp" "$DAEMON_JSON_PATH" && return 0
    rm -f "$tmp"
    return 1
}

# restore_original: put back exactly what was there before this run (or no file at all).
restore_original() {
    if [ "$HAD_FILE" = 1 ]; then
        install_file "$WORK/original"
    else
        rm -f "$DAEMON_JSON_PATH"
    fi
}

# ---------------------------------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/apply-daemon-json.XXXXXX") || fail "cannot create a temporary folder. Nothing was changed."
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

if [ -e "$DAEMON_JSON_PATH" ]; then
    HAD_FILE=1
    cp "$DAEMON_JSON_PATH" "$WORK/original" || fail "cannot read $DAEMON_JSON_PATH. Nothing was changed."
else
    HAD_FILE=0
    : >"$WORK/original"
fi

json canon "$WORK/original" "$DAEMON_JSON_PATH" >"$WORK/current.json" 2>"$WORK/json.err" ||
    fail "$DAEMON_JSON_PATH is not a valid daemon.json ($(cat "$WORK/json.err")). It was left untouched and dockerd was not reloaded or restarted; fix or remove the file, then run again."
json merge "$WORK/current.json" "$DAEMON_JSON_DESIRED" >"$WORK/candidate.json" 2>"$WORK/json.err" ||
    fail "cannot merge DAEMON_JSON_DESIRED: $(cat "$WORK/json.err"). Nothing was changed."

CHANGED_KEYS=$(json changed "$WORK/current.json" "$WORK/candidate.json") || fail "cannot compare the old and new daemon.json. Nothing was changed."

if [ -z "$CHANGED_KEYS" ]; then
    PLAN=unchanged
else
    PLAN=reload
    for key in $CHANGED_KEYS; do
        case " $DAEMON_RELOADABLE_KEYS " in
            *" $key "*) ;;
            *) PLAN=restart ;;
        esac
    done
fi

DAEMON_WAS_UP=0
docker_answers && DAEMON_WAS_UP=1
if [ "$PLAN" = reload ] && [ "$DAEMON_WAS_UP" = 0 ]; then
    PLAN=restart # a daemon that does not answer cannot be reloaded; the restart starts it
fi

if [ "$DAEMON_JSON_DRY_RUN" = 1 ]; then
    cat "$WORK/candidate.json"
    err "dry run ($JSON_TOOL): plan: $PLAN; changed keys: ${CHANGED_KEYS:-none}"
    exit 0
fi

if [ "$PLAN" = unchanged ]; then
    say "daemon.json unchanged ($DAEMON_JSON_PATH)"
    say "result: unchanged"
    exit 0
fi
say "daemon.json: changed keys: $CHANGED_KEYS (plan: $PLAN)"

# Validate before anything is installed, where dockerd can (Docker 23+).
if command -v dockerd >/dev/null 2>&1 && dockerd --help 2>/dev/null | grep -q -- '--validate'; then
    dockerd --validate --config-file "$WORK/candidate.json" >"$WORK/validate.out" 2>&1 ||
        fail "dockerd rejects the new daemon.json: $(cat "$WORK/validate.out"). $DAEMON_JSON_PATH was left untouched."
else
    say "daemon.json: this dockerd has no --validate (Docker < 23); a rejected file is caught by the restart and rolled back"
fi

mkdir -p "$(dirname "$DAEMON_JSON_PATH")" || fail "cannot create $(dirname "$DAEMON_JSON_PATH"). Nothing was changed."
if [ "$HAD_FILE" = 1 ]; then
    backup_tmp=""
    if ! backup_tmp=$(mktemp "$(dirname "$BACKUP_PATH")/.daemon.json.backup.XXXXXX") ||
        ! cat "$WORK/original" >"$backup_tmp" || ! chmod 0644 "$backup_tmp" || ! mv -f "$backup_tmp" "$BACKUP_PATH"; then
        [ -n "$backup_tmp" ] && rm -f "$backup_tmp"
        fail "cannot write the backup $BACKUP_PATH. $DAEMON_JSON_PATH was left untouched."
    fi
fi

# roll_back_by_reload <why> <what else the message says before dockerd's state>: puts the previous
# file back, reloads dockerd with it, reports why and how dockerd is, and exits 1.
roll_back_by_reload() {
    restore_original
    run_reload
    wait_ready && state=running || state="NOT running"
    err "error: $1. Reload command output: $(cat "$WORK/reload.out" 2>/dev/null)"
    err "dockerd log: $(daemon_log)"
    err "The previous $DAEMON_JSON_PATH was restored byte for byte$2 $state."
    say "result: rolled back"
    exit 1
}

# ---------------------------------------------------------------------------------------------------
if [ "$PLAN" = reload ]; then
    since=$(date +%s)
    install_file "$WORK/candidate.json" || fail "cannot write $DAEMON_JSON_PATH. It was left as it was."
    if run_reload; then
        if wait_ready && reload_seen "$since"; then
            say "daemon.json installed; dockerd reloaded it"
            say "result: reloaded"
            exit 0
        fi
        reason="dockerd did not confirm the reload within ${DOCKER_READY_TIMEOUT}s (it refuses a file that conflicts with its command-line flags, for one)"
    else
        reason="the reload command failed"
    fi
    roll_back_by_reload "$reason" "; dockerd is"
fi

# PLAN=restart
WANTS_LIVE_RESTORE=$(json get "$WORK/candidate.json" live-restore)
if [ "$DAEMON_WAS_UP" = 1 ] && [ "$WANTS_LIVE_RESTORE" = true ] && ! live_restore_active; then
    # live-restore can be switched on with a reload; doing that first keeps running containers up
    # across the restart below.
    json set "$WORK/current.json" live-restore true >"$WORK/live-restore.json" ||
        fail "cannot prepare the live-restore step. Nothing was changed."
    install_file "$WORK/live-restore.json" || fail "cannot write $DAEMON_JSON_PATH. It was left as it was."
    if run_reload && wait_ready && wait_live_restore; then
        say "daemon.json: live-restore turned on with a reload, running containers will survive the restart"
    else
        roll_back_by_reload "could not turn live-restore on with a reload (it is refused in swarm mode, for one)" \
            " and dockerd was not restarted, running containers were not touched; dockerd is"
    fi
elif [ "$WANTS_LIVE_RESTORE" != true ]; then
    say "daemon.json: warning: live-restore is not enabled in the new file; the restart stops running containers"
fi

install_file "$WORK/candidate.json" || { restore_original; fail "cannot write $DAEMON_JSON_PATH; the previous file is in place."; }
if run_restart; then
    wait_ready && { say "daemon.json installed; dockerd restarted with it"; say "result: restarted"; exit 0; }
    reason="dockerd did not answer within ${DOCKER_READY_TIMEOUT}s of a restart with the new daemon.json"
else
    reason="the restart with the new daemon.json failed ($DOCKER_RESTART_COMMAND)"
fi

# dockerd did not come back: put the old file back and start it again.
cp "$WORK/restart.out" "$WORK/failed-restart.out" 2>/dev/null
failed_log=$(daemon_log)
restore_original
if run_restart && wait_ready; then state=running; else state="NOT running"; fi
err "error: $reason."
err "restart command output: $(cat "$WORK/failed-restart.out" 2>/dev/null)"
err "dockerd log: $failed_log"
err "The previous $DAEMON_JSON_PATH was restored byte for byte and dockerd restarted with it: dockerd is $state."
say "result: rolled back"
exit 1
