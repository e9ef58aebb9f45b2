// otlp-receiver: a minimal OTLP/HTTP trace receiver for the tracing tests. It listens on a
// loopback address, accepts POST /v1/traces with a binary protobuf body (what the
// OpenTelemetry JS proto exporter sends), decodes it with the upstream generated OTLP types and
// prints one JSON line per span on stdout. The first line is "listening http://HOST:PORT".
//
// The request body (ExportTraceServiceRequest) has the wire format of TracesData (field 1:
// repeated ResourceSpans), so it is decoded as tracev1.TracesData; this keeps the gRPC
// service packages (and their dependencies) out of the build.
package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"

	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

type span struct {
	TraceID      string            `json:"traceId"`
	SpanID       string            `json:"spanId"`
	ParentSpanID string            `json:"parentSpanId"`
	Name         string            `json:"name"`
	Kind         string            `json:"kind"`
	StartNano    uint64            `json:"startTimeUnixNano"`
	EndNano      uint64            `json:"endTimeUnixNano"`
	Status       string            `json:"status"`
	Attributes   map[string]string `json:"attributes"`
	Resource     map[string]string `json:"resource"`
	Scope        string            `json:"scope"`
}

func value(v *commonv1.AnyValue) string {
	if v == nil {
		return ""
	}
	switch x := v.Value.(type) {
	case *commonv1.AnyValue_StringValue:
		return x.StringValue
	case *commonv1.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonv1.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	case *commonv1.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	default:
		// Arrays, maps, bytes: their protobuf text, so a search of all values still sees them.
		return v.String()
	}
}

func attrs(kvs []*commonv1.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = value(kv.Value)
	}
	return m
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback)")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	emit := func(line []byte) {
		mu.Lock()
		defer mu.Unlock()
		out.Write(line)
		out.WriteByte('\n')
		out.Flush()
	}
	emit([]byte("listening http://" + ln.Addr().String()))
	http.HandleFunc("/v1/traces", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
			http.Error(w, "want application/x-protobuf, got "+ct, http.StatusUnsupportedMediaType)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var data tracev1.TracesData
		if err := proto.Unmarshal(body, &data); err != nil {
			http.Error(w, "not an OTLP trace request: "+err.Error(), http.StatusBadRequest)
			return
		}
		for _, rs := range data.ResourceSpans {
			res := attrs(rs.GetResource().GetAttributes())
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					line, _ := json.Marshal(span{
						TraceID: hex.EncodeToString(s.TraceId), SpanID: hex.EncodeToString(s.SpanId), ParentSpanID: hex.EncodeToString(s.ParentSpanId),
						Name: s.Name, Kind: s.Kind.String(), StartNano: s.StartTimeUnixNano, EndNano: s.EndTimeUnixNano,
						Status: s.GetStatus().GetCode().String(), Attributes: attrs(s.Attributes), Resource: res, Scope: ss.GetScope().GetName(),
					})
					emit(line)
				}
			}
		}
		// An empty ExportTraceServiceResponse: zero bytes of protobuf.
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})
	if err := http.Serve(ln, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
