// Command conformance checks Portcullis against Envoy's own generated Go types
// (github.com/envoyproxy/go-control-plane): it sends CheckRequests shaped as Envoy sends them in
// an Istio sidecar, Envoy Gateway and plain Envoy, checks the responses the way Envoy consumes
// them, drives the ext_proc stream in Envoy's message order when --extproc is given, and
// validates the documented Envoy configuration fragments with Envoy's validation rules.
//
//	conformance --authz 127.0.0.1:9001 [--extproc ADDR] [--fragments docs/envoy]
//	            [--mesh DIR] [--tokens tokens.json] [--mask-key FILE] [--run REGEXP]
//
// --mesh validates mesh objects the operator generated (mesh.go).
//
// One line per scenario on stdout: "PASS <name>", "FAIL <name>: <reasons>" or
// "SKIP <name>: <reason>", then a summary. Exit status 1 when anything failed, 2 on bad usage.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

type options struct {
	authz, extproc, fragments, tokens string
	mesh                              string
	maskKey                           string
	run                               *regexp.Regexp
	callTimeout                       time.Duration
}

type tally struct {
	out              io.Writer
	pass, fail, skip int
}

func (t *tally) report(name string, problems []string, skip string) {
	switch {
	case skip != "":
		t.skip++
		fmt.Fprintf(t.out, "SKIP %s: %s\n", name, skip)
	case len(problems) > 0:
		t.fail++
		fmt.Fprintf(t.out, "FAIL %s: %s\n", name, strings.Join(problems, "; "))
	default:
		t.pass++
		fmt.Fprintf(t.out, "PASS %s\n", name)
	}
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("conformance", flag.ContinueOnError)
	var o options
	var run string
	fs.StringVar(&o.authz, "authz", "", "host:port of the ext_authz gRPC service")
	fs.StringVar(&o.extproc, "extproc", "", "host:port of the ext_proc gRPC service (optional)")
	fs.StringVar(&o.fragments, "fragments", "", "folder of Envoy configuration fragments to validate (optional)")
	fs.StringVar(&o.mesh, "mesh", "", "folder of generated Istio objects to check with Istio's types (optional)")
	fs.StringVar(&o.tokens, "tokens", "", "JSON file {name: JWT} with the citizen tokens (optional)")
	fs.StringVar(&o.maskKey, "mask-key", "", "the service's --mask-key-file, to sign an expired directive (optional)")
	fs.StringVar(&run, "run", "", "only scenarios whose name matches this regular expression")
	fs.DurationVar(&o.callTimeout, "call-timeout", 5*time.Second, "deadline of each gRPC call")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.authz == "" && o.fragments == "" && o.mesh == "" {
		return o, errors.New("nothing to do: give --authz, --fragments and/or --mesh")
	}
	re, err := regexp.Compile(run)
	if err != nil {
		return o, fmt.Errorf("--run: %w", err)
	}
	o.run = re
	return o, nil
}

func loadFixtures(tokensFile string) (*fixtures, error) {
	fx := &fixtures{tokens: map[string]string{}}
	if tokensFile != "" {
		raw, err := os.ReadFile(tokensFile)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(raw, &fx.tokens); err != nil {
			return nil, fmt.Errorf("%s: %w", tokensFile, err)
		}
	}
	ca, err := newCA()
	if err != nil {
		return nil, err
	}
	if fx.revenueCert, err = ca.issue(revenueReporting, 2); err != nil {
		return nil, err
	}
	if fx.foreignCert, err = ca.issue("spiffe://other.example/ns/revenue/sa/reporting", 3); err != nil {
		return nil, err
	}
	return fx, nil
}

func runChecks(o options, t *tally) error {
	fx, err := loadFixtures(o.tokens)
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(o.authz, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)
	for _, s := range allScenarios() {
		if !o.run.MatchString(s.name) {
			continue
		}
		if missing := missingTokens(fx, s.tokens); missing != "" {
			t.report(s.name, nil, "token "+missing+" not supplied (--tokens)")
			continue
		}
		req := s.build(fx)
		if err := req.ValidateAll(); err != nil { // the request itself must be one Envoy could send
			t.report(s.name, []string{"scenario builds an invalid CheckRequest: " + err.Error()}, "")
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), o.callTimeout)
		resp, err := client.Check(ctx, req)
		cancel()
		if err != nil {
			// Envoy treats an RPC error as CheckStatus::Error (status_on_error), never as a decision.
			t.report(s.name, []string{"Check returned an RPC error instead of a CheckResponse: " + err.Error()}, "")
			continue
		}
		t.report(s.name, verifyCheck(req, resp, s.want), "")
	}
	return nil
}

func missingTokens(fx *fixtures, names []string) string {
	for _, n := range names {
		if fx.tokens[n] == "" {
			return n
		}
	}
	return ""
}

func runFragments(o options, t *tally) error {
	results, err := validateFragments(o.fragments)
	if err != nil {
		return err
	}
	for _, r := range results {
		name := "fragment/" + r.name
		if o.run.MatchString(name) {
			t.report(name, r.errors, r.skip)
		}
	}
	return nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(2)
	}
	t := &tally{out: os.Stdout}
	steps := []struct {
		on  bool
		run func(options, *tally) error
	}{
		{o.fragments != "", runFragments},
		{o.mesh != "", runMesh},
		{o.authz != "", runChecks},
		{o.extproc != "", runExtProc},
	}
	for _, step := range steps {
		if !step.on {
			continue
		}
		if err := step.run(o, t); err != nil {
			fmt.Fprintln(os.Stderr, "conformance:", err)
			os.Exit(1)
		}
	}
	fmt.Fprintf(t.out, "conformance: %d passed, %d failed, %d skipped\n", t.pass, t.fail, t.skip)
	if t.fail > 0 {
		os.Exit(1)
	}
}
