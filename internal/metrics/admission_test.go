package metrics

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// recordingServer is a webhook.Server that keeps what is registered on it.
type recordingServer struct {
	webhook.Server
	handlers map[string]http.Handler
}

func (s *recordingServer) Register(path string, h http.Handler) { s.handlers[path] = h }

func TestCountAdmissionsCountsEachWebhooksDecisions(t *testing.T) {
	reg := prometheus.NewRegistry()
	inner := &recordingServer{handlers: map[string]http.Handler{}}
	server, err := CountAdmissions(inner, reg)
	if err != nil {
		t.Fatal(err)
	}
	answers := []admission.Response{
		admission.Allowed(""),
		admission.Allowed("").WithWarnings("phiguard (Audit): pin the image by digest"),
		admission.Denied("PersistentVolumeClaim data would keep ePHI unencrypted"),
		admission.Errored(http.StatusBadRequest, errors.New("cannot decode")),
		admission.Denied("refused again"),
	}
	next := 0
	server.Register("/validate-x", &webhook.Admission{Handler: admission.HandlerFunc(
		func(context.Context, admission.Request) admission.Response { next++; return answers[next-1] })})
	server.Register("/healthz-like", http.NotFoundHandler()) // not an admission webhook: passed through unchanged

	a, ok := inner.handlers["/validate-x"].(*webhook.Admission)
	if !ok {
		t.Fatalf("the admission webhook was not registered on the wrapped server: %T", inner.handlers["/validate-x"])
	}
	if _, ok := inner.handlers["/healthz-like"].(*webhook.Admission); ok {
		t.Fatal("a plain handler became an admission webhook")
	}
	for range answers {
		a.Handle(t.Context(), admission.Request{})
	}
	want := `
# HELP phiguard_admission_decisions_total Admission requests phiguard's webhooks decided, by webhook path and result (allowed, warned, denied, errored).
# TYPE phiguard_admission_decisions_total counter
phiguard_admission_decisions_total{result="allowed",webhook="/validate-x"} 1
phiguard_admission_decisions_total{result="denied",webhook="/validate-x"} 2
phiguard_admission_decisions_total{result="errored",webhook="/validate-x"} 1
phiguard_admission_decisions_total{result="warned",webhook="/validate-x"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "phiguard_admission_decisions_total"); err != nil {
		t.Fatal(err)
	}
	if _, err := CountAdmissions(inner, reg); err == nil {
		t.Fatal("registering the counter twice must fail, not count twice")
	}
}
