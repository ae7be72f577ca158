#!/bin/sh
# health-gate.sh — the health gate of a blue/green release: wait until Docker's own health check
# calls a colour's new server container healthy, and fail at once when it cannot become healthy
# (Docker says unhealthy, the process exited, or it crash-loops), quoting the tail of its log. The
# traffic switch runs only after this succeeded. Runs on the docker host (POSIX sh).
#
# Environment (inputs):
#   GATE_CONTAINER     required. The server container's name, e.g. medusa-prod-green-server (shown in
#                      messages; inspected when GATE_CONTAINER_ID is not given).
#   GATE_CONTAINER_ID  The id of the container this deploy created (the docker provider's id). When
#                      given, that exact container is inspected: a container put in its place under
#                      the same name is not mistaken for it.
#   GATE_TIMEOUT       Seconds the container may take to become healthy. Default: 300.
#   GATE_LOG_LINES     Lines of its log quoted on failure. Default: 40.
#   GATE_SECRET_KEYS   Space-separated names of environment lines whose values are secret, on top of
#                      those named like one (*URL, *URI, *SECRET*, *PASSWORD*, *PASS, *TOKEN*, *KEY*,
#                      *CREDENTIAL*).
#   DOCKER_HOST        honoured by the docker CLI.
# Stdin: the container's environment as env-file lines (KEY=value, one a line, '#' starts a comment),
#   exactly as run-migration.sh takes it. They are read only to mask the secret values in the log
#   lines this script quotes: never printed, never a command-line argument, never an environment
#   variable or a file. Empty stdin (</dev/null) masks nothing; a terminal is refused.
#
# What it does: polls `docker inspect` (State.Status, State.Health.Status, State.ExitCode,
# RestartCount) about every 0.5 s until
#   - running and healthy                                  -> exit 0
#   - health unhealthy (Docker's retries ran out)          -> exit 1 at once
#   - exited or dead (the process ended, no restart)       -> exit 1 at once
#   - restarting, or restarted at least once (its restart policy turned a crash into a restart:
#     a crash loop)                                        -> exit 1 at once
#   - paused or being removed, or the container is gone    -> exit 1 at once
#   - none of these by GATE_TIMEOUT                        -> exit 124
# A container that is healthy passes even if it restarted before (a gate run again on an older
# container that has recovered). On failure it prints, on stderr, why, the last health check's
# output and the last GATE_LOG_LINES lines of `docker logs`, every secret value (and the password
# inside a secret URL) replaced by [secret]. The container is then stopped (not removed: its log and
# state stay for inspection), so a crash loop does not keep restarting on the host.
#
# Stdout: progress lines, and a last line that is always machine-readable:
#   "result: healthy container=<name> seconds=<s>"                                       exit 0
#   "result: failed container=<name> reason=<reason> status=<status> health=<health>
#        exit=<code> restarts=<n> seconds=<s>"   (one line)                               exit 1, 124
#      reason: unhealthy, exited, dead, restarting, crash-loop, paused, removing, gone, timeout,
#      inspect-failed, interrupted
#   "result: refused container=<name> reason=<reason>"                                   exit 2
#      reason: bad-input, docker-unreachable, absent, no-healthcheck
#
# Exit codes:
#   0    healthy: traffic may move to it
#   1    it cannot become healthy (or dockerd stopped answering): traffic stays where it is
#   2    nothing was gated: bad input, dockerd does not answer, no such container, or the container
#        has no health check (so Docker can never call it healthy)
#   124  not healthy within GATE_TIMEOUT
#   130, 143  interrupted (SIGINT, SIGTERM)

set -u

GATE_CONTAINER=${GATE_CONTAINER:-}
GATE_CONTAINER_ID=${GATE_CONTAINER_ID:-}
GATE_TIMEOUT=${GATE_TIMEOUT:-300}
GATE_LOG_LINES=${GATE_LOG_LINES:-40}
# How long one docker CLI call may take (a hung dockerd or ssh transport must not hang the gate).
DOCKER_CALL_SECONDS=30
# Consecutive failed inspections (not "no such container") tolerated before giving up: ~5 s.
INSPECT_RETRIES=10
# A progress line at least this often while the container is starting.
PROGRESS_SECONDS=30
LIVE_TEXT="No traffic was moved to it: traffic stays on the live colour."

say() { printf '%s\n' "$*"; }
err() { printf 'health-gate: %s\n' "$*" >&2; }
# finish <code> <last stdout line> [message for stderr]
finish() {
    code=$1 line=$2
    shift 2
    [ "$#" -gt 0 ] && err "$*"
    say "$line"
    exit "$code"
}
# The name as the last line shows it: one word, whatever GATE_CONTAINER holds.
SHOWN_NAME=${GATE_CONTAINER:-none}
refuse() {
    reason=$1
    shift
    finish 2 "result: refused container=$SHOWN_NAME reason=$reason" "$*; nothing was gated. $LIVE_TEXT"
}

# ---- inputs ---------------------------------------------------------------------------------
case "$GATE_CONTAINER" in
    '') refuse bad-input "GATE_CONTAINER is required (the server container to gate)" ;;
    [!a-zA-Z0-9]* | *[!a-zA-Z0-9_.-]*) SHOWN_NAME=invalid && refuse bad-input "GATE_CONTAINER '$GATE_CONTAINER' is not a valid container name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)" ;;
esac
case "$GATE_CONTAINER_ID" in
    '') TARGET=$GATE_CONTAINER ;;
    *[!0-9a-f]*) refuse bad-input "GATE_CONTAINER_ID '$GATE_CONTAINER_ID' is not a container id (hexadecimal)" ;;
    *)
        if [ "${#GATE_CONTAINER_ID}" -lt 12 ] || [ "${#GATE_CONTAINER_ID}" -gt 64 ]; then
            refuse bad-input "GATE_CONTAINER_ID '$GATE_CONTAINER_ID' is not a container id (12 to 64 hexadecimal digits)"
        fi
        TARGET=$GATE_CONTAINER_ID
        ;;
esac
case "$GATE_TIMEOUT" in
    '' | *[!0-9]* | 0*) refuse bad-input "GATE_TIMEOUT must be a positive whole number of seconds, got '$GATE_TIMEOUT'" ;;
esac
[ "$GATE_TIMEOUT" -le 86400 ] || refuse bad-input "GATE_TIMEOUT must be at most 86400 seconds, got $GATE_TIMEOUT"
case "$GATE_LOG_LINES" in
    '' | *[!0-9]* | 0*) refuse bad-input "GATE_LOG_LINES must be a positive whole number, got '$GATE_LOG_LINES'" ;;
esac
[ "$GATE_LOG_LINES" -le 1000 ] || refuse bad-input "GATE_LOG_LINES must be at most 1000, got $GATE_LOG_LINES"
[ -t 0 ] && refuse bad-input "the container's environment (KEY=value lines, to mask its secrets in the log) is read from stdin, which is a terminal; pipe it in, or </dev/null to mask nothing"

# Read now, so the writer never waits on this script; kept in this shell only.
ENV_LINES=$(cat)

command -v docker >/dev/null 2>&1 || refuse bad-input "the docker CLI is not installed"
if command -v timeout >/dev/null 2>&1; then
    dk() { timeout -k 5 "$DOCKER_CALL_SECONDS" docker "$@" </dev/null; }
else
    dk() { docker "$@" </dev/null; }
fi
dk version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
    refuse docker-unreachable "dockerd does not answer (DOCKER_HOST=${DOCKER_HOST:-default})"

# ---- secrets in the output ------------------------------------------------------------------
MASK_EXTRA_KEYS=${GATE_SECRET_KEYS:-}
# shellcheck source=host/lib/mask-secrets.sh
. "${MEDUSA_DEPLOY_HOST_LIB:-$(dirname "$0")/lib}/mask-secrets.sh" # medusa-deploy:inline lib/mask-secrets.sh

# ---- state ----------------------------------------------------------------------------------
# inspect_container: sets STATUS (absent, created, running, restarting, exited, ...), HEALTH
# (starting, healthy, unhealthy, or - before the first start), STREAK (failed checks in a row),
# EXIT_CODE, RESTARTS, OOM and CHECK (the health check's first word: CMD, CMD-SHELL, NONE, or - when
# there is none); returns 1 with INSPECT_ERROR set when dockerd could not tell.
# shellcheck disable=SC2016 # Go template variables, not shell ones
INSPECT_FORMAT='{{.State.Status}} {{with .State.Health}}{{.Status}} {{.FailingStreak}}{{else}}- 0{{end}} {{.State.ExitCode}} {{.RestartCount}} {{.State.OOMKilled}} {{$c := "-"}}{{with .Config.Healthcheck}}{{range $i, $t := .Test}}{{if eq $i 0}}{{$c = $t}}{{end}}{{end}}{{end}}{{$c}}'
inspect_container() {
    STATUS="" HEALTH="" STREAK="" EXIT_CODE="" RESTARTS="" OOM="" CHECK="" INSPECT_ERROR=""
    if ! answer=$(dk inspect --type container --format "$INSPECT_FORMAT" "$TARGET" 2>&1); then
        case "$answer" in
            *"No such container"* | *"No such object"*) STATUS=absent; return 0 ;;
        esac
        INSPECT_ERROR=${answer:-docker inspect failed (timed out?)}
        return 1
    fi
    read -r STATUS HEALTH STREAK EXIT_CODE RESTARTS OOM CHECK <<EOF
$answer
EOF
    return 0
}

# The health check's last output and the log's tail, masked, on stderr.
quote_container() {
    {
        secret_values
        printf '%s\n' "$MASK_END"
        # shellcheck disable=SC2016 # Go template variables, not shell ones
        check=$(dk inspect --type container --format '{{$o := ""}}{{$e := ""}}{{with .State.Health}}{{range .Log}}{{$o = .Output}}{{$e = .ExitCode}}{{end}}{{end}}{{$e}}|{{$o}}' "$TARGET" 2>/dev/null)
        case "$check" in
            '|' | '') ;;
            *)
                printf 'last health check (exit %s):\n' "${check%%|*}"
                printf '%s\n' "${check#*|}" | sed -e '/^[[:space:]]*$/d' | tail -n 10 | sed 's/^/    /'
                ;;
        esac
        printf 'last %s lines of its log (secret values masked):\n' "$GATE_LOG_LINES"
        # Both of the container's streams (a Node error goes to stderr); an error of the CLI (a log
        # driver that cannot be read back) shows in their place.
        dk logs --tail "$GATE_LOG_LINES" "$TARGET" 2>&1 | sed 's/^/    /'
    } | mask_secrets >&2
}

elapsed() { echo $(($(date +%s) - STARTED)); }

fail() {
    code=$1 reason=$2
    shift 2
    seconds=$(elapsed)
    err "$GATE_CONTAINER $* (after ${seconds}s). $LIVE_TEXT The container is stopped, not removed, for inspection (docker logs $GATE_CONTAINER); the next \`pulumi up\` replaces or gates it again."
    quote_container
    # Stopped, so that a crash loop does not go on restarting on the shop's host until the next deploy.
    docker stop --time 10 "$TARGET" >/dev/null 2>&1 || err "could not stop $GATE_CONTAINER (it may be gone already)"
    finish "$code" "result: failed container=$GATE_CONTAINER reason=$reason status=${STATUS:-unknown} health=${HEALTH:-unknown} exit=${EXIT_CODE:-unknown} restarts=${RESTARTS:-unknown} seconds=$seconds"
}

# ---- interruption ---------------------------------------------------------------------------
STARTED=$(date +%s)
trap 'finish 130 "result: failed container=$SHOWN_NAME reason=interrupted status=${STATUS:-unknown} health=${HEALTH:-unknown} exit=${EXIT_CODE:-unknown} restarts=${RESTARTS:-unknown} seconds=$(elapsed)" "interrupted while gating $SHOWN_NAME. $LIVE_TEXT"' INT
trap 'finish 143 "result: failed container=$SHOWN_NAME reason=interrupted status=${STATUS:-unknown} health=${HEALTH:-unknown} exit=${EXIT_CODE:-unknown} restarts=${RESTARTS:-unknown} seconds=$(elapsed)" "terminated while gating $SHOWN_NAME. $LIVE_TEXT"' TERM

# ---- gate -----------------------------------------------------------------------------------
DEADLINE=$((STARTED + GATE_TIMEOUT))
say "gating $GATE_CONTAINER: waiting up to ${GATE_TIMEOUT}s for Docker's health check to call it healthy"
inspect_failures=0
first=yes
seen=""
last_progress=$STARTED
while :; do
    if ! inspect_container; then
        inspect_failures=$((inspect_failures + 1))
        if [ "$inspect_failures" -ge "$INSPECT_RETRIES" ]; then
            [ "$first" = yes ] && refuse docker-unreachable "cannot inspect $GATE_CONTAINER: $INSPECT_ERROR"
            fail 1 inspect-failed "could not be inspected $inspect_failures times in a row ($INSPECT_ERROR), so it cannot be called healthy"
        fi
    else
        inspect_failures=0
        if [ "$STATUS" = absent ]; then
            [ "$first" = yes ] && refuse absent "there is no container ${GATE_CONTAINER_ID:+with id $GATE_CONTAINER_ID }named $GATE_CONTAINER"
            fail 1 gone "was removed while it was being gated"
        fi
        case "$CHECK" in
            -) refuse no-healthcheck "$GATE_CONTAINER has no health check, so Docker can never call it healthy (the server is always declared with one: components/colourSet.ts)" ;;
            NONE) refuse no-healthcheck "$GATE_CONTAINER has its health check turned off (NONE), so Docker can never call it healthy (the server is always declared with one: components/colourSet.ts)" ;;
        esac
        first=no
        [ "$STATUS" = running ] && [ "$HEALTH" = healthy ] &&
            finish 0 "result: healthy container=$GATE_CONTAINER seconds=$(elapsed)"
        oom=""
        [ "$OOM" = true ] && oom=", killed for lack of memory (OOMKilled)"
        case "$STATUS" in
            restarting) fail 1 restarting "is restarting: its process exited (code $EXIT_CODE$oom) and Docker restarts it, a crash loop (restarted $RESTARTS times so far)" ;;
            exited) fail 1 exited "exited with code $EXIT_CODE$oom before it was healthy" ;;
            dead) fail 1 dead "is dead (exit code $EXIT_CODE$oom): dockerd could not stop or remove it cleanly" ;;
            paused) fail 1 paused "is paused, so its health check cannot run" ;;
            removing) fail 1 removing "is being removed" ;;
        esac
        # Its restart policy turns an exit into a restart: restarted and not healthy is a crash loop.
        # (Running again, it shows exit code 0: the code of the crash is gone.)
        [ "$RESTARTS" -gt 0 ] 2>/dev/null &&
            fail 1 crash-loop "has restarted $RESTARTS times and is not healthy: its process keeps exiting, a crash loop"
        [ "$HEALTH" = unhealthy ] &&
            fail 1 unhealthy "is unhealthy: Docker's health check failed $STREAK times in a row"
        if [ "$STATUS $HEALTH" != "$seen" ]; then
            say "$GATE_CONTAINER: $STATUS, health ${HEALTH} ($(elapsed)s)"
            seen="$STATUS $HEALTH"
            last_progress=$(date +%s)
        fi
    fi
    now=$(date +%s)
    # Whole seconds: -gt waits at least GATE_TIMEOUT (at most a second more).
    [ "$now" -gt "$DEADLINE" ] &&
        fail 124 timeout "is not healthy after ${GATE_TIMEOUT}s (GATE_TIMEOUT; still ${STATUS:-unknown}, health ${HEALTH:-unknown})"
    if [ $((now - last_progress)) -ge "$PROGRESS_SECONDS" ]; then
        say "$GATE_CONTAINER: still $STATUS, health $HEALTH after $((now - STARTED))s (limit ${GATE_TIMEOUT}s)"
        last_progress=$now
    fi
    # A sleep that takes whole seconds only (a minimal host) polls every second instead.
    sleep 0.5 2>/dev/null || sleep 1
done
