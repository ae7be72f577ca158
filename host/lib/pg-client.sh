# pg-client.sh — shared by host/backup-database.sh and host/restore-database.sh: checks the
# connection inputs, reads the database password from stdin and runs pg_dump / pg_restore in a
# throw-away container of the stack's Postgres image. Sourced from a checkout, inlined into each
# script sent to a host (components/hostScripts.ts).
#
# Needs from the caller: die <code> <message>, err <message>, PG_ROLE (a word naming the script's
# job: backup, restore), lib/safe-files.sh and lib/mask-secrets.sh sourced before this file.
#
# Inputs it reads (all plain, never secret):
#   PG_CLIENT_IMAGE     required. An image on this host with pg_dump and pg_restore of the server's
#                       major version (the stack's Postgres image). Never pulled.
#   PG_NETWORK          Docker network the client joins (the stack's network, where the Postgres
#                       container answers by name). Empty: Docker's default network, for a server
#                       outside Docker reached by DNS name or address.
#   PGHOST              required. Host name or address of the server, as seen from the client.
#   PGPORT              Default 5432.
#   PGUSER, PGDATABASE  required. Role and database.
#   PG_CONNECT_TIMEOUT  Seconds libpq waits for a connection (PGCONNECT_TIMEOUT). Default 10.
#   PGSSLMODE           Optional, passed to libpq (an external server may require TLS).
# PGPASSWORD and PGPASSFILE are refused: the password comes on stdin only.
#
# How the password travels: `read` (a shell builtin) takes it from stdin into a variable that is
# never exported; printf (a builtin) writes it as a pgpass line into a 0600 file inside a fresh
# mktemp -d folder (0700); that one file is bind-mounted read-only into the client container and
# PGPASSFILE names it there. It is never an argument of any process, never in a container's
# environment or configuration, never in a file name; the folder is removed on every exit the shell
# sees (only a SIGKILL of this script can leave it, in TMPDIR, readable by its user alone). Anything
# the client prints is passed through mask-secrets.sh before it is shown.
#
# The client container: --rm, --pull never, runs as the uid:gid of this script (so it can read the
# 0600 pgpass file and write the dump file this script made), no capabilities, no-new-privileges,
# read-only root file system, entry point replaced by the client program (the image's own entry
# script never runs), label medusa-deploy.role=database-<PG_ROLE>.
#
#   pg_dump_name_ok <name>          <name> is [A-Za-z0-9][A-Za-z0-9._-]*.dump (no folder, no leading
#                                   '.' like a temporary file or '-' like an option).
#   pg_check_inputs                 checks the inputs above; die 2 on a bad one.
#   pg_check_backup_dir <create|existing>
#                                   BACKUP_DIR: absolute, plain characters (it becomes a bind mount
#                                   source), then safe_dir (ours, not a link, writable by nobody
#                                   else; created 0700 with "create"); die 2 on a problem.
#   pg_check_docker                 the docker CLI, dockerd, PG_CLIENT_IMAGE and PG_NETWORK exist;
#                                   die 2 otherwise.
#   pg_read_password                reads the password from stdin (exactly one line, then end of
#                                   input: close stdin after it); die 2 otherwise.
#   pg_start_work                   makes the work folder and the pgpass file (PG_WORK).
#   pg_client <step> <program> <argument>...
#                                   runs <program> in a client container named
#                                   medusa-db-<PG_ROLE>-<random>-<step>, with PG_MOUNT (a --mount
#                                   value, or empty) as its one extra mount; its stdout and stderr go
#                                   to $PG_WORK/out and $PG_WORK/err. Returns the docker CLI's status.
#   pg_show_errors <lines>          the last lines of the client's stderr, masked, indented, on stderr.
#   pg_cleanup                      removes a client container still running and the work folder
#                                   (call on EXIT). Says so on stderr when it removed a container.

PG_WORK=""
PG_MOUNT=""
PG_CONTAINER=""
PG_RUNNING=no
PG_PASSWORD=""
PG_PASSFILE_TARGET=/run/medusa-deploy/pgpass

# True when $1 is non-empty and made only of the characters in the bracket expression $2.
_pg_plain() {
    case "$1" in '' | -*) return 1 ;; esac
    # shellcheck disable=SC2254 # $2 is a bracket expression, on purpose unquoted
    case "$1" in *[!$2]*) return 1 ;; esac
    return 0
}

pg_dump_name_ok() {
    case "$1" in [A-Za-z0-9]*.dump) ;; *) return 1 ;; esac
    case "$1" in *[!A-Za-z0-9._-]*) return 1 ;; esac
    return 0
}

pg_check_inputs() {
    PG_CLIENT_IMAGE=${PG_CLIENT_IMAGE:-}
    PG_NETWORK=${PG_NETWORK:-}
    PGHOST=${PGHOST:-}
    PGPORT=${PGPORT:-5432}
    PGUSER=${PGUSER:-}
    PGDATABASE=${PGDATABASE:-}
    PG_CONNECT_TIMEOUT=${PG_CONNECT_TIMEOUT:-10}
    PGSSLMODE=${PGSSLMODE:-}
    if [ -n "${PGPASSWORD+set}" ] || [ -n "${PGPASSFILE+set}" ]; then
        die 2 "PGPASSWORD or PGPASSFILE is set in the environment: the password comes on stdin only (an environment set through 'env NAME=value' or sudo shows in ps)"
    fi
    [ -n "$PG_CLIENT_IMAGE" ] || die 2 "PG_CLIENT_IMAGE is required (the stack's Postgres image, with pg_dump and pg_restore)"
    _pg_plain "$PG_CLIENT_IMAGE" 'A-Za-z0-9._:/@-' || die 2 "PG_CLIENT_IMAGE '$PG_CLIENT_IMAGE' is not an image reference"
    if [ -n "$PG_NETWORK" ]; then
        _pg_plain "$PG_NETWORK" 'A-Za-z0-9_.-' || die 2 "PG_NETWORK '$PG_NETWORK' is not a docker network name"
    fi
    [ -n "$PGHOST" ] || die 2 "PGHOST is required (the Postgres container's name on PG_NETWORK, or the server's DNS name or address)"
    # No '/' (a socket folder of the host is not in the container), no '=' or ',' (libpq would read
    # a connection string or a list of hosts).
    _pg_plain "$PGHOST" 'A-Za-z0-9._:-' || die 2 "PGHOST '$PGHOST' is not a host name or address"
    case "$PGPORT" in
        '' | *[!0-9]* | 0*) die 2 "PGPORT must be a port number, got '$PGPORT'" ;;
    esac
    [ "$PGPORT" -le 65535 ] || die 2 "PGPORT must be a port number, got '$PGPORT'"
    [ -n "$PGUSER" ] || die 2 "PGUSER is required"
    _pg_plain "$PGUSER" 'A-Za-z0-9._@-' || die 2 "PGUSER '$PGUSER' has characters this script does not pass on (letters, digits, . _ @ -)"
    [ -n "$PGDATABASE" ] || die 2 "PGDATABASE is required"
    # A database name with '=' or '://' would be read as a connection string (which can hold a password).
    _pg_plain "$PGDATABASE" 'A-Za-z0-9._-' || die 2 "PGDATABASE '$PGDATABASE' has characters this script does not pass on (letters, digits, . _ -)"
    case "$PG_CONNECT_TIMEOUT" in
        '' | *[!0-9]* | 0*) die 2 "PG_CONNECT_TIMEOUT must be a positive whole number of seconds, got '$PG_CONNECT_TIMEOUT'" ;;
    esac
    case "$PGSSLMODE" in
        '' | disable | allow | prefer | require | verify-ca | verify-full) ;;
        *) die 2 "PGSSLMODE '$PGSSLMODE' is not one of disable, allow, prefer, require, verify-ca, verify-full" ;;
    esac
}

pg_check_backup_dir() {
    BACKUP_DIR=${BACKUP_DIR:-}
    case "$BACKUP_DIR" in
        '') die 2 "BACKUP_DIR is required (an absolute folder on this host for the dumps)" ;;
        /) die 2 "BACKUP_DIR must not be the root folder" ;;
        /*) ;;
        *) die 2 "BACKUP_DIR '$BACKUP_DIR' is not an absolute path" ;;
    esac
    BACKUP_DIR=${BACKUP_DIR%/}
    # It becomes part of a --mount value: no ',' or '"', and no . or .. component to hide where it is.
    case "$BACKUP_DIR" in
        *[!A-Za-z0-9._/-]* | *//* | */./* | */../* | */. | */..)
            die 2 "BACKUP_DIR '$BACKUP_DIR' must be a plain absolute path (letters, digits, . _ - /, no . or .. parts)" ;;
    esac
    safe_dir "$BACKUP_DIR" 0700 "$1" || die 2 "BACKUP_DIR cannot be used: $SAFE_PROBLEM"
}

pg_check_docker() {
    command -v docker >/dev/null 2>&1 || die 2 "the docker CLI is not installed"
    docker version --format '{{.Server.Version}}' >/dev/null 2>&1 </dev/null ||
        die 2 "dockerd does not answer (DOCKER_HOST=${DOCKER_HOST:-default})"
    docker image inspect --format '{{.Id}}' "$PG_CLIENT_IMAGE" >/dev/null 2>&1 </dev/null ||
        die 2 "PG_CLIENT_IMAGE $PG_CLIENT_IMAGE is not an image on this host (it is never pulled: use the stack's Postgres image)"
    if [ -n "$PG_NETWORK" ]; then
        docker network inspect --format '{{.Id}}' "$PG_NETWORK" >/dev/null 2>&1 </dev/null ||
            die 2 "PG_NETWORK $PG_NETWORK is not a docker network on this host"
    fi
}

pg_read_password() {
    [ -t 0 ] && die 2 "the password is read from stdin, which is a terminal: pipe it in (one line)"
    PG_PASSWORD=""
    if ! IFS= read -r PG_PASSWORD; then
        # End of input without a newline: what was read is the line.
        [ -n "$PG_PASSWORD" ] || die 2 "no password on stdin (one line: the database password)"
    fi
    _pg_more=""
    if IFS= read -r _pg_more || [ -n "$_pg_more" ]; then
        _pg_more=""
        die 2 "stdin holds more than one line: give the database password alone, on one line"
    fi
    [ -n "$PG_PASSWORD" ] || die 2 "the password on stdin is empty"
    # For mask-secrets.sh: a shell variable, never exported.
    # shellcheck disable=SC2034 # read by secret_values
    ENV_LINES="PGPASSWORD=$PG_PASSWORD"
}

pg_start_work() {
    _pg_tmp=${TMPDIR:-/tmp}
    _pg_tmp=${_pg_tmp%/}
    case "$_pg_tmp" in
        /*) ;;
        *) die 2 "TMPDIR '$_pg_tmp' is not an absolute path" ;;
    esac
    PG_WORK=$(umask 077 && mktemp -d "$_pg_tmp/medusa-db-$PG_ROLE.XXXXXX" 2>/dev/null) ||
        die 2 "cannot create a temporary folder in $_pg_tmp"
    # The pgpass file becomes a --mount source: plain characters only.
    case "$PG_WORK" in
        *[!A-Za-z0-9._/-]*) die 2 "the temporary folder $PG_WORK has characters a bind mount cannot take; set TMPDIR to a plain path" ;;
    esac
    # libpq reads host:port:database:username:password, '\' escaping ':' and '\'. The line matches any
    # server: the file serves this one connection only.
    _pg_escaped=$(printf '%s' "$PG_PASSWORD" | sed 's/[\\:]/\\&/g')
    if ! (umask 077 && printf '*:*:*:*:%s\n' "$_pg_escaped" >"$PG_WORK/pgpass") 2>/dev/null; then
        _pg_escaped=""
        die 2 "cannot write the password file in $PG_WORK"
    fi
    _pg_escaped=""
    # Ours, so that the client (running as our uid) can read it; libpq ignores a file others can read.
    chmod 0600 "$PG_WORK/pgpass" || die 2 "cannot set mode 0600 on $PG_WORK/pgpass"
    PG_NAME_BASE="medusa-db-$PG_ROLE-${PG_WORK##*.}"
}

pg_client() {
    PG_CONTAINER="$PG_NAME_BASE-$1"
    _pg_program=$2
    shift 2
    set -- --entrypoint "$_pg_program" "$PG_CLIENT_IMAGE" "$@"
    [ -n "$PG_MOUNT" ] && set -- --mount "$PG_MOUNT" "$@"
    [ -n "$PG_NETWORK" ] && set -- --network "$PG_NETWORK" "$@"
    [ -n "$PGSSLMODE" ] && set -- -e "PGSSLMODE=$PGSSLMODE" "$@"
    set -- run --rm --pull never --name "$PG_CONTAINER" --label "medusa-deploy.role=database-$PG_ROLE" \
        --user "$(id -u):$(id -g)" --cap-drop ALL --security-opt no-new-privileges --read-only \
        --mount "type=bind,source=$PG_WORK/pgpass,target=$PG_PASSFILE_TARGET,readonly" \
        -e "PGPASSFILE=$PG_PASSFILE_TARGET" -e "PGHOST=$PGHOST" -e "PGPORT=$PGPORT" -e "PGUSER=$PGUSER" \
        -e "PGDATABASE=$PGDATABASE" -e "PGCONNECT_TIMEOUT=$PG_CONNECT_TIMEOUT" "$@"
    PG_RUNNING=yes
    # In the background, so that a signal's trap runs at once (a foreground command would delay it
    # until docker returns).
    docker "$@" >"$PG_WORK/out" 2>"$PG_WORK/err" </dev/null &
    wait $!
    _pg_status=$?
    PG_RUNNING=no
    return "$_pg_status"
}

pg_show_errors() {
    [ -s "$PG_WORK/err" ] || return 0
    {
        secret_values
        printf '%s\n' "$MASK_END"
        tail -n "$1" "$PG_WORK/err"
    } | mask_secrets | sed 's/^/    /' >&2
}

pg_cleanup() {
    if [ "$PG_RUNNING" = yes ] && [ -n "$PG_CONTAINER" ]; then
        if docker rm -f "$PG_CONTAINER" >/dev/null 2>&1 </dev/null; then
            err "removed the client container $PG_CONTAINER"
        fi
        PG_RUNNING=no
    fi
    [ -n "$PG_WORK" ] && rm -rf -- "$PG_WORK"
    PG_WORK=""
}
