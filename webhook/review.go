package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kjson "sigs.k8s.io/json"

	"github.com/continuums/attest/admission"
	"github.com/continuums/attest/workload"
)

// The body of an AdmissionReview is capped at what the API server itself can send, and no more:
//
//   - kube-apiserver refuses a request body over --max-request-bytes, 3 MiB by default (apiServerMaxObjectBytes).
//     etcd's own default limit (1.5 MiB per request) does not bound what webhooks see: admission runs before the
//     object is stored, so an object of up to 3 MiB reaches us;
//   - an UPDATE carries the object and the old object, each up to that size: 2 × 3 MiB = 6 MiB;
//   - around them the review adds its envelope: kind, resource, names, userInfo (groups, extra), options and field
//     names, a few KiB in practice; reviewEnvelopeBytes allows 1 MiB.
//
// MaxRequestBytes = 2 × 3 MiB + 1 MiB = 7 MiB (7,340,032 bytes): every request the API server can make is read,
// a bigger body is refused with 413 before it is parsed. (An object a client sent as protobuf reaches us as JSON,
// which is usually larger; raise the sum with the API server's --max-request-bytes if it was raised.)
const (
	apiServerMaxObjectBytes = 3 << 20
	reviewEnvelopeBytes     = 1 << 20
	MaxRequestBytes         = 2*apiServerMaxObjectBytes + reviewEnvelopeBytes
	// presizedBody is the most of a body's buffer reserved from its Content-Length alone: reviews of workloads are
	// a few KiB; larger ones grow the buffer as their bytes arrive.
	presizedBody = 64 << 10
)

// bodies are the buffers reviews are read into (up to presizedBody, so a large review's buffer is not kept).
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// reviewError is a request we cannot read; Code is the HTTP status and the status code in the response.
type reviewError struct {
	Code int32
	UID  string
	Err  error
}

func (e *reviewError) Error() string { return e.Err.Error() }

func badReview(code int32, uid string, format string, args ...any) *reviewError {
	return &reviewError{Code: code, UID: uid, Err: fmt.Errorf(format, args...)}
}

// decoded is a readable request: the review plus its object and old object as JSON maps.
type decoded struct {
	review    admissionv1.AdmissionReview
	object    map[string]any
	oldObject map[string]any
	options   map[string]any
}

// readReview reads and validates an admission.k8s.io/v1 AdmissionReview with a size cap.
func readReview(r *http.Request) (*decoded, *reviewError) {
	if r.Method != http.MethodPost {
		return nil, badReview(http.StatusMethodNotAllowed, "", "method %s not allowed: send an AdmissionReview with POST", r.Method)
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return nil, badReview(http.StatusUnsupportedMediaType, "", "content type %q not supported: send application/json", ct)
		}
	}
	if r.ContentLength > MaxRequestBytes {
		return nil, badReview(http.StatusRequestEntityTooLarge, "", "request body of %d bytes exceeds the limit of %d bytes", r.ContentLength, MaxRequestBytes)
	}
	// Sized by Content-Length (the API server always sends it), a review is read without regrowing the buffer; at
	// most presizedBody is reserved before the bytes arrive, so a length claimed but never sent holds little. The
	// buffer is reused by the next review: nothing decoded from it refers to its bytes (strings are copied, and so
	// are the raw objects of the slower decoders).
	buf := bodies.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= presizedBody+bytes.MinRead {
			buf.Reset()
			bodies.Put(buf)
		}
	}()
	buf.Grow(int(min(max(r.ContentLength, 0), presizedBody)) + bytes.MinRead)
	_, err := buf.ReadFrom(io.LimitReader(r.Body, MaxRequestBytes+1))
	body := buf.Bytes()
	if err != nil {
		return nil, badReview(http.StatusBadRequest, "", "read request body: %v", err)
	}
	if len(body) > MaxRequestBytes {
		return nil, badReview(http.StatusRequestEntityTooLarge, "", "request body exceeds the limit of %d bytes", MaxRequestBytes)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, badReview(http.StatusBadRequest, "", "empty request body: send an AdmissionReview")
	}
	d := &decoded{}
	onePass := d.decodeFast(body) || d.decodeOnePass(body)
	if !onePass {
		if err := kjson.UnmarshalCaseSensitivePreserveInts(body, &d.review); err != nil {
			return nil, badReview(http.StatusBadRequest, "", "request body is not an AdmissionReview: %v", err)
		}
	}
	if d.review.APIVersion != "admission.k8s.io/v1" || d.review.Kind != "AdmissionReview" {
		return nil, badReview(http.StatusBadRequest, "", "unsupported %q %q: ATTEST reads kind AdmissionReview of apiVersion admission.k8s.io/v1 (set admissionReviewVersions: [v1])",
			d.review.APIVersion, d.review.Kind)
	}
	req := d.review.Request
	if req == nil {
		return nil, badReview(http.StatusBadRequest, "", "AdmissionReview has no request")
	}
	if req.UID == "" {
		return nil, badReview(http.StatusBadRequest, "", "AdmissionReview request has no uid")
	}
	uid := string(req.UID)
	if !onePass {
		if d.object, err = objectMap(req.Object.Raw); err != nil {
			return nil, badReview(http.StatusBadRequest, uid, "request.object: %v", err)
		}
		if d.oldObject, err = objectMap(req.OldObject.Raw); err != nil {
			return nil, badReview(http.StatusBadRequest, uid, "request.oldObject: %v", err)
		}
		if d.options, err = objectMap(req.Options.Raw); err != nil {
			return nil, badReview(http.StatusBadRequest, uid, "request.options: %v", err)
		}
	}
	// Containers are found where request.kind keeps them: a CREATE or UPDATE whose object states another kind
	// would be judged as what it is not (a privileged Deployment read as a Pod). CONNECT carries its options
	// (PodExecOptions) under the Pod's kind and DELETE is not judged, so only the judged operations are checked.
	if req.Operation == admissionv1.Create || req.Operation == admissionv1.Update {
		for _, o := range []struct {
			field string
			obj   map[string]any
		}{{"request.object", d.object}, {"request.oldObject", d.oldObject}} {
			if err := kindAgrees(o.field, req.Kind, o.obj); err != nil {
				return nil, badReview(http.StatusBadRequest, uid, "%v", err)
			}
		}
	}
	return d, nil
}

// kindAgrees checks that obj, where it states its apiVersion and kind, states request.kind (group, version and
// kind: the API server sends the object converted to exactly that version).
func kindAgrees(field string, want metav1.GroupVersionKind, obj map[string]any) error {
	if obj == nil {
		return nil
	}
	wantAPIVersion := want.Version
	if want.Group != "" {
		wantAPIVersion = want.Group + "/" + want.Version
	}
	var stated []string
	agree := true
	for _, f := range []struct{ name, want string }{{"apiVersion", wantAPIVersion}, {"kind", want.Kind}} {
		raw, present := obj[f.name]
		if !present {
			continue
		}
		v, ok := raw.(string)
		if !ok {
			return fmt.Errorf("%s.%s: expected a string, got %s", field, f.name, jsonType(raw))
		}
		stated = append(stated, v)
		agree = agree && v == f.want
	}
	if agree {
		return nil
	}
	return fmt.Errorf("%s is %s, but request.kind is %s %s: ATTEST judges an object as the kind it states, and cannot read a review whose kind and object disagree",
		field, strings.Join(stated, " "), wantAPIVersion, want.Kind)
}

// jsonType names the JSON type of a decoded value.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	}
	return "number"
}

// oneReview is an AdmissionReview whose request's objects decode with the rest of the body in one pass, rather
// than kept as raw bytes and decoded again (a third of reading a review).
type oneReview struct {
	metav1.TypeMeta `json:",inline"`
	Request         *oneRequest `json:"request"`
}

// oneRequest shadows the request's object, oldObject and options (RawExtensions) with decoded JSON values.
type oneRequest struct {
	admissionv1.AdmissionRequest `json:",inline"`
	Object                       any `json:"object"`
	OldObject                    any `json:"oldObject"`
	Options                      any `json:"options"`
}

// decodeFast reads a review with the faster decoder of encoding/json/v2's design (go-json-experiment/json,
// which ATTEST links already for Cedar), its objects' numbers kept as sigs.k8s.io/json keeps them (decodeAny).
// It refuses more than decodeOnePass (duplicate names, invalid UTF-8), which then reads the body as before:
// false leaves the body to it.
func (d *decoded) decodeFast(body []byte) bool {
	var r oneReview
	if err := jsonv2.Unmarshal(body, &r, fastOptions); err != nil || r.Request == nil {
		return false
	}
	return d.take(&r)
}

// fastOptions decode JSON values held as any as sigs.k8s.io/json's UnmarshalCaseSensitivePreserveInts does.
var fastOptions = jsonv2.WithUnmarshalers(jsonv2.UnmarshalFromFunc(func(dec *jsontext.Decoder, v *any) error {
	sc := scratches.Get().(*scratch)
	var err error
	*v, err = sc.decodeAny(dec)
	sc.release()
	return err
}))

// scratch holds the members of the objects and arrays being decoded: each is made at its exact size once its
// members are read (a map grown key by key, as the API server's defaulted objects have more than a map's first
// eight slots, is reallocated on the way).
type scratch struct {
	names []string
	vals  []any
}

var scratches = sync.Pool{New: func() any { return &scratch{} }}

// release empties the scratch (dropping what it referenced) and pools it.
func (sc *scratch) release() {
	clear(sc.names)
	clear(sc.vals)
	sc.names, sc.vals = sc.names[:0], sc.vals[:0]
	scratches.Put(sc)
}

// decodeAny reads the next JSON value: objects as map[string]any, arrays as []any, numbers as int64 when
// written without a decimal point and within int64 (else float64), as sigs.k8s.io/json's PreserveInts reads them.
func (sc *scratch) decodeAny(dec *jsontext.Decoder) (any, error) {
	switch dec.PeekKind() {
	case '{':
		if _, err := dec.ReadToken(); err != nil {
			return nil, err
		}
		base := len(sc.names)
		for dec.PeekKind() != '}' {
			name, err := readName(dec)
			if err != nil {
				return nil, err
			}
			// names and vals stay the same length: the member's slot is taken before its value is read.
			sc.names, sc.vals = append(sc.names, name), append(sc.vals, nil)
			at := len(sc.vals) - 1
			v, err := sc.decodeAny(dec)
			if err != nil {
				return nil, err
			}
			sc.vals[at] = v
		}
		m := make(map[string]any, len(sc.names)-base)
		for i := base; i < len(sc.names); i++ {
			m[sc.names[i]] = sc.vals[i] // a repeated name keeps its last value, as encoding/json does
		}
		clear(sc.vals[base:])
		sc.names, sc.vals = sc.names[:base], sc.vals[:base]
		_, err := dec.ReadToken()
		return m, err
	case '[':
		if _, err := dec.ReadToken(); err != nil {
			return nil, err
		}
		base := len(sc.vals)
		for dec.PeekKind() != ']' {
			v, err := sc.decodeAny(dec)
			if err != nil {
				return nil, err
			}
			sc.names, sc.vals = append(sc.names, ""), append(sc.vals, v)
		}
		a := make([]any, len(sc.vals)-base)
		copy(a, sc.vals[base:])
		clear(sc.vals[base:])
		sc.names, sc.vals = sc.names[:base], sc.vals[:base]
		_, err := dec.ReadToken()
		return a, err
	case '"':
		return readString(dec)
	case '0':
		raw, err := dec.ReadValue()
		if err != nil {
			return nil, err
		}
		if !bytes.ContainsRune(raw, '.') {
			if i, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
				return i, nil
			}
		}
		return strconv.ParseFloat(string(raw), 64)
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, err
	}
	switch tok.Kind() {
	case '"':
		return tok.String(), nil
	case 't', 'f':
		return tok.Bool(), nil
	case 'n':
		return nil, nil
	}
	return nil, fmt.Errorf("unexpected %s", tok.Kind())
}

// readName reads an object's name, taking the common ones of Kubernetes objects from knownNames rather than
// allocating them again.
func readName(dec *jsontext.Decoder) (string, error) { return readQuoted(dec, knownNames, asString) }

// readString reads a string value: one of knownValues, boxed once, or the string copied once from the body (the
// decoder's token would unquote it into a buffer of its own first).
func readString(dec *jsontext.Decoder) (any, error) { return readQuoted(dec, knownValues, asAny) }

// readQuoted reads a JSON string: known's entry for it, or its text copied once from the body (unquoted first when
// the body escapes any of it).
func readQuoted[V any](dec *jsontext.Decoder, known map[string]V, as func(string) V) (V, error) {
	raw, err := dec.ReadValue()
	if err != nil {
		var zero V
		return zero, err
	}
	if inner := raw[1 : len(raw)-1]; bytes.IndexByte(inner, '\\') < 0 {
		if v, ok := known[string(inner)]; ok {
			return v, nil
		}
		return as(string(inner)), nil
	}
	s, err := jsontext.AppendUnquote(nil, raw)
	return as(string(s)), err
}

func asString(s string) string { return s }

func asAny(s string) any { return s }

// knownValues are string values of the objects the webhook reads most, each boxed once.
var knownValues = func() map[string]any {
	m := make(map[string]any, len(workload.CommonValues))
	for _, v := range workload.CommonValues {
		m[v] = v
	}
	return m
}()

// knownNames are field names of the objects the webhook reads most.
var knownNames = func() map[string]string {
	m := make(map[string]string, len(workload.FieldNames))
	for _, n := range workload.FieldNames {
		m[n] = n
	}
	return m
}()

// decodeOnePass reads a well-formed review in one pass; false when body is not one whose objects are all JSON
// objects (or absent), which the two-pass reading then refuses with the field at fault.
func (d *decoded) decodeOnePass(body []byte) bool {
	var r oneReview
	if err := kjson.UnmarshalCaseSensitivePreserveInts(body, &r); err != nil || r.Request == nil {
		return false
	}
	return d.take(&r)
}

// take holds a review read in one pass; false when one of its objects is not a JSON object.
func (d *decoded) take(r *oneReview) bool {
	objs := [3]map[string]any{}
	for i, v := range []any{r.Request.Object, r.Request.OldObject, r.Request.Options} {
		if v == nil {
			continue
		}
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		objs[i] = m
	}
	d.review = admissionv1.AdmissionReview{TypeMeta: r.TypeMeta, Request: &r.Request.AdmissionRequest}
	d.object, d.oldObject, d.options = objs[0], objs[1], objs[2]
	return true
}

// objectMap decodes a raw object; absent or null is nil.
func objectMap(raw []byte) (map[string]any, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		return nil, nil
	}
	if trimmed[0] != '{' {
		return nil, fmt.Errorf("expected a JSON object, got %s", jsonKind(trimmed[0]))
	}
	var m map[string]any
	if err := kjson.UnmarshalCaseSensitivePreserveInts(raw, &m); err != nil {
		return nil, fmt.Errorf("cannot decode: %w", err)
	}
	return m, nil
}

// jsonKind names the JSON value that starts with c.
func jsonKind(c byte) string {
	switch {
	case c == '[':
		return "array"
	case c == '"':
		return "string"
	case c == 't' || c == 'f':
		return "boolean"
	case c == '-' || (c >= '0' && c <= '9'):
		return "number"
	}
	return "invalid JSON"
}

// input converts a readable review into the pipeline's input.
func (d *decoded) input() admission.Input {
	req := d.review.Request
	dryRun := req.DryRun != nil && *req.DryRun
	return admission.Input{
		Request: admission.Request{
			UID: string(req.UID), Operation: string(req.Operation),
			Group: req.Kind.Group, Version: req.Kind.Version, Kind: req.Kind.Kind,
			SubResource: req.SubResource, Namespace: req.Namespace, Name: req.Name, DryRun: dryRun,
			Username: req.UserInfo.Username, Groups: req.UserInfo.Groups, UserUID: req.UserInfo.UID,
			Extra: extra(req.UserInfo.Extra), Options: d.options,
		},
		Object:    d.object,
		OldObject: d.oldObject,
	}
}

// extra is userInfo.extra as plain string lists.
func extra(in map[string]authenticationv1.ExtraValue) map[string][]string {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string][]string, len(in))
	for k, v := range in {
		out[k] = []string(v)
	}
	return out
}

// response builds the one AdmissionResponse shape: allowed or denied (403), unreadable (400/413/415) or
// failed (500); the UID is set whenever the request had one.
func response(uid string, d admission.Decision) *admissionv1.AdmissionReview {
	resp := &admissionv1.AdmissionResponse{
		UID:              types.UID(uid),
		Allowed:          d.Allowed,
		Warnings:         d.Warnings,
		AuditAnnotations: d.AuditAnnotations,
	}
	if !d.Allowed {
		resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: d.Code, Message: d.Message, Reason: reason(d.Code)}
	} else if len(d.Patches) > 0 {
		if patch, err := json.Marshal(d.Patches); err == nil { // plain values from the pipeline: cannot fail
			pt := admissionv1.PatchTypeJSONPatch
			resp.Patch, resp.PatchType = patch, &pt
		}
	}
	return &admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Response: resp,
	}
}

func reason(code int32) metav1.StatusReason {
	switch code {
	case http.StatusForbidden:
		return metav1.StatusReasonForbidden
	case http.StatusBadRequest:
		return metav1.StatusReasonBadRequest
	case http.StatusRequestEntityTooLarge:
		return metav1.StatusReasonRequestEntityTooLarge
	case http.StatusUnsupportedMediaType:
		return metav1.StatusReasonUnsupportedMediaType
	case http.StatusMethodNotAllowed:
		return metav1.StatusReasonMethodNotAllowed
	}
	return metav1.StatusReasonInternalError
}

// writeReview writes the review with the HTTP status: 200 for every answered request, the error code for a
// body we could not read (the API server then applies the webhook's failurePolicy).
func writeReview(w http.ResponseWriter, status int, review *admissionv1.AdmissionReview) {
	body, err := json.Marshal(review)
	if err != nil {
		http.Error(w, "encode AdmissionReview: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
