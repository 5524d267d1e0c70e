# CoreDNS with etcdsd (cmd/coredns): a static binary on distroless, run as the non-root user,
# with the file capability to bind port 53.
#
#   docker build -t ghcr.io/etcdsd/coredns:latest .
#
# Build arguments (--build-arg NAME=VALUE):
#
#   GO_IMAGE    the build stage's base: Go (of go.mod's version), make, apt-get for make
#               test's Debian packages; default golang:1.26-bookworm
#   BASE_IMAGE  the image's base, with a nonroot user (65532); default
#               gcr.io/distroless/static-debian12:nonroot
#   SKIP_TESTS  empty (the default): the build runs `make test` first, the target CI runs, so
#               no image is made from a tree that CI would reject; any value skips it
#
# The tests need no network beyond loopback; `make test` installs Debian's packages it needs
# (dnsperf, etcd-server and the others) if missing. The base images are build arguments for
# builders that cannot reach the public registries: make image (test/image/run.sh) builds
# this file with buildah from bases it makes locally, with SKIP_TESTS=1 (CI runs make test
# just before it).

ARG GO_IMAGE=golang:1.26-bookworm
ARG BASE_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${GO_IMAGE} AS build
ARG SKIP_TESTS=
WORKDIR /src

# Modules first: this layer is reused until a go.mod or go.sum changes. cmd/coredns and
# test/tools are modules of their own.
COPY go.mod go.sum ./
COPY cmd/coredns/go.mod cmd/coredns/go.sum ./cmd/coredns/
COPY test/tools/go.mod test/tools/go.sum ./test/tools/
RUN go mod download && (cd cmd/coredns && go mod download) && (cd test/tools && go mod download)

COPY . .
RUN [ -n "$SKIP_TESTS" ] || make test

# Static, for an image without libc. The file capability lets the non-root user bind port 53.
RUN CGO_ENABLED=0 go build -C ./cmd/coredns -trimpath -ldflags='-s -w' -o /out/coredns . \
 && { command -v setcap >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends libcap2-bin; }; } \
 && setcap cap_net_bind_service=+ep /out/coredns

FROM ${BASE_IMAGE}
COPY --from=build /out/coredns /coredns
USER nonroot:nonroot
# DNS, metrics (prometheus), liveness (health), readiness (ready).
EXPOSE 53/udp 53/tcp 9153 8080 8181
ENTRYPOINT ["/coredns"]
