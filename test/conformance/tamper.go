package main

// ext_proc scenarios with a directive that must not verify: forged (signed with another key),
// expired (signed with the real key, lifetime over) and widened (masks dropped from a real
// directive, signature kept). The tampered token replaces the real one in both places Envoy
// forwards it (the x-portcullis-mask request header and the ext_authz dynamic metadata), so the
// only reason to refuse it is the token itself. Each must end the stream at the request headers
// with an immediate 500 MASK_DIRECTIVE_INVALID; if it does not, the stream goes on in Envoy's
// order and the scenario reports whether the unmasked body came back.

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

const directiveInvalid = "MASK_DIRECTIVE_INVALID"

// tamper turns the real directive into the one under test.
type tamper func(real string, key []byte) (string, error)

func tamperScenarios() []streamScenario {
	return []streamScenario{
		{"extproc/forged-directive-refused", func(o options, fx *fixtures) []string { return tamperedStream(o, fx, forged) }, false},
		{"extproc/expired-directive-refused", func(o options, fx *fixtures) []string { return tamperedStream(o, fx, expired) }, true},
		{"extproc/widened-directive-refused", func(o options, fx *fixtures) []string { return tamperedStream(o, fx, widened) }, false},
	}
}

// readMaskKey reads the directive signing key as Portcullis does: one trailing newline is not part of it.
func readMaskKey(file string) ([]byte, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(raw), "\n"), "\r")
	if len(s) < 32 {
		return nil, fmt.Errorf("%s: a mask key has at least 32 bytes", file)
	}
	return []byte(s), nil
}

func jwsParts(token string) ([3]string, error) {
	p := strings.Split(token, ".")
	if len(p) != 3 {
		return [3]string{}, errors.New("the directive from the Check allow is not a compact JWS")
	}
	return [3]string{p[0], p[1], p[2]}, nil
}

func claimsOf(payload string) (map[string]any, error) {
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, err
	}
	var c map[string]any
	return c, json.Unmarshal(raw, &c)
}

func encodeClaims(c map[string]any) (string, error) {
	raw, err := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(raw), err
}

func hs256(key []byte, input string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(input))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// rewrite decodes a directive's claims, lets edit change them, and returns the header and the
// re-encoded payload plus the original signature, for the tamperers below to sign (or not).
func rewrite(real string, edit func(c map[string]any) error) (header, payload, sig string, err error) {
	p, err := jwsParts(real)
	if err != nil {
		return "", "", "", err
	}
	c, err := claimsOf(p[1])
	if err != nil {
		return "", "", "", err
	}
	if err := edit(c); err != nil {
		return "", "", "", err
	}
	payload, err = encodeClaims(c)
	return p[0], payload, p[2], err
}

// forged: a well-formed directive without masks, signed with a key that is not the service's.
func forged(real string, _ []byte) (string, error) {
	h, payload, _, err := rewrite(real, func(c map[string]any) error {
		c["masks"] = []any{}
		delete(c, "allowFields")
		return nil
	})
	if err != nil {
		return "", err
	}
	other := make([]byte, 32)
	if _, err := rand.Read(other); err != nil {
		return "", err
	}
	return h + "." + payload + "." + hs256(other, h+"."+payload), nil
}

// expired: the real masks and request id, correctly signed, but issued ten minutes ago with a minute to live.
func expired(real string, key []byte) (string, error) {
	h, payload, _, err := rewrite(real, func(c map[string]any) error {
		iat := time.Now().Add(-10 * time.Minute).Unix()
		c["iat"], c["exp"] = iat, iat+60
		return nil
	})
	if err != nil {
		return "", err
	}
	return h + "." + payload + "." + hs256(key, h+"."+payload), nil
}

// widened: the real directive with its masks removed; header and signature kept.
func widened(real string, _ []byte) (string, error) {
	h, payload, sig, err := rewrite(real, func(c map[string]any) error {
		if masks, _ := c["masks"].([]any); len(masks) == 0 {
			return errors.New("the real directive has no masks to drop")
		}
		c["masks"] = []any{}
		return nil
	})
	if err != nil {
		return "", err
	}
	return h + "." + payload + "." + sig, nil
}

// withDirective replaces maskDirective wherever it occurs in the ext_authz metadata (a copy).
func withDirective(meta *structpb.Struct, token string) *structpb.Struct {
	out := proto.Clone(meta).(*structpb.Struct)
	var walk func(s *structpb.Struct)
	walk = func(s *structpb.Struct) {
		for k, v := range s.GetFields() {
			if k == "maskDirective" && v.GetStringValue() != "" {
				s.Fields[k] = structpb.NewStringValue(token)
			} else if sv := v.GetStructValue(); sv != nil {
				walk(sv)
			}
		}
	}
	walk(out)
	return out
}

func tamperedStream(o options, fx *fixtures, t tamper) []string {
	upstream, meta, err := allowForRecords(o, fx)
	if err != nil {
		return []string{err.Error()}
	}
	var key []byte
	if o.maskKey != "" {
		if key, err = readMaskKey(o.maskKey); err != nil {
			return []string{err.Error()}
		}
	}
	token, err := t(upstream[maskHeader], key)
	if err != nil {
		return []string{"building the tampered directive: " + err.Error()}
	}
	upstream[maskHeader] = token
	meta = withDirective(meta, token)
	stream, closeStream, err := openExtProc(o)
	if err != nil {
		return []string{err.Error()}
	}
	defer closeStream()
	defer func() { _ = stream.CloseSend() }()
	var f failures
	for i, step := range envoyOrder(upstream, meta, noTrailers) {
		resp, err := exchange(stream, step.req)
		if err != nil {
			return append(f, step.name+": "+err.Error())
		}
		if err := resp.ValidateAll(); err != nil {
			f.add("%s: ProcessingResponse fails Envoy's validation: %v", step.name, err)
		}
		if ir := resp.GetImmediateResponse(); ir != nil {
			if i != 0 {
				f.add("refused only at %s; the upstream was called with a directive that does not verify", step.name)
			}
			return append(f, checkRefusal(ir)...)
		}
		if step.name == "response_body" {
			if body := resp.GetResponseBody().GetResponse().GetBodyMutation().GetBody(); body == nil || strings.Contains(string(body), originalTaxID) {
				f.add("LEAK: the unmasked body went through")
			}
		}
	}
	return append(f, "no immediate_response: the stream went on with a directive that does not verify")
}

func checkRefusal(ir *extprocv3.ImmediateResponse) []string {
	var f failures
	if code := ir.GetStatus().GetCode(); int32(code) != 500 {
		f.add("immediate_response status %d, want 500", code)
	}
	if strings.Contains(string(ir.GetBody()), originalTaxID) {
		f.add("LEAK: the immediate response carries the unmasked value")
	}
	var body struct {
		Error struct {
			Code      string `json:"code"`
			RequestID string `json:"requestId"`
		} `json:"error"`
	}
	if err := json.Unmarshal(ir.GetBody(), &body); err != nil {
		f.add("immediate_response body is not JSON: %v", err)
	} else if body.Error.Code != directiveInvalid || body.Error.RequestID == "" {
		f.add("immediate_response error = %+v, want code %s and a request id", body.Error, directiveInvalid)
	}
	return f
}
