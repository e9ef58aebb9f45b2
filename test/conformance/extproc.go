package main

// Drives envoy.service.ext_proc.v3.ExternalProcessor/Process the way Envoy's ext_proc filter does
// with the documented configuration (docs/envoy/ext-proc-filter.yaml: request headers SEND,
// response headers SEND, response body BUFFERED, request body NONE): one stream per HTTP
// request, messages in the order of the HTTP exchange, each answered before the next is sent.
// The masking directive comes from a real Check allow (x-portcullis-mask, signed), exactly as
// ext_authz would have added it to the request headers before ext_proc sees them.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"
)

const (
	maskHeader         = "x-portcullis-mask"
	extAuthzMetadataNS = "envoy.filters.http.ext_authz" // where Envoy stores ext_authz's dynamic_metadata
	originalTaxID      = "123-45-6789"
)

var recordsBody = `{"records":[{"year":2025,"taxId":"` + originalTaxID + `","income":52000}]}`

func headerMap(kv map[string]string) *corev3.HeaderMap {
	hm := &corev3.HeaderMap{}
	for _, k := range sortedKeys(kv) {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(kv[k])})
	}
	return hm
}

// streamStep is one message Envoy sends and the response kind it waits for.
type streamStep struct {
	name string
	req  *extprocv3.ProcessingRequest
	want func(*extprocv3.ProcessingResponse) bool
}

func runExtProc(o options, t *tally) error {
	if o.authz == "" {
		t.report("extproc/masking-stream", nil, "needs --authz to obtain a signed directive from a Check allow")
		return nil
	}
	fx, err := loadFixtures(o.tokens)
	if err != nil {
		return err
	}
	for _, s := range append(extProcScenarios(), tamperScenarios()...) {
		if !o.run.MatchString(s.name) {
			continue
		}
		if missing := missingTokens(fx, []string{tokenCitizenMFA}); missing != "" {
			t.report(s.name, nil, "token "+missing+" not supplied (--tokens)")
			continue
		}
		if s.needsKey && o.maskKey == "" {
			t.report(s.name, nil, "needs --mask-key (the service's directive signing key) to sign a directive")
			continue
		}
		t.report(s.name, s.run(o, fx), "")
	}
	return nil
}

// trailerCase: whether the upstream response has trailers and whether Envoy forwards them.
type trailerCase int

const (
	noTrailers trailerCase = iota
	trailersSkipped
	trailersSent
)

type streamScenario struct {
	name     string
	run      func(options, *fixtures) []string
	needsKey bool // signs a directive with the service's key (--mask-key)
}

func extProcScenarios() []streamScenario {
	return []streamScenario{
		{"extproc/buffered-body-masked", func(o options, fx *fixtures) []string { return maskingStream(o, fx, noTrailers) }, false},
		// The upstream response has trailers and response_trailer_mode is SKIP (the documented
		// configuration): Envoy sends the complete buffered body with end_of_stream false and no
		// trailers message (ext_proc.cc onTrailers: setupBodyChunk(state, bufferedData, false)).
		{"extproc/buffered-body-before-skipped-trailers-masked", func(o options, fx *fixtures) []string {
			return maskingStream(o, fx, trailersSkipped)
		}, false},
		// The same with response_trailer_mode SEND: the trailers message follows the body.
		{"extproc/buffered-body-then-trailers-masked", func(o options, fx *fixtures) []string { return maskingStream(o, fx, trailersSent) }, false},
	}
}

// allowForRecords runs the Check that precedes the stream and returns the headers Envoy would
// forward upstream (and so to ext_proc) and the dynamic metadata it would store.
func allowForRecords(o options, fx *fixtures) (map[string]string, *structpb.Struct, error) {
	conn, err := grpc.NewClient(o.authz, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	req := istioSidecar(httpCall{method: "GET", host: "records.c2g.example", path: "/v1/citizens/1984/records",
		headers: map[string]string{"authorization": fx.bearer(tokenCitizenMFA)}}, ingressGateway, "extproc-req-0001")
	ctx, cancel := context.WithTimeout(context.Background(), o.callTimeout)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, req)
	if err != nil {
		return nil, nil, fmt.Errorf("Check: %w", err)
	}
	if resp.GetOkResponse() == nil {
		return nil, nil, fmt.Errorf("Check for the own record was not allowed: %s", resp.GetStatus().GetMessage())
	}
	upstream := applyOk(requestHeaders(req), resp.GetOkResponse())
	if upstream[maskHeader] == "" {
		return nil, nil, fmt.Errorf("the allow for a rule with mask carries no %s header", maskHeader)
	}
	return upstream, resp.GetDynamicMetadata(), nil
}

func maskingStream(o options, fx *fixtures, trailers trailerCase) []string {
	upstream, meta, err := allowForRecords(o, fx)
	if err != nil {
		return []string{err.Error()}
	}
	stream, closeStream, err := openExtProc(o)
	if err != nil {
		return []string{err.Error()}
	}
	defer closeStream()
	var problems []string
	var bodyResp *extprocv3.ProcessingResponse
	for _, step := range envoyOrder(upstream, meta, trailers) {
		resp, err := exchange(stream, step.req)
		if err != nil {
			return append(problems, step.name+": "+err.Error())
		}
		problems = append(problems, checkProcessingResponse(step, resp)...)
		if step.name == "response_body" {
			bodyResp = resp
		}
	}
	_ = stream.CloseSend()
	return append(problems, checkMaskedBody(bodyResp)...)
}

func envoyOrder(upstream map[string]string, meta *structpb.Struct, trailers trailerCase) []streamStep {
	md := &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{extAuthzMetadataNS: meta}}
	respHeaders := map[string]string{":status": "200", "content-type": "application/json", "content-length": fmt.Sprint(len(recordsBody))}
	first := &extprocv3.ProcessingRequest{
		Request:         &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: headerMap(upstream), EndOfStream: true}},
		MetadataContext: md,
		ProtocolConfig:  &extprocv3.ProtocolConfiguration{RequestBodyMode: extprocfilterv3.ProcessingMode_NONE, ResponseBodyMode: extprocfilterv3.ProcessingMode_BUFFERED},
	}
	steps := []streamStep{
		{"request_headers", first, func(r *extprocv3.ProcessingResponse) bool { return r.GetRequestHeaders() != nil }},
		{"response_headers", &extprocv3.ProcessingRequest{MetadataContext: md, Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{Headers: headerMap(respHeaders)}}},
			func(r *extprocv3.ProcessingResponse) bool { return r.GetResponseHeaders() != nil }},
		// Buffered: the whole body in one message; end_of_stream is false when trailers follow.
		{"response_body", &extprocv3.ProcessingRequest{MetadataContext: md, Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte(recordsBody), EndOfStream: trailers == noTrailers}}},
			func(r *extprocv3.ProcessingResponse) bool { return r.GetResponseBody() != nil }},
	}
	if trailers == trailersSent {
		steps = append(steps, streamStep{"response_trailers", &extprocv3.ProcessingRequest{MetadataContext: md, Request: &extprocv3.ProcessingRequest_ResponseTrailers{ResponseTrailers: &extprocv3.HttpTrailers{Trailers: headerMap(map[string]string{"grpc-status": "0"})}}},
			func(r *extprocv3.ProcessingResponse) bool { return r.GetResponseTrailers() != nil }})
	}
	return steps
}

func exchange(stream extprocv3.ExternalProcessor_ProcessClient, req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
	if err := req.ValidateAll(); err != nil {
		return nil, fmt.Errorf("harness built an invalid ProcessingRequest: %w", err)
	}
	if err := stream.Send(req); err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	resp, err := stream.Recv()
	if err != nil {
		return nil, fmt.Errorf("no response (Envoy would fail the request): %w", err)
	}
	return resp, nil
}

func checkProcessingResponse(step streamStep, resp *extprocv3.ProcessingResponse) []string {
	var f failures
	if err := resp.ValidateAll(); err != nil {
		f.add("%s: ProcessingResponse fails Envoy's validation: %v", step.name, err)
	}
	if unknown := unknownFields(resp.ProtoReflect(), "ProcessingResponse"); len(unknown) > 0 {
		f.add("%s: fields Envoy's types do not know: %s", step.name, strings.Join(unknown, ", "))
	}
	if ir := resp.GetImmediateResponse(); ir != nil {
		f.add("%s: immediate_response %d (%s) instead of continuing", step.name, ir.GetStatus().GetCode(), ir.GetDetails())
	} else if !step.want(resp) {
		// Envoy treats a response of the wrong kind as a protocol error and fails the stream.
		f.add("%s: answered with the wrong response kind %T", step.name, resp.GetResponse())
	}
	return f
}

func checkMaskedBody(resp *extprocv3.ProcessingResponse) []string {
	if resp == nil {
		return nil
	}
	mutation := resp.GetResponseBody().GetResponse().GetBodyMutation()
	switch {
	case mutation == nil:
		return []string{"response_body: no body_mutation; Envoy would send the buffered body unmasked"}
	case mutation.GetClearBody():
		return []string{"response_body: clear_body; Envoy would send an empty body instead of the masked one (in BUFFERED mode this message is the whole body, even with end_of_stream false)"}
	}
	body := mutation.GetBody()
	if body == nil {
		return []string{fmt.Sprintf("response_body: body_mutation %T carries no body", mutation.GetMutation())}
	}
	var doc struct {
		Records []struct {
			TaxID string `json:"taxId"`
		} `json:"records"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return []string{"masked body is not JSON: " + err.Error()}
	}
	if len(doc.Records) != 1 {
		return []string{fmt.Sprintf("masked body has %d records, want 1", len(doc.Records))}
	}
	got := doc.Records[0].TaxID
	if got == originalTaxID || !strings.HasSuffix(got, "6789") || strings.Contains(got, "123") {
		return []string{fmt.Sprintf("taxId masked as %q, want the last 4 characters kept and the rest hidden", got)}
	}
	return nil
}

// openExtProc opens one ext_proc stream as Envoy does (one stream per HTTP request), bounded by
// the call timeout; the returned func releases the stream, its context and the connection.
func openExtProc(o options) (extprocv3.ExternalProcessor_ProcessClient, func(), error) {
	conn, err := grpc.NewClient(o.extproc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.callTimeout)
	stream, err := extprocv3.NewExternalProcessorClient(conn).Process(ctx)
	if err != nil {
		cancel()
		conn.Close()
		return nil, nil, fmt.Errorf("open stream: %w", err)
	}
	return stream, func() { cancel(); conn.Close() }, nil
}
