# ringfence's node installer, from this source tree on Debian bookworm.
#
#   docker build -t ringfence-installer .
#
# The image carries a self-contained ringfence in /usr/local/lib/ringfence
# (deploy/bundle.py: Debian's python3 and its standard library, ringfence and
# its dependencies, and every shared library they load, glibc and its loader
# included), so it runs on a node whatever python and glibc the node has.
# Its default command installs that onto the node whose root is mounted at
# /host (deploy/installer.yaml runs it as a DaemonSet):
#
#   - copies the bundle to /host/opt/ringfence/releases/ID and points
#     /host/opt/ringfence/current at it,
#   - links containerd-shim-ringfence-v1 and ringfence into /host/usr/local/bin,
#   - registers the runtime `ringfence` in /host/etc/containerd/config.toml
#     (once; the rest of the file is kept as it is, the original as .bak),
#   - and says what is left to do: restart containerd, add the RuntimeClass.
#
#   docker run --rm -v /:/host ringfence-installer      # the same, onto this machine
#   docker run --rm -v /:/host ringfence-installer ringfence install --apply \
#       --root-prefix /host --bundle /usr/local/lib/ringfence --runtime-name sandboxed
#
# The image runs ringfence itself too (it needs ptrace and namespaces: run it
# privileged, or with CAP_SYS_ADMIN + CAP_SYS_PTRACE and no seccomp/AppArmor
# profile):
#
#   docker run --rm --privileged ringfence-installer ringfence do

# The Debian bookworm image both stages start from (a registry's, or a local one).
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS build

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# gcc + libc6-dev + python3-dev: the platform extension (cffi); libseccomp2:
# the library pyseccomp loads (the bundle carries a copy).
RUN apt-get -o Acquire::Retries=3 update \
 && apt-get -o Acquire::Retries=3 install -y --no-install-recommends \
        ca-certificates gcc libc6-dev libseccomp2 python3 python3-dev python3-pip \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .
RUN python3 deploy/bundle.py /src /usr/local/lib/ringfence \
 && /usr/local/lib/ringfence/bin/ringfence syscalls --format json > /dev/null


FROM ${BASE}

# No python3 here: the bundle has its own. busybox-static: a static program
# for `ringfence do /bin/busybox ...`.
RUN apt-get -o Acquire::Retries=3 update \
 && apt-get -o Acquire::Retries=3 install -y --no-install-recommends busybox-static \
 && rm -rf /var/lib/apt/lists/*

COPY --from=build /usr/local/lib/ringfence /usr/local/lib/ringfence
RUN ln -s /usr/local/lib/ringfence/bin/ringfence /usr/local/bin/ringfence \
 && ln -s /usr/local/lib/ringfence/bin/containerd-shim-ringfence-v1 /usr/local/bin/containerd-shim-ringfence-v1 \
 && ringfence --version

CMD ["ringfence", "install", "--apply", "--root-prefix", "/host", "--bundle", "/usr/local/lib/ringfence"]
