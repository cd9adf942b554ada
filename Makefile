# ccmirror — see README.md. Every target works on a fresh machine with Go,
# gcc, git, node/npm, python3 and OpenSSH.
GO      ?= go
BIN     := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/ccmirror/ccmirror/mirror.Version=$(VERSION)
AZURITE_DIR ?= $(CURDIR)/.tools/azurite-run

.PHONY: all build test demo bench fuzz lint clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ccmirror ./cmd/ccmirror
	$(GO) build -o $(BIN)/fakegithub ./cmd/fakegithub

# test: vet, then every package with the race detector, against a real
# Azurite started for the run (and stopped afterwards).
test: lint
	@eval "$$(bash .ci/azurite.sh start $(AZURITE_DIR))" || echo "make test: Azurite did not start; the blob storage tests will say why"; \
	  CCMIRROR_AZURITE_URL=$${AZURITE_BLOB_URL:-} $(GO) test -race -timeout 40m ./... ; rc=$$?; \
	  bash .ci/azurite.sh stop $(AZURITE_DIR) >/dev/null 2>&1; exit $$rc

# demo: a whole round trip against the embedded fake GitHub, in a scratch dir.
demo: build
	@bash scripts/demo.sh

# bench: ccmirror vs the manual procedure on a 1 GiB release (see bench/main.go);
# the scaling table: make bench BENCHFLAGS="-sizes 100M,1G,4G" (~4x each size free).
bench: build
	$(GO) run ./bench $(BENCHFLAGS)

# fuzz: every fuzz target for a short while (FUZZTIME=10s by default).
FUZZTIME ?= 10s
fuzz:
	@bash scripts/fuzz.sh $(FUZZTIME)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf $(BIN) out
