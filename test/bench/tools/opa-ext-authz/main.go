// Command opa-ext-authz is the benchmark's stand-in for the OPA-Envoy plugin
// (github.com/open-policy-agent/opa-envoy-plugin), whose module the Go module proxy refuses
// here (403 "module version is not available"). It does what the plugin's gRPC server does on
// the hot path, with OPA's own engine: turn the CheckRequest into the plugin's input document
// (protojson of the request plus parsed_path), evaluate a prepared Rego query, answer OK or
// PERMISSION_DENIED. Test tooling only; see docs/benchmarks.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"net"
	"os"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
)

type server struct {
	authv3.UnimplementedAuthorizationServer
	query rego.PreparedEvalQuery
}

var marshal = protojson.MarshalOptions{UseProtoNames: true}

func (s *server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	input, err := inputOf(req)
	if err != nil {
		return deny(code.Code_INTERNAL), nil
	}
	rs, err := s.query.Eval(ctx, rego.EvalInput(input))
	if err != nil || len(rs) == 0 || rs[0].Expressions[0].Value != true {
		return deny(code.Code_PERMISSION_DENIED), nil
	}
	return &authv3.CheckResponse{Status: &status.Status{Code: int32(code.Code_OK)}}, nil
}

// inputOf builds the same input document the OPA-Envoy plugin builds.
func inputOf(req *authv3.CheckRequest) (map[string]interface{}, error) {
	raw, err := marshal.Marshal(req)
	if err != nil {
		return nil, err
	}
	var input map[string]interface{}
	if err := json.Unmarshal(raw, &input); err != nil {
		return nil, err
	}
	path := req.GetAttributes().GetRequest().GetHttp().GetPath()
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	parsed := []interface{}{}
	for _, seg := range strings.Split(strings.TrimPrefix(path, "/"), "/") {
		parsed = append(parsed, seg)
	}
	input["parsed_path"] = parsed
	return input, nil
}

func deny(c code.Code) *authv3.CheckResponse {
	return &authv3.CheckResponse{Status: &status.Status{Code: int32(c)}}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9191", "gRPC listen address")
	policy := flag.String("policy", "", "Rego file")
	data := flag.String("data", "", "JSON data file")
	query := flag.String("query", "data.envoy.authz.allow", "decision query")
	flag.Parse()
	src, err := os.ReadFile(*policy)
	if err != nil {
		log.Fatal(err)
	}
	var doc map[string]interface{}
	raw, err := os.ReadFile(*data)
	if err != nil {
		log.Fatal(err)
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		log.Fatal(err)
	}
	pq, err := rego.New(rego.Query(*query), rego.Module(*policy, string(src)), rego.Store(inmem.NewFromObject(doc))).PrepareForEval(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	g := grpc.NewServer()
	authv3.RegisterAuthorizationServer(g, &server{query: pq})
	log.Printf("listening on %s", lis.Addr())
	if err := g.Serve(lis); err != nil {
		log.Fatal(err)
	}
}
