# edge-lock.sh: the lock that serialises everything that changes the edge (traffic switches and
# config installs), so a reload can never land between a switch and its save. Sourced by
# host/traffic-switch.sh and host/install-edge-config.sh when run from a checkout, and inlined into
# them when medusa-deploy sends them to a host (components/hostScripts.ts).
#
# Needs from the caller: EDGE_LOCK_FILE, EDGE_LOCK_TIMEOUT (seconds), EDGE_LOCK_METHOD
# (auto | flock | mkdir) and the functions die <code> <message> and err <message>.
# take_edge_lock sets LOCK_DIR when it used a lock folder; the caller removes it on exit.

LOCK_DIR=""

lock_with_flock() {
    # A failed redirection on exec would end the shell without a message: try it in a subshell first.
    (: >>"$EDGE_LOCK_FILE") 2>/dev/null || die 2 "cannot open lock file $EDGE_LOCK_FILE; nothing changed"
    exec 9>>"$EDGE_LOCK_FILE"
    flock -w "$EDGE_LOCK_TIMEOUT" 9 ||
        die 6 "another process held $EDGE_LOCK_FILE for ${EDGE_LOCK_TIMEOUT}s; nothing changed"
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
        [ "$polls" -ge "$((EDGE_LOCK_TIMEOUT * 5))" ] &&
            die 6 "another process (pid ${owner:-unknown}) held $dir for ${EDGE_LOCK_TIMEOUT}s; nothing changed"
        sleep 0.2
        polls=$((polls + 1))
    done
    LOCK_DIR=$dir
    echo $$ >"$dir/pid"
}

take_edge_lock() {
    case "$EDGE_LOCK_METHOD" in
        flock) command -v flock >/dev/null 2>&1 || die 2 "EDGE_LOCK_METHOD=flock but flock is not installed; nothing changed"; lock_with_flock ;;
        mkdir) lock_with_mkdir ;;
        auto) if command -v flock >/dev/null 2>&1; then lock_with_flock; else lock_with_mkdir; fi ;;
        *) die 2 "EDGE_LOCK_METHOD must be auto, flock or mkdir, got '$EDGE_LOCK_METHOD'; nothing changed" ;;
    esac
}
