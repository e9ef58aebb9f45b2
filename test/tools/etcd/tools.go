//go:build tools

// Package tools pins the upstream main package built by ../build.sh:
//
//	go build -o X go.etcd.io/etcd/server/v3
package tools

import _ "go.etcd.io/etcd/server/v3"
