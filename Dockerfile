# CoreDNS with etcdsd (cmd/coredns). The build runs `make test` first, the target CI runs, so no
# image is made from a tree that CI would reject:
#
#   docker build -t ghcr.io/etcdsd/coredns:latest .
#
# The tests need no network beyond loopback; `make test` installs Debian's dnsperf and
# etcd-server (the etcd 3.4 the consistency and fault tests also run against) if missing.
#
# The base images are build arguments, for builders that cannot reach the public registries:
# CI (make image) builds this file with buildah from bases it makes locally, with
# SKIP_TESTS=1 as it has just run make test itself.

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
