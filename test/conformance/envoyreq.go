package main

// CheckRequests shaped the way Envoy's ext_authz filter builds them
// (source/extensions/filters/common/ext_authz/check_request_utils.cc): header names lower-case,
// pseudo-headers included, repeated headers joined with ",", the query string left inside
// attributes.request.http.path (the separate query field stays empty), the stream id as
// request.http.id, the request time, and the peer as Envoy saw it on the connection.

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var streamIDs atomic.Uint64

// nextStreamID mimics Envoy's per-connection stream ids (decimal, increasing).
func nextStreamID() string { return strconv.FormatUint(11400714819323198485>>1+streamIDs.Add(1), 10) }

// httpCall is what the client sent; the deployment decides how Envoy reports it.
type httpCall struct {
	method  string
	host    string
	path    string // with the query, as on the wire
	headers map[string]string
	// body: sent only where the route asks for it (with_request_body); in raw_body, as with
	// pack_as_bytes: true, unless asString (body, Envoy's default string form).
	body     []byte
	asString bool
}

// peer is the downstream connection as Envoy saw it.
type peer struct {
	ip        string
	port      uint32
	principal string // URI SAN (or subject) of the verified client certificate
	certPEM   string // only with include_peer_certificate
}

func socket(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// envoyHeaders adds the pseudo-headers and the headers Envoy's HTTP connection manager adds
// before the ext_authz filter runs (x-request-id, x-forwarded-proto).
func envoyHeaders(c httpCall, requestID string) map[string]string {
	h := map[string]string{
		":authority": c.host, ":method": c.method, ":path": c.path, ":scheme": "https",
		"x-forwarded-proto": "https", "x-request-id": requestID,
	}
	for k, v := range c.headers {
		k = strings.ToLower(k)
		if prev, ok := h[k]; ok && !strings.HasPrefix(k, ":") && k != "x-request-id" {
			v = prev + "," + v
		}
		h[k] = v
	}
	return h
}

func checkRequest(c httpCall, src peer, dst peer, requestID string) *authv3.CheckRequest {
	headers := envoyHeaders(c, requestID)
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: socket(src.ip, src.port), Principal: src.principal, Certificate: src.certPEM},
		Destination: &authv3.AttributeContext_Peer{Address: socket(dst.ip, dst.port), Principal: dst.principal},
		Request: &authv3.AttributeContext_Request{
			Time: timestamppb.New(time.Now()),
			Http: &authv3.AttributeContext_HttpRequest{
				Id: nextStreamID(), Method: c.method, Headers: headers,
				Path: c.path, Host: c.host, Scheme: "https", Protocol: "HTTP/2", Size: 0,
			},
		},
	}}
	if c.body != nil {
		http := req.Attributes.Request.Http
		http.Size = int64(len(c.body))
		if c.asString {
			http.Body = string(c.body)
		} else {
			http.RawBody = c.body
		}
	}
	return req
}

// istioSidecar: an inbound sidecar with STRICT mTLS. Istio does not set
// include_peer_certificate; source.principal carries the client's SPIFFE ID and the sidecar adds
// an x-forwarded-client-cert header (By=<own id>;Hash=...;Subject="";URI=<client id>).
func istioSidecar(c httpCall, clientID, requestID string) *authv3.CheckRequest {
	if clientID != "" {
		c = withHeader(c, "x-forwarded-client-cert",
			`By=spiffe://cluster.local/ns/c2g/sa/records-api;Hash=3f1a0c9e5b2d4e6f;Subject="";URI=`+clientID)
	}
	return checkRequest(c,
		peer{ip: "10.244.1.17", port: 48122, principal: clientID},
		peer{ip: "10.244.2.9", port: 8080, principal: "spiffe://cluster.local/ns/c2g/sa/records-api"},
		requestID)
}

// envoyGateway: the edge proxy of Envoy Gateway, no client certificate, the client address
// from the connection, and contextExtensions from the SecurityPolicy's extAuth.
func envoyGateway(c httpCall, ext map[string]string, requestID string) *authv3.CheckRequest {
	c = withHeader(c, "x-forwarded-for", "198.51.100.23")
	c = withHeader(c, "x-envoy-external-address", "198.51.100.23")
	req := checkRequest(c, peer{ip: "198.51.100.23", port: 61002}, peer{ip: "10.244.0.5", port: 10443}, requestID)
	req.Attributes.ContextExtensions = ext
	return req
}

// plainEnvoy: Envoy terminating mTLS itself with include_peer_certificate: true, so the
// URL-encoded PEM of the client certificate arrives in source.certificate. With principal ""
// the certificate alone must identify the client.
func plainEnvoy(c httpCall, cert clientCert, withPrincipal bool, requestID string) *authv3.CheckRequest {
	src := peer{ip: "192.0.2.44", port: 50311, certPEM: envoyURLEncode(cert.pem)}
	if withPrincipal {
		src.principal = cert.uri
	}
	return checkRequest(c, src, peer{ip: "192.0.2.1", port: 8443}, requestID)
}

// envoyURLEncode is Envoy's Http::Utility::PercentEncoding::urlEncode, used for
// source.certificate: every byte outside the unreserved set becomes %XX (a space is %20, never
// "+", so a decoder must not treat "+" as a space).
func envoyURLEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// withRawHeaderMap moves the headers into header_map with raw_value bytes, as Envoy does when
// the filter sets encode_raw_headers: true; the headers map is then left empty.
func withRawHeaderMap(req *authv3.CheckRequest) *authv3.CheckRequest {
	http := req.Attributes.Request.Http
	hm := &corev3.HeaderMap{}
	for _, k := range sortedKeys(http.Headers) {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(http.Headers[k])})
	}
	http.HeaderMap = hm
	http.Headers = nil
	return req
}

func withHeader(c httpCall, k, v string) httpCall {
	h := make(map[string]string, len(c.headers)+1)
	for hk, hv := range c.headers {
		h[hk] = hv
	}
	h[k] = v
	c.headers = h
	return c
}
