# etcdsd: `make run` serves the example records, `make test` runs every check CI runs.
GO ?= go
BIN := $(CURDIR)/bin

# Every package but the CoreDNS build, whose test-free main would only slow the race build.
TEST_PKGS = $(shell $(GO) list ./... | grep -v /cmd/coredns$$)

.PHONY: build run test lint compat fuzz bench bench-smoke dnsperf clean

build:
	$(GO) build -o $(BIN)/coredns ./cmd/coredns
	$(GO) build -o $(BIN)/devstack ./cmd/devstack
	$(GO) build -o $(BIN)/etcdsdctl ./cmd/etcdsdctl
	$(GO) build -o $(BIN)/etcdctl go.etcd.io/etcd/etcdctl/v3

# A local etcd (data in .run/etcd) loaded with testdata/seed.records, and CoreDNS with
# etcdsd on 127.0.0.1:1053, until Ctrl-C.
run: build
	$(BIN)/devstack -data .run/etcd -records testdata/seed.records -coredns $(BIN)/coredns -conf Corefile -dns-port 1053

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

test: lint build
	ETCDSD_COREDNS=$(BIN)/coredns ETCDSD_ETCDSDCTL=$(BIN)/etcdsdctl $(GO) test -race -count=1 $(TEST_PKGS)
	$(MAKE) --no-print-directory fuzz FUZZTIME=5s
	$(MAKE) --no-print-directory bench-smoke

# dnsperf comes from Debian's package of that name.
dnsperf:
	@command -v dnsperf >/dev/null || { echo "installing dnsperf (Debian package)"; \
		apt-get install -y -qq dnsperf >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq dnsperf; }; }

# etcdsd against etcd, etcd+cache, file and whoami with dnsperf, then scale and propagation;
# the results and how to read them are in BENCHMARKS.md.
bench: build dnsperf
	$(GO) build -o $(BIN)/bench ./cmd/bench
	$(BIN)/bench -coredns $(BIN)/coredns -services 10000 -duration 10s -rounds 3 \
		-propagation 1000 -scale 10000,100000,1000000
	$(GO) test -run='^$$' -bench='QueryMix|HighNames|Scale' -benchtime=1s .

# A short run of the same, for make test: it shows that the benchmark still works.
bench-smoke: dnsperf
	$(GO) build -o $(BIN)/bench ./cmd/bench
	$(BIN)/bench -coredns $(BIN)/coredns -services 200 -duration 1s -rounds 1 -propagation 50 -scale 1000
	$(GO) test -run='^$$' -bench='QueryMix|HighNames' -benchtime=100x .

# Native Go fuzzing of the query path, value decoding and Corefile parsing.
FUZZ_TARGETS = FuzzServeDNS FuzzDecodeService FuzzParse
FUZZTIME ?= 2m
fuzz:
	@for f in $(FUZZ_TARGETS); do \
		echo "fuzzing $$f for $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) . || exit 1; \
	done

# The long differential run: etcdsd against the built-in etcd plugin on generated data.
# make test runs the hand-written data sets and seeds 1-20.
COMPAT_SEEDS ?= 1-500
COMPAT_QUERIES ?= 400
compat:
	$(GO) test -count=1 -timeout 60m -run TestGenerated -v ./test/compat \
		-compat.seeds=$(COMPAT_SEEDS) -compat.queries=$(COMPAT_QUERIES)

clean:
	rm -rf $(BIN) .run
