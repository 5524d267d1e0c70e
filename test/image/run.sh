#!/usr/bin/env bash
# make image: builds the Dockerfile with buildah (Debian's package, daemonless: vfs storage,
# chroot isolation) from base images made here, as the public registries cannot be reached,
# then runs the image against a local etcd loaded with testdata/seed.records and resolves a
# seed name through it with dig.
#
#   the build base:  busybox, this machine's Go toolchain, CA certificates and setcap
#   the image base:  /etc/passwd and /etc/group with distroless's nonroot user (65532)
#
# The module and build caches of this machine are mounted into the build, so that it
# downloads and compiles no more than a local build would.
#
# The image is exported as a docker-archive and the run starts from that archive. By default
# nothing is left behind. With KEEP=1 (make image KEEP=1) the image, once it has passed, is
# kept in buildah's storage (buildah --storage-driver vfs images) under the name IMAGE (by
# default ghcr.io/etcdsd/coredns:latest, the image examples/kubernetes runs), and its archive,
# tagged IMAGE, is written to IMAGE_ARCHIVE (by default bin/coredns-image.tar), for docker
# load, kind load image-archive, ctr images import or skopeo copy.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
KEEP=${KEEP:-}
IMAGE=${IMAGE:-ghcr.io/etcdsd/coredns:latest}
IMAGE_ARCHIVE=${IMAGE_ARCHIVE:-bin/coredns-image.tar}
# The name the image is built, exported and run under: a scratch name unless it is kept.
name=localhost/etcdsd-coredns:test
[ -n "$KEEP" ] && name=$IMAGE

for pkg in buildah busybox-static libcap2-bin ca-certificates bind9-dnsutils; do
	dpkg -s "$pkg" >/dev/null 2>&1 && continue
	apt-get install -y -qq "$pkg" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$pkg"; }
done

ba() { buildah --storage-driver vfs "$@"; }
work=$(mktemp -d)
etcd_pid=""
run_pid=""
containers=()
kept=""
cleanup() {
	# The image's process runs in the group of buildah run, which setsid made its own.
	[ -n "$run_pid" ] && kill -- "-$run_pid" 2>/dev/null || true
	[ -n "$etcd_pid" ] && kill "$etcd_pid" 2>/dev/null || true
	for c in "${containers[@]}"; do ba rm "$c" >/dev/null 2>&1 || true; done
	# vfs keeps a whole copy of every layer: leave no image behind but the one kept.
	ba rmi -f localhost/etcdsd-build-base localhost/etcdsd-image-base >/dev/null 2>&1 || true
	[ -n "$kept" ] || ba rmi -f "$name" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
# An image of that name from an earlier run would stay behind, nameless, when the build takes
# the name.
ba rmi -f "$name" >/dev/null 2>&1 || true

echo "image: making the build base"
c=$(ba from scratch); containers+=("$c")
m=$(ba mount "$c")
mkdir -p "$m/bin" "$m/usr/local" "$m/usr/sbin" "$m/etc/ssl/certs" "$m/tmp" "$m/root" "$m/go"
cp /bin/busybox "$m/bin/busybox"
chroot "$m" /bin/busybox --install -s /bin
cp -a "$(go env GOROOT)" "$m/usr/local/go"
cp /etc/ssl/certs/ca-certificates.crt "$m/etc/ssl/certs/"
cp /usr/sbin/setcap "$m/usr/sbin/"
for lib in $(ldd /usr/sbin/setcap | grep -o '/[^ ]*'); do cp --parents -L "$lib" "$m"; done
ba config --env PATH=/usr/local/go/bin:/bin:/usr/sbin --env GOPATH=/go --env HOME=/root \
	--env GOTOOLCHAIN=local --env GOPROXY="$(go env GOPROXY)" "$c"
ba unmount "$c" >/dev/null
ba commit -q "$c" localhost/etcdsd-build-base >/dev/null

echo "image: making the image base"
c=$(ba from scratch); containers+=("$c")
m=$(ba mount "$c")
mkdir -p "$m/etc" "$m/home/nonroot" "$m/tmp"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$m/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$m/etc/group"
chown 65532:65532 "$m/home/nonroot"
chmod 1777 "$m/tmp"
ba unmount "$c" >/dev/null
ba commit -q "$c" localhost/etcdsd-image-base >/dev/null

echo "image: building the Dockerfile"
ba bud --isolation chroot --layers=false \
	--build-arg GO_IMAGE=localhost/etcdsd-build-base \
	--build-arg BASE_IMAGE=localhost/etcdsd-image-base \
	--build-arg SKIP_TESTS=1 \
	--volume "$(go env GOMODCACHE):/go/pkg/mod" \
	--volume "$(go env GOCACHE):/root/.cache/go-build" \
	-t "$name" .

echo "image: exporting it as a docker-archive tagged $name"
ba push -q "$name" "docker-archive:$work/image.tar:$name" >/dev/null
tar -xOf "$work/image.tar" manifest.json | grep -F "\"$name\"" >/dev/null || {
	echo "image: the archive's manifest.json does not name $name" >&2
	exit 1
}

echo "image: running it against a local etcd"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
etcd_port=$(port)
peer_port=$(port)
dns_port=$(port)
"$repo/bin/etcd" --name image --data-dir "$work/etcd" \
	--listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
	--listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
	--initial-cluster "image=http://127.0.0.1:$peer_port" --log-level error >"$work/etcd.log" 2>&1 &
etcd_pid=$!
for _ in $(seq 100); do
	"$repo/bin/etcdctl" --endpoints "127.0.0.1:$etcd_port" endpoint health >/dev/null 2>&1 && break
	sleep 0.1
done
grep -v '^\s*\(#\|$\)' testdata/seed.records | while read -r key value; do
	"$repo/bin/etcdctl" --endpoints "127.0.0.1:$etcd_port" put "$key" "$value" >/dev/null
done
cat >"$work/Corefile" <<CORE
example.local:$dns_port {
    bind 127.0.0.1
    etcdsd {
        endpoint http://127.0.0.1:$etcd_port
    }
}
CORE
chmod 0644 "$work/Corefile"
chmod 0755 "$work"
# From the archive: what a user loads is what runs here.
c=$(ba from "docker-archive:$work/image.tar"); containers+=("$c")
setsid buildah --storage-driver vfs run --isolation chroot --network host \
	--volume "$work/Corefile:/Corefile:ro" "$c" -- /coredns -conf /Corefile >"$work/coredns.log" 2>&1 &
run_pid=$!
answer=""
for _ in $(seq 150); do
	answer=$(dig +short +time=1 +tries=1 @127.0.0.1 -p "$dns_port" A web-server01._web._tcp.example.local || true)
	[ "$answer" = "1.1.1.1" ] && break
	sleep 0.2
done
echo "image: dig A web-server01._web._tcp.example.local through the image: ${answer:-no answer}"
if [ "$answer" != "1.1.1.1" ]; then
	echo "image: want 1.1.1.1; the image's output:" >&2
	cat "$work/coredns.log" >&2
	exit 1
fi
m=$(ba mount "$c")
caps=$(getcap "$m/coredns" || true)
ba unmount "$c" >/dev/null
echo "image: file capabilities of /coredns in the image: ${caps:-none}"
case "$caps" in
*cap_net_bind_service=ep*) ;;
*)
	echo "image: want cap_net_bind_service on /coredns, for the non-root user to bind port 53" >&2
	exit 1
	;;
esac
if [ -n "$KEEP" ]; then
	mkdir -p "$(dirname "$IMAGE_ARCHIVE")"
	mv "$work/image.tar" "$IMAGE_ARCHIVE"
	kept=1
	echo "image: kept $IMAGE in buildah's storage (buildah --storage-driver vfs images) and written to $IMAGE_ARCHIVE ($(du -h "$IMAGE_ARCHIVE" | cut -f1))"
fi
echo "image: ok"
