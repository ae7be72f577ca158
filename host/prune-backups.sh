#!/bin/sh
# prune-backups.sh — keep the backup folder bounded: remove the stack's deploy backups beyond the
# newest KEEP_DEPLOY, and its daily backups older than KEEP_DAILY_DAYS days. Runs on the docker host
# (POSIX sh), as the user that owns the backups. Needs no docker and no database.
#
# Environment (inputs):
#   BACKUP_DIR        required. The folder of the dumps; used only when it is a folder, not a
#                     symbolic link, owned by the uid this script runs as and writable by nobody else
#                     (lib/safe-files.sh). Absent: nothing to prune (exit 0).
#   BACKUP_PREFIX     required. The stack's name, [A-Za-z0-9][A-Za-z0-9._-]*. Only its backups are
#                     looked at:
#                       <prefix>-deploy-[<id>-]<timestamp>.dump   (<id>: [A-Za-z0-9._-]+)
#                       <prefix>-daily-<timestamp>.dump
#                     <timestamp> is the UTC time the backup was taken, YYYYMMDDTHHMMSSZ.
#   KEEP_DEPLOY       required. Keep the newest N deploy backups (N >= 1).
#   KEEP_DAILY_DAYS   Keep the daily backups taken at most D days (D * 86400 s) before NOW (D >= 1).
#                     Unset or empty: daily backups are left alone (0 is refused: it would read as
#                     "remove them all").
#   NOW               Epoch seconds to measure ages from (tests). Default: the clock.
#
# Order and age come from the timestamp in the name, never from a file's times (a copy or a
# restore from elsewhere changes those). Among deploy backups with the same timestamp the name
# decides (sorted as text). A timestamp later than NOW is kept, and reported on stderr.
# Nothing else in the folder is ever removed: other stacks' files, names of this stack that do not
# follow the pattern (reported on stderr), a symbolic link or anything not a regular file bearing a
# backup's name (reported and left; a link is never followed), temporary files of a backup still
# running (".<name>.XXXXXX": names starting with '.' are not looked at).
# One stack per folder avoids the one ambiguity of the names: with BACKUP_PREFIX "shop", a file
# "shop-deploy-daily-<ts>.dump" of a stack named "shop-deploy" reads as a deploy backup of "shop".
#
# Stdout: one line per removed file,
#   "removed: <name> <bytes> bytes (<why>)"
# then always, as the last line (also when a removal failed),
#   "backups: <count> kept, <bytes> bytes in <BACKUP_DIR>"
# counting the stack's backups (regular files with a valid name) still there.
#
# Exit codes: 0 done; 1 a removal failed (stderr says which; the others were done); 2 bad input or
# an unsafe folder (nothing removed).

set -u
# No word of an input or a name is ever a file pattern (the folder's listing below turns it on).
set -f

say() { printf '%s\n' "$*"; }
err() { printf 'prune-backups: %s\n' "$*" >&2; }
die() { code=$1; shift; err "$*; nothing was removed"; exit "$code"; }

BACKUP_DIR=${BACKUP_DIR:-}
BACKUP_PREFIX=${BACKUP_PREFIX:-}
KEEP_DEPLOY=${KEEP_DEPLOY:-}
KEEP_DAILY_DAYS=${KEEP_DAILY_DAYS:-}
NOW=${NOW:-}

# shellcheck source-path=SCRIPTDIR source=lib/safe-files.sh
. "${MEDUSA_DEPLOY_HOST_LIB:-$(dirname "$0")/lib}/safe-files.sh" # medusa-deploy:inline lib/safe-files.sh

# ---- inputs ---------------------------------------------------------------------------------
case "$BACKUP_DIR" in
    '') die 2 "BACKUP_DIR is required (the folder of the dumps)" ;;
    /) die 2 "BACKUP_DIR must not be the root folder" ;;
    /*) ;;
    *) die 2 "BACKUP_DIR '$BACKUP_DIR' is not an absolute path" ;;
esac
BACKUP_DIR=${BACKUP_DIR%/}
case "$BACKUP_PREFIX" in
    '') die 2 "BACKUP_PREFIX is required (the stack's name)" ;;
    [!A-Za-z0-9]* | *[!A-Za-z0-9._-]*) die 2 "BACKUP_PREFIX '$BACKUP_PREFIX' is not a stack name ([A-Za-z0-9][A-Za-z0-9._-]*)" ;;
esac
case "$KEEP_DEPLOY" in
    '' | *[!0-9]* | 0*) die 2 "KEEP_DEPLOY must be a whole number >= 1 (deploy backups to keep), got '$KEEP_DEPLOY'" ;;
esac
case "$KEEP_DAILY_DAYS" in
    '') ;;
    *[!0-9]* | 0*) die 2 "KEEP_DAILY_DAYS must be a whole number >= 1 (days of daily backups to keep; leave it unset to leave them alone), got '$KEEP_DAILY_DAYS'" ;;
esac
if [ -z "$NOW" ]; then NOW=$(date +%s); fi
case "$NOW" in
    *[!0-9]* | 0?*) die 2 "NOW must be epoch seconds, got '$NOW'" ;;
esac

safe_dir "$BACKUP_DIR" - existing || {
    if [ ! -e "$BACKUP_DIR" ] && [ ! -L "$BACKUP_DIR" ] && safe_parent_ok "$BACKUP_DIR"; then
        err "$BACKUP_DIR does not exist: no backups to prune"
        say "backups: 0 kept, 0 bytes in $BACKUP_DIR"
        exit 0
    fi
    die 2 "BACKUP_DIR cannot be used: $SAFE_PROBLEM"
}

# ---- names ----------------------------------------------------------------------------------
# Epoch seconds of a YYYYMMDDTHHMMSSZ timestamp in $1, in EPOCH; returns 1 when it is not a valid
# UTC time. Days from the civil date (Howard Hinnant's algorithm): no date(1) parsing, which POSIX
# does not have.
EPOCH=""
timestamp_epoch() {
    case "$1" in
        [0-9][0-9][0-9][0-9][0-1][0-9][0-3][0-9]T[0-2][0-9][0-5][0-9][0-5][0-9]Z) ;;
        *) return 1 ;;
    esac
    _t=$1
    # A leading 1 keeps each field decimal (a leading 0 would make it octal).
    _y=$((1${_t%????T??????Z} - 10000))
    _t=${_t#????}
    _m=$((1${_t%??T??????Z} - 100))
    _t=${_t#??}
    _d=$((1${_t%T??????Z} - 100))
    _t=${_t#??T}
    _hh=$((1${_t%????Z} - 100))
    _t=${_t#??}
    _mm=$((1${_t%??Z} - 100))
    _t=${_t#??}
    _ss=$((1${_t%Z} - 100))
    [ "$_m" -ge 1 ] && [ "$_m" -le 12 ] && [ "$_d" -ge 1 ] && [ "$_hh" -le 23 ] || return 1
    case $_m in
        4 | 6 | 9 | 11) _dim=30 ;;
        2) if [ $((_y % 4)) -eq 0 ] && { [ $((_y % 100)) -ne 0 ] || [ $((_y % 400)) -eq 0 ]; }; then _dim=29; else _dim=28; fi ;;
        *) _dim=31 ;;
    esac
    [ "$_d" -le "$_dim" ] || return 1
    _yy=$((_m <= 2 ? _y - 1 : _y))
    _era=$((_yy / 400))
    _yoe=$((_yy - _era * 400))
    _doy=$(((153 * (_m > 2 ? _m - 3 : _m + 9) + 2) / 5 + _d - 1))
    _doe=$((_yoe * 365 + _yoe / 4 - _yoe / 100 + _doy))
    _days=$((_era * 146097 + _doe - 719468))
    EPOCH=$((_days * 86400 + _hh * 3600 + _mm * 60 + _ss))
    return 0
}

# Sets KIND (deploy or daily) and STAMP for a backup name of this stack; returns 1 for anything else.
KIND=""
STAMP=""
classify() {
    case "$1" in *[!A-Za-z0-9._-]*) return 1 ;; esac
    case "$1" in
        "$BACKUP_PREFIX"-deploy-*.dump) KIND=deploy ;;
        "$BACKUP_PREFIX"-daily-*.dump) KIND=daily ;;
        *) return 1 ;;
    esac
    _stem=${1%.dump}
    STAMP=${_stem#"${_stem%????????????????}"}
    _before=${_stem%"$STAMP"}
    if [ "$KIND" = daily ]; then
        [ "$_before" = "$BACKUP_PREFIX-daily-" ] || return 1
    else
        _id=${_before#"$BACKUP_PREFIX-deploy-"}
        case "$_id" in
            '') ;;
            *-) [ -n "${_id%-}" ] || return 1 ;;
            *) return 1 ;;
        esac
    fi
    timestamp_epoch "$STAMP"
}

size_of() {
    _line=$(ls -ln -- "$1" 2>/dev/null) || { SIZE=0; return 1; }
    # shellcheck disable=SC2086 # split ls's fields
    set -- $_line
    SIZE=$5
}

# ---- look ---------------------------------------------------------------------------------
DEPLOYS=""
DAILIES=""
set +f
for path in "$BACKUP_DIR"/*; do
    set -f
    name=${path##*/}
    case "$name" in "$BACKUP_PREFIX"-*) ;; *) continue ;; esac
    if ! classify "$name"; then
        case "$name" in
            "$BACKUP_PREFIX"-deploy-* | "$BACKUP_PREFIX"-daily-*)
                err "left $name: not a backup name this script reads (<prefix>-deploy-[<id>-]YYYYMMDDTHHMMSSZ.dump or <prefix>-daily-YYYYMMDDTHHMMSSZ.dump with a valid UTC time)" ;;
        esac
        continue
    fi
    if [ -L "$path" ]; then
        err "left $name: a symbolic link, not a backup (never followed)"
        continue
    fi
    if [ ! -f "$path" ]; then
        err "left $name: not a regular file"
        continue
    fi
    if [ "$EPOCH" -gt "$NOW" ]; then
        err "kept $name: its timestamp is later than now ($STAMP); check the clock that named it"
    fi
    if [ "$KIND" = deploy ]; then
        DEPLOYS="$DEPLOYS$STAMP $name
"
    else
        DAILIES="$DAILIES$EPOCH $name
"
    fi
done
set -f

# ---- choose and remove ----------------------------------------------------------------------
KEPT=0
KEPT_BYTES=0
FAILED=0

remove() {
    # Checked again just before: the folder is ours alone, so this is what rm removes; rm removes a
    # name, never what a link points at.
    if [ -L "$BACKUP_DIR/$1" ] || [ ! -f "$BACKUP_DIR/$1" ]; then
        err "left $1: it is no longer a regular file"
        return 0
    fi
    size_of "$BACKUP_DIR/$1"
    if rm -f -- "$BACKUP_DIR/$1" 2>/dev/null && [ ! -e "$BACKUP_DIR/$1" ]; then
        say "removed: $1 $SIZE bytes ($2)"
    else
        err "cannot remove $BACKUP_DIR/$1"
        FAILED=$((FAILED + 1))
        keep "$1"
    fi
}
keep() {
    size_of "$BACKUP_DIR/$1" || return 0
    KEPT=$((KEPT + 1))
    KEPT_BYTES=$((KEPT_BYTES + SIZE))
}

rank=0
# Newest first: the timestamp, then the name, both compared byte by byte (the timestamp's digits are
# fixed-width, so that order is time order; a locale's collation could skip punctuation).
SORTED=$(printf '%s' "$DEPLOYS" | LC_ALL=C sort -r)
while read -r stamp name; do
    [ -n "$stamp" ] || continue
    rank=$((rank + 1))
    if [ "$rank" -le "$KEEP_DEPLOY" ]; then
        keep "$name"
    else
        remove "$name" "deploy backup older than the newest $KEEP_DEPLOY"
    fi
done <<EOF
$SORTED
EOF

LIMIT=$((${KEEP_DAILY_DAYS:-0} * 86400))
while read -r epoch name; do
    [ -n "$epoch" ] || continue
    if [ -n "$KEEP_DAILY_DAYS" ] && [ $((NOW - epoch)) -gt "$LIMIT" ]; then
        remove "$name" "daily backup older than $KEEP_DAILY_DAYS days"
    else
        keep "$name"
    fi
done <<EOF
$DAILIES
EOF

say "backups: $KEPT kept, $KEPT_BYTES bytes in $BACKUP_DIR"
[ "$FAILED" -eq 0 ] || exit 1
exit 0
