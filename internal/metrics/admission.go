package metrics

import (
	"context"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// The results phiguard_admission_decisions_total counts.
const (
	// ResultAllowed is an admitted request without warnings.
	ResultAllowed = "allowed"
	// ResultWarned is an admitted request with warnings (Audit mode, or a
	// webhook that only warns).
	ResultWarned = "warned"
	// ResultDenied is a refused request (Enforce mode).
	ResultDenied = "denied"
	// ResultErrored is a request the webhook could not decide (a bad request,
	// or a read that failed); the apiserver then applies the failurePolicy.
	ResultErrored = "errored"
)

// CountAdmissions returns server with every admission webhook registered on
// it counting its decisions in phiguard_admission_decisions_total{webhook,
// result}, registered with reg: webhook is the path it is served at (one per
// webhook phiguard serves, about ten) and result one of the four Result
// values, so the series are bounded by the webhooks, never by the objects.
// controller-runtime's own controller_runtime_webhook_requests_total counts
// HTTP codes, which are 200 for an admission denied as for one allowed.
func CountAdmissions(server webhook.Server, reg prometheus.Registerer) (webhook.Server, error) {
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "phiguard_admission_decisions_total",
		Help: "Admission requests phiguard's webhooks decided, by webhook path and result (allowed, warned, denied, errored).",
	}, []string{"webhook", "result"})
	if err := reg.Register(decisions); err != nil {
		return nil, fmt.Errorf("registering phiguard_admission_decisions_total: %w", err)
	}
	return &countingServer{Server: server, decisions: decisions}, nil
}

// countingServer wraps the handler of each admission webhook registered on it.
type countingServer struct {
	webhook.Server
	decisions *prometheus.CounterVec
}

// Register implements webhook.Server.
func (s *countingServer) Register(path string, h http.Handler) {
	if a, ok := h.(*webhook.Admission); ok && a.Handler != nil {
		a.Handler = &countingHandler{inner: a.Handler, path: path, decisions: s.decisions}
	}
	s.Server.Register(path, h)
}

// countingHandler counts each response of inner.
type countingHandler struct {
	inner     admission.Handler
	path      string
	decisions *prometheus.CounterVec
}

// Handle implements admission.Handler.
func (h *countingHandler) Handle(ctx context.Context, req admission.Request) admission.Response {
	resp := h.inner.Handle(ctx, req)
	h.decisions.WithLabelValues(h.path, AdmissionResult(resp)).Inc()
	return resp
}

// AdmissionResult classifies a response: denied when refused with 403 (what
// admission.Denied answers), errored when refused otherwise (admission.Errored),
// warned when admitted with warnings, allowed otherwise.
func AdmissionResult(resp admission.Response) string {
	switch {
	case !resp.Allowed && resp.Result != nil && resp.Result.Code == http.StatusForbidden:
		return ResultDenied
	case !resp.Allowed:
		return ResultErrored
	case len(resp.Warnings) > 0:
		return ResultWarned
	default:
		return ResultAllowed
	}
}
