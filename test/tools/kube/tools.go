//go:build tools

// Package tools pins the upstream main packages built by ../build.sh:
//
//	go build -o X k8s.io/kubernetes/cmd/kube-apiserver
//	go build -o X k8s.io/kubernetes/cmd/kube-controller-manager
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
