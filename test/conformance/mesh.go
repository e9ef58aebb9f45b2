package main

// Validates the mesh objects the operator generates (written by the test into a folder, one
// YAML document per object) with the upstreams' own types:
//
//   - Istio AuthorizationPolicy (security.istio.io): the spec is parsed into istio.io/api's
//     AuthorizationPolicy (protojson, unknown fields rejected) and, for action CUSTOM, every
//     probe request (hosts the policy does not list, the Service's cluster names, its IP, any
//     path, method and port) must match one of its rules under Istio's rule semantics (a rule
//     matches when each of its from, to and when matches; an empty rule matches everything;
//     Istio sends the provider only the requests a CUSTOM rule matches and allows the rest). A
//     constraint this checker does not evaluate counts as a miss, so it can only err towards
//     reporting a bypass.
//   - Istio PeerAuthentication: STRICT for the selected workload, no port-level exception.
//   - Istio EnvoyFilter (networking.istio.io): parsed into istio.io/api's EnvoyFilter; each
//     HTTP_FILTER patch value is parsed as Envoy's HttpFilter and validated with Envoy's rules
//     (ValidateAll, typed_config included) and the project's (timeouts, fail closed); ext_proc
//     must be inserted after ext_authz on the inbound sidecar listener.

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	securityv1beta1 "istio.io/api/security/v1beta1"
	"sigs.k8s.io/yaml"
)

type meshObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Spec map[string]any `json:"spec"`
}

// probe is one request the sidecar or gateway may receive.
type probe struct{ host, method, path, port string }

// probes: hosts no policy lists among them (cluster DNS names, a ClusterIP, a pod IP, any name),
// paths and methods no rule names.
func probes() []probe {
	hosts := []string{"records.c2g.example", "records-api", "records-api.c2g", "records-api.c2g.svc.cluster.local",
		"records-api.c2g.svc.cluster.local:8080", "10.96.14.7", "10.96.14.7:8080", "[fd00::7]:8080", "evil.example", ""}
	var out []probe
	for _, h := range hosts {
		for _, m := range []string{"GET", "POST", "DELETE", "OPTIONS"} {
			for _, p := range []string{"/", "/v1/citizens/1984/records", "/admin/users?all=1", "//double/slash", "/%2e%2e/etc"} {
				out = append(out, probe{host: h, method: m, path: p, port: "8080"})
			}
		}
	}
	return out
}

func runMesh(o options, t *tally) error {
	files, err := filepath.Glob(filepath.Join(o.mesh, "*.yaml"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no *.yaml objects in %s", o.mesh)
	}
	sort.Strings(files)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var obj meshObject
		if err := yaml.Unmarshal(raw, &obj); err != nil {
			t.report("mesh/"+filepath.Base(f), []string{"YAML: " + err.Error()}, "")
			continue
		}
		name := fmt.Sprintf("mesh/%s/%s", obj.Kind, strings.TrimSuffix(filepath.Base(f), ".yaml"))
		if !o.run.MatchString(name) {
			continue
		}
		problems, skip := checkMeshObject(obj)
		t.report(name, problems, skip)
	}
	return nil
}

func checkMeshObject(obj meshObject) ([]string, string) {
	spec, err := yaml.Marshal(obj.Spec)
	if err != nil {
		return []string{err.Error()}, ""
	}
	js, err := yaml.YAMLToJSON(spec)
	if err != nil {
		return []string{err.Error()}, ""
	}
	switch {
	case strings.HasPrefix(obj.APIVersion, "security.istio.io/") && obj.Kind == "AuthorizationPolicy":
		return checkAuthorizationPolicy(js), ""
	case strings.HasPrefix(obj.APIVersion, "security.istio.io/") && obj.Kind == "PeerAuthentication":
		return checkPeerAuthentication(js), ""
	case strings.HasPrefix(obj.APIVersion, "networking.istio.io/") && obj.Kind == "EnvoyFilter":
		return checkEnvoyFilter(js), ""
	default:
		return nil, obj.APIVersion + " " + obj.Kind + " is validated by its CRD on the API server, not here"
	}
}

func checkAuthorizationPolicy(js []byte) []string {
	var ap securityv1beta1.AuthorizationPolicy
	if err := protojson.Unmarshal(js, &ap); err != nil {
		return []string{"does not parse as istio.io/api AuthorizationPolicy: " + err.Error()}
	}
	if ap.GetAction() != securityv1beta1.AuthorizationPolicy_CUSTOM {
		return []string{"action is " + ap.GetAction().String() + ", want CUSTOM"}
	}
	var out []string
	for _, p := range probes() {
		if !anyRuleMatches(ap.GetRules(), p) {
			out = append(out, fmt.Sprintf("%s %s (Host %q) matches no rule: Istio would allow it without asking the provider", p.method, p.path, p.host))
		}
	}
	if len(out) > 5 {
		out = append(out[:5], fmt.Sprintf("... and %d more", len(out)-5))
	}
	return out
}

// checkPeerAuthentication: STRICT for the whole workload, no port exempted.
func checkPeerAuthentication(js []byte) []string {
	var pa securityv1beta1.PeerAuthentication
	if err := protojson.Unmarshal(js, &pa); err != nil {
		return []string{"does not parse as istio.io/api PeerAuthentication: " + err.Error()}
	}
	var out []string
	if pa.GetMtls().GetMode() != securityv1beta1.PeerAuthentication_MutualTLS_STRICT {
		out = append(out, "mtls.mode is "+pa.GetMtls().GetMode().String()+", want STRICT")
	}
	if len(pa.GetPortLevelMtls()) > 0 {
		out = append(out, "portLevelMtls exempts ports from the workload's STRICT mode")
	}
	if len(pa.GetSelector().GetMatchLabels()) == 0 {
		out = append(out, "no selector: the policy would cover the whole namespace")
	}
	return out
}

func anyRuleMatches(rules []*securityv1beta1.Rule, p probe) bool {
	for _, r := range rules {
		if ruleMatches(r, p) {
			return true
		}
	}
	return false // no rules: a CUSTOM policy matches nothing
}

func ruleMatches(r *securityv1beta1.Rule, p probe) bool {
	if len(r.GetWhen()) > 0 {
		return false // conditions are not evaluated here: count as a miss
	}
	if len(r.GetFrom()) > 0 && !anyFrom(r.GetFrom()) {
		return false
	}
	if len(r.GetTo()) == 0 {
		return true
	}
	for _, to := range r.GetTo() {
		if operationMatches(to.GetOperation(), p) {
			return true
		}
	}
	return false
}

// anyFrom: some source without constraints (a source with any constraint counts as a miss).
func anyFrom(from []*securityv1beta1.Rule_From) bool {
	for _, f := range from {
		js, _ := protojson.Marshal(f.GetSource())
		if string(js) == "{}" || len(js) == 0 {
			return true
		}
	}
	return false
}

func operationMatches(op *securityv1beta1.Operation, p probe) bool {
	if op == nil {
		return true
	}
	host := strings.ToLower(p.host)
	path := strings.SplitN(p.path, "?", 2)[0]
	return matchList(op.GetHosts(), host, hostMatch, true) && !matchList(op.GetNotHosts(), host, hostMatch, false) &&
		matchList(op.GetPorts(), p.port, exact, true) && !matchList(op.GetNotPorts(), p.port, exact, false) &&
		matchList(op.GetMethods(), p.method, exact, true) && !matchList(op.GetNotMethods(), p.method, exact, false) &&
		matchList(op.GetPaths(), path, pathMatch, true) && !matchList(op.GetNotPaths(), path, pathMatch, false)
}

// matchList: an empty list is "no constraint" (ifEmpty); otherwise any entry matching.
func matchList(list []string, v string, match func(pattern, v string) bool, ifEmpty bool) bool {
	if len(list) == 0 {
		return ifEmpty
	}
	for _, pat := range list {
		if match(pat, v) {
			return true
		}
	}
	return false
}

func exact(pattern, v string) bool { return pattern == v }

// hostMatch: Istio's string match for hosts: exact, "*" prefix or suffix, case-insensitive.
func hostMatch(pattern, v string) bool {
	pattern = strings.ToLower(pattern)
	switch {
	case pattern == "*":
		return true
	case strings.HasPrefix(pattern, "*"):
		return strings.HasSuffix(v, pattern[1:])
	case strings.HasSuffix(pattern, "*"):
		return strings.HasPrefix(v, pattern[:len(pattern)-1])
	}
	return pattern == v
}

// pathMatch: exact, "*" prefix/suffix, and the {*} / {**} templates (one segment / the rest).
func pathMatch(pattern, v string) bool {
	if strings.Contains(pattern, "{") {
		return templateMatch(strings.Split(pattern, "/"), strings.Split(v, "/"))
	}
	return hostMatchCase(pattern, v)
}

func hostMatchCase(pattern, v string) bool {
	switch {
	case pattern == "*":
		return true
	case strings.HasPrefix(pattern, "*"):
		return strings.HasSuffix(v, pattern[1:])
	case strings.HasSuffix(pattern, "*"):
		return strings.HasPrefix(v, pattern[:len(pattern)-1])
	}
	return pattern == v
}

func templateMatch(pat, segs []string) bool {
	for i, p := range pat {
		if p == "{**}" {
			return true
		}
		if i >= len(segs) || (p != "{*}" && p != segs[i]) || (p == "{*}" && segs[i] == "") {
			return false
		}
	}
	return len(pat) == len(segs)
}

func checkEnvoyFilter(js []byte) []string {
	var ef networkingv1alpha3.EnvoyFilter
	if err := protojson.Unmarshal(js, &ef); err != nil {
		return []string{"does not parse as istio.io/api EnvoyFilter: " + err.Error()}
	}
	if len(ef.GetWorkloadSelector().GetLabels()) == 0 && len(ef.GetTargetRefs()) == 0 {
		return []string{"no workloadSelector: the filter would apply to every workload of the namespace"}
	}
	var out []string
	for i, cp := range ef.GetConfigPatches() {
		out = append(out, checkPatch(i, cp)...)
	}
	if len(ef.GetConfigPatches()) == 0 {
		out = append(out, "no configPatches")
	}
	return out
}

func checkPatch(i int, cp *networkingv1alpha3.EnvoyFilter_EnvoyConfigObjectPatch) []string {
	at := fmt.Sprintf("configPatches[%d]", i)
	var out []string
	if cp.GetApplyTo() != networkingv1alpha3.EnvoyFilter_HTTP_FILTER {
		return []string{at + ": applyTo " + cp.GetApplyTo().String() + ", want HTTP_FILTER"}
	}
	m := cp.GetMatch()
	if m.GetContext() != networkingv1alpha3.EnvoyFilter_SIDECAR_INBOUND {
		out = append(out, at+": context "+m.GetContext().String()+", want SIDECAR_INBOUND")
	}
	if sub := m.GetListener().GetFilterChain().GetFilter().GetSubFilter().GetName(); sub != "envoy.filters.http.ext_authz" {
		out = append(out, at+": subFilter "+sub+", want envoy.filters.http.ext_authz (ext_proc goes after the decision)")
	}
	if cp.GetPatch().GetOperation() != networkingv1alpha3.EnvoyFilter_Patch_INSERT_AFTER {
		out = append(out, at+": operation "+cp.GetPatch().GetOperation().String()+", want INSERT_AFTER")
	}
	value, err := protojson.Marshal(cp.GetPatch().GetValue())
	if err != nil {
		return append(out, at+": "+err.Error())
	}
	var filter hcmv3.HttpFilter
	if err := protojson.Unmarshal(value, &filter); err != nil {
		return append(out, at+": patch.value does not parse as Envoy's HttpFilter: "+err.Error())
	}
	out = append(out, validateTree(filter.ProtoReflect(), "HttpFilter")...)
	out = append(out, portcullisRules(&filter)...)
	if filter.GetName() != "envoy.filters.http.ext_proc" {
		out = append(out, at+": filter "+filter.GetName()+", want envoy.filters.http.ext_proc")
	}
	return out
}
