# etcdsd: `make run` serves the example records, `make test` runs every check CI runs.
GO ?= go
BIN := $(CURDIR)/bin

# Every package but the CoreDNS build, whose test-free main would only slow the race build.
TEST_PKGS = $(shell $(GO) list ./... | grep -v /cmd/coredns$$)

.PHONY: build run test lint compat fuzz clean

build:
	$(GO) build -o $(BIN)/coredns ./cmd/coredns
	$(GO) build -o $(BIN)/devstack ./cmd/devstack
	$(GO) build -o $(BIN)/etcdctl go.etcd.io/etcd/etcdctl/v3

# A local etcd (data in .run/etcd) loaded with testdata/seed.records, and CoreDNS with
# etcdsd on 127.0.0.1:1053, until Ctrl-C.
run: build
	$(BIN)/devstack -data .run/etcd -records testdata/seed.records -coredns $(BIN)/coredns -conf Corefile -dns-port 1053

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

test: lint build
	ETCDSD_COREDNS=$(BIN)/coredns $(GO) test -race -count=1 $(TEST_PKGS)
	$(MAKE) --no-print-directory fuzz FUZZTIME=5s

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
