//go:build e2e

package faults

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
)

const (
	// faultRate is the share of the manager's writes that fail.
	faultRate = 0.10
	// flakyNamespaces × workloadsPerNamespace workloads have their writes faulted.
	flakyNamespaces       = 4
	workloadsPerNamespace = 50
	// steadyNamespace holds the control: one workload of each shape, whose
	// requests are never faulted.
	steadyNamespace = "steady"
	// settleTimeout bounds the convergence after the last change.
	settleTimeout = 3 * time.Minute
	// seedVariable names the environment variable that fixes the fault seed.
	seedVariable = "PHIGUARD_FAULTS_SEED"
)

// steady says whether a request is about the control namespace (its objects,
// or its workloads' Schedules in Velero's namespace): those are never faulted.
func steady(r *http.Request) bool {
	return strings.Contains(r.URL.Path, "/namespaces/"+steadyNamespace+"/") ||
		strings.Contains(r.URL.Path, "/schedules/phiguard-"+steadyNamespace+"-")
}

// faultSeed is $PHIGUARD_FAULTS_SEED, or a random seed.
func faultSeed() uint64 {
	GinkgoHelper()
	if v := os.Getenv(seedVariable); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		Expect(err).NotTo(HaveOccurred(), "%s=%q: want an unsigned integer", seedVariable, v)
		return seed
	}
	return rand.Uint64()
}

var _ = Describe("a flaky API", func() {
	It("converges with 10 % of the manager's writes answered 409 or 500, keeps one NetworkPolicy and one Schedule per workload, and shows the errors in the metrics",
		func(ctx SpecContext) {
			seed := faultSeed()
			_, _ = fmt.Fprintf(GinkgoWriter, "fault seed %d (%s=%d draws the same faults)\n", seed, seedVariable, seed)
			AddReportEntry("fault seed", seed)
			in := newInjector(faultRate, seed, steady)
			// What failed, logged however the spec ends.
			DeferCleanup(func() { _, _ = fmt.Fprintln(GinkgoWriter, in.summary(seed)) })

			reconcileErrors := map[string]string{"controller": "phiworkload"}
			errorsBefore := counter(Default, "controller_runtime_reconcile_errors_total", reconcileErrors)
			conflictsBefore := counter(Default, "rest_client_requests_total", map[string]string{"code": "409"})
			internalsBefore := counter(Default, "rest_client_requests_total", map[string]string{"code": "500"})
			compliance := startManager(in.wrap(cfg))
			names := safeguard.New(safeguard.Options{}).Names()

			flaky := flakyPlans(flakyNamespaces, workloadsPerNamespace)
			controls := steadyPlans(flaky)
			all := slices.Concat(flaky, controls)
			var namespaces []string
			for _, p := range all {
				if !slices.Contains(namespaces, p.namespace) {
					namespaces = append(namespaces, p.namespace)
				}
			}
			for _, ns := range namespaces {
				all = append(all, ledgerPlan(ns))
			}
			plans := map[types.NamespacedName]plan{}
			control := map[shape]types.NamespacedName{}
			// The plans whose workloads the test creates (not the generated ones).
			byNamespace := map[string][]plan{}
			for _, p := range all {
				key := types.NamespacedName{Namespace: p.namespace, Name: p.name}
				plans[key] = p
				if p.namespace == steadyNamespace {
					control[p.shape] = key
				}
				if !p.generated {
					byNamespace[p.namespace] = append(byNamespace[p.namespace], p)
				}
			}

			By(fmt.Sprintf("%d namespaces, a labelled Deployment in each, the pods of %d workloads (%d of them the control's), then the workloads",
				len(namespaces), len(flaky)+len(controls), len(controls)))
			start := time.Now()
			Expect(eachNamespace(byNamespace, func(ns string, plans []plan) error {
				for _, obj := range []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, ledgerDeployment(ns)} {
					if err := k8s.Create(ctx, obj); err != nil {
						return fmt.Errorf("creating %T %s: %w", obj, obj.GetName(), err)
					}
				}
				for _, p := range plans {
					for _, pod := range p.podObjects() {
						if err := k8s.Create(ctx, pod); err != nil {
							return fmt.Errorf("creating pod %s/%s: %w", pod.Namespace, pod.Name, err)
						}
					}
				}
				for _, p := range plans {
					if err := k8s.Create(ctx, p.workload()); err != nil {
						return fmt.Errorf("creating PHIWorkload %s/%s: %w", p.namespace, p.name, err)
					}
				}
				return nil
			})).To(Succeed())
			created := time.Since(start)

			By("half of the faulted workloads evaluated, some specs change and some workloads are deleted")
			Eventually(func(g Gomega) {
				var list phiguardv1alpha1.PHIWorkloadList
				g.Expect(k8s.List(ctx, &list)).To(Succeed())
				evaluated := 0
				for _, w := range list.Items {
					if w.Namespace != steadyNamespace && w.Status.ObservedGeneration == w.Generation && len(w.Status.Safeguards) > 0 {
						evaluated++
					}
				}
				g.Expect(evaluated).To(BeNumerically(">=", len(flaky)/2))
			}).WithContext(ctx).WithTimeout(settleTimeout).WithPolling(100 * time.Millisecond).Should(Succeed())
			midway := time.Since(start)
			Expect(eachNamespace(byNamespace, func(_ string, plans []plan) error {
				for _, p := range plans {
					if err := p.make(ctx); err != nil {
						return err
					}
				}
				return nil
			})).To(Succeed())
			changed := time.Now()
			changes := map[change]int{}
			for _, p := range plans {
				changes[p.change]++
			}

			// Everything the manager keeps, checked against the plan and,
			// for each workload's status, against the control of its shape.
			converged := func(g Gomega) {
				world := read(ctx, g, namespaces)
				for key, p := range plans {
					w, live := world.workloads[key]
					if !live {
						continue // expectChildren says whether it should be
					}
					expectSettled(g, w, names)
					ctl, ok := world.workloads[control[p.shape]]
					g.Expect(ok).To(BeTrue(), "the control of %s exists", p.shape)
					g.Expect(verdictOf(w)).To(Equal(verdictOf(ctl)), "%s ends as the control %s does", key, ctl.Name)
				}
				g.Expect(world.workloads).To(HaveLen(len(plans)-changes[deleted]), "no other PHIWorkload")
				expectChildren(g, world, plans, control)
				expectReports(g, world, namespaces)
				expectComplianceMetrics(g, compliance, world)
			}
			By("everything converges as the control does")
			Eventually(converged).WithContext(ctx).WithTimeout(settleTimeout).WithPolling(500 * time.Millisecond).Should(Succeed())
			settled := time.Since(changed)

			By("the control's results are the ones its specs call for")
			expectControl(ctx, plans, control)

			By("the writes stop, and stay settled")
			// Events go out in the background; a reconcile that kept writing
			// would never let the count rest.
			Eventually(func(g Gomega) {
				n := in.writes.Load()
				g.Consistently(in.writes.Load).WithTimeout(time.Second).WithPolling(100 * time.Millisecond).Should(Equal(n))
			}).WithContext(ctx).WithTimeout(2 * time.Minute).WithPolling(10 * time.Millisecond).Should(Succeed())
			quiet := time.Since(changed)
			converged(Default)
			report := fmt.Sprintf("%d workloads (%d faulted, %d control), %v; created in %s, half the faulted ones evaluated at %s, "+
				"changes made by %s; all converged %s after the last change (%s after the first create); the writes stopped %s after the last change",
				len(plans), len(flaky)+flakyNamespaces, len(plans)-len(flaky)-flakyNamespaces, changes,
				created.Round(time.Millisecond), midway.Round(time.Millisecond), changed.Sub(start).Round(time.Millisecond),
				settled.Round(time.Millisecond), (changed.Sub(start) + settled).Round(time.Millisecond), quiet.Round(time.Millisecond))
			_, _ = fmt.Fprintln(GinkgoWriter, report)
			AddReportEntry("convergence", report)
			AddReportEntry("faults", in.summary(seed))

			By("no storm of Events, and none that sums up an evaluation that did not take place")
			expectEvents(eventsByWorkload(ctx, Default, namespaces), plans, control, len(names))

			By("the errors are visible in the metrics")
			counts := in.counts()
			Expect(counter(Default, "controller_runtime_reconcile_errors_total", reconcileErrors)-errorsBefore).
				To(BeNumerically(">", 0), "controller_runtime_reconcile_errors_total{controller=phiworkload}")
			conflicts := counter(Default, "rest_client_requests_total", map[string]string{"code": "409"}) - conflictsBefore
			internals := counter(Default, "rest_client_requests_total", map[string]string{"code": "500"}) - internalsBefore
			_, _ = fmt.Fprintf(GinkgoWriter, "rest_client_requests_total grew by %.0f 409s and %.0f 500s\n", conflicts, internals)
			Expect(conflicts).To(BeNumerically(">=", counts[conflict]), `rest_client_requests_total{code="409"} counts every injected conflict`)
			Expect(internals).To(BeNumerically(">=", counts[internalError]+counts[lostReply]),
				`rest_client_requests_total{code="500"} counts every injected internal error`)
			for k := range faultKinds {
				Expect(counts[k]).To(BeNumerically(">", 0), "some writes failed as %s", k)
			}
			byResource := in.requests()
			for _, r := range []string{"networkpolicies.networking.k8s.io", "schedules.velero.io", "phiworkloads.compliance.phiguard.io",
				"phiworkloads/status.compliance.phiguard.io", "events.events.k8s.io"} {
				Expect(sumResource(byResource, r)).To(BeNumerically(">", 0), "some writes of %s failed", r)
			}
		}, SpecTimeout(10*time.Minute))
})

// eachNamespace runs do on each namespace's plans, the namespaces at once:
// the apiserver and the webhooks answer several clients faster than one.
func eachNamespace(byNamespace map[string][]plan, do func(namespace string, plans []plan) error) error {
	var g errgroup.Group
	for ns, plans := range byNamespace {
		g.Go(func() error { return do(ns, plans) })
	}
	return g.Wait()
}

// sumResource adds up the counts of every method on one resource.
func sumResource(byRequest map[string]int64, resource string) int64 {
	var n int64
	for k, v := range byRequest {
		if _, r, _ := strings.Cut(k, " "); r == resource {
			n += v
		}
	}
	return n
}
