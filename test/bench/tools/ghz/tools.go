//go:build tools

// Package tools pins the ghz gRPC load generator; build-tools.sh builds its cmd/ghz.
package tools

import _ "github.com/bojand/ghz/cmd/ghz"
