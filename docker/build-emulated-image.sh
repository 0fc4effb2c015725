#!/usr/bin/env bash
# Build one matrix image of another architecture than the host's, run through qemu's binfmt
# handler (sky_matrix.docker.emulation registers it before calling this).
#
#   docker/build-emulated-image.sh --name bookworm-arm64 --tag sky-rs-matrix/bookworm-arm64:HASH \
#       --hash HASH --arch arm64 --mirror URL
#
# mmdebstrap bootstraps docker/images/NAME (suite, packages) for --arch from the Debian mirror
# the caller names (read from the host's apt sources), running the foreign maintainer scripts
# through binfmt; `docker import` makes it an image, and the same finishing Dockerfile as the
# native images' (docker/finish.Dockerfile) adds user `sky` and labels it with the content hash.
# A script of its own because build-image.sh is an input of every native image's hash.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
name="" tag="" hash="" arch="" mirror=""
while [ $# -gt 0 ]; do
    case "$1" in
        --name) name="$2"; shift 2 ;;
        --tag) tag="$2"; shift 2 ;;
        --hash) hash="$2"; shift 2 ;;
        --arch) arch="$2"; shift 2 ;;
        --mirror) mirror="$2"; shift 2 ;;
        *) echo "build-emulated-image.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ -z "$name" ] || [ -z "$tag" ] || [ -z "$hash" ] || [ -z "$arch" ] || [ -z "$mirror" ]; then
    echo "build-emulated-image.sh: --name, --tag, --hash, --arch and --mirror are required" >&2
    exit 2
fi
export DOCKER_BUILDKIT=0  # the legacy builder, as build-image.sh

log() { printf '[build-image %s] %s\n' "$name" "$*" >&2; }

image_dir="$here/images/$name"
if [ ! -f "$image_dir/suite" ] || [ ! -f "$image_dir/packages" ]; then
    echo "build-emulated-image.sh: $image_dir needs 'suite' and 'packages'" >&2
    exit 2
fi
if ! command -v mmdebstrap >/dev/null 2>&1; then
    log "installing mmdebstrap with apt-get"
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mmdebstrap >&2
fi
suite="$(tr -d '[:space:]' <"$image_dir/suite")"
packages="$(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$image_dir/packages" | grep -v '^$' | paste -sd, -)"
rootfs_tag="sky-rs-rootfs/${name}:${hash}"
work="$(mktemp -d "${TMPDIR:-/tmp}/sky-rs-rootfs.XXXXXX")"
trap 'rm -rf "$work"' EXIT

log "bootstrapping $suite for $arch with mmdebstrap from $mirror: $packages"
# The options of build-image.sh's mmdebstrap call, plus --arch.
# shellcheck disable=SC2016  # "$1" is for the hook's own shell (the root directory)
mmdebstrap --variant=minbase --mode=root --format=tar --architectures="$arch" \
    --include="$packages" \
    --aptopt='Acquire::Retries "3"' \
    --aptopt='Acquire::Check-Valid-Until "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    "$suite" "$work/rootfs.tar" "deb $mirror $suite main" >&2
log "importing the root file system as $rootfs_tag"
docker import "$work/rootfs.tar" "$rootfs_tag" >&2
rm -f "$work/rootfs.tar"

log "finishing $tag"
docker build --pull=false --rm --force-rm \
    --build-arg "ROOTFS=$rootfs_tag" \
    --label "org.skypilot-rust.matrix.image=$name" \
    --label "org.skypilot-rust.matrix.source=emulated" \
    --label "org.skypilot-rust.matrix.architecture=$arch" \
    --label "org.skypilot-rust.matrix.content-hash=$hash" \
    -t "$tag" - <"$here/finish.Dockerfile" >&2
docker rmi "$rootfs_tag" >/dev/null 2>&1 || true
log "done: $tag"
