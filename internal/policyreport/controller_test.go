package policyreport_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/optionalapi"
	"github.com/phiguard/phiguard/internal/policyreport"
	phischeme "github.com/phiguard/phiguard/internal/scheme"
	"github.com/phiguard/phiguard/internal/testenv"
)

var (
	cfg    *rest.Config
	k8s    client.Client
	scheme *runtime.Scheme
)

// TestMain starts one control plane with phiguard's CRDs and both report
// APIs' CRDs, from the modules that ship them. No PHIWorkload controller
// runs: the tests write the workloads' status as it would.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	logf.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zap.Options{}.Level)))
	var err error
	if scheme, err = phischeme.New(); err != nil {
		return fail(err)
	}
	env, err := testenv.New()
	if err != nil {
		return fail(err)
	}
	for _, crds := range []func() ([]string, error){testenv.PolicyReportCRDs, testenv.OpenReportsCRDs} {
		paths, err := crds()
		if err != nil {
			return fail(err)
		}
		env.CRDDirectoryPaths = append(env.CRDDirectoryPaths, paths...)
	}
	if cfg, err = env.Start(); err != nil {
		return fail(err)
	}
	defer func() { _ = env.Stop() }()
	if k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return fail(err)
	}
	return m.Run()
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, err)
	return 1
}

// safeguards are the eight safeguards, as a reconciled status lists them.
var safeguards = []struct {
	name phiguardv1alpha1.SafeguardName
	spec phiguardv1alpha1.Specification
}{
	{phiguardv1alpha1.NetworkIsolated, phiguardv1alpha1.Required},
	{phiguardv1alpha1.EncryptedAtRest, phiguardv1alpha1.Addressable},
	{phiguardv1alpha1.BackupScheduled, phiguardv1alpha1.Required},
	{phiguardv1alpha1.AuditLogging, phiguardv1alpha1.Required},
	{phiguardv1alpha1.TransmissionSecure, phiguardv1alpha1.Addressable},
	{phiguardv1alpha1.AccessControlled, phiguardv1alpha1.Required},
	{phiguardv1alpha1.IntegrityProtected, phiguardv1alpha1.Addressable},
	{phiguardv1alpha1.Available, phiguardv1alpha1.Required},
}

// createWorkload creates a PHIWorkload whose status has every safeguard True
// except those in failing (False) and unknown (Unknown, with reason).
func createWorkload(ctx context.Context, g Gomega, ns, name string, failing []phiguardv1alpha1.SafeguardName, unknown map[phiguardv1alpha1.SafeguardName]string) *phiguardv1alpha1.PHIWorkload {
	w := &phiguardv1alpha1.PHIWorkload{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       phiguardv1alpha1.PHIWorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}},
	}
	g.Expect(k8s.Create(ctx, w)).To(Succeed())
	setStatus(ctx, g, w, failing, unknown)
	return w
}

func setStatus(ctx context.Context, g Gomega, w *phiguardv1alpha1.PHIWorkload, failing []phiguardv1alpha1.SafeguardName, unknown map[phiguardv1alpha1.SafeguardName]string) {
	w.Status = phiguardv1alpha1.PHIWorkloadStatus{Compliance: phiguardv1alpha1.Compliant}
	holding := 0
	for _, sg := range safeguards {
		status, reason := metav1.ConditionTrue, "Holds"
		if r, ok := unknown[sg.name]; ok {
			status, reason = metav1.ConditionUnknown, r
		}
		for _, f := range failing {
			if f == sg.name {
				status, reason = metav1.ConditionFalse, "DoesNotHold"
				w.Status.Compliance = phiguardv1alpha1.NonCompliant
			}
		}
		if status == metav1.ConditionTrue {
			holding++
		}
		meta.SetStatusCondition(&w.Status.Conditions, metav1.Condition{Type: string(sg.name), Status: status, Reason: reason,
			Message: string(sg.name) + " is " + string(status)})
		w.Status.Safeguards = append(w.Status.Safeguards, phiguardv1alpha1.SafeguardStatus{
			Name: sg.name, Section: "§164.3" + string(sg.name[:2]), Specification: sg.spec, Mode: phiguardv1alpha1.ModeAudit,
			ModeSource: phiguardv1alpha1.SourceDefault, Status: status, Reason: reason,
		})
	}
	w.Status.Score = fmt.Sprintf("%d/%d", holding, len(safeguards))
	g.Expect(k8s.Status().Update(ctx, w)).To(Succeed())
}

func newNamespace(ctx context.Context, g Gomega, prefix string) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	g.Expect(k8s.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

func getReport(ctx context.Context, g Gomega, f policyreport.Format, kind, ns string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(f.GVK(kind))
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: policyreport.Policy}, u)).To(Succeed())
	return u
}

func summary(g Gomega, u *unstructured.Unstructured) map[string]int64 {
	s, _, err := unstructured.NestedMap(u.Object, "summary")
	g.Expect(err).NotTo(HaveOccurred())
	out := map[string]int64{}
	for k, v := range s {
		out[k] = v.(int64)
	}
	return out
}

func results(g Gomega, u *unstructured.Unstructured) []map[string]any {
	list, _, err := unstructured.NestedSlice(u.Object, "results")
	g.Expect(err).NotTo(HaveOccurred())
	out := make([]map[string]any, 0, len(list))
	for _, r := range list {
		out = append(out, r.(map[string]any))
	}
	return out
}

// TestPolicyReports runs the controller (wgpolicyk8s.io, the default) in a
// manager whose writes are counted.
func TestPolicyReports(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	writes := &testenv.WriteCounter{}
	mgr, err := ctrl.NewManager(writes.Wrap(cfg), ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	g.Expect(err).NotTo(HaveOccurred())
	f := policyreport.WGPolicy
	g.Expect((&policyreport.Reconciler{Client: mgr.GetClient(), Format: f}).SetupWithManager(mgr)).To(Succeed())
	done := make(chan error)
	go func() { done <- mgr.Start(ctx) }()
	defer func() { cancel(); g.Expect(<-done).To(Succeed()) }()

	ns := newNamespace(ctx, g, "reports")
	api := createWorkload(ctx, g, ns, "api", []phiguardv1alpha1.SafeguardName{phiguardv1alpha1.NetworkIsolated}, nil)
	db := createWorkload(ctx, g, ns, "db", nil, map[phiguardv1alpha1.SafeguardName]string{
		phiguardv1alpha1.BackupScheduled: phiguardv1alpha1.ReasonReadFailed, phiguardv1alpha1.Available: phiguardv1alpha1.ReasonNoPodsSelected})

	t.Run("one report per namespace, a result per workload and safeguard", func(t *testing.T) {
		g := NewWithT(t)
		g.Eventually(func(g Gomega) {
			r := getReport(ctx, g, f, f.Namespaced, ns)
			g.Expect(results(g, r)).To(HaveLen(16))
			g.Expect(summary(g, r)).To(Equal(map[string]int64{"pass": 13, "fail": 1, "warn": 0, "error": 1, "skip": 1}))
		}).WithTimeout(20 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
		r := getReport(ctx, g, f, f.Namespaced, ns)
		first := results(g, r)[0]
		g.Expect(first).To(HaveKeyWithValue("policy", policyreport.Policy))
		g.Expect(first).To(HaveKeyWithValue("rule", "NetworkIsolated"))
		g.Expect(first).To(HaveKeyWithValue("result", "fail"))
		g.Expect(first).To(HaveKeyWithValue("severity", "high"))
		g.Expect(first).To(HaveKeyWithValue("source", "phiguard"))
		g.Expect(first).To(HaveKeyWithValue("message", "NetworkIsolated is False"))
		g.Expect(first["resources"]).To(ConsistOf(HaveKeyWithValue("name", "api")))
		owners := make([]string, 0, len(r.GetOwnerReferences()))
		for _, o := range r.GetOwnerReferences() {
			g.Expect(o.Controller).To(BeNil())
			owners = append(owners, o.Name)
		}
		g.Expect(owners).To(Equal([]string{"api", "db"}))
		g.Expect(r.GetManagedFields()).To(ContainElement(HaveField("Manager", "phiguard")))
	})

	t.Run("the cluster report has a result per workload", func(t *testing.T) {
		g := NewWithT(t)
		g.Eventually(func(g Gomega) {
			var mine []map[string]any
			for _, res := range results(g, getReport(ctx, g, f, f.Cluster, "")) {
				if res["resources"].([]any)[0].(map[string]any)["namespace"] == ns {
					mine = append(mine, res)
				}
			}
			g.Expect(mine).To(ConsistOf(HaveKeyWithValue("result", "fail"), HaveKeyWithValue("result", "pass")))
		}).WithTimeout(10 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	})

	t.Run("a status change updates the report", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(api), api)).To(Succeed())
		setStatus(ctx, g, api, nil, nil)
		g.Eventually(func(g Gomega) {
			g.Expect(summary(g, getReport(ctx, g, f, f.Namespaced, ns))).
				To(Equal(map[string]int64{"pass": 14, "fail": 0, "warn": 0, "error": 1, "skip": 1}))
		}).WithTimeout(10 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	})

	t.Run("steady state writes nothing", func(t *testing.T) {
		g := NewWithT(t)
		// Let the last change settle, then bring both reports back with a
		// change that is not in them (a label).
		g.Eventually(func(g Gomega) {
			n := writes.N()
			time.Sleep(time.Second) //nolint:forbidigo // a quiet period: writes must stop
			g.Expect(writes.N()).To(Equal(n))
		}).WithTimeout(15 * time.Second).Should(Succeed())
		writes.Reset()
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(db), db)).To(Succeed())
		db.Labels = map[string]string{"touched": "yes"}
		g.Expect(k8s.Update(ctx, db)).To(Succeed())
		g.Consistently(writes.N).WithTimeout(3 * time.Second).WithPolling(100 * time.Millisecond).Should(BeZero())
	})

	t.Run("a report someone edits is written again", func(t *testing.T) {
		g := NewWithT(t)
		r := getReport(ctx, g, f, f.Namespaced, ns)
		g.Expect(unstructured.SetNestedSlice(r.Object, []any{}, "results")).To(Succeed())
		g.Expect(k8s.Update(ctx, r)).To(Succeed())
		g.Eventually(func(g Gomega) {
			g.Expect(results(g, getReport(ctx, g, f, f.Namespaced, ns))).To(HaveLen(16))
		}).WithTimeout(10 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	})
}

// TestOpenReports reconciles by hand with --report-api=openreports.
func TestOpenReports(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	httpClient, err := rest.HTTPClientFor(cfg)
	g.Expect(err).NotTo(HaveOccurred())
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	g.Expect(err).NotTo(HaveOccurred())
	writes := &testenv.WriteCounter{}
	c, err := client.New(writes.Wrap(cfg), client.Options{Scheme: scheme, Mapper: mapper})
	g.Expect(err).NotTo(HaveOccurred())
	f := policyreport.OpenReports
	r := &policyreport.Reconciler{Client: c, Format: f, APIs: optionalapi.NewTracker(mapper, c, nil)}

	ns := newNamespace(ctx, g, "openreports")
	createWorkload(ctx, g, ns, "api", nil, nil)
	createWorkload(ctx, g, ns, "db", []phiguardv1alpha1.SafeguardName{phiguardv1alpha1.AuditLogging}, nil)
	req := reconcile.Request{NamespacedName: client.ObjectKey{Namespace: ns}}
	writes.Reset()
	_, err = r.Reconcile(ctx, req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(writes.N()).To(BeEquivalentTo(1))
	report := getReport(ctx, g, f, f.Namespaced, ns)
	g.Expect(report.Object).To(HaveKeyWithValue("source", "phiguard"))
	g.Expect(results(g, report)).To(HaveLen(16))
	g.Expect(summary(g, report)).To(Equal(map[string]int64{"pass": 15, "fail": 1, "warn": 0, "error": 0, "skip": 0}))

	writes.Reset()
	_, err = r.Reconcile(ctx, req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(writes.N()).To(BeZero(), "a second reconcile with nothing changed writes nothing")

	// With no PHIWorkload left the report goes (the garbage collector would
	// too; the cluster report has no owner and relies on this).
	g.Expect(k8s.DeleteAllOf(ctx, &phiguardv1alpha1.PHIWorkload{}, client.InNamespace(ns))).To(Succeed())
	g.Eventually(func(g Gomega) {
		var left phiguardv1alpha1.PHIWorkloadList
		g.Expect(k8s.List(ctx, &left, client.InNamespace(ns))).To(Succeed())
		g.Expect(left.Items).To(BeEmpty())
	}).Should(Succeed())
	_, err = r.Reconcile(ctx, req)
	g.Expect(err).NotTo(HaveOccurred())
	gone := &unstructured.Unstructured{}
	gone.SetGroupVersionKind(f.GVK(f.Namespaced))
	err = k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: policyreport.Policy}, gone)
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "got %v", err)
}

// TestAbsentAPI: without the report CRDs the controller neither reads nor
// writes a report, returns no error and does not requeue.
func TestAbsentAPI(t *testing.T) {
	g := NewWithT(t)
	sch := runtime.NewScheme()
	g.Expect(phiguardv1alpha1.AddToScheme(sch)).To(Succeed())
	g.Expect(apiextensionsv1.AddToScheme(sch)).To(Succeed())
	touched := 0
	c := fake.NewClientBuilder().WithScheme(sch).WithInterceptorFuncs(interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if _, crd := obj.(*metav1.PartialObjectMetadata); !crd { // the tracker looks for the API's CRDs
				touched++
			}
			return c.Get(ctx, key, obj, opts...)
		},
		Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			touched++
			return c.Apply(ctx, obj, opts...)
		},
	}).Build()
	mapper := meta.NewDefaultRESTMapper(nil) // serves nothing
	for _, f := range []policyreport.Format{policyreport.WGPolicy, policyreport.OpenReports} {
		r := &policyreport.Reconciler{Client: c, Format: f, APIs: optionalapi.NewTracker(mapper, c, nil)}
		for _, req := range []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: "ns"}}, {}} {
			res, err := r.Reconcile(context.Background(), req)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(res.IsZero()).To(BeTrue())
		}
	}
	g.Expect(touched).To(BeZero())
}
