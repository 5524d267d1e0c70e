# etcdsd: `make run` serves the example records, `make test` runs every check CI runs.
GO ?= go
BIN := $(CURDIR)/bin

# The packages of the etcdsd module. cmd/coredns (the CoreDNS build), examples/kubernetes
# and test/tools (the etcd and staticcheck this repository builds with) are modules of their
# own, so that none of their requirements becomes one of etcdsd's (test/plugincfg checks).
TEST_PKGS = $(shell $(GO) list ./...)
MODULES = . ./cmd/coredns ./examples/kubernetes ./test/tools

.PHONY: build run test lint image compat soak fuzz bench bench-smoke dnsperf etcd34 nsd prometheus doctools etcd-releases clean

build:
	@test -x $(BIN)/coredns || echo "compiling CoreDNS with etcdsd, etcd and the tools into bin/: the first build takes up to 15 minutes on 2 cores, later ones seconds"
	cd cmd/coredns && $(GO) build -o $(BIN)/coredns .
	$(GO) build -o $(BIN)/devstack ./cmd/devstack
	$(GO) build -o $(BIN)/etcdsdctl ./cmd/etcdsdctl
	cd test/tools && $(GO) build -o $(BIN)/etcdctl go.etcd.io/etcd/etcdctl/v3
	cd test/tools && $(GO) build -o $(BIN)/etcd go.etcd.io/etcd/server/v3

# A local etcd (data in $(RUN_DATA), .run/etcd) loaded with testdata/seed.records, and CoreDNS with
# etcdsd on 127.0.0.1:1053 (the built-in etcd plugin on 1054), until Ctrl-C. It refuses to
# start while any of its ports is taken; give it others with, for example,
# make run RUN_ETCD_PORT=23790 RUN_DNS_PORT=10530.
RUN_DATA ?= .run/etcd
RUN_ETCD_PORT ?= 2379
RUN_DNS_PORT ?= 1053
RUN_READY_PORT ?= 8181
RUN_METRICS_PORT ?= 9153
run: build
	ETCDSD_ETCD=$(BIN)/etcd $(BIN)/devstack -data $(RUN_DATA) -records testdata/seed.records -coredns $(BIN)/coredns -conf Corefile \
		-etcd-port $(RUN_ETCD_PORT) -dns-port $(RUN_DNS_PORT) -ready-port $(RUN_READY_PORT) -metrics-port $(RUN_METRICS_PORT)

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	cd test/tools && $(GO) build -o $(BIN)/staticcheck honnef.co/go/tools/cmd/staticcheck
	@for m in $(MODULES); do (cd $$m && $(GO) vet ./... && $(BIN)/staticcheck ./...) || exit 1; done

# The etcd releases the consistency (test/compat TestModel) and fault tests run against,
# besides the current one, embedded and as $(BIN)/etcd processes: Debian's etcd-server
# (3.4.23 on bookworm), installed when missing, with etcd-client's etcdctl beside it (the
# snapshot restore of TestSnapshotRestoreIsNoticed).
ETCD34 = /usr/bin/etcd
RELEASES ?= $(ETCD34)
TEST_ENV = ETCDSD_COREDNS=$(BIN)/coredns ETCDSD_ETCDSDCTL=$(BIN)/etcdsdctl \
	ETCDSD_ETCD=$(BIN)/etcd ETCDSD_ETCD_RELEASES="$(abspath $(RELEASES))"

etcd34:
	@test -x $(ETCD34) || { echo "installing etcd-server (Debian package)"; \
		{ apt-get install -y -qq etcd-server >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq etcd-server; }; } && \
		{ service etcd stop >/dev/null 2>&1 || true; systemctl disable etcd >/dev/null 2>&1 || true; }; }
	@test -x $(dir $(ETCD34))etcdctl || { echo "installing etcd-client (Debian package: etcdctl 3.4, which restores snapshots)"; \
		apt-get install -y -qq etcd-client >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq etcd-client; }; }

# nsd, the secondary that test/xfr transfers zones to (Debian package; the test skips
# without it).
nsd:
	@command -v nsd >/dev/null || test -x /usr/sbin/nsd || { echo "installing nsd (Debian package)"; \
		apt-get install -y -qq nsd >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq nsd; }; }

# prometheus, which test/e2e's TestDashboardPanelsShowData runs with a configuration and
# port of its own to evaluate examples/grafana's dashboard (Debian's package, 2.42 on
# bookworm; the test skips without it, and fails under CI). The packaged service is not
# needed: stopped if the install started it.
prometheus:
	@test -x /usr/bin/prometheus || { echo "installing prometheus (Debian package)"; \
		{ apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 || \
			{ apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus; }; } && \
		{ service prometheus stop >/dev/null 2>&1 || true; }; }

# dig, curl and python3, which the documentation's commands use (test/e2e docs_test.go runs
# them; Debian's bind9-dnsutils, curl and python3).
doctools:
	@for t in dig:bind9-dnsutils curl:curl python3:python3; do \
		command -v $${t%%:*} >/dev/null || { echo "installing $${t#*:} (Debian package)"; \
			apt-get install -y -qq $${t#*:} >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq $${t#*:}; }; }; \
	done

# etcd 3.5 and 3.6 servers, built from the Go module proxy (test/etcdbin); run the tests on
# them with: make etcd-releases test RELEASES="/usr/bin/etcd bin/etcd-3.5 bin/etcd-3.6"
etcd-releases:
	cd test/etcdbin/etcd35 && $(GO) build -o $(BIN)/etcd-3.5 .
	cd test/etcdbin/etcd36 && $(GO) build -o $(BIN)/etcd-3.6 .

test: lint build etcd34 nsd prometheus doctools
	$(TEST_ENV) $(GO) test -race -count=1 $(TEST_PKGS)
	cd examples/kubernetes && $(TEST_ENV) $(GO) test -race -count=1 ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=5s
	$(MAKE) --no-print-directory bench-smoke

# The Dockerfile built with buildah (Debian's package) from base images made locally,
# exported as a docker-archive, and the image run from that archive against a local etcd: a
# seed name resolved through it (test/image/run.sh). CI runs it after make test; it needs
# root, as buildah's vfs storage and chroot do, and leaves nothing behind. make image KEEP=1
# keeps the image that passed: as IMAGE in buildah's storage, and its archive, tagged IMAGE,
# in IMAGE_ARCHIVE, for docker load, kind load image-archive, ctr images import or skopeo copy
# (examples/kubernetes/README.md).
KEEP ?=
IMAGE ?= ghcr.io/etcdsd/coredns:latest
IMAGE_ARCHIVE ?= bin/coredns-image.tar
image: build
	KEEP="$(KEEP)" IMAGE="$(IMAGE)" IMAGE_ARCHIVE="$(IMAGE_ARCHIVE)" bash test/image/run.sh

# dnsperf comes from Debian's package of that name.
dnsperf:
	@command -v dnsperf >/dev/null || { echo "installing dnsperf (Debian package)"; \
		apt-get install -y -qq dnsperf >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq dnsperf; }; }

# etcdsd against etcd, etcd+cache, file and whoami with dnsperf, then propagation, the first
# list at each of BENCH_SCALE records, the Zipf mix over BENCH_ZIPF records, BENCH_REPLICAS
# replicas on a three-member etcd (Debian's 3.4) with and without the gRPC proxy, the Go
# benchmarks and the propagation to a secondary; the results and how to read them are in
# BENCHMARKS.md. The long parts are the million-record ones and the replicas (about 25
# minutes in all); make bench BENCH_SCALE=10000 BENCH_ZIPF=0 BENCH_REPLICAS=10 is a quick run.
BENCH_SCALE ?= 10000,100000,1000000
BENCH_ZIPF ?= 1000000
BENCH_REPLICAS ?= 50
bench: build dnsperf nsd etcd34
	$(GO) build -o $(BIN)/bench ./cmd/bench
	$(GO) build -o $(BIN)/replicas ./cmd/replicas
	$(TEST_ENV) $(BIN)/bench -coredns $(BIN)/coredns -services 10000 -duration 10s -rounds 3 \
		-propagation 1000 -scale $(BENCH_SCALE) -zipf $(BENCH_ZIPF)
	$(TEST_ENV) $(BIN)/replicas -coredns $(BIN)/coredns -etcd $(ETCD34) -replicas $(BENCH_REPLICAS) -services 10000 -window 10s
	$(TEST_ENV) $(GO) test -run='^$$' -bench='QueryMix|HighNames|Scale|SelfCheck|Transfer' -benchtime=1s . -bench.check=10000,100000,1000000 -bench.transfer=10000,333333
	$(TEST_ENV) $(GO) test -count=1 -run TestPropagation -v ./test/xfr -xfr.changes=1000

# A short run of the same, for make test: it shows that the benchmarks still work.
bench-smoke: dnsperf etcd34
	$(GO) build -o $(BIN)/bench ./cmd/bench
	$(GO) build -o $(BIN)/replicas ./cmd/replicas
	$(TEST_ENV) $(BIN)/bench -coredns $(BIN)/coredns -services 200 -duration 1s -rounds 1 -propagation 50 -scale 1000 -zipf 3000
	$(TEST_ENV) $(BIN)/replicas -coredns $(BIN)/coredns -etcd $(ETCD34) -replicas 3 -services 100 -window 2s
	$(TEST_ENV) $(GO) test -run='^$$' -bench='QueryMix|HighNames|SelfCheck' -benchtime=100x . -bench.check=1000

# Native Go fuzzing of the query path, value decoding and Corefile parsing.
FUZZ_TARGETS = .:FuzzServeDNS ./internal/index:FuzzDecodeService .:FuzzParse
FUZZTIME ?= 2m
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*} f=$${t#*:}; \
		echo "fuzzing $$f in $$pkg for $(FUZZTIME)"; \
		$(TEST_ENV) $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	done

# The long differential run: etcdsd against the built-in etcd plugin on generated data.
# make test runs the hand-written data sets and seeds 1-20.
COMPAT_SEEDS ?= 1-500
COMPAT_QUERIES ?= 400
compat:
	$(TEST_ENV) $(GO) test -count=1 -timeout 60m -run TestGenerated -v ./test/compat \
		-compat.seeds=$(COMPAT_SEEDS) -compat.queries=$(COMPAT_QUERIES)

# The long consistency run: SOAK_OPS operations of every write shape and fault on each etcd
# (embedded, a cluster of $(BIN)/etcd, a cluster of each of RELEASES; SOAK_ETCD keeps those
# whose names contain one of its comma-separated parts), against the built-in etcd plugin.
# make soak SOAK_SEED=7 replays a seed.
SOAK_OPS ?= 10000
SOAK_SEED ?= 1
SOAK_ETCD ?=
soak: build etcd34
	$(TEST_ENV) $(GO) test -count=1 -timeout 10h -run TestModel -v ./test/compat \
		-model.ops=$(SOAK_OPS) -model.seed=$(SOAK_SEED) -model.etcd="$(SOAK_ETCD)"

clean:
	rm -rf $(BIN) .run
