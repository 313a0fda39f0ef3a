//go:build e2e

package e2e

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// The pod webhook fails open (failurePolicy Ignore, as config/webhook ships
// it): while the manager is down, a pod of a covered Deployment starts
// without the audit sidecar. Once the manager is back, AuditLogging reports
// that pod by name and, with restartNonCompliant, restarts the Deployment, so
// the pod is replaced by one that carries the sidecar.
var _ = Describe("a pod admitted while phiguard was down", Ordered, func() {
	It("is reported once phiguard is back, and replaced with an injected one (restartNonCompliant)", func() {
		ns := newNamespace("e2e-down")
		w := workload(ns, "intake", "intake")
		w.Spec.AuditLogging = &phiguardv1alpha1.AuditLoggingSpec{RestartNonCompliant: ptrTo(true)}
		Expect(k8s.Create(ctx, w)).To(Succeed())
		key := client.ObjectKeyFromObject(w)
		// The webhook judges from the manager's cache: wait until the manager
		// has seen the workload (it reported on it).
		Eventually(func(g Gomega) {
			g.Expect(get(g, key).Status.ObservedGeneration).To(Equal(int64(1)))
		}, timeout, poll).Should(Succeed())
		d := deployment(ns, "intake", 1, nil)
		Expect(k8s.Create(ctx, d)).To(Succeed())
		var injected string
		Eventually(func(g Gomega) {
			pods := runningPods(g, ns, "intake")
			g.Expect(pods).To(HaveLen(1))
			g.Expect(hasSidecar(pods[0])).To(BeTrue())
			injected = pods[0].Name
			g.Expect(conditionStatus(get(g, key), phiguardv1alpha1.AuditLogging)).To(Equal(metav1.ConditionTrue))
		}, timeout, poll).Should(Succeed())

		By("with the manager stopped, a second replica's pod starts without the sidecar")
		Expect(manager.Stop(15 * time.Second)).To(Succeed())
		back := false
		DeferCleanup(func() {
			if !back {
				startManager() // for the cases that follow
			}
		})
		stoppedAt := time.Now()
		Expect(k8s.Patch(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "intake"}},
			client.RawPatch(client.Merge.Type(), []byte(`{"spec":{"replicas":2}}`)))).To(Succeed())
		var admitted string
		Eventually(func(g Gomega) {
			pods := runningPods(g, ns, "intake")
			g.Expect(pods).To(HaveLen(2))
			for _, p := range pods {
				if p.Name != injected {
					g.Expect(hasSidecar(p)).To(BeFalse())
					g.Expect(p.CreationTimestamp.Time).To(BeTemporally(">=", stoppedAt.Truncate(time.Second)))
					admitted = p.Name
				}
			}
			g.Expect(admitted).NotTo(BeEmpty())
		}, timeout, poll).Should(Succeed())

		By("the manager back: AuditLogging reports the pod, and the Deployment is restarted")
		startManager()
		back = true
		Eventually(func(g Gomega) {
			notes := workloadEvents(g, ns, "intake")
			g.Expect(notes[phiguardv1alpha1.ReasonPodsWithoutSidecar]).To(ContainElement(And(
				ContainSubstring("AuditLogging is False"), ContainSubstring("1 of 2 selected pods lack the audit sidecar"),
				ContainSubstring(admitted+" (no phiguard-audit container)"))))
			g.Expect(notes[phiguardv1alpha1.ReasonRolloutRestarted]).To(ContainElement(ContainSubstring("restarted Deployment intake")))
		}, timeout, poll).Should(Succeed())
		Eventually(func(g Gomega) {
			pods := runningPods(g, ns, "intake")
			g.Expect(pods).To(HaveLen(2))
			for _, p := range pods {
				g.Expect(p.Name).NotTo(BeElementOf(admitted, injected), "a pod from before the restart is still running")
				g.Expect(hasSidecar(p)).To(BeTrue(), p.Name)
			}
			g.Expect(conditionStatus(get(g, key), phiguardv1alpha1.AuditLogging)).To(Equal(metav1.ConditionTrue))
		}, timeout, poll).Should(Succeed())
	})
})

// workloadEvents returns the notes of the Events about the PHIWorkload ns/name, by reason.
func workloadEvents(g Gomega, ns, name string) map[string][]string {
	var events eventsv1.EventList
	g.ExpectWithOffset(1, k8s.List(ctx, &events, client.InNamespace(ns))).To(Succeed())
	notes := map[string][]string{}
	for _, e := range events.Items {
		if e.Regarding.Kind == "PHIWorkload" && e.Regarding.Name == name {
			notes[e.Reason] = append(notes[e.Reason], strings.TrimSpace(e.Note))
		}
	}
	return notes
}
