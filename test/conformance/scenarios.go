package main

// The Check scenarios, against the example policies (examples/policies): three deployments, each
// sending CheckRequests the way its Envoy does. Tokens come from the caller (--tokens), minted
// for the citizen-app tenant; client certificates are generated here.

import (
	"strconv"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
)

const metadataNamespace = "portcullis"

const (
	revenueAuditor   = "spiffe://gov.example/ns/revenue/sa/auditor"
	revenueReporting = "spiffe://gov.example/ns/revenue/sa/reporting"
	ingressGateway   = "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
	policyContextKey = "portcullis.io/policy"
)

// Token names the caller supplies in the --tokens file.
const (
	tokenCitizenMFA = "citizen-1984-mfa" // sub 1984, amr [mfa]
	tokenCitizenPwd = "citizen-1984-pwd" // sub 1984, amr [pwd], no acr
)

type fixtures struct {
	tokens      map[string]string
	revenueCert clientCert // URI SAN spiffe://gov.example/ns/revenue/sa/reporting
	foreignCert clientCert // a SPIFFE ID no tenant accepts
}

type scenario struct {
	name   string
	tokens []string // tokens the scenario needs
	build  func(fx *fixtures) *authv3.CheckRequest
	want   expect
}

func (fx *fixtures) bearer(name string) string { return "Bearer " + fx.tokens[name] }

func identity(principal, tenant, typ, policy, rule, requestID string) map[string]string {
	h := map[string]string{
		"x-portcullis-principal-type": typ, "x-portcullis-policy": policy,
		"x-portcullis-rule": rule, "x-portcullis-request-id": requestID,
	}
	if principal != "" {
		h["x-portcullis-principal"] = principal
		h["x-portcullis-tenant"] = tenant
	}
	return h
}

func allowMeta(tenant, typ, policy, rule, requestID string) map[string]string {
	return map[string]string{"tenant": tenant, "principalType": typ, "policy": policy, "rule": rule, "requestId": requestID}
}

func denied(status int, code string, grpcCode codes.Code) expect {
	return expect{status: status, errorCode: code, grpcCode: grpcCode,
		replyHeaders: map[string]string{"content-type": "application/json"},
		metadata:     map[string]string{"decision": "deny", "code": code, "requestId": anyValue}}
}

func withReply(e expect, k, v string) expect {
	h := map[string]string{}
	for hk, hv := range e.replyHeaders {
		h[hk] = hv
	}
	h[k] = v
	e.replyHeaders = h
	return e
}

func allScenarios() []scenario {
	return append(append(istioScenarios(), gatewayScenarios()...), plainEnvoyScenarios()...)
}

func istioScenarios() []scenario {
	return []scenario{
		{
			name: "istio/agency-tax-audit-allowed",
			build: func(*fixtures) *authv3.CheckRequest {
				return istioSidecar(httpCall{method: "GET", host: "records.c2g.example", path: "/v1/citizens/1984/records?fields=summary",
					headers: map[string]string{"x-purpose-of-use": "tax-audit", "x-portcullis-tenant": "citizen-app"}}, revenueAuditor, "istio-req-0001")
			},
			want: expect{allow: true, grpcCode: codes.OK,
				// The client's forged x-portcullis-tenant must end up replaced by the real tenant
				// after Envoy applied both the header set and headers_to_remove (in that order).
				upstream: identity(revenueAuditor, "dept-revenue", "agency", "c2g/citizen-records", "agency-tax-audit", "istio-req-0001"),
				metadata: allowMeta("dept-revenue", "agency", "c2g/citizen-records", "agency-tax-audit", "istio-req-0001")},
		},
		{
			name: "istio/agency-undeclared-purpose-denied",
			build: func(*fixtures) *authv3.CheckRequest {
				return istioSidecar(httpCall{method: "GET", host: "stats.c2g.example", path: "/v1/stats/income/2025?region=EU",
					headers: map[string]string{"x-purpose-of-use": "marketing"}}, revenueReporting, "istio-req-0002")
			},
			want: denied(403, "PURPOSE_NOT_ALLOWED", codes.PermissionDenied),
		},
		{
			name: "istio/agency-admin-path-deny-rule", build: func(*fixtures) *authv3.CheckRequest {
				return istioSidecar(httpCall{method: "GET", host: "records.c2g.example", path: "/admin/users?all=1",
					headers: map[string]string{"x-purpose-of-use": "tax-audit"}}, revenueAuditor, "istio-req-0003")
			},
			want: denied(403, "FORBIDDEN", codes.PermissionDenied),
		},
		{
			name: "istio/citizen-own-record-allowed", tokens: []string{tokenCitizenMFA},
			build: func(fx *fixtures) *authv3.CheckRequest {
				return istioSidecar(httpCall{method: "GET", host: "records.c2g.example", path: "/v1/citizens/1984/records?year=2025",
					headers: map[string]string{"authorization": fx.bearer(tokenCitizenMFA)}}, ingressGateway, "istio-req-0004")
			},
			want: expect{allow: true, grpcCode: codes.OK,
				upstream: identity("1984", "citizen-app", "consumer", "c2g/citizen-records", "citizen-reads-own-record", "istio-req-0004"),
				metadata: allowMeta("citizen-app", "consumer", "c2g/citizen-records", "citizen-reads-own-record", "istio-req-0004")},
		},
		{
			name: "istio/citizen-other-record-denied", tokens: []string{tokenCitizenMFA},
			build: func(fx *fixtures) *authv3.CheckRequest {
				return istioSidecar(httpCall{method: "GET", host: "records.c2g.example", path: "/v1/citizens/2001/records?year=2025",
					headers: map[string]string{"authorization": fx.bearer(tokenCitizenMFA)}}, ingressGateway, "istio-req-0005")
			},
			want: denied(403, "FORBIDDEN", codes.PermissionDenied),
		},
		{
			name: "istio/citizen-without-mfa-denied", tokens: []string{tokenCitizenPwd},
			build: func(fx *fixtures) *authv3.CheckRequest {
				return istioSidecar(httpCall{method: "GET", host: "records.c2g.example", path: "/v1/citizens/1984/records",
					headers: map[string]string{"authorization": fx.bearer(tokenCitizenPwd)}}, ingressGateway, "istio-req-0006")
			},
			want: withReply(denied(401, "MFA_REQUIRED", codes.Unauthenticated), "www-authenticate", "insufficient_user_authentication"),
		},
		{
			name: "istio/no-credentials-denied",
			build: func(*fixtures) *authv3.CheckRequest {
				return istioSidecar(httpCall{method: "GET", host: "records.c2g.example", path: "/v1/citizens/1984/records"}, ingressGateway, "istio-req-0007")
			},
			want: withReply(denied(401, "UNAUTHENTICATED", codes.Unauthenticated), "www-authenticate", "Bearer"),
		},
		{
			// The generated CUSTOM policy sends every request of the workload (mesh.go proves it
			// with Istio's rule semantics); a request by the Service's cluster name is still
			// decided, and Portcullis denies a host no policy lists.
			name: "istio/unlisted-host-cluster-name-denied",
			build: func(*fixtures) *authv3.CheckRequest {
				return istioSidecar(httpCall{method: "GET", host: "records-api.c2g.svc.cluster.local:8080", path: "/v1/citizens/1984/records",
					headers: map[string]string{"x-purpose-of-use": "tax-audit"}}, revenueAuditor, "istio-req-0009")
			},
			want: denied(403, "NO_POLICY", codes.PermissionDenied),
		},
		{
			name: "istio/unlisted-host-ip-denied",
			build: func(*fixtures) *authv3.CheckRequest {
				return istioSidecar(httpCall{method: "GET", host: "10.96.14.7:8080", path: "/v1/citizens/1984/records",
					headers: map[string]string{"x-purpose-of-use": "tax-audit"}}, revenueAuditor, "istio-req-0010")
			},
			want: denied(403, "NO_POLICY", codes.PermissionDenied),
		},
		{
			// A client-forged XFCC header without a verified peer identity must not identify an
			// agency (the example tenant does not set trustXfcc).
			name: "istio/forged-xfcc-denied",
			build: func(*fixtures) *authv3.CheckRequest {
				return istioSidecar(httpCall{method: "GET", host: "stats.c2g.example", path: "/v1/stats/income/2025",
					headers: map[string]string{"x-purpose-of-use": "statistics", "x-forwarded-client-cert": "URI=" + revenueReporting}}, "", "istio-req-0008")
			},
			want: withReply(denied(401, "UNAUTHENTICATED", codes.Unauthenticated), "www-authenticate", "Bearer"),
		},
	}
}

// feedback is a partner's POST of a feedback document, with its Content-Length, as Envoy
// Gateway sends it once bodyToExtAuth asks for bodies; extra headers override.
func feedback(body string, extra map[string]string) httpCall {
	h := map[string]string{"x-api-key": "demo-partner-key-not-a-secret", "content-type": "application/json",
		"content-length": strconv.Itoa(len(body)), "x-envoy-auth-partial-body": "false"}
	for k, v := range extra {
		h[k] = v
	}
	return httpCall{method: "POST", host: "open.c2g.example", path: "/v1/datasets/population/feedback", headers: h, body: []byte(body)}
}

func gatewayScenarios() []scenario {
	openData := map[string]string{policyContextKey: "c2g/open-data"}
	return []scenario{
		{
			name: "gateway/partner-datasets-allowed",
			build: func(*fixtures) *authv3.CheckRequest {
				return envoyGateway(httpCall{method: "GET", host: "open.c2g.example", path: "/v1/datasets/population?format=csv",
					headers: map[string]string{"x-api-key": "demo-partner-key-not-a-secret"}}, openData, "gw-req-0001")
			},
			want: expect{allow: true, grpcCode: codes.OK,
				upstream: identity("demo-2026", "partner-acme", "partner", "c2g/open-data", "partner-read-only", "gw-req-0001"),
				absent:   []string{"x-api-key"}, removed: []string{"x-api-key"},
				metadata: allowMeta("partner-acme", "partner", "c2g/open-data", "partner-read-only", "gw-req-0001")},
		},
		{
			name: "gateway/partner-write-denied",
			build: func(*fixtures) *authv3.CheckRequest {
				return envoyGateway(httpCall{method: "POST", host: "open.c2g.example", path: "/v1/datasets/population",
					headers: map[string]string{"x-api-key": "demo-partner-key-not-a-secret", "content-type": "application/json"}}, openData, "gw-req-0002")
			},
			want: denied(403, "FORBIDDEN", codes.PermissionDenied),
		},
		{
			// bodyToExtAuth: Envoy Gateway buffers the body and sends it; the rule's schema decides.
			name: "gateway/partner-feedback-body-allowed",
			build: func(*fixtures) *authv3.CheckRequest {
				return envoyGateway(feedback(`{"rating":4,"comment":"useful"}`, nil), openData, "gw-req-0101")
			},
			want: expect{allow: true, grpcCode: codes.OK,
				upstream: identity("demo-2026", "partner-acme", "partner", "c2g/open-data", "partner-feedback", "gw-req-0101"),
				absent:   []string{"x-api-key"}, removed: []string{"x-api-key"},
				metadata: allowMeta("partner-acme", "partner", "c2g/open-data", "partner-feedback", "gw-req-0101")},
		},
		{
			name: "gateway/partner-feedback-string-body-allowed",
			build: func(*fixtures) *authv3.CheckRequest {
				c := feedback(`{"rating":5}`, nil)
				c.asString = true
				return envoyGateway(c, openData, "gw-req-0102")
			},
			want: expect{allow: true, grpcCode: codes.OK,
				upstream: identity("demo-2026", "partner-acme", "partner", "c2g/open-data", "partner-feedback", "gw-req-0102"),
				absent:   []string{"x-api-key"}, removed: []string{"x-api-key"},
				metadata: allowMeta("partner-acme", "partner", "c2g/open-data", "partner-feedback", "gw-req-0102")},
		},
		{
			name: "gateway/partner-feedback-body-invalid",
			build: func(*fixtures) *authv3.CheckRequest {
				return envoyGateway(feedback(`{"rating":9}`, nil), openData, "gw-req-0103")
			},
			want: denied(400, "BODY_INVALID", codes.InvalidArgument),
		},
		{
			// allow_partial_message: Envoy sent the first bytes and said so; never validated as whole.
			name: "gateway/partner-feedback-partial-body-denied",
			build: func(*fixtures) *authv3.CheckRequest {
				return envoyGateway(feedback(`{"rating":4,"comment":"cut he`, map[string]string{"x-envoy-auth-partial-body": "true", "content-length": "3000"}), openData, "gw-req-0104")
			},
			want: denied(400, "BODY_INCOMPLETE", codes.InvalidArgument),
		},
		{
			name: "gateway/partner-feedback-wrong-media-type-denied",
			build: func(*fixtures) *authv3.CheckRequest {
				return envoyGateway(feedback(`rating=4`, map[string]string{"content-type": "application/x-www-form-urlencoded"}), openData, "gw-req-0105")
			},
			want: denied(415, "UNSUPPORTED_MEDIA_TYPE", codes.InvalidArgument),
		},
		{
			name: "gateway/partner-page-over-limit-denied",
			build: func(*fixtures) *authv3.CheckRequest {
				return envoyGateway(httpCall{method: "GET", host: "open.c2g.example", path: "/v1/datasets/population?limit=500",
					headers: map[string]string{"x-api-key": "demo-partner-key-not-a-secret"}}, openData, "gw-req-0106")
			},
			want: denied(400, "QUERY_INVALID", codes.InvalidArgument),
		},
		{
			name: "gateway/unknown-api-key-denied",
			build: func(*fixtures) *authv3.CheckRequest {
				return envoyGateway(httpCall{method: "GET", host: "open.c2g.example", path: "/v1/datasets/population",
					headers: map[string]string{"x-api-key": "not-a-known-key"}}, openData, "gw-req-0003")
			},
			want: withReply(denied(401, "INVALID_API_KEY", codes.Unauthenticated), "www-authenticate", "Bearer"),
		},
		{
			// Client-supplied identity headers are removed, never passed on, on an anonymous route.
			name: "gateway/public-health-spoofed-headers-removed",
			build: func(*fixtures) *authv3.CheckRequest {
				return envoyGateway(httpCall{method: "GET", host: "open.c2g.example", path: "/healthz",
					headers: map[string]string{"x-portcullis-tenant": "dept-revenue", "x-portcullis-principal": revenueReporting}}, openData, "gw-req-0004")
			},
			want: expect{allow: true, grpcCode: codes.OK,
				upstream: identity("", "", "anonymous", "c2g/open-data", "public-health", "gw-req-0004"),
				absent:   []string{"x-portcullis-tenant", "x-portcullis-principal"},
				removed:  []string{"x-portcullis-tenant", "x-portcullis-principal"},
				metadata: allowMeta("", "anonymous", "c2g/open-data", "public-health", "gw-req-0004")},
		},
		{
			// contextExtensions select the policy even when the host is not one of its hosts.
			name: "gateway/context-extension-selects-policy",
			build: func(*fixtures) *authv3.CheckRequest {
				return envoyGateway(httpCall{method: "GET", host: "gateway.c2g.example", path: "/healthz"}, openData, "gw-req-0005")
			},
			want: expect{allow: true, grpcCode: codes.OK,
				upstream: identity("", "", "anonymous", "c2g/open-data", "public-health", "gw-req-0005"),
				metadata: allowMeta("", "anonymous", "c2g/open-data", "public-health", "gw-req-0005")},
		},
		{
			// Envoy Gateway's extAuth covers every request of the route it targets, whatever its
			// Host: the route's policy (named in contextExtensions) still decides, here a refusal.
			name: "gateway/unlisted-host-still-decided",
			build: func(*fixtures) *authv3.CheckRequest {
				return envoyGateway(httpCall{method: "POST", host: "10.96.14.7:10443", path: "/v1/datasets/population",
					headers: map[string]string{"x-api-key": "demo-partner-key-not-a-secret", "content-type": "application/json"}}, openData, "gw-req-0007")
			},
			want: denied(403, "FORBIDDEN", codes.PermissionDenied),
		},
		{
			name: "gateway/unknown-policy-extension-denied",
			build: func(*fixtures) *authv3.CheckRequest {
				return envoyGateway(httpCall{method: "GET", host: "open.c2g.example", path: "/healthz"},
					map[string]string{policyContextKey: "c2g/no-such-policy"}, "gw-req-0006")
			},
			want: denied(403, "NO_POLICY", codes.PermissionDenied),
		},
	}
}

func plainEnvoyScenarios() []scenario {
	stats := httpCall{method: "GET", host: "stats.c2g.example:443", path: "/v1/stats/income/2025?quarter=Q3",
		headers: map[string]string{"x-purpose-of-use": "statistics"}}
	allowStats := func(requestID string) expect {
		return expect{allow: true, grpcCode: codes.OK,
			upstream: identity(revenueReporting, "dept-revenue", "agency", "c2g/agency-statistics", "agency-aggregates", requestID),
			metadata: allowMeta("dept-revenue", "agency", "c2g/agency-statistics", "agency-aggregates", requestID)}
	}
	return []scenario{
		{
			name: "envoy/peer-certificate-and-principal-allowed",
			build: func(fx *fixtures) *authv3.CheckRequest {
				return plainEnvoy(stats, fx.revenueCert, true, "envoy-req-0001")
			},
			want: allowStats("envoy-req-0001"),
		},
		{
			// The URL-encoded PEM alone identifies the agency.
			name: "envoy/peer-certificate-only-allowed",
			build: func(fx *fixtures) *authv3.CheckRequest {
				return plainEnvoy(stats, fx.revenueCert, false, "envoy-req-0002")
			},
			want: allowStats("envoy-req-0002"),
		},
		{
			name: "envoy/raw-header-map-allowed",
			build: func(fx *fixtures) *authv3.CheckRequest {
				return withRawHeaderMap(plainEnvoy(stats, fx.revenueCert, true, "envoy-req-0003"))
			},
			want: allowStats("envoy-req-0003"),
		},
		{
			name: "envoy/foreign-certificate-denied",
			build: func(fx *fixtures) *authv3.CheckRequest {
				return plainEnvoy(stats, fx.foreignCert, true, "envoy-req-0004")
			},
			want: withReply(denied(401, "UNAUTHENTICATED", codes.Unauthenticated), "www-authenticate", "Bearer"),
		},
		{
			name: "envoy/unknown-host-denied",
			build: func(fx *fixtures) *authv3.CheckRequest {
				c := stats
				c.host = "unknown.c2g.example"
				return plainEnvoy(c, fx.revenueCert, true, "envoy-req-0005")
			},
			want: denied(403, "NO_POLICY", codes.PermissionDenied),
		},
	}
}
