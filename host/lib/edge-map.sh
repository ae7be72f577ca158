# edge-map.sh: how host/edge-maintenance.sh and host/edge-preview.sh change one of the edge's map files
# (lib/edgeControls.ts): at runtime through the admin socket, so the change is immediate and nothing is
# reloaded, and in the file, so a restarted edge comes back with it. Sourced from a checkout, inlined
# when sent to a host (components/hostScripts.ts), after safe-files.sh.
#
# Needs from the caller: EDGE_ADMIN_SOCKET, EDGE_DIR, EDGE_CONTROL_DIR, and the functions
# die <code> <message> and err <message>.
#
#   map_folders_ok              ends the script (exit 2, nothing changed) unless EDGE_DIR and
#                               EDGE_CONTROL_DIR exist and pass safe_dir_state.
#   map_admin <command>         one admin command; prints HAProxy's answer; 1 when the socket is not
#                               a socket (SAFE_PROBLEM) or cannot be reached.
#   map_put <ref> <key> <value> sets <key> in the map the edge loaded as <ref> (adds it when absent);
#                               1 with MAP_ERROR when HAProxy refused.
#   map_clear <ref>             removes every entry of that map at runtime.
#   map_write <file> <text>     replaces the map file by a mktemp file in its folder (0644), then mv.

# shellcheck disable=SC2034 # MAP_ERROR is read by the scripts that source this file
MAP_ERROR=""

map_folders_ok() {
    for _map_dir in "$EDGE_DIR" "$EDGE_CONTROL_DIR"; do
        safe_dir_state "$_map_dir"
        case $? in
            1) die 2 "$SAFE_PROBLEM; refusing, nothing changed" ;;
            2) die 2 "$_map_dir does not exist: the edge was never installed here; nothing changed" ;;
        esac
    done
}

map_admin() {
    safe_socket_ok "$EDGE_ADMIN_SOCKET" || return 1
    printf '%s\n' "$1" | socat -t 10 -T 10 - "UNIX-CONNECT:$EDGE_ADMIN_SOCKET" 2>&1
}

# Commands that print nothing on success: any text back is HAProxy's refusal.
_map_set() {
    _map_answer=$(map_admin "$1") || { MAP_ERROR="admin socket $EDGE_ADMIN_SOCKET: ${SAFE_PROBLEM:-$_map_answer}"; return 1; }
    _map_answer=$(printf '%s' "$_map_answer" | tr -s '\n' ' ' | sed 's/^ *//; s/ *$//')
    [ -z "$_map_answer" ] && return 0
    MAP_ERROR="HAProxy refused '$1': $_map_answer"
    return 1
}

map_put() {
    _map_dump=$(map_admin "show map $1") || { MAP_ERROR="admin socket $EDGE_ADMIN_SOCKET: ${SAFE_PROBLEM:-$_map_dump}"; return 1; }
    case "$_map_dump" in
        *"Unknown map identifier"*) MAP_ERROR="the edge has no map $1: its config predates this control (the next pulumi up installs it)"; return 1 ;;
    esac
    if printf '%s\n' "$_map_dump" | awk -v key="$2" '$2 == key { found = 1 } END { exit !found }'; then
        _map_set "set map $1 $2 $3"
    else
        _map_set "add map $1 $2 $3"
    fi
}

map_clear() {
    _map_set "clear map $1"
}

map_write() {
    safe_file_ok "$1" || { MAP_ERROR=$SAFE_PROBLEM; return 1; }
    _map_temp=""
    safe_temp _map_temp "$(dirname -- "$1")" "$(basename -- "$1")" || { MAP_ERROR=$SAFE_PROBLEM; return 1; }
    if ! printf '%s' "$2" >"$_map_temp" || ! chmod 0644 "$_map_temp"; then
        MAP_ERROR="cannot write $_map_temp (disk full?)"
        return 1
    fi
    safe_replace "$_map_temp" "$1" || { MAP_ERROR=$SAFE_PROBLEM; return 1; }
}
