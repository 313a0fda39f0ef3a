// Package scale is phiguard's scale harness: it starts the real control plane
// and the controller in-process, creates many PHIWorkloads and pods, and
// measures how long they take to settle, how many reconciles and writes that
// took, and how much memory the process holds. It then checks that a settled
// cluster costs nothing: no write request at all over a quiet window.
//
// `make test` runs it small, for correctness; `make scale` runs it large and
// prints the figures:
//
//	PHIGUARD_SCALE_NAMESPACES=20 PHIGUARD_SCALE_WORKLOADS=10 PHIGUARD_SCALE_PODS=10 make scale
package scale

import (
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
)

func envInt(t *testing.T, key string, fallback int) int {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		return fallback
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", key, v)
	}
	return n
}

func TestScale(t *testing.T) {
	g := NewWithT(t)
	namespaces := envInt(t, "PHIGUARD_SCALE_NAMESPACES", 4)
	perNamespace := envInt(t, "PHIGUARD_SCALE_WORKLOADS", 5)
	podsPer := envInt(t, "PHIGUARD_SCALE_PODS", 3)
	quiet := time.Duration(envInt(t, "PHIGUARD_SCALE_QUIET_SECONDS", 3)) * time.Second
	total := namespaces * perNamespace

	k8s, count := startControlPlaneAndManager(t)
	ctx := t.Context()
	reconcilesBefore := reconcileTotal(g)

	start := time.Now()
	for n := range namespaces {
		ns := fmt.Sprintf("scale-%d", n)
		g.Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		for w := range perNamespace {
			app := fmt.Sprintf("records-%d", w)
			for p := range podsPer {
				g.Expect(k8s.Create(ctx, &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("%s-%d", app, p), Labels: map[string]string{"app": app}},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/records:1"}}},
				})).To(Succeed())
			}
			g.Expect(k8s.Create(ctx, &phiguardv1alpha1.PHIWorkload{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: app},
				Spec: phiguardv1alpha1.PHIWorkloadSpec{
					Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
				},
			})).To(Succeed())
		}
	}
	created := time.Since(start)

	settled := func(g Gomega) {
		var list phiguardv1alpha1.PHIWorkloadList
		g.Expect(k8s.List(ctx, &list)).To(Succeed())
		g.Expect(list.Items).To(HaveLen(total))
		for _, w := range list.Items {
			g.Expect(w.Status.ObservedGeneration).To(Equal(w.Generation), "%s/%s", w.Namespace, w.Name)
			g.Expect(w.Status.MatchedPods).To(BeEquivalentTo(podsPer), "%s/%s", w.Namespace, w.Name)
			g.Expect(meta.FindStatusCondition(w.Status.Conditions, phiguardv1alpha1.ReadyCondition)).NotTo(BeNil())
			g.Expect(w.Status.Safeguards).To(HaveLen(len(safeguard.New(safeguard.Options{}).Names())))
		}
	}
	g.Eventually(settled, 5*time.Minute, 200*time.Millisecond).Should(Succeed())
	toSettle := time.Since(start)
	reconciles := reconcileTotal(g) - reconcilesBefore

	// Events are sent by a background broadcaster, one request at a time: let
	// the backlog of the creation phase drain (writes stop for half a second).
	// A reconcile that kept writing would never stop, and fail here.
	drainStart := time.Now()
	g.Eventually(func(g Gomega) {
		n := count.writes.Load()
		g.Consistently(count.writes.Load, 500*time.Millisecond, 50*time.Millisecond).Should(Equal(n))
	}, 5*time.Minute, 10*time.Millisecond).Should(Succeed())
	drained := time.Since(drainStart)
	writesToSettle := count.writes.Load()
	writesByRequest := count.resources()

	// Steady state: with nothing changing, the controller must not write at all.
	count.reset()
	g.Consistently(func() int64 { return count.writes.Load() }, quiet, 100*time.Millisecond).Should(BeZero(),
		"a settled cluster must cause no write requests")

	goruntime.GC()
	var mem goruntime.MemStats
	goruntime.ReadMemStats(&mem)
	t.Logf("scale: %d namespaces x %d workloads x %d pods = %d PHIWorkloads, %d pods",
		namespaces, perNamespace, podsPer, total, total*podsPer)
	t.Logf("scale: created in %s (one client, sequential); all settled %s after the first create, %s after the last",
		created.Round(time.Millisecond), toSettle.Round(time.Millisecond), (toSettle - created).Round(time.Millisecond))
	t.Logf("scale: %d reconciles (%.2f per workload), %d write requests in all (NetworkPolicies, status patches, Events; the Event backlog drained %s after the statuses settled)",
		reconciles, float64(reconciles)/float64(total), writesToSettle, drained.Round(time.Millisecond))
	t.Logf("scale: write requests to settle by request: %v (%.2f per workload)", writesByRequest, float64(writesToSettle)/float64(total))
	t.Logf("scale: 0 write requests over a %s quiet window; heap in use after GC %.1f MiB (control-plane processes excluded)",
		quiet, float64(mem.HeapInuse)/(1<<20))
}

// reconcileTotal reads controller-runtime's reconcile counter for our controller.
func reconcileTotal(g Gomega) int {
	families, err := crmetrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	total := 0.0
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == "phiworkload" {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return int(total)
}
