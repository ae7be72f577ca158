#!/bin/sh
# ensure-buildkit-builder.sh — make sure a named buildx "docker-container" builder exists with the
# given buildkitd.toml, for @pulumi/docker-build's `builder: { name }`.
# POSIX sh. Runs on the machine that runs `pulumi up` (buildx keeps builder metadata on the client),
# with DOCKER_HOST pointing at the docker host the builder container should run on.
#
# Why: docker-build never builds with the daemon's own BuildKit; given a builder name it uses that
# builder and fails ("no builder ... found") when it does not exist. The builder's cache is bounded
# only by its buildkitd.toml (lib/buildkitdToml.ts renders it), not by daemon.json.
#
# Inputs (environment):
#   BUILDER_NAME       required. Builder name, e.g. medusa-deploy-staging.
#   BUILDKITD_TOML     required. The buildkitd.toml content.
#   DOCKER_HOST        optional. The docker endpoint for the builder's container (unix://, tcp://,
#                      ssh://user@host). Unset: the docker CLI's current context.
#   BUILDER_DRIVER_OPTS optional. Space-separated key=value driver options, each passed as
#                      --driver-opt; e.g. "network=host" so the builder reaches a registry on the
#                      host's loopback (the dev stack's local registry).
#   BUILDKIT_IMAGE     optional. Image of the builder's buildkitd container (--driver-opt image=…),
#                      e.g. the local image tools/toolchain.sh builds on machines that cannot pull.
#                      Unset: buildx's default (moby/buildkit), pulled from Docker Hub.
#   BUILDER_STATE_DIR  optional, default ~/.medusa-deploy/builders. Holds <name>.sha256: the hash of
#                      the toml, driver options and endpoint the builder was created with.
#
# Behaviour: builder present and created from the same toml and endpoint -> "builder unchanged".
# Absent -> created with --bootstrap. Present but created from another toml or endpoint (or not by
# this script) -> removed with --keep-state (its cache volume stays and the new builder reuses it)
# and created again. Last stdout line: "result: builder unchanged" | "result: builder created" |
# "result: builder recreated" | "result: failed".

set -u

say() { printf '%s\n' "$*"; }
fail() { printf 'ensure-buildkit-builder: error: %s\n' "$1" >&2; say "result: failed"; exit 1; }

[ -n "${BUILDER_NAME:-}" ] || fail "BUILDER_NAME is empty: name the buildx builder to ensure. Nothing was changed."
case "$BUILDER_NAME" in
    *[!A-Za-z0-9._-]*) fail "BUILDER_NAME '$BUILDER_NAME' may only hold letters, digits, '.', '_' and '-'. Nothing was changed." ;;
esac
[ -n "${BUILDKITD_TOML:-}" ] || fail "BUILDKITD_TOML is empty: pass the buildkitd.toml content (lib/buildkitdToml.ts). Nothing was changed."
BUILDER_STATE_DIR=${BUILDER_STATE_DIR:-${HOME:-/root}/.medusa-deploy/builders}
ENDPOINT=${DOCKER_HOST:-}
BUILDER_DRIVER_OPTS=${BUILDER_DRIVER_OPTS:-}
BUILDKIT_IMAGE=${BUILDKIT_IMAGE:-}
case "$BUILDKIT_IMAGE" in
    *[!A-Za-z0-9._:/@-]*) fail "BUILDKIT_IMAGE '$BUILDKIT_IMAGE' is not an image reference (letters, digits and . _ : / @ -). Nothing was changed." ;;
esac
[ -n "$BUILDKIT_IMAGE" ] && BUILDER_DRIVER_OPTS="$BUILDER_DRIVER_OPTS image=$BUILDKIT_IMAGE"

command -v docker >/dev/null 2>&1 ||
    fail "the docker CLI is not installed on this machine; install it with the Docker Buildx plugin (docker-ce-cli and docker-buildx-plugin from Docker's apt repository). Nothing was changed."
if ! docker buildx version >/dev/null 2>&1; then
    fail "'docker buildx' is not available: install the Docker Buildx plugin (docker-buildx-plugin from Docker's apt repository, docker-buildx on Debian 13+ and Ubuntu 24.04+, or Docker Desktop). @pulumi/docker-build needs it to use a docker-container builder. Nothing was changed."
fi

hash_stdin() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum | cut -d' ' -f1
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 | cut -d' ' -f1
    else
        openssl dgst -sha256 | sed 's/^.* //'
    fi
}

WANTED=$(printf 'endpoint=%s\ndriver-opts=%s\n%s' "$ENDPOINT" "$BUILDER_DRIVER_OPTS" "$BUILDKITD_TOML" | hash_stdin)
[ -n "$WANTED" ] || fail "cannot hash the builder configuration (needs sha256sum, shasum or openssl). Nothing was changed."
STATE_FILE="$BUILDER_STATE_DIR/$BUILDER_NAME.sha256"
RECORDED=$(cat "$STATE_FILE" 2>/dev/null || true)

EXISTS=0
docker buildx inspect "$BUILDER_NAME" >/dev/null 2>&1 && EXISTS=1

if [ "$EXISTS" = 1 ] && [ "$RECORDED" = "$WANTED" ]; then
    say "builder unchanged ($BUILDER_NAME)"
    say "result: builder unchanged"
    exit 0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ensure-builder.XXXXXX") || fail "cannot create a temporary folder. Nothing was changed."
trap 'rm -rf "$WORK"' EXIT
printf '%s\n' "$BUILDKITD_TOML" >"$WORK/buildkitd.toml"

if [ "$EXISTS" = 1 ]; then
    say "builder $BUILDER_NAME exists with another configuration: recreating it, keeping its cache"
    docker buildx rm --keep-state "$BUILDER_NAME" >"$WORK/rm.out" 2>&1 ||
        fail "could not remove builder $BUILDER_NAME to recreate it: $(cat "$WORK/rm.out"). It was left as it was."
fi

set -- --name "$BUILDER_NAME" --driver docker-container --config "$WORK/buildkitd.toml" --bootstrap
for option in $BUILDER_DRIVER_OPTS; do set -- "$@" --driver-opt "$option"; done
[ -n "$ENDPOINT" ] && set -- "$@" "$ENDPOINT"
if ! docker buildx create "$@" >"$WORK/create.out" 2>&1; then
    rm -f "$STATE_FILE"
    state="no builder named $BUILDER_NAME exists now"
    [ "$EXISTS" = 1 ] && state="the previous builder was removed (its cache volume kept); $state"
    fail "docker buildx create failed: $(cat "$WORK/create.out"). $state; fix the cause and run again."
fi

mkdir -p "$BUILDER_STATE_DIR" && state_tmp=$(mktemp "$BUILDER_STATE_DIR/.$BUILDER_NAME.XXXXXX") &&
    printf '%s\n' "$WANTED" >"$state_tmp" && mv -f "$state_tmp" "$STATE_FILE" ||
    printf 'ensure-buildkit-builder: warning: builder created, but %s could not be written; the next run recreates it\n' "$STATE_FILE" >&2

if [ "$EXISTS" = 1 ]; then
    say "builder $BUILDER_NAME recreated"
    say "result: builder recreated"
else
    say "builder $BUILDER_NAME created"
    say "result: builder created"
fi
