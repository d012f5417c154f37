# ndtpipe's container image: one image, every stage (the command picks it).
#
# Build stage: Debian 12 with the project's own dependency list
# (`make deps`, tools/deps.sh), then `make`.  Runtime stage: Debian 12 slim
# with only the shared libraries build/ndtpipe links against, found by the
# build stage itself (deploy/ndtpipe/runtime-packages.sh: ldd, then dpkg -S),
# so a library added to the Makefile reaches the image without editing this
# file.  The binary runs as the
# unprivileged user ndtpipe; its state lives in /var/lib/ndtpipe (a volume
# in docker-compose.yml).  The mapping rules and schemas are in
# /opt/ndtpipe/sdm-schemas, the working directory, where the stages look
# for them by default.
#
#   docker build -t ndtpipe:local .
#   docker run --rm ndtpipe:local --help

FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends make ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make deps && make && rm -rf /var/lib/apt/lists/*
# The runtime packages: the Debian package of every shared library the
# binary loads (deploy/ndtpipe/runtime-packages.sh).
RUN deploy/ndtpipe/runtime-packages.sh build/ndtpipe >/runtime-packages && cat /runtime-packages

FROM debian:12-slim AS runtime
COPY --from=build /runtime-packages /tmp/runtime-packages
# curl answers the HEALTHCHECK (libcurl is a runtime library anyway).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates curl $(cat /tmp/runtime-packages) \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages \
 && useradd --system --uid 10001 --home-dir /var/lib/ndtpipe --create-home --shell /usr/sbin/nologin ndtpipe
COPY --from=build /src/build/ndtpipe /usr/local/bin/ndtpipe
COPY --from=build /src/sdm-schemas /opt/ndtpipe/sdm-schemas
COPY deploy/ndtpipe/bootstrap-model.sh /usr/local/bin/ndtpipe-bootstrap-model
WORKDIR /opt/ndtpipe
USER ndtpipe
# Stages that serve /healthz (serve on --listen, scrape and harmonize on
# --web.listen-address) set NDT_HEALTH_URL to it in docker-compose.yml;
# the default is serve's.  The testbed has no /healthz: compose checks its
# GET /control instead.
ENV NDT_HEALTH_URL=http://127.0.0.1:8080/healthz
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS -o /dev/null "$NDT_HEALTH_URL" || exit 1
ENTRYPOINT ["ndtpipe"]
CMD ["--help"]
