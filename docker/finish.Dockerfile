# Finishes every matrix image, whatever its root file system came from (a Debian bootstrap or a
# pulled manylinux image). Built without a context: everything a cell needs at run time (the
# wheel, the wheelhouse, the tests, the cell driver) is mounted by sky_matrix.containers.
ARG ROOTFS
FROM ${ROOTFS}
# The unprivileged user cells run as unless their suite needs root (uid 1000, like a desktop
# user; the cell driver drops to it after any root-only set-up such as remounting /proc).
RUN useradd --create-home --uid 1000 --user-group --shell /bin/sh sky \
 && mkdir -p /cell /opt/sky-rs
ENV LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
CMD ["/bin/sh"]
