#!/bin/sh
# stop-worker.sh — the worker handover of a blue/green switch: stop the Medusa worker (scheduled
# jobs, subscribers) of the colour that no longer serves traffic, after the traffic switch succeeded
# and before the new live colour's worker starts, so two workers never run at once. Runs on the
# docker host (POSIX sh).
#
# Environment (inputs):
#   WORKER_NAME           required. The worker container to stop, e.g. medusa-prod-blue-worker.
#   WORKER_DRAIN_SECONDS  Seconds the worker gets after SIGTERM to finish the jobs it is running
#                         before dockerd kills it (docker stop -t). Default: 30.
#   NEXT_WORKER           The worker that starts once this one is stopped; named in messages only.
#   DOCKER_HOST           honoured by the docker CLI.
#
# What it does:
#   1. no container named WORKER_NAME (the first deploy, or removed by hand): nothing to stop;
#   2. refuses, stopping nothing, a container whose label medusa-deploy.role is not "worker": a
#      wrong name must never stop a server that serves traffic;
#   3. a container that does not run (exited, created, dead): nothing to stop;
#   4. docker stop -t WORKER_DRAIN_SECONDS: SIGTERM (the container's init passes it to Medusa), then
#      SIGKILL once the drain is over. The docker CLI call is bounded by coreutils `timeout`
#      (drain + 60 s) when installed;
#   5. checks the container no longer runs.
# The container is stopped, not removed: the deploy no longer declares it, so Pulumi removes it at
# the end of the same `up` (removing a stopped container is immediate: its stop is a no-op). Its
# restart policy (unless-stopped) keeps it stopped if dockerd restarts meanwhile.
#
# Stdout: progress lines, and a last line that is always machine-readable:
#   "result: stopped worker=<name> exit=<code> seconds=<s>"  exit 0 (it exited within the drain)
#   "result: killed worker=<name> seconds=<s>"               exit 0 (killed when the drain ran out)
#   "result: not-running worker=<name> status=<status>"      exit 0 (nothing to stop)
#   "result: absent worker=<name>"                           exit 0 (nothing to stop)
#   "result: failed worker=<name> status=<status>"           exit 1
#   "result: unchanged worker=<name>"                        exit 2, 3 (nothing was stopped)
#
# Exit codes:
#   0  the worker does not run (any more): the next worker may start
#   1  stopping failed, or the container still runs (status says what docker reported last; unknown
#      when dockerd could not tell): the next worker must not start
#   2  bad input, or dockerd does not answer; nothing was stopped
#   3  refused: WORKER_NAME is not a worker (label medusa-deploy.role); nothing was stopped

set -u

WORKER_NAME=${WORKER_NAME:-}
WORKER_DRAIN_SECONDS=${WORKER_DRAIN_SECONDS:-30}
NEXT_WORKER=${NEXT_WORKER:-}
# Beyond the drain, what the CLI call may take (SIGKILL and the exit's bookkeeping take ~1 s).
CLI_SLACK_SECONDS=60

say() { printf '%s\n' "$*"; }
err() { printf 'stop-worker: %s\n' "$*" >&2; }
# finish <code> <last stdout line> [message for stderr]
finish() {
    code=$1 line=$2
    shift 2
    [ "$#" -gt 0 ] && err "$*"
    say "$line"
    exit "$code"
}
unchanged() {
    code=$1
    shift
    finish "$code" "result: unchanged worker=$SHOWN_NAME" "$*; nothing was stopped"
}
# The name as the last line shows it: one word, whatever WORKER_NAME holds.
SHOWN_NAME=${WORKER_NAME:-none}

if [ -n "$NEXT_WORKER" ]; then
    NEXT_TEXT="the new worker ($NEXT_WORKER)"
else
    NEXT_TEXT="the new worker"
fi

# ---- inputs ---------------------------------------------------------------------------------
case "$WORKER_NAME" in
    '') unchanged 2 "WORKER_NAME is required (the worker container to stop)" ;;
    [!a-zA-Z0-9]* | *[!a-zA-Z0-9_.-]*) SHOWN_NAME=invalid && unchanged 2 "WORKER_NAME '$WORKER_NAME' is not a valid container name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)" ;;
esac
case "$WORKER_DRAIN_SECONDS" in
    '' | *[!0-9]*) unchanged 2 "WORKER_DRAIN_SECONDS must be a whole number of seconds, got '$WORKER_DRAIN_SECONDS'" ;;
esac
[ "$WORKER_DRAIN_SECONDS" -le 3600 ] || unchanged 2 "WORKER_DRAIN_SECONDS must be at most 3600, got $WORKER_DRAIN_SECONDS"
command -v docker >/dev/null 2>&1 || unchanged 2 "the docker CLI is not installed"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 </dev/null ||
    unchanged 2 "dockerd does not answer (DOCKER_HOST=${DOCKER_HOST:-default})"

# ---- state ----------------------------------------------------------------------------------
# inspect_worker: sets STATUS (absent, running, exited, ...), EXIT_CODE and ROLE; returns 1 with
# INSPECT_ERROR set when dockerd could not tell.
inspect_worker() {
    STATUS="" EXIT_CODE="" ROLE="" INSPECT_ERROR=""
    if ! answer=$(docker inspect --type container \
        --format '{{.State.Status}} {{.State.ExitCode}} {{index .Config.Labels "medusa-deploy.role"}}' \
        "$WORKER_NAME" 2>&1 </dev/null); then
        case "$answer" in
            *"No such container"* | *"No such object"*) STATUS=absent; return 0 ;;
        esac
        INSPECT_ERROR=$answer
        return 1
    fi
    STATUS=${answer%% *}
    rest=${answer#* }
    EXIT_CODE=${rest%% *}
    ROLE=${rest#"$EXIT_CODE"}
    ROLE=${ROLE# }
    return 0
}

inspect_worker || unchanged 2 "cannot inspect $WORKER_NAME: $INSPECT_ERROR"
case "$STATUS" in
    absent) finish 0 "result: absent worker=$WORKER_NAME" ;;
esac
[ "$ROLE" = worker ] ||
    unchanged 3 "$WORKER_NAME is not a worker (label medusa-deploy.role is '${ROLE:-unset}', status $STATUS): refusing to stop it"
case "$STATUS" in
    running | restarting | paused) ;;
    *) finish 0 "result: not-running worker=$WORKER_NAME status=$STATUS" ;;
esac

# ---- stop -----------------------------------------------------------------------------------
if command -v timeout >/dev/null 2>&1; then
    set -- timeout -k 5 $((WORKER_DRAIN_SECONDS + CLI_SLACK_SECONDS)) docker
else
    set -- docker
fi
say "stopping $WORKER_NAME ($STATUS): SIGTERM, then SIGKILL after ${WORKER_DRAIN_SECONDS}s"
started=$(date +%s)
stop_output=$("$@" stop -t "$WORKER_DRAIN_SECONDS" "$WORKER_NAME" 2>&1 </dev/null)
stop_status=$?
elapsed=$(($(date +%s) - started))

# Whatever docker stop said, what counts is whether the container still runs.
if ! inspect_worker; then
    finish 1 "result: failed worker=$WORKER_NAME status=unknown" \
        "could not stop $WORKER_NAME: docker stop exited $stop_status (${stop_output:-no output}), and dockerd cannot say whether it still runs ($INSPECT_ERROR). It may still run jobs, so $NEXT_TEXT was not started. Stop it by hand (docker stop -t $WORKER_DRAIN_SECONDS $WORKER_NAME) and run the deploy again"
fi
case "$STATUS" in
    absent) finish 0 "result: absent worker=$WORKER_NAME" "$WORKER_NAME was removed while it was being stopped" ;;
    running | restarting | paused)
        finish 1 "result: failed worker=$WORKER_NAME status=$STATUS" \
            "could not stop $WORKER_NAME: docker stop exited $stop_status after ${elapsed}s (${stop_output:-no output}); it is still $STATUS, so $NEXT_TEXT was not started: two workers never run at once. Stop it by hand (docker stop -t $WORKER_DRAIN_SECONDS $WORKER_NAME) and run the deploy again"
        ;;
esac
[ "$stop_status" -eq 0 ] || err "docker stop exited $stop_status (${stop_output:-no output}), but $WORKER_NAME is $STATUS now"

# 137 = 128 + SIGKILL: dockerd killed it when the drain ran out.
if [ "$EXIT_CODE" = 137 ] && [ "$elapsed" -ge "$WORKER_DRAIN_SECONDS" ]; then
    finish 0 "result: killed worker=$WORKER_NAME seconds=$elapsed" \
        "$WORKER_NAME did not exit within ${WORKER_DRAIN_SECONDS}s of SIGTERM and was killed: jobs it was running were cut short"
fi
say "stopped $WORKER_NAME in ${elapsed}s (exit $EXIT_CODE)"
finish 0 "result: stopped worker=$WORKER_NAME exit=$EXIT_CODE seconds=$elapsed"
