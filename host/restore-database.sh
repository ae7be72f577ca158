#!/bin/sh
# restore-database.sh — put a dump made by host/backup-database.sh back into the shop's database, all
# or nothing: pg_restore in one transaction. Runs on the docker host (POSIX sh), as root through sudo
# or as the deploy user in the docker group. Stop whatever writes to the database first (the colours'
# servers and workers): pg_restore drops and recreates the dump's tables, and waits for the locks of
# anyone still using them.
#
# Environment (inputs, all plain; never the password):
#   BACKUP_DIR          required. The folder of the dumps; used only when it is a folder, not a
#                       symbolic link, owned by the uid this script runs as and writable by nobody
#                       else (lib/safe-files.sh). Never created or changed.
#   BACKUP_NAME         required. The dump to restore, [A-Za-z0-9][A-Za-z0-9._-]*.dump: a regular
#                       file in BACKUP_DIR (not a symbolic link), owned by this uid, writable by
#                       nobody else.
#   PG_CLIENT_IMAGE, PG_NETWORK, PGHOST, PGPORT, PGUSER, PGDATABASE, PG_CONNECT_TIMEOUT, PGSSLMODE
#                       where the database is and which client runs: see lib/pg-client.sh.
#   TMPDIR              where the password file's folder is made. Default /tmp.
#   DOCKER_HOST         honoured by the docker CLI.
# Stdin: the database password, one line, then end of input (close stdin); it travels as in
#   host/backup-database.sh (lib/pg-client.sh).
#
# What it does:
#   1. checks every input (exit 2 on a bad one, with nothing done);
#   2. reads the dump's table of contents (pg_restore --list) in a client container: a file that is
#      not a dump is refused before any connection to the database;
#   3. pg_restore --clean --if-exists --no-owner --exit-on-error --single-transaction into
#      PGDATABASE, the dump bind-mounted read-only into the client. Every object of the dump is
#      dropped when present and recreated, its rows loaded, in one transaction: the first error (a
#      truncated or damaged dump found half-way, a lost connection, a conflict) rolls the whole of
#      it back. Objects the dump does not hold (a table a later migration created) are left as they
#      are: --clean drops only what it recreates.
#
# Stdout: a line saying what is restored, then on success the last line
#   "restore: <BACKUP_NAME> ok in <seconds>s"
# Stderr: on failure "restore-database: <why>; the database is as it was before the restore", with
#   the last lines pg_restore printed (the password masked).
#
# Exit codes: 0 restored; 1 the restore failed (nothing of it was committed); 2 bad input, unsafe
# folder or dump file, dockerd, image or network missing (nothing done); 129/130/143 interrupted by
# SIGHUP/SIGINT/SIGTERM: the client container is removed, which closes its connection, and the
# server rolls the transaction back (unless pg_restore had committed just before).

set -u

PG_ROLE=restore
ERROR_TAIL_LINES=20
SUFFIX="the database is as it was before the restore"

say() { printf '%s\n' "$*"; }
err() { printf 'restore-database: %s\n' "$*" >&2; }
die() {
    code=$1
    shift
    if [ "$code" -eq 2 ]; then err "$*; nothing was done, $SUFFIX"; else err "$*; $SUFFIX"; fi
    exit "$code"
}

BACKUP_NAME=${BACKUP_NAME:-}

# shellcheck source-path=SCRIPTDIR source=lib/safe-files.sh
. "${MEDUSA_DEPLOY_HOST_LIB:-$(dirname "$0")/lib}/safe-files.sh" # medusa-deploy:inline lib/safe-files.sh
# shellcheck source-path=SCRIPTDIR source=lib/mask-secrets.sh
. "${MEDUSA_DEPLOY_HOST_LIB:-$(dirname "$0")/lib}/mask-secrets.sh" # medusa-deploy:inline lib/mask-secrets.sh
# shellcheck source-path=SCRIPTDIR source=lib/pg-client.sh
. "${MEDUSA_DEPLOY_HOST_LIB:-$(dirname "$0")/lib}/pg-client.sh" # medusa-deploy:inline lib/pg-client.sh

# ---- inputs ---------------------------------------------------------------------------------
[ -n "$BACKUP_NAME" ] || die 2 "BACKUP_NAME is required (the dump to restore, a file in BACKUP_DIR)"
pg_dump_name_ok "$BACKUP_NAME" || die 2 "BACKUP_NAME '$BACKUP_NAME' is not a dump name ([A-Za-z0-9][A-Za-z0-9._-]*.dump)"
pg_check_inputs
pg_check_backup_dir existing
DUMP="$BACKUP_DIR/$BACKUP_NAME"
safe_file_ok "$DUMP" || die 2 "the dump cannot be used: $SAFE_PROBLEM"
[ -f "$DUMP" ] || die 2 "$DUMP does not exist"
line=$(ls -ln -- "$DUMP") || die 2 "cannot read the owner and mode of $DUMP"
set -f
# shellcheck disable=SC2086 # split ls's fields
set -- $line
set +f
[ "$3" = "$(id -u)" ] || die 2 "$DUMP is owned by uid $3, not by uid $(id -u) that this script runs as"
case "$1" in
    ?????w* | ????????w*) die 2 "$DUMP is writable by its group or by others (mode $1)" ;;
esac
[ "$5" -gt 0 ] || die 2 "$DUMP is empty"
pg_read_password
pg_check_docker

# ---- cleanup --------------------------------------------------------------------------------
STAGE=check
cleanup() {
    pg_cleanup
}
interrupted() {
    if [ "$STAGE" = restore ]; then
        err "interrupted during the restore: the client container is removed, which ends its connection; the server rolls back its transaction unless pg_restore had just committed"
    else
        err "interrupted before the restore started; $SUFFIX"
    fi
    exit "$1"
}
trap cleanup EXIT
trap 'interrupted 129' HUP
trap 'interrupted 130' INT
trap 'interrupted 143' TERM

pg_start_work
IN_CLIENT="/backup/$BACKUP_NAME"
PG_MOUNT="type=bind,source=$DUMP,target=$IN_CLIENT,readonly"

say "restore: restoring $DUMP into database $PGDATABASE on $PGHOST:$PGPORT${PG_NETWORK:+ (network $PG_NETWORK)} with $PG_CLIENT_IMAGE"
started=$(date +%s)

# ---- is it a dump ---------------------------------------------------------------------------
if ! pg_client check pg_restore --list "$IN_CLIENT"; then
    status=$_pg_status
    err "$DUMP is not a readable dump (pg_restore --list exit $status); what it said:"
    pg_show_errors "$ERROR_TAIL_LINES"
    die 1 "nothing was restored"
fi

# ---- restore --------------------------------------------------------------------------------
STAGE=restore
if ! pg_client restore pg_restore --clean --if-exists --no-owner --exit-on-error --single-transaction \
    --no-password "--dbname=$PGDATABASE" "$IN_CLIENT"; then
    status=$_pg_status
    STAGE=finished
    err "pg_restore failed (exit $status); what it said:"
    pg_show_errors "$ERROR_TAIL_LINES"
    die 1 "nothing was committed (pg_restore ran in a single transaction, which was rolled back)"
fi
STAGE=finished

ended=$(date +%s)
say "restore: $BACKUP_NAME ok in $((ended - started))s"
exit 0
