#!/bin/sh
# preflight.sh — the checks that can only be made on the docker host itself, run before a deploy
# changes anything there (daemon.json, containers, the edge's files).
# Runs on the docker host (POSIX sh), as the user the other host scripts run as (root with sudo).
#
# Environment (inputs):
#   HOST_STATE_DIR   required. The stack's hostStateDir. Every folder on the way to it, and the folder
#                    itself if it exists, is checked: whoever can write in one of them can replace
#                    the edge's folders and so steer the shop's traffic or plant links where root
#                    writes. A folder on the way must not be writable by others (world-writable
#                    folders such as /tmp included) nor owned by a user other than root or the user
#                    running this; symbolic links on the way are followed and their targets checked.
#   CONTAINER_USERS  optional. Space-separated `<setting>=<uid>:<gid>` words, e.g.
#                    "appUser=70001:70001 edgeUser=70002:70002": the ids containers will run as. A
#                    host account or group with one of those ids is refused: it could read the
#                    process's environment (the app's secrets) and signal it.
#   BACKUP_DIR       optional. The stack's backup folder: checked like backup-database.sh checks it
#                    (ours, not a link, writable by nobody else) and, once every check passed,
#                    created 0700 when absent (the one change this script makes), so that the daily
#                    backup container can bind-mount it before any deploy backup was taken.
#
# Stdout on success: "preflight: host scripts run as <uid>:<gid>" (the owner the backup folder and
# the daily backup container get), then "preflight: ok". Exit codes: 0 ok; 2 a check failed or bad
# input (stderr names the path or the setting and what would be valid); nothing on the host is
# changed then.

set -u

err() { printf 'preflight: %s\n' "$*" >&2; }
die() { err "$*; nothing was changed on this host"; exit 2; }

HOST_STATE_DIR=${HOST_STATE_DIR:-}
CONTAINER_USERS=${CONTAINER_USERS:-}
BACKUP_DIR=${BACKUP_DIR:-}

# shellcheck source-path=SCRIPTDIR source=lib/safe-files.sh
. "${MEDUSA_DEPLOY_HOST_LIB:-$(dirname "$0")/lib}/safe-files.sh" # medusa-deploy:inline lib/safe-files.sh
me=$(id -u)
# Under sudo, the user who ran it may own the folder too (a local host's default is in their home).
invoker=${SUDO_UID:-$me}

case "$HOST_STATE_DIR" in
    /*) ;;
    *) die "HOST_STATE_DIR must be an absolute path, got '$HOST_STATE_DIR'" ;;
esac
case "$HOST_STATE_DIR" in
    *[!A-Za-z0-9_./-]*) die "HOST_STATE_DIR may contain only letters, digits, '_', '.', '-' and '/', got '$HOST_STATE_DIR'" ;;
esac

# owner and permission bits of a path (GNU or busybox stat), following links.
owner_of() { stat -L -c %u "$1"; }
mode_of() { stat -L -c %a "$1"; }

# check_folder <path> <what>: a folder only root or this user can change.
check_folder() {
    [ -d "$1" ] || die "$2 $1 is not a folder"
    owner=$(owner_of "$1") || die "cannot read the owner of $1"
    mode=$(mode_of "$1") || die "cannot read the mode of $1"
    if [ "$owner" != 0 ] && [ "$owner" != "$me" ] && [ "$owner" != "$invoker" ]; then
        die "$2 $1 belongs to uid $owner (neither root nor uid $invoker, who runs the deploy): that user could replace hostStateDir ($HOST_STATE_DIR); use a folder only root or the deploy user owns"
    fi
    others=$(printf '%s' "$mode" | sed 's/.*\(.\)$/\1/')
    case "$others" in
        2 | 3 | 6 | 7) die "$2 $1 is writable by every user (mode $mode): anyone could replace hostStateDir ($HOST_STATE_DIR); use a folder outside world-writable ones, e.g. /var/lib/medusa-deploy/<stack>" ;;
    esac
}

# The existing part of the path, with links resolved: the folders that are really on the way.
existing=$HOST_STATE_DIR
while [ ! -e "$existing" ] && [ "$existing" != / ]; do existing=$(dirname "$existing"); done
resolved=$(readlink -f "$existing") || die "cannot resolve $existing"
at=$resolved
while :; do
    check_folder "$at" "the folder on the way to hostStateDir,"
    [ "$at" = / ] && break
    at=$(dirname "$at")
done
if [ -e "$HOST_STATE_DIR" ] || [ -L "$HOST_STATE_DIR" ]; then
    [ -L "$HOST_STATE_DIR" ] && die "hostStateDir $HOST_STATE_DIR is a symbolic link; give the real folder"
    check_folder "$HOST_STATE_DIR" "hostStateDir"
    case "$(mode_of "$HOST_STATE_DIR" | sed 's/.*\(.\).$/\1/')" in
        2 | 3 | 6 | 7) die "hostStateDir $HOST_STATE_DIR is writable by its group (mode $(mode_of "$HOST_STATE_DIR")): chmod g-w it" ;;
    esac
fi

# name_of <database> <id>: the account or group with that id, empty when none.
name_of() {
    if command -v getent >/dev/null 2>&1; then
        getent "$1" "$2" | cut -d: -f1
    else
        awk -F: -v id="$2" '$3 == id { print $1; exit }' "/etc/$1"
    fi
}

for word in $CONTAINER_USERS; do
    setting=${word%%=*}
    ids=${word#*=}
    uid=${ids%%:*}
    gid=${ids#*:}
    case "$uid:$gid" in
        *[!0-9:]* | :* | *:) die "CONTAINER_USERS has '$word'; expected <setting>=<uid>:<gid>" ;;
    esac
    account=$(name_of passwd "$uid")
    [ -n "$account" ] && die "medusa-deploy:$setting $uid:$gid: uid $uid is the host account '$account', which could read the container's environment (its secrets) and signal it; choose ids no account on this host uses"
    group=$(name_of group "$gid")
    [ -n "$group" ] && die "medusa-deploy:$setting $uid:$gid: gid $gid is the host group '$group'; choose ids no group on this host uses"
done

if [ -n "$BACKUP_DIR" ]; then
    case "$BACKUP_DIR" in
        / | *[!A-Za-z0-9_./-]* | [!/]* | *//* | */./* | */../* | */. | */..)
            die "BACKUP_DIR must be a plain absolute path (letters, digits, . _ - /, no . or .. parts), got '$BACKUP_DIR'" ;;
    esac
    BACKUP_DIR=${BACKUP_DIR%/}
    parent=$(dirname "$BACKUP_DIR")
    if [ ! -e "$parent" ]; then
        # Under hostStateDir, whose every folder on the way was checked above, the way is made as
        # install-edge-config.sh makes it; elsewhere nobody checked it: the operator makes it.
        case "$BACKUP_DIR" in
            "${HOST_STATE_DIR%/}"/*) (umask 022 && mkdir -p "$parent") || die "cannot create $parent" ;;
            *) die "the folder $parent that is to hold backupDir $BACKUP_DIR does not exist: create it (owned by root or the deploy user, not writable by others)" ;;
        esac
    fi
    safe_dir "$BACKUP_DIR" 0700 create || die "backupDir cannot be used: $SAFE_PROBLEM"
fi

echo "preflight: host scripts run as $me:$(id -g)"
echo "preflight: ok"
