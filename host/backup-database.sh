#!/bin/sh
# backup-database.sh — take a consistent backup of the shop's database before a deploy migrates it
# for a new release: pg_dump in its custom format, read back in full before it gets its name. Runs on
# the docker host (POSIX sh), as root through sudo or as the deploy user in the docker group.
#
# Environment (inputs, all plain; never the password):
#   BACKUP_DIR          required. Absolute folder on this host for the dumps. Created 0700 when
#                       absent; used only when it is a folder, not a symbolic link, owned by the uid
#                       this script runs as and writable by nobody else (lib/safe-files.sh).
#   BACKUP_NAME         The dump's file name: [A-Za-z0-9][A-Za-z0-9._-]*.dump (a leading '.' is
#                       what this script's temporary files look like, a leading '-' an option).
#   BACKUP_NAME_PREFIX  Instead of BACKUP_NAME (exactly one of the two is required): the name is
#                       "<prefix>-<UTC time now, YYYYMMDDTHHMMSSZ>.dump", as host/prune-backups.sh
#                       reads them (prefix e.g. shop-deploy-<release>: [A-Za-z0-9][A-Za-z0-9._-]*).
#                       The last line of stdout names the file.
#                       A name already in BACKUP_DIR is refused: a backup is never replaced.
#   PG_CLIENT_IMAGE, PG_NETWORK, PGHOST, PGPORT, PGUSER, PGDATABASE, PG_CONNECT_TIMEOUT, PGSSLMODE
#                       where the database is and which client runs: see lib/pg-client.sh.
#   TMPDIR              where the password file's folder is made. Default /tmp.
#   DOCKER_HOST         honoured by the docker CLI.
# Stdin: the database password, one line, then end of input (close stdin). It never reaches a
#   command line, an environment, a container's configuration, a file name or the output (see
#   lib/pg-client.sh for the way it does travel: a 0600 pgpass file mounted into the client).
#
# What it does:
#   1. checks every input (exit 2 on a bad one, with nothing done);
#   2. pg_dump --format=custom of PGDATABASE in a `docker run --rm` of PG_CLIENT_IMAGE, into a fresh
#      mktemp file ".<BACKUP_NAME>.XXXXXX" in BACKUP_DIR (bind-mounted into the client). pg_dump
#      reads everything in one repeatable-read snapshot, so the dump is consistent while the shop
#      keeps writing, and fsyncs the file before it exits;
#   3. reads the dump back in full in a second client container (pg_restore --file=/dev/null: every
#      table's data is decompressed). `pg_restore --list` alone reads only the table of contents at
#      the head of the file, and a truncated dump passes it;
#   4. gives it its name without ever replacing one (ln, which refuses an existing name, then the
#      temporary name is removed), mode 0600, and syncs the folder.
#   Any failure — server unreachable, wrong password, a pg_dump older than the server (it refuses),
#   disk full, a dump that does not read back, a signal — removes the temporary file: no partial dump
#   is ever left under any name.
#
# Stdout: a line saying what is dumped, then on success one with the time of each step and the last line
#   "backup: <BACKUP_NAME> <bytes> bytes in <seconds>s"
# Stderr: on failure "backup-database: <why>; the migration was not started; the database was not
#   changed", with the last lines pg_dump or pg_restore printed (the password masked).
#
# Exit codes: 0 the dump is in BACKUP_DIR under BACKUP_NAME; 1 the backup failed (nothing left
# behind); 2 bad input, unsafe BACKUP_DIR, dockerd, image or network missing (nothing done);
# 129/130/143 interrupted by SIGHUP/SIGINT/SIGTERM (the client container and the temporary file are
# removed). Whatever the code, only 0 lets the caller go on to the migration.

set -u

PG_ROLE=backup
ERROR_TAIL_LINES=20
SUFFIX="the migration was not started; the database was not changed"

say() { printf '%s\n' "$*"; }
err() { printf 'backup-database: %s\n' "$*" >&2; }
die() { code=$1; shift; err "$*; $SUFFIX"; exit "$code"; }

BACKUP_NAME=${BACKUP_NAME:-}
BACKUP_NAME_PREFIX=${BACKUP_NAME_PREFIX:-}

# shellcheck source-path=SCRIPTDIR source=lib/safe-files.sh
. "${MEDUSA_DEPLOY_HOST_LIB:-$(dirname "$0")/lib}/safe-files.sh" # medusa-deploy:inline lib/safe-files.sh
# shellcheck source-path=SCRIPTDIR source=lib/mask-secrets.sh
. "${MEDUSA_DEPLOY_HOST_LIB:-$(dirname "$0")/lib}/mask-secrets.sh" # medusa-deploy:inline lib/mask-secrets.sh
# shellcheck source-path=SCRIPTDIR source=lib/pg-client.sh
. "${MEDUSA_DEPLOY_HOST_LIB:-$(dirname "$0")/lib}/pg-client.sh" # medusa-deploy:inline lib/pg-client.sh

# ---- inputs ---------------------------------------------------------------------------------
if [ -n "$BACKUP_NAME_PREFIX" ]; then
    [ -z "$BACKUP_NAME" ] || die 2 "BACKUP_NAME and BACKUP_NAME_PREFIX are both set: give one"
    case "$BACKUP_NAME_PREFIX" in
        [!A-Za-z0-9]* | *[!A-Za-z0-9._-]*)
            die 2 "BACKUP_NAME_PREFIX '$BACKUP_NAME_PREFIX' is not a name prefix ([A-Za-z0-9][A-Za-z0-9._-]*)" ;;
    esac
    BACKUP_NAME="$BACKUP_NAME_PREFIX-$(date -u +%Y%m%dT%H%M%SZ).dump"
fi
[ -n "$BACKUP_NAME" ] || die 2 "BACKUP_NAME (the dump's file name, e.g. shop-deploy-abc123-20261202T101500Z.dump) or BACKUP_NAME_PREFIX is required"
pg_dump_name_ok "$BACKUP_NAME" || die 2 "BACKUP_NAME '$BACKUP_NAME' is not a dump name ([A-Za-z0-9][A-Za-z0-9._-]*.dump)"
pg_check_inputs
pg_read_password
pg_check_docker
pg_check_backup_dir create
DEST="$BACKUP_DIR/$BACKUP_NAME"
if [ -e "$DEST" ] || [ -L "$DEST" ]; then
    die 2 "$DEST already exists: a backup is never replaced; choose another BACKUP_NAME"
fi

# ---- cleanup --------------------------------------------------------------------------------
cleanup() {
    pg_cleanup
    safe_cleanup
}
trap cleanup EXIT
trap 'err "interrupted; $SUFFIX"; exit 129' HUP
trap 'err "interrupted; $SUFFIX"; exit 130' INT
trap 'err "interrupted; $SUFFIX"; exit 143' TERM

pg_start_work
safe_temp DUMP "$BACKUP_DIR" "$BACKUP_NAME" || die 1 "$SAFE_PROBLEM"
# The client runs as our uid and writes the file mktemp made; it sees nothing else of BACKUP_DIR.
IN_CLIENT="/backup/$BACKUP_NAME"

say "backup: dumping database $PGDATABASE on $PGHOST:$PGPORT${PG_NETWORK:+ (network $PG_NETWORK)} with $PG_CLIENT_IMAGE into $DEST"
started=$(date +%s)

# ---- dump -----------------------------------------------------------------------------------
PG_MOUNT="type=bind,source=$DUMP,target=$IN_CLIENT"
if ! pg_client dump pg_dump --format=custom --no-password "--file=$IN_CLIENT"; then
    status=$_pg_status
    err "pg_dump failed (exit $status); what it said:"
    pg_show_errors "$ERROR_TAIL_LINES"
    die 1 "no backup was made (the partial file was removed)"
fi

dumped=$(date +%s)

# ---- read it back ---------------------------------------------------------------------------
PG_MOUNT="type=bind,source=$DUMP,target=$IN_CLIENT,readonly"
if ! pg_client verify pg_restore --file=/dev/null "$IN_CLIENT"; then
    status=$_pg_status
    err "the dump does not read back (pg_restore exit $status); what it said:"
    pg_show_errors "$ERROR_TAIL_LINES"
    die 1 "no backup was made (the unreadable file was removed)"
fi

# ---- name it --------------------------------------------------------------------------------
chmod 0600 "$DUMP" || die 1 "cannot set mode 0600 on $DUMP (removed)"
# ln refuses a name that exists (even a link someone planted): nothing is replaced or written through.
if ! ln -- "$DUMP" "$DEST" 2>/dev/null; then
    if [ -e "$DEST" ] || [ -L "$DEST" ]; then
        die 1 "$DEST appeared while the dump ran; it was left as it is and the new dump removed"
    fi
    # A file system without hard links: rename, after the same check.
    safe_replace "$DUMP" "$DEST" || die 1 "cannot name the dump $DEST: $SAFE_PROBLEM"
fi
rm -f -- "$DUMP"
# pg_dump synced the file; this makes the new name durable too (GNU sync takes files and folders).
sync -- "$BACKUP_DIR" 2>/dev/null || sync

ended=$(date +%s)
say "backup: dumped in $((dumped - started))s, read back in $((ended - dumped))s"
line=$(ls -ln -- "$DEST")
# shellcheck disable=SC2086 # split ls's fields
set -- $line
say "backup: $BACKUP_NAME $5 bytes in $((ended - started))s"
exit 0
