#!/bin/sh
# toolchain.sh — build the Pulumi engine, its plugins, buildx and a BuildKit image from Go modules at
# the versions in tools/toolchain/versions.env, cache them outside the clone, and install them where
# the npm `pulumi` launcher, the engine and the docker CLI look. Nothing is downloaded at run time:
# the only network this needs is the Go module proxy, once per set of versions.
#
# Usage: sh tools/toolchain.sh [ensure|build|env|check|load-buildkit-image]
#   ensure   (default) build what is missing for this set of versions, install it, check it
#   build    same as ensure, but rebuild every piece even if cached
#   env      print the `export` lines that make a shell use this toolchain (after ensure)
#   check    verify `pulumi version` and `pulumi plugin ls` show exactly the pinned versions
#   load-buildkit-image  import the BuildKit image into the daemon DOCKER_HOST names (idempotent)
#
# Environment:
#   MEDUSA_DEPLOY_TOOLCHAIN_CACHE  where built binaries are kept, one folder per key
#                                  (default ${XDG_CACHE_HOME:-$HOME/.cache}/medusa-deploy/toolchain)
#   MEDUSA_DEPLOY_PULUMI_HOME      the Pulumi home the project controls (default $HOME/.medusa-deploy/pulumi)
#   DOCKER_CONFIG                  the docker CLI's config folder; buildx goes to its cli-plugins/
#
# Pieces a Go module proxy does not serve at the pinned version are reported as "not built", with
# the proxy's answer, and the script exits 3 after building everything else (see the README's
# "Offline and air-gapped machines"). A missing piece never makes a later command download it: the
# `env` lines turn automatic plugin acquisition and update checks off.

set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOOLCHAIN_DIR="$ROOT/tools/toolchain"
# shellcheck source=tools/toolchain/versions.env
. "$TOOLCHAIN_DIR/versions.env"

CACHE_ROOT=${MEDUSA_DEPLOY_TOOLCHAIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/medusa-deploy/toolchain}
PULUMI_HOME_DIR=${MEDUSA_DEPLOY_PULUMI_HOME:-$HOME/.medusa-deploy/pulumi}
CLI_PLUGIN_DIR=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins
BUILDKIT_IMAGE="medusa-deploy/buildkit:v$BUILDKIT_VERSION"

say() { printf 'toolchain: %s\n' "$*" >&2; }
die() { printf 'toolchain: error: %s\n' "$*" >&2; exit 1; }

# The key names every input of the build: versions (with RECIPE_REVISION, bumped when this script
# builds differently), the wrapper modules, and the Go toolchain.
toolchain_key() {
    {
        cat "$TOOLCHAIN_DIR/versions.env"
        find "$TOOLCHAIN_DIR" -type f \( -name go.mod -o -name go.sum -o -name '*.go' -o -name '*.in' \) | LC_ALL=C sort | xargs cat
        go env GOVERSION GOARCH
    } | sha256sum | cut -c1-16
}

# The npm packages decide what the program asks the engine for; the toolchain must match them.
check_npm_pins() {
    node_modules="$ROOT/node_modules"
    [ -d "$node_modules" ] || return 0
    for pair in "pulumi:$PULUMI_VERSION:version" "@pulumi/docker-build:$DOCKER_BUILD_PLUGIN_VERSION:pulumi.version" \
        "@pulumi/command:$COMMAND_PLUGIN_VERSION:pulumi.version" "@pulumi/docker:$DOCKER_PLUGIN_VERSION:pulumi.version"; do
        pkg=${pair%%:*}
        rest=${pair#*:}
        want=${rest%%:*}
        field=${rest#*:}
        [ -f "$node_modules/$pkg/package.json" ] || continue
        have=$(node -e 'const p=require(process.argv[1]);const v=process.argv[2].split(".").reduce((o,k)=>o&&o[k],p);process.stdout.write(String(v))' "$node_modules/$pkg/package.json" "$field")
        [ "$have" = "$want" ] ||
            die "tools/toolchain/versions.env pins $pkg at $want but node_modules has $have: update versions.env (and the wrapper modules) with the npm package, or run npm ci"
    done
}

need_go() {
    command -v go >/dev/null 2>&1 || die "Go is not installed; the toolchain is built from Go modules (Go >= 1.26 from your distribution or go.dev)"
    go_minor=$(go env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
    [ "${go_minor:-0}" -ge 26 ] || die "Go $(go env GOVERSION) is too old: docker-build $DOCKER_BUILD_PLUGIN_VERSION needs Go >= 1.26.0 (or export GOTOOLCHAIN=go1.26.8)"
}

# build_tool LABEL WRAPPER PACKAGE OUT LDFLAGS: `go build` PACKAGE inside the committed wrapper module
# tools/toolchain/WRAPPER, whose go.mod and go.sum pin every module (`go install pkg@version` refuses
# modules with replace or exclude directives, and one module a binary keeps versions from unifying
# across binaries). Its time and outcome go to stderr, its output to logs/WRAPPER.log.
build_tool() {
    label=$1 wrapper=$2 package=$3 target=$4 ldflags=$5
    [ -x "$target" ] && [ "$REBUILD" = 0 ] && return 0
    log="$KEYDIR/logs/$wrapper.$(basename "$target").log"
    say "building $label ..."
    began=$(date +%s)
    if (cd "$TOOLCHAIN_DIR/$wrapper" && CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=readonly" \
        go build -trimpath -ldflags "$ldflags" -o "$target.tmp" "$package") >"$log" 2>&1; then
        mv -f "$target.tmp" "$target"
        say "built $label in $(($(date +%s) - began)) s"
        return 0
    fi
    rm -f "$target.tmp"
    say "could not build $label: $(tail -n 5 "$log" | tr '\n' ' ')"
    return 1
}

# A piece whose module the proxy does not serve at the pinned version: record why, build the rest.
not_built() {
    printf '%s\t%s\n' "$1" "$2" >>"$KEYDIR/not-built.tsv"
    say "NOT BUILT: $1: $2"
}

# probe_module LABEL MODULE VERSION: is MODULE@VERSION served? If not, record the proxy's answer.
probe_module() {
    label=$1 module=$2 version=$3
    log="$KEYDIR/logs/probe-$(basename "$module").log"
    if (cd "$KEYDIR/work" && go mod download -json "$module@$version") >"$log" 2>&1; then return 0; fi
    answer=$(grep -o '"Error": *"[^"]*"' "$log" | head -n 1 | sed 's/^"Error": *"//; s/"$//; s/\\n\\t/ /g')
    not_built "$label" "go mod download $module@$version: ${answer:-$(tail -n 1 "$log")}"
    return 1
}

# The two pieces below have no release tag in their module path, so only a pseudo-version of the
# release commit could pin them, and the proxy serves none (see versions.env and the README). The
# script asks every time, so they are built as soon as a proxy serves them: a wrapper module with
# the same shape as pulumi-cli/ is then all that is missing for the language host and command.
build_unserved_pieces() {
    probe_module pulumi-language-nodejs github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3 "$LANGUAGE_NODEJS_MODULE_VERSION" &&
        not_built pulumi-language-nodejs "served, but no wrapper module for it is committed yet (tools/toolchain/)"
    probe_module "pulumi-resource-command v$COMMAND_PLUGIN_VERSION" github.com/pulumi/pulumi-command/provider "$COMMAND_PROVIDER_MODULE_VERSION" &&
        not_built "pulumi-resource-command v$COMMAND_PLUGIN_VERSION" "served, but no wrapper module for it is committed yet (tools/toolchain/)"
    return 0
}

# pulumi-resource-docker: pulumi-docker's own provider module is not served, so the plugin is built
# from what is: the Terraform provider it bridges (copied from the module cache into the wrapper's
# ./upstream, plus our shim package), Pulumi's terraform-plugin-sdk fork and the bridge. tfgen writes
# the schema and bridge metadata the plugin embeds.
build_docker_plugin() {
    target="$KEYDIR/plugins/pulumi-resource-docker"
    [ -x "$target" ] && [ "$REBUILD" = 0 ] && return 0
    work="$KEYDIR/work/docker-provider"
    log="$KEYDIR/logs/docker-provider.log"
    rm -rf "$work" && cp -R "$TOOLCHAIN_DIR/docker-provider" "$work"
    say "building pulumi-resource-docker v$DOCKER_PLUGIN_VERSION (bridged Terraform provider) ..."
    began=$(date +%s)
    upstream=$(cd "$work" && go mod download -json "github.com/kreuzwerker/terraform-provider-docker@$DOCKER_UPSTREAM_MODULE_VERSION" 2>>"$log" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -n "$upstream" ] || { not_built "pulumi-resource-docker v$DOCKER_PLUGIN_VERSION" "upstream module not served: $(tail -n 2 "$log" | tr '\n' ' ')"; return 1; }
    cp -R "$upstream" "$work/upstream" && chmod -R u+w "$work/upstream"
    mkdir -p "$work/upstream/shim" && cp "$work/shim.go.in" "$work/upstream/shim/shim.go"
    generated="$work/cmd/pulumi-resource-docker"
    ldflags="-X main.Version=$DOCKER_PLUGIN_VERSION"
    if ! (cd "$work" && CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=readonly" go build -tags no_compose -trimpath -ldflags "$ldflags" -o "$work/tfgen" ./cmd/pulumi-tfgen-docker &&
        cd "$generated" && "$work/tfgen" schema --skip-docs --skip-examples --out "$generated" &&
        cd "$work" && CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=readonly" go build -tags no_compose -trimpath -ldflags "$ldflags" -o "$target.tmp" ./cmd/pulumi-resource-docker) >>"$log" 2>&1; then
        rm -f "$target.tmp"
        not_built "pulumi-resource-docker v$DOCKER_PLUGIN_VERSION" "build failed: $(tail -n 5 "$log" | tr '\n' ' ')"
        return 1
    fi
    mv -f "$target.tmp" "$target"
    say "built pulumi-resource-docker v$DOCKER_PLUGIN_VERSION in $(($(date +%s) - began)) s"
}

# The builder image: buildkitd as entrypoint, buildctl and Debian's runc on PATH, state in
# /var/lib/buildkit. Assembled as a root filesystem for `docker import`, since no image can be pulled.
build_buildkit_rootfs() {
    out="$KEYDIR/buildkit-rootfs.tar"
    [ -s "$out" ] && [ "$REBUILD" = 0 ] && return 0
    [ -x "$KEYDIR/bin/buildkitd" ] && [ -x "$KEYDIR/bin/buildctl" ] || return 1
    runc=$(command -v runc || true)
    [ -n "$runc" ] || { not_built "BuildKit image" "runc is not installed (Debian: apt-get install runc)"; return 1; }
    busybox=$(command -v busybox || true)
    rootfs="$KEYDIR/work/buildkit-rootfs"
    rm -rf "$rootfs"
    mkdir -p "$rootfs/usr/bin" "$rootfs/bin" "$rootfs/etc/buildkit" "$rootfs/etc/ssl/certs" "$rootfs/var/lib/buildkit" "$rootfs/tmp" "$rootfs/run"
    cp "$KEYDIR/bin/buildkitd" "$KEYDIR/bin/buildctl" "$runc" "$rootfs/usr/bin/"
    # runc is linked dynamically (libseccomp); carry exactly the libraries it loads.
    ldd "$runc" | awk '/=> \//{print $3} /^\t\/lib/{print $1}' | while read -r lib; do
        mkdir -p "$rootfs$(dirname "$lib")"
        cp -L "$lib" "$rootfs$lib"
    done
    if [ -n "$busybox" ] && file_is_static "$busybox"; then
        cp "$busybox" "$rootfs/bin/busybox"
        for applet in sh ls cat; do ln -s busybox "$rootfs/bin/$applet"; done
    fi
    [ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$rootfs/etc/passwd"
    printf 'root:x:0:\n' >"$rootfs/etc/group"
    chmod 1777 "$rootfs/tmp"
    tar -C "$rootfs" --numeric-owner --owner=0 --group=0 -cf "$out.tmp" . && mv -f "$out.tmp" "$out"
    say "BuildKit image root filesystem ready ($(du -h "$out" | cut -f1))"
}

file_is_static() { ! ldd "$1" >/dev/null 2>&1; }

# Plugins go into the project's Pulumi home with the engine's own installer (exact-version dirs);
# the CLI and the language host go where the npm launcher looks for this version.
install_toolchain() {
    versions_bin="$PULUMI_HOME_DIR/versions/$PULUMI_VERSION/bin"
    mkdir -p "$versions_bin"
    install -m 0755 "$KEYDIR/bin/pulumi" "$versions_bin/pulumi.tmp" && mv -f "$versions_bin/pulumi.tmp" "$versions_bin/pulumi"
    if [ -x "$KEYDIR/bin/pulumi-language-nodejs" ]; then
        install -m 0755 "$KEYDIR/bin/pulumi-language-nodejs" "$versions_bin/pulumi-language-nodejs"
    fi
    for plugin in "docker-build:$DOCKER_BUILD_PLUGIN_VERSION" "command:$COMMAND_PLUGIN_VERSION" "docker:$DOCKER_PLUGIN_VERSION"; do
        name=${plugin%%:*}
        version=${plugin#*:}
        file="$KEYDIR/plugins/pulumi-resource-$name"
        [ -x "$file" ] || continue
        [ -x "$PULUMI_HOME_DIR/plugins/resource-$name-v$version/pulumi-resource-$name" ] &&
            cmp -s "$file" "$PULUMI_HOME_DIR/plugins/resource-$name-v$version/pulumi-resource-$name" && continue
        PULUMI_HOME="$PULUMI_HOME_DIR" PULUMI_SKIP_UPDATE_CHECK=1 "$versions_bin/pulumi" plugin install resource "$name" "$version" --file "$file" --reinstall >"$KEYDIR/logs/install-$name.log" 2>&1 ||
            die "pulumi plugin install resource $name $version failed: $(cat "$KEYDIR/logs/install-$name.log")"
    done
    # No pulumi-resource-command can be built here: install the stand-in (tools/standin/command).
    if [ ! -x "$KEYDIR/plugins/pulumi-resource-command" ]; then
        PULUMI_HOME="$PULUMI_HOME_DIR" PULUMI="$versions_bin/pulumi" PULUMI_SKIP_UPDATE_CHECK=1 \
            sh "$ROOT/tools/standin/command/install.sh" >"$KEYDIR/logs/install-command-standin.log" 2>&1 ||
            die "installing the command plugin stand-in failed: $(cat "$KEYDIR/logs/install-command-standin.log")"
    fi
    mkdir -p "$CLI_PLUGIN_DIR"
    if [ -e "$CLI_PLUGIN_DIR/docker-buildx" ] && ! cmp -s "$CLI_PLUGIN_DIR/docker-buildx" "$KEYDIR/bin/docker-buildx"; then
        if ! grep -q "medusa-deploy toolchain" "$CLI_PLUGIN_DIR/.docker-buildx.origin" 2>/dev/null; then
            say "keeping the docker-buildx already in $CLI_PLUGIN_DIR ($("$CLI_PLUGIN_DIR/docker-buildx" version 2>/dev/null || echo unknown)); ours is $KEYDIR/bin/docker-buildx"
            return 0
        fi
    fi
    install -m 0755 "$KEYDIR/bin/docker-buildx" "$CLI_PLUGIN_DIR/docker-buildx.tmp" && mv -f "$CLI_PLUGIN_DIR/docker-buildx.tmp" "$CLI_PLUGIN_DIR/docker-buildx"
    printf 'medusa-deploy toolchain %s\n' "$KEY" >"$CLI_PLUGIN_DIR/.docker-buildx.origin"
}

print_env() {
    cat <<EOF
export PULUMI_HOME='$PULUMI_HOME_DIR'
export PATH='$PULUMI_HOME_DIR/versions/$PULUMI_VERSION/bin':"\$PATH"
export PULUMI_SKIP_UPDATE_CHECK=1
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=1
export PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK=1
export PULUMI_IGNORE_AMBIENT_PLUGINS=1
export MEDUSA_DEPLOY_BUILDKIT_IMAGE='$BUILDKIT_IMAGE'
export MEDUSA_DEPLOY_TOOLCHAIN_KEYDIR='$KEYDIR'
EOF
}

check_toolchain() {
    cli="$PULUMI_HOME_DIR/versions/$PULUMI_VERSION/bin/pulumi"
    [ -x "$cli" ] || die "no Pulumi CLI at $cli: run sh tools/toolchain.sh"
    have=$(PULUMI_HOME="$PULUMI_HOME_DIR" PULUMI_SKIP_UPDATE_CHECK=1 "$cli" version)
    [ "$have" = "v$PULUMI_VERSION" ] || die "pulumi version prints '$have', expected v$PULUMI_VERSION"
    plugins=$(PULUMI_HOME="$PULUMI_HOME_DIR" PULUMI_SKIP_UPDATE_CHECK=1 "$cli" plugin ls --json)
    missing=""
    for plugin in "docker-build:$DOCKER_BUILD_PLUGIN_VERSION" "command:$COMMAND_PLUGIN_VERSION" "docker:$DOCKER_PLUGIN_VERSION"; do
        name=${plugin%%:*}
        version=${plugin#*:}
        found=$(printf '%s' "$plugins" | node -e '
            const [name] = process.argv.slice(1); let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
            const list = JSON.parse(s || "[]").filter((p) => p.kind === "resource" && p.name === name).map((p) => p.version);
            process.stdout.write(list.join(" ")); });' "$name")
        case " $found " in
            *" $version "*) [ "$found" = "$version" ] || say "note: resource plugin $name has other versions installed too: $found" ;;
            *) missing="$missing $name-v$version" ;;
        esac
    done
    buildx=$("$CLI_PLUGIN_DIR/docker-buildx" version 2>/dev/null | awk '{print $2}')
    [ "$buildx" = "v$BUILDX_VERSION" ] || say "docker-buildx in $CLI_PLUGIN_DIR is '${buildx:-absent}', pinned v$BUILDX_VERSION"
    bkd=$("$KEYDIR/bin/buildkitd" --version 2>/dev/null | awk '{print $3}')
    [ "$bkd" = "v$BUILDKIT_VERSION" ] || die "buildkitd reports '$bkd', expected v$BUILDKIT_VERSION"
    standin=""
    grep -qs 'STAND-IN' "$PULUMI_HOME_DIR/plugins/resource-command-v$COMMAND_PLUGIN_VERSION/pulumi-resource-command" && standin=" (command is the stand-in in tools/standin/command)"
    say "pulumi $have; plugins:$(printf '%s' "$plugins" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(JSON.parse(s||"[]").map(p=>" "+p.name+"-"+p.version).join("")))')$standin; buildx $buildx; buildkitd $bkd"
    if [ -n "$missing" ]; then
        say "missing resource plugins:$missing (not buildable from the Go module proxy here; see $KEYDIR/not-built.tsv and the README)"
        return 3
    fi
}

load_buildkit_image() {
    [ -s "$KEYDIR/buildkit-rootfs.tar" ] || die "no BuildKit image built yet: run sh tools/toolchain.sh"
    wanted=$(sha256sum "$KEYDIR/buildkit-rootfs.tar" | cut -c1-16)
    have=$(docker image inspect --format '{{index .Config.Labels "org.medusa-deploy.rootfs"}}' "$BUILDKIT_IMAGE" 2>/dev/null || true)
    [ "$have" = "$wanted" ] && return 0
    docker import --change 'ENTRYPOINT ["buildkitd"]' --change 'VOLUME /var/lib/buildkit' \
        --change 'ENV PATH=/usr/bin:/bin' --change "LABEL org.medusa-deploy.rootfs=$wanted" \
        "$KEYDIR/buildkit-rootfs.tar" "$BUILDKIT_IMAGE" >/dev/null
    say "imported $BUILDKIT_IMAGE into ${DOCKER_HOST:-the default docker daemon}"
}

ensure() {
    check_npm_pins
    if [ -f "$KEYDIR/complete" ] && [ "$REBUILD" = 0 ]; then
        install_toolchain
        return 0
    fi
    need_go
    mkdir -p "$KEYDIR/bin" "$KEYDIR/plugins" "$KEYDIR/logs" "$KEYDIR/work"
    : >"$KEYDIR/not-built.tsv"
    [ -f "$KEYDIR/work/go.mod" ] || printf 'module medusa-deploy.local/toolchain/probe\n\ngo 1.26\n' >"$KEYDIR/work/go.mod"
    say "building the toolchain into $KEYDIR (first time for these versions: about 30 minutes on 2 cores)"
    started=$(date +%s)
    failed=0
    build_tool "pulumi CLI v$PULUMI_VERSION" pulumi-cli github.com/pulumi/pulumi/pkg/v3/cmd/pulumi "$KEYDIR/bin/pulumi" \
        "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" || die "the Pulumi CLI did not build (logs in $KEYDIR/logs)"
    build_tool "pulumi-resource-docker-build v$DOCKER_BUILD_PLUGIN_VERSION" docker-build \
        github.com/pulumi/pulumi-docker-build/provider/cmd/pulumi-resource-docker-build "$KEYDIR/plugins/pulumi-resource-docker-build" \
        "-X github.com/pulumi/pulumi-docker-build/provider.Version=$DOCKER_BUILD_PLUGIN_VERSION" || failed=1
    build_unserved_pieces
    build_docker_plugin || failed=1
    build_tool "buildx v$BUILDX_VERSION" buildx github.com/docker/buildx/cmd/buildx "$KEYDIR/bin/docker-buildx" \
        "-X github.com/docker/buildx/version.Version=v$BUILDX_VERSION -X github.com/docker/buildx/version.Package=github.com/docker/buildx" || failed=1
    for tool in buildkitd buildctl; do
        build_tool "$tool v$BUILDKIT_VERSION" buildkit "github.com/moby/buildkit/cmd/$tool" "$KEYDIR/bin/$tool" \
            "-X github.com/moby/buildkit/version.Version=v$BUILDKIT_VERSION -X github.com/moby/buildkit/version.Package=github.com/moby/buildkit" || failed=1
    done
    build_buildkit_rootfs || failed=1
    [ "$failed" = 0 ] || die "some pieces failed to build; logs in $KEYDIR/logs"
    rm -rf "$KEYDIR/work"
    date -u +%Y-%m-%dT%H:%M:%SZ >"$KEYDIR/complete"
    # Keep this build and the one before it (a branch with other pins); older keys are rebuildable.
    # shellcheck disable=SC2012
    ls -1t "$CACHE_ROOT" | tail -n +3 | while read -r old; do
        case "$old" in *[!0-9a-f]*) continue ;; esac
        [ "$CACHE_ROOT/$old" != "$KEYDIR" ] && rm -rf "${CACHE_ROOT:?}/$old"
    done
    say "toolchain built in $(($(date +%s) - started)) s ($(du -sh "$KEYDIR" | cut -f1))"
    install_toolchain
}

KEY=$(toolchain_key)
KEYDIR="$CACHE_ROOT/$KEY"
REBUILD=0
case "${1:-ensure}" in
    # Plugins the proxy cannot serve (exit 3 from check) do not fail ensure: they are reported, and
    # a deploy that needs one stops with that report before it starts.
    ensure) ensure; check_toolchain || [ $? = 3 ] ;;
    build) REBUILD=1; ensure; check_toolchain || [ $? = 3 ] ;;
    env) [ -f "$KEYDIR/complete" ] || die "the toolchain for these versions is not built: run sh tools/toolchain.sh"; print_env ;;
    check) check_toolchain ;;
    load-buildkit-image) load_buildkit_image ;;
    *) die "unknown command '$1': use ensure, build, env, check or load-buildkit-image" ;;
esac
