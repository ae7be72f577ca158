#!/bin/sh
# prune-release-images.sh — keep the host's disk bounded across releases: after a deploy has moved
# traffic, remove every local image of the stack's release repository except the ones the deploy
# keeps (the blue and green colours' images: the live release and the instant-rollback target) and
# any a container still uses. Release images are pulled with keepLocally (the provider never removes
# them), so without this every release ever deployed stays on the host. Runs on the docker host
# (POSIX sh).
#
# Environment (inputs):
#   IMAGE_REPOSITORY  required. The release image repository, without tag or digest,
#                     e.g. registry.example.com/shop/medusa.
#   KEEP_IMAGES       required. The images to keep, separated by spaces or newlines: digest-pinned
#                     references (repo[:tag]@sha256:…), tags (repo:tag) or image ids (sha256:…).
#                     Each must be a local image: the script will not guess what to keep.
#   DOCKER_HOST       honoured by the docker CLI.
#
# What it does:
#   1. resolves every KEEP_IMAGES entry to a local image id; one that is not a local image refuses
#      the whole run (nothing is removed);
#   2. lists the images that have a tag or digest of IMAGE_REPOSITORY, and keeps each one that is
#      - in the keep list,
#      - also tagged in another repository (an image of another repository is never touched),
#      - used by a container, running or stopped;
#   3. removes each other one by its references of IMAGE_REPOSITORY (all its tags and digests, one
#      by one until the image is gone), never forced: if a container started using it meanwhile, docker refuses and the image is
#      reported as kept (in use);
#   4. reports the disk freed: the sum of the removed images' Size (docker image inspect) before
#      removal. Layers a removed image shared with a kept one stay on disk, so this is an upper
#      bound of what was freed.
# Images of other repositories and dangling images without a reference of IMAGE_REPOSITORY are
# never looked at. A second run with the same inputs removes nothing.
#
# Stdout: one line per image of the repository (kept or pruned, and why), then a last line that is
# always machine-readable:
#   "result: pruned <N> kept <M> freed <bytes> in-use <K> failed <F>"   exit 0
#       N images removed; M images of the repository still on the host (K of them because a
#       container uses them, F because docker failed to remove them: see stderr)
#   "result: refused <reason>"                                           exit 2, 3 (nothing removed)
#       reason: bad-input, docker-unavailable, unknown-keep
#
# Exit codes:
#   0  done (also when docker refused or failed to remove an image: this is housekeeping after a
#      deploy that has already succeeded; the next deploy tries again, and stderr says what to do)
#   2  bad input, or dockerd does not answer; nothing was removed
#   3  refused: an image to keep is not on the host; nothing was removed

set -u
# No word of an input is ever a file pattern.
set -f

IMAGE_REPOSITORY=${IMAGE_REPOSITORY:-}
KEEP_IMAGES=${KEEP_IMAGES:-}

say() { printf '%s\n' "$*"; }
err() { printf 'prune-release-images: %s\n' "$*" >&2; }
# refuse <code> <reason word> <message>
refuse() {
    err "$3; nothing was removed"
    say "result: refused $2"
    exit "$1"
}
# Megabytes with one decimal, for people; the result line has the bytes.
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1000000 }'; }

# ---- inputs ---------------------------------------------------------------------------------
case "$IMAGE_REPOSITORY" in
    '') refuse 2 bad-input "IMAGE_REPOSITORY is required (the release image repository, e.g. registry.example.com/shop/medusa)" ;;
    *[!a-zA-Z0-9._:/-]* | /* | */ | *//*)
        refuse 2 bad-input "IMAGE_REPOSITORY '$IMAGE_REPOSITORY' is not an image repository (e.g. registry.example.com/shop/medusa)" ;;
esac
case "${IMAGE_REPOSITORY##*/}" in
    *:*) refuse 2 bad-input "IMAGE_REPOSITORY '$IMAGE_REPOSITORY' has a tag: give the repository only (e.g. ${IMAGE_REPOSITORY%:*})" ;;
esac
# Docker reports Docker Hub references in their short form (shop/medusa, busybox).
REPOSITORY=$IMAGE_REPOSITORY
case "$REPOSITORY" in
    docker.io/* | index.docker.io/*) REPOSITORY=${REPOSITORY#*/} ;;
esac
REPOSITORY=${REPOSITORY#library/}

# One entry a line, whatever blanks separated them (globbing is off).
# shellcheck disable=SC2086
KEEP_LIST=$(for ref in $KEEP_IMAGES; do printf '%s\n' "$ref"; done)
[ -n "$KEEP_LIST" ] ||
    refuse 2 bad-input "KEEP_IMAGES is empty: give the images the deploy keeps (the colours' digest-pinned references or ids)"
for ref in $KEEP_LIST; do
    case "$ref" in
        [!a-zA-Z0-9]* | *[!a-zA-Z0-9._:/@+-]*)
            refuse 2 bad-input "KEEP_IMAGES entry '$ref' is not an image reference or id (e.g. registry.example.com/shop/medusa:r1@sha256:…)" ;;
    esac
done
command -v docker >/dev/null 2>&1 || refuse 2 docker-unavailable "the docker CLI is not installed"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 </dev/null ||
    refuse 2 docker-unavailable "dockerd does not answer (DOCKER_HOST=${DOCKER_HOST:-default})"

# The repository of a reference: without its digest and its tag (a ':' after the last '/').
repository_of() {
    name=${1%%@*}
    case "${name##*/}" in
        *:*) name=${name%:*} ;;
    esac
    printf '%s\n' "$name"
}

# ---- what to keep -----------------------------------------------------------------------------
KEEP_IDS=""
for ref in $KEEP_LIST; do
    # repo:tag@digest means repo@digest (the digest wins); older daemons refuse the long form.
    lookup=$ref
    case "$ref" in
        *@*) lookup="$(repository_of "$ref")@${ref#*@}" ;;
    esac
    if ! id=$(docker image inspect --format '{{.Id}}' "$lookup" 2>/dev/null </dev/null) || [ -z "$id" ]; then
        refuse 3 unknown-keep "the image to keep '$ref' is not on this host, so what to keep cannot be told (was it removed by hand?)"
    fi
    KEEP_IDS="$KEEP_IDS $id"
    say "keep: $ref ($id)"
done

is_kept() {
    for keep_id in $KEEP_IDS; do [ "$keep_id" = "$1" ] && return 0; done
    return 1
}

# ---- what containers use ----------------------------------------------------------------------
# "<image id> <container name>" per container, running or stopped. A container removed between the
# listing and the inspection makes inspect fail: list again, once.
containers_images() {
    ids=$(docker ps -a -q --no-trunc </dev/null) || return 1
    [ -z "$ids" ] && return 0
    # shellcheck disable=SC2086
    docker container inspect --format '{{.Image}} {{.Name}}' $ids </dev/null
}
USED=$(containers_images 2>/dev/null) || USED=$(containers_images 2>/dev/null) ||
    refuse 2 docker-unavailable "cannot list the containers and the images they use"

used_by() {
    printf '%s\n' "$USED" | awk -v id="$1" '$1 == id { sub(/^\//, "", $2); names = names (names == "" ? "" : ",") $2 } END { print names }'
}

# ---- the repository's images ------------------------------------------------------------------
# "<id> <size> <tags and digests…>" per local image.
images() {
    ids=$(docker image ls -q --no-trunc </dev/null | sort -u) || return 1
    [ -z "$ids" ] && return 0
    # shellcheck disable=SC2086
    docker image inspect --format '{{.Id}} {{.Size}}{{range .RepoTags}} {{.}}{{end}}{{range .RepoDigests}} {{.}}{{end}}' $ids </dev/null
}
IMAGES=$(images 2>/dev/null) || IMAGES=$(images 2>/dev/null) ||
    refuse 2 docker-unavailable "cannot list the local images"

pruned=0 kept=0 freed=0 in_use=0 failed=0
while read -r id size refs; do
    [ -n "$id" ] || continue
    ours="" others=""
    for ref in $refs; do
        if [ "$(repository_of "$ref")" = "$REPOSITORY" ]; then ours="$ours $ref"; else others="$others $ref"; fi
    done
    [ -n "$ours" ] || continue
    ours=${ours# } others=${others# }
    shown="$ours ($id)"
    if is_kept "$id"; then
        kept=$((kept + 1))
        say "kept: $shown: in the keep list"
        continue
    fi
    if [ -n "$others" ]; then
        kept=$((kept + 1))
        say "kept: $shown: also an image of another repository ($others)"
        continue
    fi
    containers=$(used_by "$id")
    if [ -n "$containers" ]; then
        kept=$((kept + 1)) in_use=$((in_use + 1))
        say "kept: $shown: used by container $containers"
        continue
    fi
    # One reference at a time: removing a tag also drops the repository's digests of that image
    # when no other tag of it is left, so the image may be gone before its last reference.
    output=""
    for ref in $ours; do
        docker image inspect "$id" >/dev/null 2>&1 </dev/null || break
        output="$output$(docker image rm "$ref" 2>&1 </dev/null) "
    done
    if ! docker image inspect "$id" >/dev/null 2>&1 </dev/null; then
        pruned=$((pruned + 1)) freed=$((freed + size))
        say "pruned: $shown: $(mb "$size")"
        continue
    fi
    kept=$((kept + 1))
    output=$(printf '%s' "$output" | tr '\n' ' ')
    case "$output" in
        *"being used"* | *"must be forced"* | *conflict*)
            in_use=$((in_use + 1))
            say "kept: $shown: docker refused to remove it (in use)"
            err "docker refused to remove $ours: ${output:-no output}"
            ;;
        *)
            failed=$((failed + 1))
            say "kept: $shown: removing it failed"
            err "could not remove $ours: ${output:-the image is still there}. Remove it by hand (docker image rm $ours) or let the next deploy try again"
            ;;
    esac
done <<EOF
$IMAGES
EOF

say "release images of $IMAGE_REPOSITORY: pruned $pruned, kept $kept, freed up to $(mb "$freed")"
say "result: pruned $pruned kept $kept freed $freed in-use $in_use failed $failed"
exit 0
