# ringfence from this source tree on Debian bookworm.
#   docker build -t ringfence .
#   docker run --rm --privileged ringfence            # runs the `ringfence do` demo
# (ringfence needs ptrace and namespaces: run the container privileged, or
# with CAP_SYS_ADMIN + CAP_SYS_PTRACE and no seccomp/AppArmor profile.)
# Later this image becomes the node installer that puts the shim and the
# runtime on a Kubernetes node; for now it only carries ringfence.
FROM debian:bookworm-slim

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        busybox-static ca-certificates gcc libc6-dev libseccomp2 python3 python3-dev python3-pip \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src/ringfence
COPY . .
RUN python3 -m pip install . \
 && ringfence syscalls --format json > /dev/null

ENTRYPOINT ["ringfence"]
CMD ["do"]
