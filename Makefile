# Two entry points for a fresh machine: `make run` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
NODE_MODULES_STAMP := node_modules/.package-lock.json
EXAMPLE_POLICIES ?= examples/policies

# Every target runs on the pinned Node LTS (test/tools/versions.env): test/tools/node.sh prints the
# machine's node folder when it is already that major, else installs the registry build into the
# tool cache once. npm is the machine's, run by that node.
NODE_BIN := $(shell bash test/tools/node.sh)
ifeq ($(NODE_BIN),)
$(error test/tools/node.sh could not provide the pinned Node.js; see its message above)
endif
export PATH := $(NODE_BIN):$(PATH)

# Test files are named explicitly: the runner would otherwise treat every .js file under a folder
# named "test" as a test file (bench scripts and helpers are not tests).
TEST_FILES = $$(find dist -name '*.test.js' | sort)

.PHONY: run test install build lint test-prereqs test-unit test-all bench clean tools images

$(NODE_MODULES_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: $(NODE_MODULES_STAMP)

build: install
	npx tsc -p tsconfig.json

lint: install
	npx eslint .

## run: install, build, and serve the examples on 127.0.0.1:9001 (gRPC) and :9090 (HTTP),
## with the example development IdP's JWKS on 127.0.0.1:8089.
run: build
	@node examples/dev-idp.mjs serve --port 8089 & idp=$$!; \
	trap "kill $$idp 2>/dev/null" EXIT INT TERM; \
	node dist/extauthz/cli/main.js serve --policies $(EXAMPLE_POLICIES)

## test-prereqs: what the test tiers need beyond npm (redis-server, openssl, Go tools, cluster binaries).
test-prereqs:
	bash test/setup.sh

## test: every tier: lint, unit, integration, conformance and end-to-end.
test: build test-prereqs
	npx eslint .
	node --test --test-concurrency=2 $(TEST_FILES)

test-unit: build
	node --test $$(find dist/extauthz dist/kube dist/operator dist/proto -name '*.test.js' | sort)

bench: build
	node dist/test/bench/run.js

tools:
	bash test/tools/build.sh

## images: build the ext_authz and operator container images (charts/images/Containerfile.*)
## with docker or podman, when one of them can actually build (a client without a daemon cannot).
IMAGE_PREFIX ?= ghcr.io/portcullis/portcullis
IMAGE_TAG ?= $(shell node -p "require('./package.json').version" 2>/dev/null || echo dev)
images:
	@engine=""; \
	for e in $${CONTAINER_ENGINE:-docker podman}; do \
	  if command -v $$e >/dev/null 2>&1 && $$e info >/dev/null 2>&1; then engine=$$e; break; fi; \
	done; \
	if [ -z "$$engine" ]; then \
	  echo "images: no usable container engine: docker/podman is missing or cannot reach its daemon ('docker info' fails)."; \
	  echo "images: run 'make images' where one can build, or set CONTAINER_ENGINE."; \
	  exit 1; \
	fi; \
	for c in extauthz operator; do \
	  echo "images: $$engine build $(IMAGE_PREFIX)-$$c:$(IMAGE_TAG)"; \
	  $$engine build -f charts/images/Containerfile.$$c -t $(IMAGE_PREFIX)-$$c:$(IMAGE_TAG) . || exit 1; \
	done

clean:
	rm -rf dist
