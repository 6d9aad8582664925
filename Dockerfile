# syntax=docker/dockerfile:1
# artifuse's container image: a build stage with the -dev packages, a runtime stage with only
# the runtime libraries and the binary in /usr/local/bin.
#
#   scripts/image                      build it with podman (makes the Debian base from Debian
#                                      packages when no registry can be reached)
#   docker build -t artifuse .         the same Dockerfile anywhere with a registry
#
# The image has no ENTRYPOINT: a pod's command is `artifuse run MOUNTPOINT -- PROGRAM...`, so
# Argo's emissary can wrap it like any other command (deploy/argo-wrapper.yaml).
ARG DEBIAN=docker.io/library/debian:bookworm-slim

FROM ${DEBIAN} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      gcc libc6-dev meson ninja-build pkg-config \
      libfuse3-dev libcurl4-openssl-dev libssl-dev libyaml-dev zlib1g-dev libmicrohttpd-dev \
 && rm -rf /var/lib/apt/lists/*
COPY . /src
RUN meson setup /build /src --buildtype=release --prefix=/usr/local \
 && ninja -C /build \
 && DESTDIR=/install meson install -C /build --no-rebuild

FROM ${DEBIAN}
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      fuse3 libfuse3-3 libcurl4 libyaml-0-2 zlib1g libssl3 libmicrohttpd12 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /install/usr/local/ /usr/local/
# FUSE mounts by non-root users need this line; root (the usual case in a pod) does not.
RUN sed -i 's/^#user_allow_other/user_allow_other/' /etc/fuse.conf
LABEL org.opencontainers.image.title="artifuse" \
      org.opencontainers.image.description="Captures the files a program writes into S3, at Argo's artifact keys" \
      org.opencontainers.image.licenses="Apache-2.0"
CMD ["artifuse", "--help"]
