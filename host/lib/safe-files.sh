# safe-files.sh: how the root-run edge scripts write files without being led elsewhere. Sourced by
# host/traffic-switch.sh and host/install-edge-config.sh when run from a checkout, and inlined into
# them when medusa-deploy sends them to a host (components/hostScripts.ts), before edge-lock.sh.
#
# The rules (issue 19): a script writes only in folders it has checked (a folder, not a symbolic
# link, owned by the uid it runs as, writable by nobody else, in a parent where only its owner can
# rename it); it creates files there only with mktemp (a fresh name: never a link someone planted) and
# puts them in place with mv -f (a rename replaces the name, it never writes through it); and it
# refuses a predictable name it is about to read, lock or replace when that name is a symbolic link
# or not a regular file. With the folders checked, nobody but the script's own user can plant
# anything in them between a check and its use; the name checks also catch what an older layout
# (the edge container writing the config folder as root) may have left there.
#
# Needs nothing from the caller. Functions return 1 with SAFE_PROBLEM (text naming the path and
# what is wrong) and never end the script, so each caller words its own "nothing changed".
#
#   safe_dir_state <dir>             0: a safe folder; 1: a problem (SAFE_PROBLEM); 2: absent.
#   safe_parent_ok <dir>             the folder holding <dir> exists and only its owner can rename
#                                    entries in it (no group/other write unless sticky). Its owner
#                                    is trusted: the stack's hostStateDir, owned by root or by the
#                                    deploying user (lib/hostStateDir.ts checks a local one).
#   safe_dir <dir> <mode> <create|existing>
#                                    checks <dir> (and its parent); creates it with <mode> (octal,
#                                    e.g. 0755) when absent and allowed; sets <mode> when it differs
#                                    (<mode> "-": leave the mode as it is).
#   safe_file_ok <path>              <path> is absent or a regular file, not a symbolic link.
#   safe_socket_ok <path>            <path> is a socket and not a symbolic link.
#   safe_temp <var> <dir> <name>     sets <var> to a new empty file "<dir>/.<name>.XXXXXX" (mode 0600)
#                                    made by mktemp; removed by safe_cleanup unless renamed. Call it
#                                    directly, not in $(...): the list of files lives in this shell.
#   safe_copy <src> <var> <dir> <name>  safe_temp, then the bytes, mode and mtime of <src> into it.
#   safe_replace <temp> <dest>       checks <dest> with safe_file_ok, then mv -f <temp> <dest>.
#   safe_cleanup                     removes the temporary files still listed (call on EXIT).

# shellcheck disable=SC2034 # SAFE_PROBLEM is read by the scripts that source this file
SAFE_PROBLEM=""
SAFE_UID=$(id -u)
SAFE_TEMPS=""

# Fields of `ls -ldn`: the mode string (e.g. drwxr-xr-x, "+" appended for an access control list)
# and the numeric owner. POSIX, unlike stat -c. $2: "L" to follow a symbolic link.
_safe_ls() {
    if [ "$2" = L ]; then _safe_line=$(ls -ldnL -- "$1" 2>/dev/null) || return 1
    else _safe_line=$(ls -ldn -- "$1" 2>/dev/null) || return 1; fi
    # shellcheck disable=SC2086
    set -- $_safe_line
    _safe_mode=$1 _safe_owner=$3
}

# "rwxr-xr-x" for an octal mode such as 0755.
_safe_perm_string() {
    _safe_octal=${1#0}
    _safe_out=""
    while [ -n "$_safe_octal" ]; do
        _safe_digit=${_safe_octal%"${_safe_octal#?}"}
        _safe_octal=${_safe_octal#?}
        if [ $((_safe_digit & 4)) -ne 0 ]; then _safe_out="${_safe_out}r"; else _safe_out="${_safe_out}-"; fi
        if [ $((_safe_digit & 2)) -ne 0 ]; then _safe_out="${_safe_out}w"; else _safe_out="${_safe_out}-"; fi
        if [ $((_safe_digit & 1)) -ne 0 ]; then _safe_out="${_safe_out}x"; else _safe_out="${_safe_out}-"; fi
    done
    printf '%s' "$_safe_out"
}

safe_dir_state() {
    if [ -L "$1" ]; then
        SAFE_PROBLEM="$1 is a symbolic link"
        return 1
    fi
    [ -e "$1" ] || return 2
    if [ ! -d "$1" ]; then
        SAFE_PROBLEM="$1 exists and is not a folder"
        return 1
    fi
    if ! _safe_ls "$1" -; then
        SAFE_PROBLEM="cannot read the owner and mode of $1"
        return 1
    fi
    if [ "$_safe_owner" != "$SAFE_UID" ]; then
        SAFE_PROBLEM="$1 is owned by uid $_safe_owner, not by uid $SAFE_UID that this script runs as"
        return 1
    fi
    case "$_safe_mode" in
        ?????w* | ????????w*)
            SAFE_PROBLEM="$1 is writable by its group or by others (mode $_safe_mode)"
            return 1 ;;
        ??????????+*)
            SAFE_PROBLEM="$1 has an access control list (mode $_safe_mode), which may let others write in it"
            return 1 ;;
    esac
    return 0
}

safe_parent_ok() {
    _safe_parent=$(dirname -- "$1")
    if ! _safe_ls "$_safe_parent" L || [ ! -d "$_safe_parent" ]; then
        SAFE_PROBLEM="the folder $_safe_parent that holds $1 does not exist"
        return 1
    fi
    case "$_safe_mode" in
        ?????????[tT]*) ;; # sticky: others cannot rename or remove what they do not own
        ?????w* | ????????w*)
            SAFE_PROBLEM="the folder $_safe_parent that holds $1 is writable by its group or by others (mode $_safe_mode), who could replace $1"
            return 1 ;;
    esac
    return 0
}

safe_dir() {
    safe_parent_ok "$1" || return 1
    safe_dir_state "$1"
    case $? in
        1) return 1 ;;
        2)
            if [ "$3" != create ]; then
                SAFE_PROBLEM="$1 does not exist"
                return 1
            fi
            if ! mkdir -m "$2" -- "$1" 2>/dev/null && [ ! -d "$1" ]; then
                SAFE_PROBLEM="cannot create $1"
                return 1
            fi
            # Someone else may have created it first: check what is there now.
            safe_dir_state "$1" || return 1 ;;
    esac
    [ "$2" = - ] && return 0
    _safe_want=$(_safe_perm_string "$2")
    # Set-id and sticky bits show in the x places; they are not what is compared.
    _safe_have=$(printf '%s' "$_safe_mode" | cut -c2-10 | tr 'sStT' 'x-x-')
    if [ "$_safe_have" != "$_safe_want" ] && ! chmod "$2" "$1"; then
        SAFE_PROBLEM="cannot set mode $2 on $1"
        return 1
    fi
    return 0
}

safe_file_ok() {
    if [ -L "$1" ]; then
        SAFE_PROBLEM="$1 is a symbolic link"
        return 1
    fi
    if [ -e "$1" ] && [ ! -f "$1" ]; then
        SAFE_PROBLEM="$1 exists and is not a regular file"
        return 1
    fi
    return 0
}

safe_socket_ok() {
    if [ -L "$1" ]; then
        SAFE_PROBLEM="$1 is a symbolic link, not the edge's socket"
        return 1
    fi
    if [ ! -e "$1" ]; then
        SAFE_PROBLEM="$1 does not exist"
        return 1
    fi
    if [ ! -S "$1" ]; then
        SAFE_PROBLEM="$1 is not a socket"
        return 1
    fi
    return 0
}

safe_temp() {
    _safe_created=$(mktemp "$2/.$3.XXXXXX" 2>/dev/null) || {
        SAFE_PROBLEM="cannot create a temporary file in $2"
        return 1
    }
    SAFE_TEMPS="$SAFE_TEMPS
$_safe_created"
    eval "$1=\$_safe_created"
}

safe_copy() {
    safe_temp "$2" "$3" "$4" || return 1
    _safe_copy_to=$_safe_created
    # cp writes into the file mktemp just made (a fresh name in a checked folder); -p keeps mode and mtime.
    if ! cp -p -- "$1" "$_safe_copy_to" 2>/dev/null; then
        SAFE_PROBLEM="cannot copy $1 to $_safe_copy_to"
        return 1
    fi
    return 0
}

safe_replace() {
    safe_file_ok "$2" || return 1
    if ! mv -f -- "$1" "$2" 2>/dev/null; then
        SAFE_PROBLEM="cannot rename $1 over $2"
        return 1
    fi
    return 0
}

safe_cleanup() {
    [ -n "$SAFE_TEMPS" ] || return 0
    printf '%s\n' "$SAFE_TEMPS" | while IFS= read -r _safe_file; do
        [ -n "$_safe_file" ] && rm -f -- "$_safe_file"
    done
    SAFE_TEMPS=""
}
