package controller_test

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/controller"
	"github.com/phiguard/phiguard/internal/metrics"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// Covers the compliance metrics as a reconciler with a registry of its own
// exports them: each series mirrors the stored status, follows a change of a
// safeguard's result and of the decisions, and goes when the workload goes,
// whether it is finalized or found gone. Reconciled by hand in the namespace
// the running manager does not watch, so that no other reconcile races it.
var _ = Describe("Compliance metrics", func() {
	var (
		reg *prometheus.Registry
		r   *controller.PHIWorkloadReconciler
	)
	names := []string{"phiguard_safeguard_status", "phiguard_workload_compliant",
		"phiguard_workload_score_ratio", "phiguard_decision_expiry_timestamp_seconds"}

	BeforeEach(func() {
		ensureNamespace(manualNamespace)
		reg = prometheus.NewRegistry()
		compliance, err := metrics.NewCompliance(reg)
		Expect(err).NotTo(HaveOccurred())
		r = &controller.PHIWorkloadReconciler{
			Client: k8s, Clock: clocktesting.NewFakeClock(time.Now()), Metrics: compliance,
			Registry: safeguard.New(safeguard.Options{}), ExemptNamespaces: []string{"kube-system"},
		}
	})

	reconcileOnce := func(key client.ObjectKey) {
		GinkgoHelper()
		_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: key})
		Expect(err).NotTo(HaveOccurred())
	}
	// exposition writes, in the text format, the series the stored status of
	// w calls for; only the values come from the status, the rest is spelled
	// out here as a dashboard reads it.
	exposition := func(w *phiguardv1alpha1.PHIWorkload) string {
		GinkgoHelper()
		got := &phiguardv1alpha1.PHIWorkload{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(w), got)).To(Succeed())
		Expect(got.Status.Safeguards).To(HaveLen(len(r.Registry)))
		var b strings.Builder
		// Labels in name order, as the text format is compared.
		ns, name := fmt.Sprintf("namespace=%q", w.Namespace), fmt.Sprintf("workload=%q", w.Name)
		if len(got.Status.Decisions) > 0 {
			b.WriteString("# HELP phiguard_decision_expiry_timestamp_seconds Expiry of a PHIWorkload's documented decision turning a safeguard off, in Unix seconds.\n")
			b.WriteString("# TYPE phiguard_decision_expiry_timestamp_seconds gauge\n")
			for _, d := range got.Spec.Decisions {
				fmt.Fprintf(&b, "phiguard_decision_expiry_timestamp_seconds{%s,safeguard=%q,%s} %d\n", ns, d.Safeguard, name, d.Expires.Unix())
			}
		}
		b.WriteString("# HELP phiguard_safeguard_status Status of a PHIWorkload's safeguard condition: 1 for the current status (True, False or Unknown), 0 for the others.\n")
		b.WriteString("# TYPE phiguard_safeguard_status gauge\n")
		holding := 0
		for _, row := range got.Status.Safeguards {
			for _, st := range []metav1.ConditionStatus{metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown} {
				v := 0
				if row.Status == st {
					v = 1
				}
				fmt.Fprintf(&b, "phiguard_safeguard_status{%s,safeguard=%q,status=%q,%s} %d\n", ns, row.Name, st, name, v)
			}
			if row.Status == metav1.ConditionTrue {
				holding++
			}
		}
		compliant := 0
		if got.Status.Compliance == phiguardv1alpha1.Compliant {
			compliant = 1
		}
		b.WriteString("# HELP phiguard_workload_compliant 1 when a PHIWorkload's compliance is Compliant, 0 when NonCompliant or Pending.\n")
		b.WriteString("# TYPE phiguard_workload_compliant gauge\n")
		fmt.Fprintf(&b, "phiguard_workload_compliant{%s,%s} %d\n", ns, name, compliant)
		b.WriteString("# HELP phiguard_workload_score_ratio Share of a PHIWorkload's safeguards that hold (status.score as a ratio, 0 to 1).\n")
		b.WriteString("# TYPE phiguard_workload_score_ratio gauge\n")
		fmt.Fprintf(&b, "phiguard_workload_score_ratio{%s,%s} %g\n", ns, name, float64(holding)/float64(len(got.Status.Safeguards)))
		Expect(got.Status.Score).To(Equal(fmt.Sprintf("%d/%d", holding, len(got.Status.Safeguards))))
		return b.String()
	}
	integrity := func(status metav1.ConditionStatus) float64 {
		GinkgoHelper()
		families, err := reg.Gather()
		Expect(err).NotTo(HaveOccurred())
		for _, f := range families {
			for _, m := range f.GetMetric() {
				l := map[string]string{}
				for _, p := range m.GetLabel() {
					l[p.GetName()] = p.GetValue()
				}
				if f.GetName() == "phiguard_safeguard_status" && l["safeguard"] == string(phiguardv1alpha1.IntegrityProtected) && l["status"] == string(status) {
					return m.GetGauge().GetValue()
				}
			}
		}
		Fail("no IntegrityProtected series for status " + string(status))
		return 0
	}

	It("mirrors the status as it changes and forgets a finalized workload", func() {
		selector := map[string]string{"app": "metrics-records"}
		w := newWorkload(manualNamespace, "metrics-records", func(w *phiguardv1alpha1.PHIWorkload) {
			w.Spec.Selector.MatchLabels = selector
		})
		// Its app container is not hardened: IntegrityProtected (Audit) is False.
		newPod(manualNamespace, "metrics-records-0", selector)
		reconcileOnce(client.ObjectKeyFromObject(w))
		Expect(testutil.GatherAndCompare(reg, strings.NewReader(exposition(w)), names...)).To(Succeed())
		Expect(integrity(metav1.ConditionFalse)).To(Equal(1.0))
		Expect(testutil.CollectAndCount(r.Metrics, "phiguard_decision_expiry_timestamp_seconds")).To(BeZero())

		By("the pod going and a decision turning TransmissionSecure off")
		Expect(k8s.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: manualNamespace, Name: "metrics-records-0"}},
			client.GracePeriodSeconds(0))).To(Succeed())
		expires := metav1.NewTime(time.Now().Add(10 * 24 * time.Hour).Truncate(time.Second))
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(w), w)).To(Succeed())
		w.Spec.TransmissionSecurity = &phiguardv1alpha1.TransmissionSecuritySpec{Mode: phiguardv1alpha1.ModeOff}
		w.Spec.Decisions = []phiguardv1alpha1.Decision{validDecision(phiguardv1alpha1.TransmissionSecure, expires)}
		Expect(k8s.Update(ctx, w)).To(Succeed())
		reconcileOnce(client.ObjectKeyFromObject(w))
		Expect(testutil.GatherAndCompare(reg, strings.NewReader(exposition(w)), names...)).To(Succeed())
		Expect(integrity(metav1.ConditionFalse)).To(BeZero(), "no pod left to judge mutable")
		Expect(testutil.GatherAndCompare(reg, strings.NewReader(fmt.Sprintf(`
# HELP phiguard_decision_expiry_timestamp_seconds Expiry of a PHIWorkload's documented decision turning a safeguard off, in Unix seconds.
# TYPE phiguard_decision_expiry_timestamp_seconds gauge
phiguard_decision_expiry_timestamp_seconds{namespace=%q,safeguard="TransmissionSecure",workload="metrics-records"} %d
`, manualNamespace, expires.Unix())), "phiguard_decision_expiry_timestamp_seconds")).To(Succeed())

		By("deleting the workload: the reconcile that finalizes it removes its series")
		Expect(k8s.Delete(ctx, w)).To(Succeed())
		reconcileOnce(client.ObjectKeyFromObject(w))
		Expect(testutil.CollectAndCount(r.Metrics)).To(BeZero())
	})

	It("forgets a workload it finds gone", func() {
		w := newWorkload(manualNamespace, "metrics-gone", func(w *phiguardv1alpha1.PHIWorkload) {
			w.Spec.Selector.MatchLabels = map[string]string{"app": "metrics-gone"}
		})
		reconcileOnce(client.ObjectKeyFromObject(w))
		Expect(testutil.CollectAndCount(r.Metrics, "phiguard_workload_compliant")).To(Equal(1))

		By("the workload going without a reconcile seeing it deleting (its finalizer removed by hand)")
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(w), w)).To(Succeed())
		w.Finalizers = nil
		Expect(k8s.Update(ctx, w)).To(Succeed())
		Expect(k8s.Delete(ctx, w)).To(Succeed())
		Eventually(func() error { return k8s.Get(ctx, client.ObjectKeyFromObject(w), &phiguardv1alpha1.PHIWorkload{}) }).
			Should(MatchError(ContainSubstring("not found")))
		reconcileOnce(client.ObjectKeyFromObject(w))
		Expect(testutil.CollectAndCount(r.Metrics)).To(BeZero())
	})
})
