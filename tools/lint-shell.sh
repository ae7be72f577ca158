#!/bin/sh
# Every script that runs on a docker host must be plain POSIX sh: parse each with dash (sh -n), and
# with checkbashisms and shellcheck (warnings and errors) when they are installed.
set -eu
cd "$(dirname "$0")/.."
status=0
for script in host/*.sh host/lib/*.sh tools/*.sh .ci/run; do
    [ -f "$script" ] || continue
    if ! sh -n "$script"; then echo "syntax error: $script" >&2; status=1; fi
    if command -v checkbashisms >/dev/null 2>&1 && ! checkbashisms -f "$script"; then status=1; fi
    if command -v shellcheck >/dev/null 2>&1 && ! shellcheck -x -S warning -s sh "$script"; then status=1; fi
done
[ "$status" -eq 0 ] && echo "shell scripts: ok"
exit "$status"
