#!/bin/sh
# npm run preview|up|rollback|destroy for the dev stack: local Docker, a local file backend in
# .pulumi-state/ (no Pulumi account) and the fixed dev passphrase. Checks what a new user is most
# likely missing before Pulumi starts, and says what to do about it.
set -eu
cd "$(dirname "$0")/.."
action=${1:-}
stack=dev

export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$(pwd)/.pulumi-state}"
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE:-medusa-deploy-dev}"
export PULUMI_SKIP_UPDATE_CHECK=true

fail() { echo "medusa-deploy: $*" >&2; exit 1; }

pulumi_cli() {
    if command -v pulumi >/dev/null 2>&1; then pulumi "$@"; else npx --no-install pulumi "$@"; fi
}

preflight_docker() {
    docker info >/dev/null 2>&1 || fail "Docker is not reachable (docker info failed). Start Docker Desktop or dockerd, or set DOCKER_HOST, then try again."
}

# A port is fine when it is free or already published by this stack's own container.
preflight_port() {
    port=$1 owner=$2
    if docker ps --filter "name=^${owner}\$" --format '{{.Ports}}' 2>/dev/null | grep -q ":${port}->"; then return 0; fi
    if node -e 'const s=require("net").createServer();s.once("error",()=>process.exit(1));s.listen(Number(process.argv[1]),"127.0.0.1",()=>s.close())' "$port"; then return 0; fi
    fail "port ${port} on 127.0.0.1 is taken by another program (needed by ${owner}). Free it, or pick another port: npx pulumi config set medusa-deploy:$3 <port> --stack dev"
}

preflight_pulumi() {
    pulumi_cli version >/dev/null 2>&1 || fail "the Pulumi CLI is not available and could not be fetched (the 'pulumi' npm package downloads it on first use, which needs internet). Install it: https://www.pulumi.com/docs/install/ (curl -fsSL https://get.pulumi.com | sh), then try again."
}

# The ports the dev stack publishes, as Pulumi.dev.yaml sets them.
setting() { sed -n "s/^  medusa-deploy:$1: *//p" "Pulumi.${stack}.yaml"; }
edge_port=$(setting edgePort)
registry_port=$(setting localRegistryPort)

mkdir -p .pulumi-state
case "$action" in
preview | up | rollback)
    preflight_docker
    preflight_port "${edge_port:-8080}" "medusa-${stack}-edge" edgePort
    [ -z "$registry_port" ] || preflight_port "$registry_port" "medusa-${stack}-registry" localRegistryPort
    preflight_pulumi
    pulumi_cli stack select --create "$stack" >/dev/null
    ;;
destroy)
    preflight_pulumi
    pulumi_cli stack select "$stack" >/dev/null
    ;;
*) fail "usage: tools/dev-stack.sh preview|up|rollback|destroy" ;;
esac

case "$action" in
preview) pulumi_cli preview --stack "$stack" --diff ;;
up)
    pulumi_cli up --stack "$stack" --yes
    echo "The shop: $(pulumi_cli stack output url --stack "$stack")  (live: $(pulumi_cli stack output live --stack "$stack"))"
    ;;
rollback)
    target=$(pulumi_cli stack output rollbackRelease --stack "$stack" 2>/dev/null || true)
    [ -n "$target" ] || fail "nothing to roll back to: the idle colour has no release yet"
    echo "Rolling back to release ${target} (traffic moves to the colour that still runs it)."
    pulumi_cli config set medusa-deploy:release "$target" --stack "$stack"
    pulumi_cli up --stack "$stack" --yes
    echo "Traffic is on ${target}. To follow the app folder again: npx pulumi config rm medusa-deploy:release --stack dev"
    ;;
destroy)
    # Data volumes are protected: they stay, with the shop's data, for the next deploy.
    pulumi_cli destroy --stack "$stack" --yes --exclude-protected
    ;;
esac
