#!/bin/sh
# npm run preview|up|rollback|destroy for the dev stack: local Docker, a local file backend in
# .pulumi-state/ (no Pulumi account) and the fixed dev passphrase. Makes sure the pinned engine is
# there (tools/toolchain.sh builds it on first use), checks in one pass what a new user is most
# likely missing, says what to do about each, and only then starts Pulumi.
set -eu
cd "$(dirname "$0")/.."
action=${1:-}
stack=dev

export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$(pwd)/.pulumi-state}"
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE:-medusa-deploy-dev}"

fail() { echo "medusa-deploy: $*" >&2; exit 1; }

case "$action" in
preview | up | rollback | destroy) ;;
*) fail "usage: tools/dev-stack.sh preview|up|rollback|destroy" ;;
esac

# The engine: the toolchain the project pins, built from Go modules on first use (no downloads at
# run time). Without Go, an installed `pulumi` (or the npm launcher, which needs internet once) is used.
if command -v go >/dev/null 2>&1; then
    sh tools/toolchain.sh ensure >&2 || fail "the Pulumi toolchain could not be built (see above); nothing was deployed"
    eval "$(sh tools/toolchain.sh env)"
fi

problems=""
problem() { problems="${problems}
  - $*"; }

pulumi_cli() {
    if command -v pulumi >/dev/null 2>&1; then pulumi "$@"; else npx --no-install pulumi "$@"; fi
}

preflight_pulumi() {
    if ! pulumi_cli version >/dev/null 2>&1; then
        problem "the Pulumi CLI is not available: run 'npm run toolchain' (builds the pinned CLI from Go modules, no internet beyond the Go module proxy), or install Pulumi $(node -p 'require("pulumi/package.json").version') on PATH"
        return
    fi
    plugins=$(pulumi_cli plugin ls --json 2>/dev/null || echo '[]')
    missing=$(printf '%s' "$plugins" | node -e '
        const wanted = ["docker-build", "command", "docker"].map((n) => [n, require(`@pulumi/${n}/package.json`).pulumi.version]);
        let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
            const have = JSON.parse(s || "[]").filter((p) => p.kind === "resource").map((p) => `${p.name}-${p.version}`);
            process.stdout.write(wanted.map(([n, v]) => `${n}-${v}`).filter((p) => !have.includes(p)).join(" "));
        });')
    [ -z "$missing" ] || problem "provider plugins missing from the Pulumi home ${PULUMI_HOME:-~/.pulumi}: $missing. 'npm run toolchain' builds and installs the pinned plugins and lists those the Go module proxy cannot serve (README: Offline and air-gapped machines)"
}

preflight_docker() {
    if ! docker info >/dev/null 2>&1; then
        problem "Docker is not reachable (docker info failed): start dockerd or Docker Engine, or set DOCKER_HOST"
        return 1
    fi
    [ "$(docker info --format '{{.OSType}}' 2>/dev/null)" = linux ] || problem "Docker must be a Linux engine (the edge's admin socket is a bind-mounted UNIX socket)"
    docker buildx version >/dev/null 2>&1 || problem "docker buildx is missing: 'npm run toolchain' installs the pinned buildx as a docker CLI plugin"
}

preflight_tools() {
    for tool in socat curl; do
        command -v "$tool" >/dev/null 2>&1 || problem "$tool is missing (the traffic switch talks to the edge through it): apt-get install $tool"
    done
}

# A port is fine when it is free or already published by this stack's own container.
preflight_port() {
    port=$1 owner=$2
    if docker ps --filter "name=^${owner}\$" --format '{{.Ports}}' 2>/dev/null | grep -q ":${port}->"; then return 0; fi
    if node -e 'const s=require("net").createServer();s.once("error",()=>process.exit(1));s.listen(Number(process.argv[1]),"127.0.0.1",()=>s.close())' "$port"; then return 0; fi
    problem "port ${port} on 127.0.0.1 is taken by another program (needed by ${owner}): free it, or pick another: pulumi config set medusa-deploy:$3 <port> --stack dev"
}

# The ports the dev stack publishes, as Pulumi.dev.yaml sets them.
setting() { sed -n "s/^  medusa-deploy:$1: *//p" "Pulumi.${stack}.yaml" | sed 's/^["]//; s/["]$//'; }

mkdir -p .pulumi-state
preflight_pulumi
if [ "$action" != destroy ]; then
    preflight_tools
    if preflight_docker; then
        edge_port=$(setting edgePort)
        registry_port=$(setting localRegistryPort)
        preflight_port "${edge_port:-8080}" "medusa-${stack}-edge" edgePort
        [ -z "$registry_port" ] || preflight_port "$registry_port" "medusa-${stack}-registry" localRegistryPort
    fi
fi
# The builder image the dev stack names: the toolchain's own, loaded into local Docker (idempotent).
buildkit_image=$(setting buildkitImage)
if [ "$action" != destroy ] && [ -n "$buildkit_image" ] && [ -z "$problems" ]; then
    if [ "$buildkit_image" = "${MEDUSA_DEPLOY_BUILDKIT_IMAGE:-}" ]; then
        sh tools/toolchain.sh load-buildkit-image >&2 || problem "could not load $buildkit_image into Docker (see above)"
    elif ! docker image inspect "$buildkit_image" >/dev/null 2>&1; then
        problem "buildkitImage $buildkit_image is not in local Docker: run 'npm run toolchain' (it builds that image), or remove medusa-deploy:buildkitImage from Pulumi.dev.yaml to let buildx pull moby/buildkit"
    fi
fi
[ -z "$problems" ] || fail "cannot ${action} the dev stack yet; nothing was changed:${problems}"

# preview/up/destroy run the real CLI through the Automation API (tools/pulumi-stack.ts), which needs
# no pulumi-language-nodejs binary; config and outputs use the CLI directly.
stack_command() { node_modules/.bin/ts-node --transpile-only tools/pulumi-stack.ts "$@" --stack "$stack"; }

case "$action" in
preview) stack_command preview ;;
up)
    stack_command up
    echo "The shop: $(pulumi_cli stack output url --stack "$stack")  (live: $(pulumi_cli stack output live --stack "$stack"))"
    ;;
rollback)
    target=$(pulumi_cli stack output rollbackRelease --stack "$stack" 2>/dev/null || true)
    [ -n "$target" ] || fail "nothing to roll back to: the idle colour has no release yet"
    echo "Rolling back to release ${target} (traffic moves to the colour that still runs it)."
    pulumi_cli config set medusa-deploy:release "$target" --stack "$stack"
    stack_command up
    echo "Traffic is on ${target}. To follow the app folder again: pulumi config rm medusa-deploy:release --stack dev (with the PULUMI_BACKEND_URL above)"
    ;;
destroy)
    # Data volumes are protected: they stay, with the shop's data, for the next deploy.
    stack_command destroy
    ;;
esac
