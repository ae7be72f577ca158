#!/bin/sh
# daily-backup.sh — the stack's daily database backup. It is the command of a long-running container
# of the stack's Postgres image (components/dailyBackup.ts), so Docker is the scheduler: the same on
# every host (no systemd or cron assumed), restarted with the daemon, and declared in the stack, so
# `pulumi up` installs and updates it and `pulumi destroy` stops it (never the backups: they are in
# the host's backup folder, bind-mounted at BACKUP_DIR). POSIX sh.
#
# Environment (inputs, all plain):
#   BACKUP_DIR        the backup folder as the container sees it (a bind mount of the host's).
#   BACKUP_PREFIX     the stack's name: dumps are named <prefix>-daily-<UTC YYYYMMDDTHHMMSSZ>.dump,
#                     as host/prune-backups.sh reads them.
#   DAILY_AT          HH:MM, UTC: when the daily backup is taken.
#   KEEP_DAILY_DAYS   daily backups older than this many days are removed after each one.
#   KEEP_DEPLOY       deploy backups kept (the same retention the deploy applies).
#   RETRY_MINUTES     after a failed backup, the next try comes this much later. Default 60.
#   PRUNE_SCRIPT      path of prune-backups.sh in the container.
#   PGHOST, PGPORT, PGUSER, PGDATABASE, PGSSLMODE, PGCONNECT_TIMEOUT   read by libpq.
#   PASSWORD_FILE     a libpq password file uploaded into the container from a Pulumi secret (the
#                     password is in no environment, command line or log). Docker's upload cannot
#                     give it to a uid the image has no account for (dockerd looks the container's
#                     user up in the image's passwd), so it is uploaded readable and this script
#                     copies it into a 0600 file of its own, which libpq insists on, as PGPASSFILE.
#   STATUS_FILE       where the outcome of the last try is kept, for `health`. Default /tmp/daily-backup.status.
#
# Subcommands:
#   (none)                 run forever: a catch-up backup at once when the newest daily backup is
#                          older than a day (or there is none: the host was off, or this is the first
#                          start), then one every day at DAILY_AT.
#   next-run <now> <HH:MM> prints the epoch second of the next HH:MM UTC strictly after <now>.
#   health                 exit 0 unless the last try failed (the container's health check).
#
# Each backup is pg_dump --format=custom into a temporary ".<name>.XXXXXX" in BACKUP_DIR, read back
# in full (pg_restore --file=/dev/null), made 0600 and given its name without replacing anything;
# a failure removes the temporary file. Log lines (docker logs):
#   "daily-backup: <name> <bytes> bytes in <s>s" then prune-backups.sh's "backups: <n> kept, <bytes> bytes in <dir>"
#   "daily-backup: failed: <why>; next try at <time>" on failure (and the health check fails).

set -u

STATUS_FILE=${STATUS_FILE:-/tmp/daily-backup.status}

say() { printf '%s\n' "$*"; }
err() { printf 'daily-backup: %s\n' "$*" >&2; }

# next_run <now> <HH:MM>
next_run() {
    case "$2" in
        [0-2][0-9]:[0-5][0-9]) ;;
        *) err "DAILY_AT '$2' is not HH:MM"; return 2 ;;
    esac
    _h=$((1${2%:*} - 100))
    _m=$((1${2#*:} - 100))
    [ "$_h" -le 23 ] || { err "DAILY_AT '$2' is not HH:MM"; return 2; }
    _at=$(($1 - $1 % 86400 + _h * 3600 + _m * 60))
    [ "$_at" -gt "$1" ] || _at=$((_at + 86400))
    say "$_at"
}

case "${1:-}" in
    next-run) next_run "$2" "$3"; exit $? ;;
    health) [ ! -f "$STATUS_FILE" ] || ! grep -q '^failed' "$STATUS_FILE"; exit $? ;;
    '') ;;
    *) err "unknown subcommand '$1' (next-run, health or none)"; exit 2 ;;
esac

for name in BACKUP_DIR BACKUP_PREFIX DAILY_AT KEEP_DAILY_DAYS KEEP_DEPLOY PRUNE_SCRIPT PGHOST PGUSER PGDATABASE PASSWORD_FILE; do
    eval "value=\${$name:-}"
    # shellcheck disable=SC2154 # set by the eval above
    [ -n "$value" ] || { err "$name is required"; exit 2; }
done
case "$BACKUP_PREFIX" in
    [!A-Za-z0-9]* | *[!A-Za-z0-9._-]*) err "BACKUP_PREFIX '$BACKUP_PREFIX' is not a stack name"; exit 2 ;;
esac
RETRY_MINUTES=${RETRY_MINUTES:-60}
case "$RETRY_MINUTES" in '' | *[!0-9]* | 0*) err "RETRY_MINUTES must be a whole number >= 1"; exit 2 ;; esac
next_run 0 "$DAILY_AT" >/dev/null || exit 2

TEMP=""
SLEEPER=""
PRIVATE=""
cleanup() {
    [ -n "$TEMP" ] && rm -f -- "$TEMP"
    [ -n "$SLEEPER" ] && kill "$SLEEPER" 2>/dev/null
    [ -n "$PRIVATE" ] && rm -rf -- "$PRIVATE"
}
trap cleanup EXIT
# docker stop sends TERM: end at once (a dump in progress is abandoned and its temporary file removed).
trap 'exit 143' TERM
trap 'exit 130' INT

if [ ! -f "$PASSWORD_FILE" ] || [ ! -r "$PASSWORD_FILE" ]; then
    err "PASSWORD_FILE $PASSWORD_FILE is not a readable file"
    exit 2
fi
PRIVATE=$(umask 077 && mktemp -d "${TMPDIR:-/tmp}/daily-backup.XXXXXX") || { err "cannot create a private folder in ${TMPDIR:-/tmp}"; exit 2; }
(umask 077 && cat -- "$PASSWORD_FILE" >"$PRIVATE/pgpass") || { err "cannot copy the password file"; exit 2; }
PGPASSFILE=$PRIVATE/pgpass
export PGPASSFILE

# nap <seconds>: sleep in the background, so that TERM is handled at once.
nap() {
    sleep "$1" &
    SLEEPER=$!
    wait "$SLEEPER"
    SLEEPER=""
}

# The newest daily backup's timestamp, empty when there is none. The glob lists names in order, and
# names of one stack differ only in their timestamp, so the last match is the newest.
newest_daily() {
    _newest=""
    for _path in "$BACKUP_DIR/$BACKUP_PREFIX"-daily-????????T??????Z.dump; do
        [ -f "$_path" ] && [ ! -L "$_path" ] && _newest=$_path
    done
    [ -z "$_newest" ] || { _newest=${_newest##*-daily-}; printf '%s\n' "${_newest%.dump}"; }
}

# take_backup: one backup and the retention after it; returns 1 with the reason in WHY.
WHY=""
take_backup() {
    started=$(date -u +%s)
    name="$BACKUP_PREFIX-daily-$(date -u +%Y%m%dT%H%M%SZ).dump"
    dest="$BACKUP_DIR/$name"
    if [ -e "$dest" ] || [ -L "$dest" ]; then WHY="$dest already exists"; return 1; fi
    TEMP=$(umask 077 && mktemp "$BACKUP_DIR/.$name.XXXXXX" 2>&1) || { WHY="cannot create a file in $BACKUP_DIR: $TEMP"; TEMP=""; return 1; }
    if ! out=$(pg_dump --format=custom --no-password "--file=$TEMP" 2>&1); then
        WHY="pg_dump failed: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
        return 1
    fi
    if ! out=$(pg_restore --file=/dev/null "$TEMP" 2>&1); then
        WHY="the dump does not read back: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
        return 1
    fi
    chmod 0600 "$TEMP" || { WHY="cannot set mode 0600"; return 1; }
    # ln refuses an existing name: nothing is replaced or written through.
    ln -- "$TEMP" "$dest" 2>/dev/null || { WHY="cannot name the dump $dest"; return 1; }
    rm -f -- "$TEMP"
    TEMP=""
    sync
    # shellcheck disable=SC2046 # split ls's fields
    set -- $(ls -ln -- "$dest")
    say "daily-backup: $name $5 bytes in $(($(date -u +%s) - started))s"
    BACKUP_DIR="$BACKUP_DIR" BACKUP_PREFIX="$BACKUP_PREFIX" KEEP_DEPLOY="$KEEP_DEPLOY" KEEP_DAILY_DAYS="$KEEP_DAILY_DAYS" sh "$PRUNE_SCRIPT" ||
        err "retention failed (the backup $name was taken)"
    return 0
}

# iso <epoch>: the time in UTC, for the log.
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || printf 'epoch %s' "$1"; }

# try_backup: take one, record the outcome; sets NEXT to the epoch second of the next try.
try_backup() {
    if take_backup; then
        printf 'ok %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$STATUS_FILE"
        NEXT=$(next_run "$(date -u +%s)" "$DAILY_AT")
        say "daily-backup: next backup at $(iso "$NEXT")"
    else
        [ -n "$TEMP" ] && rm -f -- "$TEMP"
        TEMP=""
        NEXT=$(($(date -u +%s) + RETRY_MINUTES * 60))
        printf 'failed %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$WHY" >"$STATUS_FILE"
        err "failed: $WHY; next try at $(iso "$NEXT")"
    fi
}

say "daily-backup: $PGDATABASE on $PGHOST every day at $DAILY_AT UTC into $BACKUP_DIR (daily backups kept $KEEP_DAILY_DAYS days)"
now=$(date -u +%s)
newest=$(newest_daily)
day_ago=$(date -u -d "@$((now - 86400))" +%Y%m%dT%H%M%SZ)
# Timestamps of one format order as text.
if [ -z "$newest" ] || [ "$(printf '%s\n%s\n' "$newest" "$day_ago" | sort | tail -n 1)" = "$day_ago" ]; then
    say "daily-backup: the newest daily backup is ${newest:-missing}, more than a day old: taking one now"
    try_backup
else
    NEXT=$(next_run "$now" "$DAILY_AT")
    say "daily-backup: the newest daily backup is $newest; next backup at $(iso "$NEXT")"
fi
while :; do
    wait_for=$((NEXT - $(date -u +%s)))
    [ "$wait_for" -gt 0 ] && nap "$wait_for"
    try_backup
done
