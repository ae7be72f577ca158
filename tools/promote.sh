#!/bin/sh
# npm run promote: preview, then apply, the prod stack. Prod reads the image staging serves (by
# digest) from staging's outputs, so this never builds. The backend is whatever PULUMI_BACKEND_URL
# or `pulumi login` says for prod (README: where each stack's state lives).
set -eu
cd "$(dirname "$0")/.."
prod=${PROD_STACK:-prod}
if command -v go >/dev/null 2>&1; then
    sh tools/toolchain.sh ensure >&2
    eval "$(sh tools/toolchain.sh env)"
fi
stack_command() { node_modules/.bin/ts-node --transpile-only tools/pulumi-stack.ts "$@" --stack "$prod"; }
stack_command preview
stack_command up
