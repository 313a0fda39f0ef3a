//go:build e2e

package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
)

// faultKind is how an injected fault answers a write.
type faultKind int

const (
	// conflict answers 409 Conflict without forwarding the request, as the
	// apiserver does to a write based on a stale resourceVersion.
	conflict faultKind = iota
	// internalError answers 500 InternalError without forwarding the request:
	// the write did not happen.
	internalError
	// lostReply forwards the request and answers 500 InternalError in place
	// of the apiserver's answer: the write happened, but the client thinks it
	// failed (a connection cut after the commit, an apiserver that timed out
	// waiting for etcd). A client that creates with generated names makes a
	// duplicate when it retries.
	lostReply
	faultKinds
)

func (k faultKind) String() string {
	switch k {
	case conflict:
		return "409 Conflict (not forwarded)"
	case internalError:
		return "500 InternalError (not forwarded)"
	case lostReply:
		return "500 InternalError (forwarded, reply lost)"
	}
	return fmt.Sprintf("faultKind(%d)", int(k))
}

// injector fails a share of the write requests (every method but GET) sent
// through the configs it wraps, each with one of the fault kinds, drawn from
// a seeded generator: the same seed draws the same sequence of faults (which
// request gets which depends on the order in which concurrent reconciles
// send them).
type injector struct {
	// rate is the share of writes that fail, in [0, 1].
	rate float64
	// exempt, when set, says which requests are never failed.
	exempt func(*http.Request) bool

	mu  sync.Mutex
	rng *rand.Rand

	// writes counts every write request seen, failed or not.
	writes atomic.Int64
	// injected counts the failed requests by kind.
	injected [faultKinds]atomic.Int64

	byRequestMu sync.Mutex
	// byRequest counts the failed requests by "<METHOD> <resource>".
	byRequest map[string]int64
}

// newInjector returns an injector that fails rate of the writes, drawing
// from a generator seeded with seed.
func newInjector(rate float64, seed uint64, exempt func(*http.Request) bool) *injector {
	return &injector{rate: rate, exempt: exempt, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), byRequest: map[string]int64{}}
}

// wrap returns a copy of cfg whose requests go through the injector.
func (in *injector) wrap(cfg *rest.Config) *rest.Config {
	out := rest.CopyConfig(cfg)
	out.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) { return in.roundTrip(rt, req) })
	}
	return out
}

// draw decides whether a write fails, and how.
func (in *injector) draw() (faultKind, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.rng.Float64() >= in.rate {
		return 0, false
	}
	return faultKind(in.rng.IntN(int(faultKinds))), true
}

func (in *injector) roundTrip(rt http.RoundTripper, req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodGet || (in.exempt != nil && in.exempt(req)) {
		return rt.RoundTrip(req)
	}
	in.writes.Add(1)
	kind, fail := in.draw()
	if !fail {
		return rt.RoundTrip(req)
	}
	in.injected[kind].Add(1)
	target := parsePath(req.URL.Path)
	in.byRequestMu.Lock()
	in.byRequest[req.Method+" "+target.resource.String()]++
	in.byRequestMu.Unlock()

	cause := fmt.Errorf("injected fault: %s %s", req.Method, req.URL.Path)
	switch kind {
	case conflict:
		closeBody(req)
		return statusResponse(req, apierrors.NewConflict(target.resource, target.name, cause).ErrStatus)
	case internalError:
		closeBody(req)
		return statusResponse(req, apierrors.NewInternalError(cause).ErrStatus)
	default: // lostReply
		resp, err := rt.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return statusResponse(req, apierrors.NewInternalError(cause).ErrStatus)
	}
}

// counts returns the failed requests by kind.
func (in *injector) counts() [faultKinds]int64 {
	var out [faultKinds]int64
	for k := range out {
		out[k] = in.injected[k].Load()
	}
	return out
}

// requests returns a copy of the failed requests by "<METHOD> <resource>".
func (in *injector) requests() map[string]int64 {
	in.byRequestMu.Lock()
	defer in.byRequestMu.Unlock()
	return maps.Clone(in.byRequest)
}

// summary says what failed, for the log.
func (in *injector) summary(seed uint64) string {
	counts := in.counts()
	return fmt.Sprintf("seed %d: %d of %d writes failed: %d %s, %d %s, %d %s; by request %v",
		seed, counts[conflict]+counts[internalError]+counts[lostReply], in.writes.Load(),
		counts[conflict], conflict, counts[internalError], internalError, counts[lostReply], lostReply, in.requests())
}

// closeBody closes the body of a request that is answered without being
// sent: a RoundTripper must always close it.
func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// statusResponse is the response the apiserver sends with a failure: the
// Status as JSON, with its code as the HTTP status, which client-go decodes
// into the same *apierrors.StatusError.
func statusResponse(req *http.Request, status metav1.Status) (*http.Response, error) {
	status.Kind, status.APIVersion = "Status", "v1"
	body, err := json.Marshal(status)
	if err != nil {
		return nil, fmt.Errorf("encoding the injected status: %w", err)
	}
	code := int(status.Code)
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", code, http.StatusText(code)),
		StatusCode:    code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": []string{"application/json"}},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}, nil
}

// apiTarget is what a request path names.
type apiTarget struct {
	resource schema.GroupResource
	// name is empty for a collection (a create).
	name string
}

// parsePath reads the resource and name from an API path such as
// /apis/<group>/<version>/namespaces/<ns>/<resource>/<name>/<subresource>
// or /api/v1/<resource>/<name>.
func parsePath(path string) apiTarget {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	var group string
	switch {
	case len(parts) >= 3 && parts[0] == "apis":
		group, parts = parts[1], parts[3:]
	case len(parts) >= 2 && parts[0] == "api":
		parts = parts[2:]
	default:
		return apiTarget{resource: schema.GroupResource{Resource: path}}
	}
	namespaceSubresource := len(parts) == 3 && (parts[2] == "status" || parts[2] == "finalize")
	if len(parts) >= 3 && parts[0] == "namespaces" && !namespaceSubresource {
		parts = parts[2:] // a namespaced resource, not a Namespace itself
	}
	t := apiTarget{}
	if len(parts) > 0 {
		t.resource = schema.GroupResource{Group: group, Resource: parts[0]}
	}
	if len(parts) > 1 {
		t.name = parts[1]
	}
	if len(parts) > 2 {
		t.resource.Resource += "/" + parts[2]
	}
	return t
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
