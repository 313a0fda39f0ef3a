package scale

import (
	"fmt"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// TestLabelledNamespaces labels many new Namespaces phiguard.io/ephi=true,
// created from 8 clients at once, with the admission webhooks served and
// called by the apiserver, and measures how long after the last Namespace
// exists every one has phiguard's default-deny NetworkPolicy, and the writes
// that took.
//
// `make test` runs it with 20 Namespaces; `make scale` with 500:
//
//	PHIGUARD_SCALE_NAMESPACES_LABELLED=500 go test ./test/scale -run TestLabelledNamespaces -v
func TestLabelledNamespaces(t *testing.T) {
	g := NewWithT(t)
	total := envInt(t, "PHIGUARD_SCALE_NAMESPACES_LABELLED", 20)
	cp := startControlPlane(t, true)
	m := cp.startManager(t)
	k8s, ctx := cp.k8s, t.Context()
	watched := watch(t, cp.cfg, k8s.Scheme())

	// The manager has been running a while in a real cluster: the first
	// reconcile after a start also starts the watches of the optional APIs
	// (Velero) and waits for them, which is not what this measures.
	g.Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "warm-up",
		Labels: map[string]string{phiguardv1alpha1.EPHILabel: "true"}}})).To(Succeed())
	g.Eventually(func(g Gomega) {
		var list networkingv1.NetworkPolicyList
		g.Expect(watched.List(ctx, &list, client.InNamespace("warm-up"))).To(Succeed())
		g.Expect(list.Items).NotTo(BeEmpty())
	}, time.Minute, 10*time.Millisecond).Should(Succeed())
	drain(g, m.count)
	m.count.reset()

	names := make(chan string)
	var wg sync.WaitGroup
	start := time.Now()
	for range 8 {
		wg.Go(func() {
			for name := range names {
				g.Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name,
					Labels: map[string]string{phiguardv1alpha1.EPHILabel: "true"}}})).To(Succeed())
			}
		})
	}
	for i := range total {
		names <- fmt.Sprintf("clinic-%d", i)
	}
	close(names)
	wg.Wait()
	created := time.Since(start)

	g.Eventually(func(g Gomega) {
		var list networkingv1.NetworkPolicyList
		g.Expect(watched.List(ctx, &list)).To(Succeed())
		have := map[string]bool{}
		for _, np := range list.Items {
			if np.Namespace != "warm-up" {
				have[np.Namespace] = true
			}
		}
		g.Expect(have).To(HaveLen(total))
	}, 10*time.Minute, 10*time.Millisecond).Should(Succeed())
	policies := time.Since(start) - created
	drain(g, m.count)

	scale := fmt.Sprintf("%d labelled Namespaces", total)
	t.Logf("scale: %s created in %s (8 clients); every NetworkPolicy %s after the last",
		scale, created.Round(time.Millisecond), policies.Round(time.Millisecond))
	t.Logf("scale: write requests: %v (%.2f per Namespace)", m.count.resources(), float64(m.count.writes.Load())/float64(total))
	record(t, figure{Name: "labelled_namespaces_policies_s", Value: policies.Seconds(), Unit: "s", Scale: scale})
	record(t, figure{Name: "labelled_namespaces_writes", Value: float64(m.count.writes.Load()) / float64(total), Unit: "writes per Namespace", Scale: scale})
}
