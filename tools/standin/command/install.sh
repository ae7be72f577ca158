#!/bin/sh
# Installs the STAND-IN pulumi-resource-command (this folder) as resource plugin command v1.2.1 in
# the Pulumi home, with the engine's own installer:
#
#   PULUMI_HOME=<home> PULUMI=<path of the pulumi CLI> sh tools/standin/command/install.sh
#
# Without PULUMI_HOME it uses the project toolchain's (`sh tools/toolchain.sh env`); without PULUMI,
# the `pulumi` on PATH. `pulumi plugin install --file` copies one executable file into
# $PULUMI_HOME/plugins/resource-command-v1.2.1/, so what it installs is a two-line forwarder that
# execs this folder's launcher by absolute path (the launcher needs the project's node_modules).
# Idempotent: an identical forwarder already installed is left alone. Run it again if the checkout
# moves.
set -eu
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd -P)
root=$(CDPATH='' cd -- "$here/../../.." && pwd -P)
version=1.2.1
say() { printf 'standin/command/install.sh: %s\n' "$*" >&2; }

if [ -z "${PULUMI_HOME:-}" ]; then
    toolchain_env=$(sh "$root/tools/toolchain.sh" env) || { say "no PULUMI_HOME given and no toolchain built (sh tools/toolchain.sh)"; exit 1; }
    eval "$toolchain_env"
fi
export PULUMI_HOME
pulumi=${PULUMI:-pulumi}
command -v "$pulumi" >/dev/null 2>&1 || { say "no Pulumi CLI '$pulumi' (set PULUMI to its path)"; exit 1; }
[ -x "$here/pulumi-resource-command" ] || { say "$here/pulumi-resource-command is missing or not executable"; exit 1; }

launcher_quoted=$(printf '%s' "$here/pulumi-resource-command" | sed "s/'/'\\\\''/g")
target="$PULUMI_HOME/plugins/resource-command-v$version/pulumi-resource-command"
work=$(mktemp -d "${TMPDIR:-/tmp}/standin-command-install.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
forwarder="$work/pulumi-resource-command"
cat >"$forwarder" <<FORWARDER
#!/bin/sh
# STAND-IN for pulumi-resource-command v$version, installed by $here/install.sh: not the real plugin.
exec '$launcher_quoted' "\$@"
FORWARDER
chmod 0755 "$forwarder"

if [ -x "$target" ] && cmp -s "$forwarder" "$target"; then
    say "already installed: $target"
    exit 0
fi
if ! PULUMI_SKIP_UPDATE_CHECK=1 "$pulumi" plugin install resource command "$version" --file "$forwarder" --reinstall >"$work/log" 2>&1; then
    say "pulumi plugin install resource command $version --file failed: $(cat "$work/log")"
    exit 1
fi
cmp -s "$forwarder" "$target" || { say "the engine's installer did not put the forwarder at $target"; exit 1; }
say "installed the stand-in as resource plugin command v$version: $target -> $here/pulumi-resource-command"
