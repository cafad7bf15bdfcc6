# handoverd — the two commands a newcomer needs are `make run` and `make test`.

HANDOVERD_TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
export HANDOVERD_TEST_POSTGRES_URL
# The soak creates (and drops) its own database on this server.
SOAK_POSTGRES_URL ?= $(HANDOVERD_TEST_POSTGRES_URL)

GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: run serve test vet build bench screenshots fuzz soak clean

## run: the sandbox — the broker on the embedded SQLite default, with the Messenger
## simulator, a demo bot and an agent token; prints a curl walkthrough
run:
	@echo "make run: building handoverd (a first, cold build takes a minute or two; later ones are quick)..."
	@$(GO) build -o bin/handoverd ./cmd/handoverd
	@echo "make run: starting the sandbox"
	./bin/handoverd sandbox

## serve: run the broker with handoverd.example.yaml (point graph.url at Facebook or a simulator)
serve: build
	HANDOVERD_APP_SECRET=$${HANDOVERD_APP_SECRET:-dev-app-secret} \
	HANDOVERD_VERIFY_TOKEN=$${HANDOVERD_VERIFY_TOKEN:-dev-verify-token} \
	HANDOVERD_PAGE_TOKEN=$${HANDOVERD_PAGE_TOKEN:-dev-page-token} \
	HANDOVERD_AGENT_TOKEN=$${HANDOVERD_AGENT_TOKEN:-dev-agent-token-0123456789} \
	HANDOVERD_BOT_TOKEN=$${HANDOVERD_BOT_TOKEN:-dev-bot-token-0123456789} \
	./bin/handoverd serve --config handoverd.example.yaml

## test: vet, then every test with the race detector, on SQLite and PostgreSQL
test: vet
	$(GO) test -race -count=1 ./...

vet:
	$(GO) vet ./...

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o bin/handoverd ./cmd/handoverd
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o bin/messenger-sim ./cmd/messenger-sim

## fuzz: every fuzz target (webhook, Userlike events, Engage and Lexer
## parameters, inbox API bodies, config, both stores at the edge) for
## FUZZTIME each (default 30s)
FUZZTIME ?= 30s
fuzz:
	FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

## soak: handoverd under steady load (webhooks, handovers, agent replies and
## hand-backs) with SOAK_KILLS SIGKILLs over SOAK_DURATION, on SQLite (one
## process) and/or three processes sharing one PostgreSQL (SOAK_DB: sqlite,
## postgres, both), then an audit: nothing acknowledged lost or duplicated,
## every thread's owner as Messenger's
SOAK_DURATION ?= 2m
SOAK_KILLS ?= 10
SOAK_DB ?= both
soak:
	$(GO) build -o bin/handoverd ./cmd/handoverd
	$(GO) build -o bin/soak ./cmd/soak
	./bin/soak -handoverd bin/handoverd -duration $(SOAK_DURATION) -kills $(SOAK_KILLS) -db $(SOAK_DB) -postgres "$(SOAK_POSTGRES_URL)"

## screenshots: regenerate docs/screenshots/ from the console's browser test (needs Chromium)
screenshots:
	HANDOVERD_SCREENSHOTS=1 HANDOVERD_BROWSER=1 $(GO) test -count=1 -run 'TestConsoleInBrowser/sqlite' ./server/

## bench: webhook ingest (SQLite and PostgreSQL; 1 and 10 events per POST; 1,000 and
## 1,000,000 stored threads) and the handover round trip: events/s, p50, p99,
## statements per event, peak RSS
bench:
	$(GO) test -run '^$$' -bench 'WebhookIngest' -benchtime 10000x -timeout 60m ./server/
	$(GO) test -run '^$$' -bench 'HandoverRoundTrip' -benchtime 1000x ./server/

clean:
	rm -rf bin handoverd.db handoverd.db-wal handoverd.db-shm
