# edge-lock.sh: the lock that serialises everything that changes the edge (traffic switches and
# config installs), so a reload can never land between a switch and its save. Sourced by
# host/traffic-switch.sh and host/install-edge-config.sh when run from a checkout, and inlined into
# them when medusa-deploy sends them to a host (components/hostScripts.ts).
#
# Needs from the caller: EDGE_LOCK_FILE, EDGE_LOCK_TIMEOUT (seconds), EDGE_LOCK_METHOD
# (auto | flock | mkdir), the functions die <code> <message> and err <message>, and
# host/lib/safe-files.sh sourced before this file.
#
#   take_edge_lock     takes the lock or ends the script (die 2 / die 6, "nothing changed").
#   try_edge_lock      takes the lock or returns 1 with LOCK_ERROR (text) and LOCK_ERROR_CODE (2 or 6),
#                      for a caller that has already changed something and must say what is left.
#   release_edge_lock  lets go of it before the script ends (the traffic switch does so while it
#                      only watches, so that it never blocks another switch).
# With a lock folder, LOCK_DIR names it while it is held; the caller removes it on exit. A flock is
# held on file descriptor 9 and ends with the process.
#
# The lock lives in the edge-control folder, which the edge container never sees. Its folder must
# pass safe_dir_state (ours, writable by nobody else, not a link), and the lock file must be a
# regular file and the lock folder a folder, neither a symbolic link: `exec 9>>` and `mkdir` would
# otherwise open or create through a link someone planted (code 2, nothing changed).

LOCK_DIR=""
LOCK_FD=""

# Refuses a lock whose folder is not ours alone, or whose name ($1) is a link or of the wrong type ($2:
# f for a file, d for a folder).
lock_path_ok() {
    if ! safe_dir_state "$(dirname -- "$1")"; then
        LOCK_ERROR_CODE=2 LOCK_ERROR="the lock's folder is not safe to use: ${SAFE_PROBLEM:-$(dirname -- "$1") does not exist}; refusing to lock"
        return 1
    fi
    if [ -L "$1" ]; then
        LOCK_ERROR_CODE=2 LOCK_ERROR="the lock $1 is a symbolic link; refusing to lock through it"
        return 1
    fi
    if [ -e "$1" ] && { { [ "$2" = f ] && [ ! -f "$1" ]; } || { [ "$2" = d ] && [ ! -d "$1" ]; }; }; then
        LOCK_ERROR_CODE=2 LOCK_ERROR="the lock $1 exists and is not a regular $([ "$2" = f ] && echo file || echo folder); refusing to lock"
        return 1
    fi
    return 0
}

lock_with_flock() {
    lock_path_ok "$EDGE_LOCK_FILE" f || return 1
    # A failed redirection on exec would end the shell without a message: try it in a subshell first.
    if ! (: >>"$EDGE_LOCK_FILE") 2>/dev/null; then
        LOCK_ERROR_CODE=2 LOCK_ERROR="cannot open lock file $EDGE_LOCK_FILE"
        return 1
    fi
    exec 9>>"$EDGE_LOCK_FILE"
    if ! flock -w "$EDGE_LOCK_TIMEOUT" 9; then
        exec 9>&-
        LOCK_ERROR_CODE=6 LOCK_ERROR="another process held $EDGE_LOCK_FILE for ${EDGE_LOCK_TIMEOUT}s"
        return 1
    fi
    LOCK_FD=9
}

# mkdir is atomic everywhere. The owner's pid inside lets a later run clear the lock of a dead owner;
# a lock folder without a pid older than a minute is stale too (owner died between mkdir and echo).
lock_with_mkdir() {
    dir="$EDGE_LOCK_FILE.d"
    polls=0
    while :; do
        lock_path_ok "$dir" d || return 1
        mkdir "$dir" 2>/dev/null && break
        owner=$(cat "$dir/pid" 2>/dev/null || true)
        stale=no
        if [ -n "$owner" ]; then
            kill -0 "$owner" 2>/dev/null || stale=yes
        elif [ -n "$(find "$dir" -maxdepth 0 -mmin +1 2>/dev/null)" ]; then
            stale=yes
        fi
        # The stale lock is moved into a folder mktemp makes (a fresh name, beside the lock).
        if [ "$stale" = yes ] && holder=$(mktemp -d "$dir.stale.XXXXXX" 2>/dev/null); then
            if mv "$dir" "$holder/lock" 2>/dev/null; then
                # Remove only what was judged stale; if a live owner re-took it meanwhile, give it back.
                if [ "$(cat "$holder/lock/pid" 2>/dev/null || true)" = "$owner" ]; then
                    err "removed stale lock $dir of process ${owner:-unknown}, which is gone"
                elif [ ! -e "$dir" ] && [ ! -L "$dir" ]; then
                    mv "$holder/lock" "$dir" 2>/dev/null
                fi
            fi
            rm -rf "$holder"
            continue
        fi
        if [ "$polls" -ge "$((EDGE_LOCK_TIMEOUT * 5))" ]; then
            LOCK_ERROR_CODE=6 LOCK_ERROR="another process (pid ${owner:-unknown}) held $dir for ${EDGE_LOCK_TIMEOUT}s"
            return 1
        fi
        sleep 0.2
        polls=$((polls + 1))
    done
    LOCK_DIR=$dir
    echo $$ >"$dir/pid"
}

try_edge_lock() {
    case "$EDGE_LOCK_METHOD" in
        flock)
            if ! command -v flock >/dev/null 2>&1; then
                LOCK_ERROR_CODE=2 LOCK_ERROR="EDGE_LOCK_METHOD=flock but flock is not installed"
                return 1
            fi
            lock_with_flock ;;
        mkdir) lock_with_mkdir ;;
        auto) if command -v flock >/dev/null 2>&1; then lock_with_flock; else lock_with_mkdir; fi ;;
        *) LOCK_ERROR_CODE=2 LOCK_ERROR="EDGE_LOCK_METHOD must be auto, flock or mkdir, got '$EDGE_LOCK_METHOD'"; return 1 ;;
    esac
}

take_edge_lock() {
    try_edge_lock || die "$LOCK_ERROR_CODE" "$LOCK_ERROR; nothing changed"
}

release_edge_lock() {
    if [ -n "$LOCK_DIR" ]; then
        rm -rf "$LOCK_DIR"
        LOCK_DIR=""
    fi
    if [ -n "$LOCK_FD" ]; then
        # Unlock first: a child that inherited descriptor 9 must not keep the lock alive.
        flock -u 9 2>/dev/null
        exec 9>&-
        LOCK_FD=""
    fi
}
