// Not built: pins (and, via go.sum, checksums) the Go modules whose CRD YAML build.sh
// copies into the cache. Do not `go mod tidy` here (nothing is imported, tidy would drop
// the requires); after a bump run `go mod download <module>` to refresh go.sum.
// Versions pinned in ../versions.env (build.sh checks this file agrees).
module portcullis.test/tools/crds

go 1.26.0

require (
	github.com/envoyproxy/gateway v1.9.1
	github.com/prometheus-operator/prometheus-operator v0.94.0
	istio.io/api v1.31.1
	sigs.k8s.io/gateway-api v1.6.3
)
