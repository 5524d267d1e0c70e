# etcdsd: `make run` serves the example records, `make test` runs every check CI runs.
GO ?= go
BIN := $(CURDIR)/bin

# Every package but the CoreDNS build, whose test-free main would only slow the race build.
TEST_PKGS = $(shell $(GO) list ./... | grep -v /cmd/coredns$$)

.PHONY: build run test lint clean

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

clean:
	rm -rf $(BIN) .run
