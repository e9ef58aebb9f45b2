package main

// Validates the Envoy configuration fragments the project documents (docs/envoy/*.yaml) with
// Envoy's own rules: each YAML document is parsed into the Envoy type its marker comment names
// (protojson, unknown fields rejected), ValidateAll() runs on it and on every google.protobuf.Any
// inside it (typed_config, typed_extension_protocol_options, ...), and a few Portcullis rules
// are checked on top (a real timeout budget, fail closed, request bodies asked for the way
// Portcullis's request checks expect them).
//
// Marker, one per YAML document, before its first key:
//   # envoy-type: envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter
//   # envoy-type: none (why)      -- not an Envoy type (e.g. Istio MeshConfig); reported as SKIP

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	// Imported for their registered types, so markers and typed_config can name them.
	_ "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"
)

var (
	markerRE   = regexp.MustCompile(`(?m)^#\s*envoy-type:\s*(\S+)[ \t]*(.*)$`)
	docSplitRE = regexp.MustCompile(`(?m)^---\s*$`)
)

type fragmentResult struct {
	name   string
	skip   string // reason, when the document is not an Envoy type
	errors []string
}

type validator interface{ ValidateAll() error }

func validateFragments(dir string) ([]fragmentResult, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no *.yaml fragments in %s", dir)
	}
	sort.Strings(files)
	var out []fragmentResult
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		for i, doc := range docSplitRE.Split(string(raw), -1) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			out = append(out, validateDocument(fmt.Sprintf("%s#%d", filepath.Base(file), i+1), doc))
		}
	}
	return out, nil
}

func validateDocument(name, doc string) fragmentResult {
	r := fragmentResult{name: name}
	m := markerRE.FindStringSubmatch(doc)
	if m == nil {
		r.errors = append(r.errors, "no '# envoy-type: <message>' marker (use 'none (reason)' for non-Envoy documents)")
		return r
	}
	if m[1] == "none" {
		r.skip = strings.Trim(strings.TrimSpace(m[2]), "()")
		if r.skip == "" {
			r.skip = "not an Envoy type"
		}
		return r
	}
	msg, err := parseTyped(m[1], doc)
	if err != nil {
		r.errors = append(r.errors, err.Error())
		return r
	}
	r.errors = append(r.errors, validateTree(msg.ProtoReflect(), m[1])...)
	r.errors = append(r.errors, portcullisRules(msg)...)
	return r
}

func parseTyped(typeName, doc string) (proto.Message, error) {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(typeName))
	if err != nil {
		return nil, fmt.Errorf("unknown Envoy type %s: %w", typeName, err)
	}
	js, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		return nil, fmt.Errorf("YAML: %w", err)
	}
	msg := mt.New().Interface()
	if err := protojson.Unmarshal(js, msg); err != nil {
		return nil, fmt.Errorf("does not parse as %s: %w", typeName, err)
	}
	return msg, nil
}

// validateTree runs ValidateAll on the message (which covers every embedded message) and on the
// unpacked content of every Any below it, which ValidateAll does not open.
func validateTree(m protoreflect.Message, path string) []string {
	var out []string
	if v, ok := m.Interface().(validator); ok {
		if err := v.ValidateAll(); err != nil {
			out = append(out, fmt.Sprintf("%s: %v", path, err))
		}
	}
	forEachAny(m, func(a *anypb.Any) {
		inner, err := a.UnmarshalNew()
		if err != nil {
			out = append(out, fmt.Sprintf("%s: cannot unpack %s: %v", path, a.GetTypeUrl(), err))
			return
		}
		out = append(out, validateTree(inner.ProtoReflect(), string(inner.ProtoReflect().Descriptor().FullName()))...)
	})
	return out
}

// forEachAny calls fn on every Any below m, without looking inside them.
func forEachAny(m protoreflect.Message, fn func(*anypb.Any)) {
	children(m, func(c protoreflect.Message) {
		if a, ok := c.Interface().(*anypb.Any); ok {
			fn(a)
			return
		}
		forEachAny(c, fn)
	})
}

// children calls fn on every message directly held by m's fields.
func children(m protoreflect.Message, fn func(protoreflect.Message)) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len(); i++ {
				fn(v.List().Get(i).Message())
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				fn(mv.Message())
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			fn(v.Message())
		}
		return true
	})
}

// portcullisRules: what DESIGN.md requires of every configuration the project hands out.
func portcullisRules(msg proto.Message) []string {
	var out []string
	visit(msg.ProtoReflect(), func(m proto.Message) {
		switch c := m.(type) {
		case *hcmv3.HttpConnectionManager:
			out = append(out, pathRules(c)...)
			out = append(out, hcmRules(c)...)
		case *extauthzv3.ExtAuthz:
			if c.GetGrpcService().GetTimeout() == nil {
				out = append(out, "ext_authz grpc_service.timeout must be set (Envoy's default is 200ms)")
			}
			if c.GetFailureModeAllow() {
				out = append(out, "ext_authz failure_mode_allow must be false (fail closed)")
			}
			out = append(out, bodyRules("ext_authz with_request_body", c.GetWithRequestBody())...)
		case *extauthzv3.CheckSettings:
			out = append(out, bodyRules("check_settings with_request_body", c.GetWithRequestBody())...)
		case *extprocv3.ExternalProcessor:
			if c.GetMessageTimeout() == nil {
				out = append(out, "ext_proc message_timeout must be set (Envoy's default is 200ms)")
			}
			if c.GetFailureModeAllow() {
				out = append(out, "ext_proc failure_mode_allow must be false (masking fails closed)")
			}
		}
	})
	return out
}

// maxRequestBody is Portcullis's largest request.maxBodyBytes (extauthz/policy/request-checks.ts).
const maxRequestBody = 1 << 20

// bodyRules: where a fragment asks Envoy for request bodies (docs/controls.md), the buffer is
// bounded by what a rule can validate, a larger body still reaches Portcullis marked partial
// (so Portcullis refuses it with its own code, and routes whose rules ignore bodies keep
// working), and the bytes arrive exactly (raw_body).
func bodyRules(where string, b *extauthzv3.BufferSettings) []string {
	if b == nil {
		return nil
	}
	var out []string
	if b.GetMaxRequestBytes() > maxRequestBody {
		out = append(out, fmt.Sprintf("%s.max_request_bytes must be at most %d (the largest request.maxBodyBytes)", where, maxRequestBody))
	}
	if !b.GetAllowPartialMessage() {
		out = append(out, where+".allow_partial_message must be true (Portcullis refuses partial bodies itself, with BODY_TOO_LARGE / BODY_INCOMPLETE)")
	}
	if !b.GetPackAsBytes() {
		out = append(out, where+".pack_as_bytes must be true (raw_body: the exact bytes)")
	}
	return out
}

// hcmRules: the request handling docs/security.md says Portcullis assumes the proxy did.
func hcmRules(c *hcmv3.HttpConnectionManager) []string {
	// normalize_path, merge_slashes and the escaped-slash action are pathRules' (one rule each).
	var out []string
	switch c.GetCommonHttpProtocolOptions().GetHeadersWithUnderscoresAction().String() {
	case "REJECT_REQUEST", "DROP_HEADER":
	default:
		out = append(out, "common_http_protocol_options.headers_with_underscores_action must be REJECT_REQUEST or DROP_HEADER")
	}
	return out
}

// visit calls fn on the message and every message below it, Any contents included.
func visit(m protoreflect.Message, fn func(proto.Message)) {
	fn(m.Interface())
	if a, ok := m.Interface().(*anypb.Any); ok {
		if inner, err := a.UnmarshalNew(); err == nil {
			visit(inner.ProtoReflect(), fn)
		}
		return
	}
	children(m, func(c protoreflect.Message) { visit(c, fn) })
}

// pathRules: ext_authz must decide on the path the upstream is routed with, so the connection
// manager normalises it, merges slashes and decodes escaped slashes before any filter runs.
func pathRules(c *hcmv3.HttpConnectionManager) []string {
	var out []string
	if !c.GetNormalizePath().GetValue() {
		out = append(out, "http_connection_manager normalize_path must be true")
	}
	if !c.GetMergeSlashes() {
		out = append(out, "http_connection_manager merge_slashes must be true")
	}
	if c.GetPathWithEscapedSlashesAction() != hcmv3.HttpConnectionManager_UNESCAPE_AND_FORWARD {
		out = append(out, "http_connection_manager path_with_escaped_slashes_action must be UNESCAPE_AND_FORWARD (as Istio's DECODE_AND_MERGE_SLASHES)")
	}
	return out
}
