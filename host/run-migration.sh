#!/bin/sh
# run-migration.sh — run a colour's one-off migration container (Medusa's `db:migrate`), which must
# succeed before that colour's server starts. Runs on the docker host (POSIX sh).
#
# Environment (inputs):
#   MIGRATION_IMAGE     required. Image id or reference of the release being migrated.
#   MIGRATION_NAME      required. Container name, e.g. medusa-prod-green-migrate.
#   MIGRATION_NETWORK   Docker network to join (the one reaching postgres). Default: Docker's default.
#   MIGRATION_COMMAND   Command run in the image, split on spaces into words (no quoting).
#                       Default: "npx medusa db:migrate --execute-safe-links".
#   MIGRATION_TIMEOUT   Seconds the container may run. Default: 600.
#   MIGRATION_SECRET_KEYS  Space-separated names of environment lines whose values are secret, on
#                       top of those named like one (*URL, *URI, *SECRET*, *PASSWORD*, *PASS,
#                       *TOKEN*, *KEY*, *CREDENTIAL*).
#   DOCKER_HOST         honoured by the docker CLI.
# Stdin: the container's environment as env-file lines (KEY=value, one a line, no quoting: the value
#   is everything after the first '='; '#' starts a comment line). It carries secrets such as
#   DATABASE_URL, so it is piped to `docker run --env-file /dev/stdin`: it is never a command-line
#   argument, never written to a file, never printed by this script. Close stdin after the lines:
#   docker reads it to the end before it starts the container.
#
# What it does:
#   1. removes a leftover container named MIGRATION_NAME (an earlier run killed half-way);
#   2. docker run --rm --name MIGRATION_NAME [--network MIGRATION_NETWORK] --env-file /dev/stdin
#      MIGRATION_IMAGE MIGRATION_COMMAND..., streaming its output (stdout and stderr) to stdout;
#   3. success: "migration: ok (<seconds>s)" on stdout, exit 0;
#      failure: "migration failed (exit N) in MIGRATION_NAME: the live colour was not touched" and
#      the last lines of its output on stderr, exit 1;
#      timeout: the container is removed (killed), "migration timed out after <T>s in ..." on stderr,
#      exit 124.
#   On SIGINT/SIGTERM the container is removed too (exit 130/143).
# The time limit uses coreutils `timeout` when installed: TERM to the docker CLI, which forwards it to
# the container's main process and keeps waiting, KILL to the CLI 5 s later, then the container is
# removed (measured: returns about 7 s after a 2 s limit). Without `timeout`, a watchdog removes the
# container through the daemon at the limit.
#
# Exit codes: 0 ok; 1 migration failed (or could not start: docker's own 125/126/127 are reported as
# the exit N); 2 bad input or docker unreachable (nothing ran); 124 timed out.
# Note: the values still reach the container's configuration in dockerd (as any -e would); the
# container is removed (--rm) as soon as it ends.
# Secrets in the output: a migration can print a secret (a driver error quoting DATABASE_URL), and
# whatever this script prints ends up in Pulumi's logs and in the error of a failed deploy. Every
# secret value (and the password inside a secret URL) is replaced by [secret] in the output before it
# leaves the container's pipe. awk gets the values ahead of the output on the same pipe: never a
# command line, an environment or a file on disk.

set -u

say() { printf '%s\n' "$*"; }
err() { printf 'run-migration: %s\n' "$*" >&2; }
die() { code=$1; shift; err "$*"; exit "$code"; }

MIGRATION_IMAGE=${MIGRATION_IMAGE:-}
MIGRATION_NAME=${MIGRATION_NAME:-}
MIGRATION_NETWORK=${MIGRATION_NETWORK:-}
MIGRATION_COMMAND=${MIGRATION_COMMAND:-npx medusa db:migrate --execute-safe-links}
MIGRATION_TIMEOUT=${MIGRATION_TIMEOUT:-600}
OUTPUT_TAIL_LINES=30

# ---- inputs ---------------------------------------------------------------------------------
[ -n "$MIGRATION_IMAGE" ] || die 2 "MIGRATION_IMAGE is required (the release's image id or reference); nothing ran"
case "$MIGRATION_NAME" in
    '') die 2 "MIGRATION_NAME is required (the migration container's name); nothing ran" ;;
    [!a-zA-Z0-9]* | *[!a-zA-Z0-9_.-]*) die 2 "MIGRATION_NAME '$MIGRATION_NAME' is not a valid container name ([a-zA-Z0-9][a-zA-Z0-9_.-]*); nothing ran" ;;
esac
case "$MIGRATION_TIMEOUT" in
    '' | *[!0-9]* | 0) die 2 "MIGRATION_TIMEOUT must be a positive whole number of seconds, got '$MIGRATION_TIMEOUT'; nothing ran" ;;
esac
[ -n "$(printf '%s' "$MIGRATION_COMMAND" | tr -d ' ')" ] || die 2 "MIGRATION_COMMAND is empty; nothing ran"
[ -t 0 ] && die 2 "the container's environment is read from stdin (KEY=value lines), which is a terminal; pipe it in; nothing ran"
command -v docker >/dev/null 2>&1 || die 2 "the docker CLI is not installed; nothing ran"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 </dev/null ||
    die 2 "dockerd does not answer (DOCKER_HOST=${DOCKER_HOST:-default}); nothing ran"

# ---- cleanup --------------------------------------------------------------------------------
# The work folder holds only the container's output and exit status, never the environment.
WORK=""
RUNNING=no
WATCHDOG=""
cleanup() {
    [ -n "$WATCHDOG" ] && kill "$WATCHDOG" 2>/dev/null
    if [ "$RUNNING" = yes ]; then
        docker rm -f "$MIGRATION_NAME" >/dev/null 2>&1 </dev/null &&
            err "interrupted: removed the migration container $MIGRATION_NAME; the live colour was not touched"
    fi
    [ -n "$WORK" ] && rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

WORK=$(umask 077 && mktemp -d "${TMPDIR:-/tmp}/run-migration.XXXXXX") || die 2 "cannot create a temporary folder; nothing ran"

container_exists() { docker inspect --type container "$MIGRATION_NAME" >/dev/null 2>&1 </dev/null; }

# ---- leftover -------------------------------------------------------------------------------
if container_exists; then
    state=$(docker inspect --type container -f '{{.State.Status}}' "$MIGRATION_NAME" 2>/dev/null </dev/null)
    docker rm -f "$MIGRATION_NAME" >/dev/null 2>"$WORK/rm.err" </dev/null ||
        die 1 "cannot remove the leftover container $MIGRATION_NAME ($state): $(cat "$WORK/rm.err"); nothing ran"
    say "migration: removed leftover container $MIGRATION_NAME (was $state)"
fi

# ---- secrets in the output --------------------------------------------------------------------
MASK_EXTRA_KEYS=${MIGRATION_SECRET_KEYS:-}
# shellcheck source=host/lib/mask-secrets.sh
. "${MEDUSA_DEPLOY_HOST_LIB:-$(dirname "$0")/lib}/mask-secrets.sh" # medusa-deploy:inline lib/mask-secrets.sh

# ---- run ------------------------------------------------------------------------------------
# Words of the command, split on spaces only, with globbing off so '*' reaches the container as is.
set -f
saved_ifs=$IFS
IFS=' '
# shellcheck disable=SC2086
set -- $MIGRATION_COMMAND
IFS=$saved_ifs
set +f

if [ -n "$MIGRATION_NETWORK" ]; then
    set -- --network "$MIGRATION_NETWORK" "$MIGRATION_IMAGE" "$@"
else
    set -- "$MIGRATION_IMAGE" "$@"
fi
set -- run --rm --name "$MIGRATION_NAME" --env-file /dev/stdin "$@"

if command -v timeout >/dev/null 2>&1; then
    LIMITER="timeout -k 5 $MIGRATION_TIMEOUT"
else
    LIMITER=""
    # The watchdog's own sleep is killed with it, so nothing outlives the script.
    (
        sleep "$MIGRATION_TIMEOUT" &
        trap 'kill $! 2>/dev/null; exit 0' TERM
        wait $!
        : >"$WORK/timed-out"
        docker rm -f "$MIGRATION_NAME" >/dev/null 2>&1 </dev/null
    ) </dev/null &
    WATCHDOG=$!
fi

say "migration: running '$MIGRATION_COMMAND' in $MIGRATION_NAME (image $MIGRATION_IMAGE, limit ${MIGRATION_TIMEOUT}s)"
started=$(date +%s)
RUNNING=yes
# The environment is read into this shell and reaches docker through a pipe made here: /dev/stdin
# can be opened again only when it is a pipe or a file, and callers may hand this script a socket
# (Node's child_process does), for which opening /dev/stdin fails with ENXIO. The container's output
# goes through the secret mask, then tee so its tail can be quoted on failure. The whole runs in the
# background so a SIGTERM to this script is handled at once (a foreground pipeline would delay the
# trap until docker exits).
ENV_LINES=$(cat)
{
    secret_values
    printf '%s\n' "$MASK_END"
    {
        # shellcheck disable=SC2086
        printf '%s\n' "$ENV_LINES" | $LIMITER docker "$@" 2>&1
        echo $? >"$WORK/status"
    }
} </dev/null | mask_secrets | tee "$WORK/output" &
wait $!
ended=$(date +%s)
elapsed=$((ended - started))
status=$(cat "$WORK/status" 2>/dev/null || echo 1)

if [ -n "$WATCHDOG" ]; then
    kill "$WATCHDOG" 2>/dev/null
    wait "$WATCHDOG" 2>/dev/null
    WATCHDOG=""
fi

timed_out=no
if [ -f "$WORK/timed-out" ]; then
    timed_out=yes
elif [ -n "$LIMITER" ] && { [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; } && [ "$elapsed" -ge "$MIGRATION_TIMEOUT" ]; then
    timed_out=yes
fi

if [ "$status" -eq 0 ] && [ "$timed_out" = no ]; then
    RUNNING=no
    say "migration: ok (${elapsed}s)"
    exit 0
fi

# The docker CLI may be gone while the container still runs (timeout killed the CLI): remove it.
removed=""
if container_exists; then
    if docker rm -f "$MIGRATION_NAME" >/dev/null 2>&1 </dev/null; then
        removed=" The container was removed."
    else
        removed=" Removing the container failed: remove it by hand (docker rm -f $MIGRATION_NAME)."
    fi
fi
RUNNING=no

if [ "$timed_out" = yes ]; then
    err "migration timed out after ${MIGRATION_TIMEOUT}s in $MIGRATION_NAME: the live colour was not touched.$removed"
    code=124
else
    err "migration failed (exit $status) in $MIGRATION_NAME: the live colour was not touched.$removed"
    code=1
fi
err "last lines of its output:"
tail -n "$OUTPUT_TAIL_LINES" "$WORK/output" | sed 's/^/    /' >&2
exit "$code"
