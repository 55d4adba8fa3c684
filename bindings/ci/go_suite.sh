#!/usr/bin/env bash
# The Go binding's tests: go vet, then go test (with the leak check in TestMain) of the package
# and a build of cmd/stream.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
require go "apt-get install golang-go"
cd "$bindings/go"
go version
go vet ./...
go test -count=1 -v ./...
go build -o "$BINDINGS_WORK/go-stream" ./cmd/stream
