#!/bin/sh
# npm run promote: preview, then apply, the prod stack. Prod reads the image staging serves (by
# digest) from staging's outputs, so this never builds. Pass --yes to skip the confirmation.
set -eu
cd "$(dirname "$0")/.."
prod=${PROD_STACK:-prod}
if command -v pulumi >/dev/null 2>&1; then cli=pulumi; else cli="npx --no-install pulumi"; fi
$cli preview --stack "$prod" --diff
$cli up --stack "$prod" --skip-preview "$@"
