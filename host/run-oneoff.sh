#!/bin/sh
# run-oneoff.sh — run a one-off command (the first admin user, a data fix, `medusa exec`) in a fresh
# container of one colour's release: the same image, environment, user and network as that colour's
# server container, no published port, removed when it ends. The colour's own containers are not
# touched. Runs on the docker host (POSIX sh); needs the docker CLI only.
#
# Environment (inputs):
#   ONEOFF_FROM     required. The colour's server container, e.g. medusa-prod-blue-server.
#   ONEOFF_NAME     required. Name of the one-off container, e.g. medusa-prod-blue-oneoff-20261203T101500.
#   ONEOFF_TTY      1: give the command a terminal (docker -t), for prompts. Default: none.
#   DOCKER_HOST     honoured by the docker CLI.
# Arguments: the command words, run as the image's entrypoint would run them (docker create IMAGE ARGS).
# Stdin: passed to the command (docker start --attach --interactive).
#
# The environment carries the shop's secrets (DATABASE_URL, JWT_SECRET, ...). It goes from
# `docker inspect` of ONEOFF_FROM straight into `docker create --env-file /dev/stdin` through a pipe:
# never a command-line argument, a file on disk or this script's output. A value that spans lines
# cannot be carried by an env file: refused (exit 2) rather than cut.
#
# Stdout: the command's own output. Stderr: "oneoff: ..." lines saying what runs where.
# Exit codes: the command's own exit code; 2 bad input, or ONEOFF_FROM missing (nothing ran);
# 125 the container could not be created or started (docker's own code).

set -u

err() { printf 'oneoff: %s\n' "$*" >&2; }
die() { code=$1; shift; err "$*"; exit "$code"; }

ONEOFF_FROM=${ONEOFF_FROM:-}
ONEOFF_NAME=${ONEOFF_NAME:-}
ONEOFF_TTY=${ONEOFF_TTY:-}

valid_name() { case "$1" in '' | -* | *[!A-Za-z0-9_.-]*) return 1 ;; esac; }
valid_name "$ONEOFF_FROM" || die 2 "ONEOFF_FROM must be a container name ([A-Za-z0-9_.-]), got '$ONEOFF_FROM'; nothing ran"
valid_name "$ONEOFF_NAME" || die 2 "ONEOFF_NAME must be a container name ([A-Za-z0-9_.-]), got '$ONEOFF_NAME'; nothing ran"
case "$ONEOFF_TTY" in '' | 0 | 1) ;; *) die 2 "ONEOFF_TTY must be 1 or empty, got '$ONEOFF_TTY'; nothing ran" ;; esac
[ "$#" -gt 0 ] || die 2 "no command given (say what to run after --); nothing ran"

inspect() { docker inspect --type container --format "$1" "$ONEOFF_FROM"; }
image=$(inspect '{{.Image}}' 2>/dev/null) ||
    die 2 "container $ONEOFF_FROM does not exist or docker is unreachable: has this colour been deployed? (npm run status); nothing ran"
user=$(inspect '{{.Config.User}}')
# shellcheck disable=SC2016 # a Go template, not shell
network=$(inspect '{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}')
network=${network%% *}
[ -n "$network" ] || die 2 "container $ONEOFF_FROM is on no network, so a one-off could not reach the database; nothing ran"
variables=$(inspect '{{len .Config.Env}}')
# One line per variable, plus the newline docker inspect ends its output with.
lines=$(inspect '{{range .Config.Env}}{{println .}}{{end}}' | wc -l)
[ "$lines" -eq $((variables + 1)) ] ||
    die 2 "an environment value of $ONEOFF_FROM spans lines, which docker's env file cannot carry; nothing ran"

# A container of that name is a leftover of an earlier one-off killed half-way.
docker rm -f "$ONEOFF_NAME" >/dev/null 2>&1

command_words=$*
if [ "$ONEOFF_TTY" = 1 ]; then set -- --tty "$image" "$@"; else set -- "$image" "$@"; fi
inspect '{{range .Config.Env}}{{println .}}{{end}}' |
    docker create --rm --interactive --init --name "$ONEOFF_NAME" --network "$network" ${user:+--user "$user"} \
        --label medusa-deploy.role=oneoff --label "medusa-deploy.oneoff-from=$ONEOFF_FROM" \
        --env-file /dev/stdin "$@" >/dev/null ||
    die 125 "could not create the one-off container $ONEOFF_NAME from $ONEOFF_FROM's image; nothing ran"

# Interrupted: the container goes too, so no half-run command stays behind.
trap 'docker rm -f "$ONEOFF_NAME" >/dev/null 2>&1; exit 130' INT
trap 'docker rm -f "$ONEOFF_NAME" >/dev/null 2>&1; exit 143' TERM
err "running in $ONEOFF_NAME (image $image of $ONEOFF_FROM, network $network${user:+, user $user}): $command_words"
# In the background so a TERM is handled at once (a shell runs traps only between commands), with
# stdin given explicitly (a background command's stdin is otherwise /dev/null).
exec 3<&0
docker start --attach --interactive "$ONEOFF_NAME" <&3 &
wait "$!"
status=$?
err "exit $status"
exit "$status"
