# edge-lock.sh: the lock that serialises everything that changes the edge (traffic switches and
# config installs), so a reload can never land between a switch and its save. Sourced by
# host/traffic-switch.sh and host/install-edge-config.sh when run from a checkout, and inlined into
# them when medusa-deploy sends them to a host (components/hostScripts.ts).
#
# Needs from the caller: EDGE_LOCK_FILE, EDGE_LOCK_TIMEOUT (seconds), EDGE_LOCK_METHOD
# (auto | flock | mkdir) and the functions die <code> <message> and err <message>.
#
#   take_edge_lock     takes the lock or ends the script (die 2 / die 6, "nothing changed").
#   try_edge_lock      takes the lock or returns 1 with LOCK_ERROR (text) and LOCK_ERROR_CODE (2 or 6),
#                      for a caller that has already changed something and must say what is left.
#   release_edge_lock  lets go of it before the script ends (the traffic switch does so while it
#                      only watches, so that it never blocks another switch).
# With a lock folder, LOCK_DIR names it while it is held; the caller removes it on exit. A flock is
# held on file descriptor 9 and ends with the process.

LOCK_DIR=""
LOCK_FD=""

lock_with_flock() {
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
    while ! mkdir "$dir" 2>/dev/null; do
        owner=$(cat "$dir/pid" 2>/dev/null || true)
        stale=no
        if [ -n "$owner" ]; then
            kill -0 "$owner" 2>/dev/null || stale=yes
        elif [ -n "$(find "$dir" -maxdepth 0 -mmin +1 2>/dev/null)" ]; then
            stale=yes
        fi
        if [ "$stale" = yes ] && mv "$dir" "$dir.stale.$$" 2>/dev/null; then
            # Remove only what was judged stale; if a live owner re-took it meanwhile, give it back.
            if [ "$(cat "$dir.stale.$$/pid" 2>/dev/null || true)" = "$owner" ]; then
                err "removed stale lock $dir of process ${owner:-unknown}, which is gone"
                rm -rf "$dir.stale.$$"
            else
                mv "$dir.stale.$$" "$dir" 2>/dev/null || rm -rf "$dir.stale.$$"
            fi
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
