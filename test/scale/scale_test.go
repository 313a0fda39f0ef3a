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
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
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
	driftEvents := envInt(t, "PHIGUARD_SCALE_DRIFT", 5)
	total := namespaces * perNamespace
	scale := fmt.Sprintf("%d PHIWorkloads, %d pods", total, total*podsPer)

	// As installed: the apiserver calls the manager's admission webhooks for
	// every PHIWorkload and pod created.
	cp := startControlPlane(t, true)
	k8s, ctx := cp.k8s, t.Context()
	first := cp.startManager(t)
	watched := watch(t, cp.cfg, k8s.Scheme())
	reconcilesBefore := reconcileTotal(g)

	start := time.Now()
	createWorkloads(t, k8s, namespaces, perNamespace, podsPer)
	created := time.Since(start)

	settled := func(g Gomega) {
		var list phiguardv1alpha1.PHIWorkloadList
		g.Expect(watched.List(ctx, &list)).To(Succeed())
		g.Expect(list.Items).To(HaveLen(total))
		for _, w := range list.Items {
			g.Expect(w.Status.ObservedGeneration).To(Equal(w.Generation), "%s/%s", w.Namespace, w.Name)
			g.Expect(w.Status.MatchedPods).To(BeEquivalentTo(podsPer), "%s/%s", w.Namespace, w.Name)
			g.Expect(meta.FindStatusCondition(w.Status.Conditions, phiguardv1alpha1.ReadyCondition)).NotTo(BeNil())
			g.Expect(w.Status.Safeguards).To(HaveLen(len(safeguard.New(safeguard.Options{}).Names())))
		}
	}
	g.Eventually(settled, 30*time.Minute, 200*time.Millisecond).Should(Succeed())
	toSettle := time.Since(start)
	reconciles := reconcileTotal(g) - reconcilesBefore

	// Events are sent by a background broadcaster: let the backlog of the
	// creation phase drain. A reconcile that kept writing would never stop,
	// and fail here.
	drainStart := time.Now()
	drain(g, first.count)
	drained := time.Since(drainStart)
	writesToSettle := first.count.writes.Load()
	writesByRequest := first.count.resources()
	events := int64(0)
	for request, n := range writesByRequest {
		if strings.HasSuffix(request, " events") {
			events += n
		}
	}

	// Steady state: with nothing changing, the controller must not write at
	// all, not even when it re-verifies everything: the manager is replaced
	// by a new one, whose first pass reconciles every workload again.
	first.count.reset()
	beforeResync := reconcileTotal(g)
	first.Stop()
	second := cp.startManager(t)
	resyncStart := time.Now()
	g.Eventually(func() int { return reconcileTotal(g) - beforeResync }, 30*time.Minute, 100*time.Millisecond).
		Should(BeNumerically(">=", total), "the new manager reconciles every workload")
	resynced := time.Since(resyncStart)
	g.Consistently(second.count.resources, quiet, 100*time.Millisecond).Should(BeEmpty(),
		"a settled cluster must cause no write requests, even re-verified in full")
	reads := second.count.readsByResource()
	g.Expect(sum(reads)).To(BeNumerically("<", total),
		"re-verifying reads from the cache, not the apiserver: these reads go through the rate limiter")
	quietWrites := first.count.writes.Load() + second.count.writes.Load()

	// Drift with everything loaded: phiguard's NetworkPolicy of some
	// workloads edited or deleted, and the time until it is back.
	heals := measureDrift(t, k8s, driftTargets(namespaces, perNamespace, driftEvents))

	goruntime.GC()
	var mem goruntime.MemStats
	goruntime.ReadMemStats(&mem)
	t.Logf("scale: %d namespaces x %d workloads x %d pods = %s", namespaces, perNamespace, podsPer, scale)
	t.Logf("scale: created in %s (%.0f objects/s); all settled %s after the first create, %s after the last",
		created.Round(time.Millisecond), float64(total*(podsPer+1))/created.Seconds(),
		toSettle.Round(time.Millisecond), (toSettle - created).Round(time.Millisecond))
	t.Logf("scale: %d reconciles (%.2f per workload), %d write requests in all (the Event backlog drained %s after the statuses settled)",
		reconciles, float64(reconciles)/float64(total), writesToSettle, drained.Round(time.Millisecond))
	t.Logf("scale: write requests to settle by request: %v (%.2f per workload)", writesByRequest, float64(writesToSettle)/float64(total))
	t.Logf("scale: a new manager re-verified all %d workloads in %s (reads past its cache: %v); %d write requests from then over a %s quiet window",
		total, resynced.Round(time.Millisecond), reads, quietWrites, quiet)
	t.Logf("scale: drift with %d workloads loaded: %s", total, summary(heals))
	t.Logf("scale: heap in use after GC %.1f MiB (this process: manager, test client and caches; control-plane processes excluded)",
		float64(mem.HeapInuse)/(1<<20))

	record(t, figure{Name: "writes_per_workload", Value: float64(writesToSettle-events) / float64(total), Unit: "writes", Scale: scale})
	record(t, figure{Name: "events_per_workload", Value: float64(events) / float64(total), Unit: "Events", Scale: scale})
	record(t, figure{Name: "settle_after_last_create_s", Value: (toSettle - created).Seconds(), Unit: "s", Scale: scale})
	record(t, figure{Name: "event_backlog_s", Value: drained.Seconds(), Unit: "s", Scale: scale})
	record(t, figure{Name: "quiet_writes", Value: float64(quietWrites), Unit: "writes", Scale: fmt.Sprintf("%s; %s window after a full re-verification", scale, quiet)})
	record(t, figure{Name: "drift_heal_p50_ms", Value: ms(percentile(heals, 0.5)), Unit: "ms", Scale: scale})
	record(t, figure{Name: "drift_heal_p99_ms", Value: ms(percentile(heals, 0.99)), Unit: "ms", Scale: scale})
}

// createWorkloads creates, from 8 clients at once, the namespaces scale-<n>
// with perNamespace PHIWorkloads records-<w>, each selecting podsPer pods.
func createWorkloads(t *testing.T, k8s client.Client, namespaces, perNamespace, podsPer int) {
	t.Helper()
	g := NewWithT(t)
	ctx := t.Context()
	for n := range namespaces {
		g.Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("scale-%d", n)}})).To(Succeed())
	}
	work := make(chan [2]int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for job := range work {
				ns, app := fmt.Sprintf("scale-%d", job[0]), fmt.Sprintf("records-%d", job[1])
				for p := range podsPer {
					g.Expect(k8s.Create(ctx, &corev1.Pod{
						ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("%s-%d", app, p), Labels: map[string]string{"app": app}},
						Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/records:1"}}},
					})).To(Succeed())
				}
				g.Expect(k8s.Create(ctx, &phiguardv1alpha1.PHIWorkload{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: app},
					Spec:       phiguardv1alpha1.PHIWorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}},
				})).To(Succeed())
			}
		})
	}
	for n := range namespaces {
		for w := range perNamespace {
			work <- [2]int{n, w}
		}
	}
	close(work)
	wg.Wait()
}

// driftTargets spreads n workloads (of those createWorkloads made) over the namespaces.
func driftTargets(namespaces, perNamespace, n int) []types.NamespacedName {
	out := make([]types.NamespacedName, 0, n)
	for i := range n {
		idx := i * (namespaces * perNamespace) / n
		out = append(out, types.NamespacedName{Namespace: fmt.Sprintf("scale-%d", idx/perNamespace),
			Name: safeguard.NetworkPolicyName(fmt.Sprintf("records-%d", idx%perNamespace))})
	}
	return out
}

// watch starts a cache of the test's own, so that waiting for many objects
// to settle does not load the apiserver being measured.
func watch(t *testing.T, cfg *rest.Config, scheme *runtime.Scheme) cache.Cache {
	t.Helper()
	g := NewWithT(t)
	watched, err := cache.New(cfg, cache.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())
	go func() { _ = watched.Start(t.Context()) }()
	g.Expect(watched.WaitForCacheSync(t.Context())).To(BeTrue())
	return watched
}

func sum(counts map[string]int64) int64 {
	n := int64(0)
	for _, c := range counts {
		n += c
	}
	return n
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

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
