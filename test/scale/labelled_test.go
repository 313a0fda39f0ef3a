package scale

import (
	"fmt"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// TestLabelledPolicyChange labels many Deployments phiguard.io/ephi=true, lets
// phiguard generate and settle their PHIWorkloads, then changes the PHIPolicy
// twice: once in a way that changes every workload's effective settings
// (network isolation Enforce -> Audit), once in a way that changes none. It
// measures how long the first takes to settle everywhere and the writes each
// caused; the second must cause no write to any workload.
//
// `make test` runs it with 100 Deployments; `make scale` with 1,000:
//
//	PHIGUARD_SCALE_LABELLED=1000 go test ./test/scale -run TestLabelledPolicyChange -v
func TestLabelledPolicyChange(t *testing.T) {
	g := NewWithT(t)
	total := envInt(t, "PHIGUARD_SCALE_LABELLED", 100)
	const perNamespace = 100
	k8s, count, cfg := startWithConfig(t, false)
	ctx := t.Context()
	watched := watch(t, cfg, k8s.Scheme())

	policy := &phiguardv1alpha1.PHIPolicy{ObjectMeta: metav1.ObjectMeta{Name: phiguardv1alpha1.DefaultPolicyName}}
	g.Expect(k8s.Create(ctx, policy)).To(Succeed())
	start := time.Now()
	for i := range total {
		ns := fmt.Sprintf("labelled-%d", i/perNamespace)
		if i%perNamespace == 0 {
			g.Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		}
		app := map[string]string{"app": fmt.Sprintf("api-%d", i)}
		g.Expect(k8s.Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("api-%d", i), Labels: map[string]string{phiguardv1alpha1.EPHILabel: "true"}},
			Spec: appsv1.DeploymentSpec{
				Selector: &metav1.LabelSelector{MatchLabels: app},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: app},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/api:1"}}}},
			},
		})).To(Succeed())
	}

	// every waits until each generated workload reports network isolation in mode.
	every := func(mode phiguardv1alpha1.Mode) func(g Gomega) {
		return func(g Gomega) {
			var list phiguardv1alpha1.PHIWorkloadList
			g.Expect(watched.List(ctx, &list, client.HasLabels{phiguardv1alpha1.GeneratedFromLabel})).To(Succeed())
			g.Expect(list.Items).To(HaveLen(total))
			for _, w := range list.Items {
				i := slices.IndexFunc(w.Status.Safeguards, func(s phiguardv1alpha1.SafeguardStatus) bool {
					return s.Name == phiguardv1alpha1.NetworkIsolated
				})
				g.Expect(i).NotTo(Equal(-1), "%s/%s has no status yet", w.Namespace, w.Name)
				g.Expect(w.Status.Safeguards[i].Mode).To(Equal(mode), "%s/%s", w.Namespace, w.Name)
			}
		}
	}
	g.Eventually(every(phiguardv1alpha1.ModeEnforce), 10*time.Minute, 200*time.Millisecond).Should(Succeed())
	generated := time.Since(start)
	drain(g, count)

	count.reset()
	changed := time.Now()
	g.Expect(k8s.Patch(ctx, policy, client.RawPatch(types.MergePatchType,
		[]byte(`{"spec":{"defaults":{"networkIsolation":{"mode":"Audit"}}}}`)))).To(Succeed())
	g.Eventually(every(phiguardv1alpha1.ModeAudit), 10*time.Minute, 100*time.Millisecond).Should(Succeed())
	settled := time.Since(changed)
	drain(g, count)
	writes := count.resources()
	g.Expect(writes["PATCH phiworkloads/status"]).To(BeNumerically(">=", total), "every workload's status changed")
	g.Expect(writes["PATCH phiworkloads"]).To(BeZero(), "a policy change is not a reason to rewrite a generated workload")
	g.Expect(writes["DELETE networkpolicies"]).To(BeEquivalentTo(total), "Audit removes each workload's NetworkPolicy once")

	count.reset()
	g.Expect(k8s.Patch(ctx, policy, client.RawPatch(types.MergePatchType,
		[]byte(`{"spec":{"storage":{"encryptedStorageClasses":["unused-class"]}}}`)))).To(Succeed())
	g.Consistently(func() map[string]int64 { return count.resources() }, 3*time.Second, 100*time.Millisecond).Should(BeEmpty(),
		"a policy change that changes no workload's effective settings writes nothing")

	t.Logf("scale: %d labelled Deployments in %d namespaces: generated PHIWorkloads settled %s after the first create",
		total, (total+perNamespace-1)/perNamespace, generated.Round(time.Millisecond))
	t.Logf("scale: PHIPolicy networkIsolation Enforce -> Audit settled on all %d workloads %s after the change; writes: %v",
		total, settled.Round(time.Millisecond), writes)
	t.Logf("scale: a PHIPolicy change affecting no workload: 0 write requests over 3s")
}

// drain waits until the manager has stopped writing for half a second (Events
// are sent by a background broadcaster, after the statuses).
func drain(g Gomega, count *counter) {
	g.Eventually(func(g Gomega) {
		n := count.writes.Load()
		g.Consistently(count.writes.Load, 500*time.Millisecond, 50*time.Millisecond).Should(Equal(n))
	}, 5*time.Minute, 10*time.Millisecond).Should(Succeed())
}
