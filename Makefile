# ccmirror — see README.md. Every target works on a fresh machine with Go,
# gcc, git, node/npm, python3 and OpenSSH.
GO      ?= go
BIN     := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# -s -w: no symbol table or DWARF (stack traces keep their names). A
# third smaller binary starts faster from a cold page cache: every
# status, plan and install run by a timer pays that start.
LDFLAGS := -s -w -X github.com/ccmirror/ccmirror/mirror.Version=$(VERSION)
AZURITE_DIR ?= $(CURDIR)/.tools/azurite-run
DIST    := dist
# dist: SIGN_KEY=~/.ssh/release signs SHA256SUMS (ssh-keygen -Y sign, namespace "file").
SIGN_KEY ?=

.PHONY: all build test demo bench fuzz lint clean dist

all: build

# build: a static binary (no cgo: it starts on any Linux of its
# architecture, RHEL/Alma 8's glibc 2.28 included), version stamped.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ccmirror ./cmd/ccmirror
	$(GO) build -o $(BIN)/fakegithub ./cmd/fakegithub

# dist: what to carry to a server (README: Install): static linux/amd64
# and linux/arm64 binaries, the man page and bash/zsh completions generated
# from the CLI, and SHA256SUMS (sha256sum -c), signed when SIGN_KEY is set.
dist: build
	rm -rf $(DIST) && mkdir -p $(DIST)
	for arch in amd64 arm64; do \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DIST)/ccmirror-linux-$$arch ./cmd/ccmirror || exit 1; \
	done
	$(BIN)/ccmirror docs man > $(DIST)/ccmirror.1
	$(BIN)/ccmirror docs bash > $(DIST)/ccmirror.bash
	$(BIN)/ccmirror docs zsh > $(DIST)/_ccmirror
	cd $(DIST) && sha256sum ccmirror-linux-amd64 ccmirror-linux-arm64 ccmirror.1 ccmirror.bash _ccmirror > SHA256SUMS
	@if [ -n "$(SIGN_KEY)" ]; then ssh-keygen -q -Y sign -f "$(SIGN_KEY)" -n file $(DIST)/SHA256SUMS && \
	  ssh-keygen -q -Y check-novalidate -n file -s $(DIST)/SHA256SUMS.sig < $(DIST)/SHA256SUMS && echo "signed: $(DIST)/SHA256SUMS.sig"; fi
	@cd $(DIST) && sha256sum -c --quiet SHA256SUMS && ls -l

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
	rm -rf $(BIN) out $(DIST)
