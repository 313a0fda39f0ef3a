package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/metrics"
	"github.com/phiguard/phiguard/internal/optionalapi"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// exportedMetrics returns the metric families the manager exports, by name,
// gathered from the registry it serves: controller-runtime's, with
// phiguard's collectors registered on it as cmd/main.go registers them. A
// metric vector exports nothing until it has a series, so one sample of each
// kind passes through the real code first: a workload's compliance recorded,
// a backup judged fresh and its restore drill verified, an admission request served by the webhook server, a
// reconcile run by a controller.
func exportedMetrics(t *testing.T) map[string]dto.MetricType {
	t.Helper()
	reg := crmetrics.Registry
	backups, err := safeguard.NewBackupMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	registry := safeguard.New(safeguard.Options{BackupMetrics: backups})
	compliance, err := metrics.NewCompliance(reg)
	if err != nil {
		t.Fatal(err)
	}
	server, err := metrics.CountAdmissions(webhook.NewServer(webhook.Options{}), reg)
	if err != nil {
		t.Fatal(err)
	}

	now := time.Now()
	w := &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: "records", Name: "patient-records"}}
	w.Spec.Selector = metav1.LabelSelector{MatchLabels: map[string]string{"app": "records"}}
	w.Spec.Backup = &phiguardv1alpha1.BackupSpec{Mode: phiguardv1alpha1.ModeAudit, RestoreTest: "@weekly"}
	w.Spec.Decisions = []phiguardv1alpha1.Decision{{Safeguard: phiguardv1alpha1.TransmissionSecure,
		Kind: phiguardv1alpha1.DecisionAlternative, Expires: metav1.NewTime(now.Add(30 * 24 * time.Hour))}}
	recordCompliance(compliance, registry, w)
	judgeBackup(t, registry, w, now)
	serveAdmission(t, server)
	runReconcile(t)

	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gathering the manager's metrics: %v", err)
	}
	out := map[string]dto.MetricType{}
	for _, f := range families {
		out[f.GetName()] = f.GetType()
	}
	return out
}

// recordCompliance records a status with every safeguard of the registry,
// one of them off by the workload's decision.
func recordCompliance(c *metrics.Compliance, registry safeguard.Registry, w *phiguardv1alpha1.PHIWorkload) {
	status := &phiguardv1alpha1.PHIWorkloadStatus{Compliance: phiguardv1alpha1.NonCompliant}
	for _, name := range registry.Names() {
		status.Safeguards = append(status.Safeguards, phiguardv1alpha1.SafeguardStatus{Name: name, Status: metav1.ConditionTrue})
	}
	status.Safeguards[0].Status = metav1.ConditionFalse
	status.Decisions = []phiguardv1alpha1.DecisionStatus{{Safeguard: w.Spec.Decisions[0].Safeguard}}
	c.Record(w, status)
}

// judgeBackup runs the registry's backup safeguard, in Audit mode, on a
// Velero Schedule covering the workload whose last backup completed an hour
// ago: the judgment that exports the time of the last successful backup.
func judgeBackup(t *testing.T, registry safeguard.Registry, w *phiguardv1alpha1.PHIWorkload, now time.Time) {
	t.Helper()
	sg := registry.Get(phiguardv1alpha1.BackupScheduled)
	if sg == nil {
		t.Fatal("the registry has no BackupScheduled safeguard")
	}
	settings, _, err := registry.Effective(&w.Spec.SafeguardSettings, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &safeguard.Scope{Workload: w, Settings: settings, Now: now}
	s.SetAPI(optionalapi.Velero, optionalapi.Served)
	ns := settings.Backup.VeleroNamespace
	at := func(ago time.Duration) *metav1.Time { return &metav1.Time{Time: now.Add(-ago)} }
	safeguard.VeleroObjects.Set(s, &safeguard.Velero{
		Schedules: []velerov1.Schedule{{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nightly", CreationTimestamp: *at(48 * time.Hour)},
			Spec: velerov1.ScheduleSpec{Schedule: "0 2 * * *", Template: velerov1.BackupSpec{
				IncludedNamespaces: []string{w.Namespace}, StorageLocation: "default"}},
		}},
		Backups: []velerov1.Backup{{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nightly-1", Labels: map[string]string{velerov1.ScheduleNameLabel: "nightly"}},
			Status: velerov1.BackupStatus{Phase: velerov1.BackupPhaseCompleted,
				StartTimestamp: at(2 * time.Hour), CompletionTimestamp: at(time.Hour)},
		}},
		StorageLocations: []velerov1.BackupStorageLocation{{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"},
			Spec:       velerov1.BackupStorageLocationSpec{Provider: "aws", Config: map[string]string{"kmsKeyId": "alias/phi"}},
			Status:     velerov1.BackupStorageLocationStatus{Phase: velerov1.BackupStorageLocationPhaseAvailable},
		}},
	})
	// A restore drill of that backup, verified half an hour ago.
	safeguard.DrillObjects.Set(s, &safeguard.Drills{Restores: []velerov1.Restore{{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "phiguard-drill-1", CreationTimestamp: *at(50 * time.Minute),
			Annotations: map[string]string{
				safeguard.DrillResultAnnotation:   safeguard.DrillVerified,
				safeguard.DrillMessageAnnotation:  "restored backup nightly-1 and verified 3 objects",
				safeguard.DrillStartedAnnotation:  at(50 * time.Minute).UTC().Format(time.RFC3339),
				safeguard.DrillFinishedAnnotation: at(30 * time.Minute).UTC().Format(time.RFC3339),
			}},
		Spec:   velerov1.RestoreSpec{BackupName: "nightly-1"},
		Status: velerov1.RestoreStatus{Phase: velerov1.RestorePhaseCompleted},
	}}})
	if r := sg.Reconcile(t.Context(), s); r.Err != nil || r.Reason != phiguardv1alpha1.ReasonRestoreVerified {
		t.Fatalf("the sample backup was judged %s (%s, error %v), not %s: the sample needs updating",
			r.Reason, r.Message, r.Err, phiguardv1alpha1.ReasonRestoreVerified)
	}
}

// serveAdmission serves one admission request through the webhook server's
// handler, as the apiserver's calls go.
func serveAdmission(t *testing.T, server webhook.Server) {
	t.Helper()
	refuse := func(context.Context, admission.Request) admission.Response {
		return admission.Denied("a sample refusal")
	}
	server.Register("/validate-sample", &webhook.Admission{Handler: admission.HandlerFunc(refuse)})
	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","operation":"CREATE",` +
		`"kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"object":{}}}`
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/validate-sample", strings.NewReader(review))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	server.WebhookMux().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"allowed":false`) {
		t.Fatalf("the sample admission request was answered %d: %s", rec.Code, rec.Body)
	}
}

// runReconcile runs a controller until it has reconciled one request.
func runReconcile(t *testing.T) {
	t.Helper()
	done := make(chan struct{})
	c, err := controller.NewUnmanaged("sample", controller.Options{
		Reconciler: reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) {
			close(done)
			return reconcile.Result{}, nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan event.GenericEvent, 1)
	events <- event.GenericEvent{Object: &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: "records", Name: "sample"}}}
	if err := c.Watch(source.Channel(events, &handler.EnqueueRequestForObject{})); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan error, 1)
	go func() { stopped <- c.Start(ctx) }()
	select {
	case <-done:
	case err := <-stopped:
		t.Fatalf("the sample controller stopped before reconciling: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the sample controller reconciled nothing in 30s")
	}
	cancel()
	if err := <-stopped; err != nil {
		t.Fatalf("stopping the sample controller: %v", err)
	}
}
