//go:build tools

// Package tools pins the upstream main package built by ../build.sh:
//
//	go build -o X helm.sh/helm/v3/cmd/helm
package tools

import _ "helm.sh/helm/v3/cmd/helm"
