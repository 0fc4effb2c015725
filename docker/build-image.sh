#!/usr/bin/env bash
# Build one matrix image without an image registry (or, on machines that can pull, from one).
#
#   docker/build-image.sh --name bullseye --tag sky-rs-matrix/bullseye:HASH --hash HASH \
#       --source debian --mirror URL
#   docker/build-image.sh --name manylinux2014 --tag ... --hash HASH \
#       --source manylinux --base REGISTRY/pypa/manylinux2014_x86_64
#
# debian:    mmdebstrap (or debootstrap) makes a root file system from the Debian mirror the
#            caller names (sky_matrix.images reads it from the host's apt sources), with the
#            packages in docker/images/NAME/packages, and `docker import`s it.
# manylinux: `docker pull`s the base image.
# Both then run the same finishing Dockerfile (docker/finish.Dockerfile, built without a context),
# which labels the image
# with the content hash so that the next build with unchanged inputs is a no-op.
#
# Usually run through `python -m sky_matrix.images build NAME`, which computes the hash.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
name="" tag="" hash="" source="debian" mirror="" base=""
while [ $# -gt 0 ]; do
    case "$1" in
        --name) name="$2"; shift 2 ;;
        --tag) tag="$2"; shift 2 ;;
        --hash) hash="$2"; shift 2 ;;
        --source) source="$2"; shift 2 ;;
        --mirror) mirror="$2"; shift 2 ;;
        --base) base="$2"; shift 2 ;;
        *) echo "build-image.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ -z "$name" ] || [ -z "$tag" ] || [ -z "$hash" ]; then
    echo "build-image.sh: --name, --tag and --hash are required" >&2
    exit 2
fi
# The legacy builder: this engine may have no buildx, and nothing here needs BuildKit.
export DOCKER_BUILDKIT=0

log() { printf '[build-image %s] %s\n' "$name" "$*" >&2; }

# Installs a bootstrapper from Debian's packages when the host has neither.
ensure_bootstrapper() {
    if command -v mmdebstrap >/dev/null 2>&1; then echo mmdebstrap; return; fi
    if command -v debootstrap >/dev/null 2>&1; then echo debootstrap; return; fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "build-image.sh: neither mmdebstrap nor debootstrap is installed, and no apt-get" >&2
        exit 1
    fi
    log "installing mmdebstrap with apt-get"
    apt-get update >&2
    if DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mmdebstrap >&2; then
        echo mmdebstrap
    else
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap >&2
        echo debootstrap
    fi
}

# Package list: one package a line, '#' comments and blank lines ignored.
read_packages() {
    sed -e 's/#.*//' -e 's/[[:space:]]//g' "$1" | grep -v '^$' | paste -sd, -
}

rootfs_tag="sky-rs-rootfs/${name}:${hash}"
case "$source" in
    debian)
        image_dir="$here/images/$name"
        if [ ! -f "$image_dir/suite" ] || [ ! -f "$image_dir/packages" ]; then
            echo "build-image.sh: $image_dir needs 'suite' and 'packages'" >&2
            exit 2
        fi
        if [ -z "$mirror" ]; then
            echo "build-image.sh: --mirror is required for --source debian" >&2
            exit 2
        fi
        suite="$(tr -d '[:space:]' <"$image_dir/suite")"
        packages="$(read_packages "$image_dir/packages")"
        tool="$(ensure_bootstrapper)"
        work="$(mktemp -d "${TMPDIR:-/tmp}/sky-rs-rootfs.XXXXXX")"
        trap 'rm -rf "$work"' EXIT
        log "bootstrapping $suite with $tool from $mirror: $packages"
        if [ "$tool" = mmdebstrap ]; then
            # Docs, man pages and locales are dead weight in a test image. Valid-Until is not
            # checked: a mirror that is a dated snapshot serves sid's short-lived Release files
            # past their expiry (signatures are still verified).
            # shellcheck disable=SC2016  # "$1" is for the hook's own shell (the root directory)
            mmdebstrap --variant=minbase --mode=root --format=tar \
                --include="$packages" \
                --aptopt='Acquire::Retries "3"' \
                --aptopt='Acquire::Check-Valid-Until "false"' \
                --dpkgopt='path-exclude=/usr/share/doc/*' \
                --dpkgopt='path-exclude=/usr/share/man/*' \
                --dpkgopt='path-exclude=/usr/share/locale/*' \
                --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
                "$suite" "$work/rootfs.tar" "deb $mirror $suite main" >&2
        else
            debootstrap --variant=minbase --include="$packages" "$suite" "$work/rootfs" "$mirror" >&2
            rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"*
            tar -C "$work/rootfs" --numeric-owner -cf "$work/rootfs.tar" .
            rm -rf "$work/rootfs"
        fi
        log "importing the root file system as $rootfs_tag"
        docker import "$work/rootfs.tar" "$rootfs_tag" >&2
        rm -f "$work/rootfs.tar"
        ;;
    manylinux)
        if [ -z "$base" ]; then
            echo "build-image.sh: --base is required for --source manylinux" >&2
            exit 2
        fi
        log "pulling $base"
        docker pull "$base" >&2
        docker tag "$base" "$rootfs_tag"
        ;;
    *)
        echo "build-image.sh: unknown source $source" >&2
        exit 2
        ;;
esac

log "finishing $tag"
docker build --pull=false --rm --force-rm \
    --build-arg "ROOTFS=$rootfs_tag" \
    --label "org.skypilot-rust.matrix.image=$name" \
    --label "org.skypilot-rust.matrix.source=$source" \
    --label "org.skypilot-rust.matrix.content-hash=$hash" \
    -t "$tag" - <"$here/finish.Dockerfile" >&2
# The intermediate rootfs tag is only a build input; the finished image keeps its layers.
docker rmi "$rootfs_tag" >/dev/null 2>&1 || true
log "done: $tag"
