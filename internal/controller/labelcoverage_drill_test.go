package controller_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/controller"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// Covers the label controllers in a restore drill's scratch namespace: what
// a drill restores keeps its phiguard.io/ephi label, and must not be covered
// there.
var _ = Describe("Label coverage in restore drill namespaces", func() {
	const timeout, poll = 10 * time.Second, 100 * time.Millisecond

	It("covers nothing restored into a drill's scratch namespace, and covers a namespace of such a name that phiguard did not label", func() {
		w := &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: newNamespace(), Name: "records"}}
		scratch := safeguard.DrillNamespace(w)
		Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: scratch, Labels: safeguard.DrillLabels(w)}})).To(Succeed())
		restored := newDeployment(scratch, "api", ephi, map[string]string{"app": "api"}, map[string]string{"app": "api"})
		Eventually(func(g Gomega) {
			g.Expect(coverageEvent(g, restored, phiguardv1alpha1.ReasonCoverageNotPossible).Note).To(Equal(
				"Deployment " + scratch + "/api is labelled phiguard.io/ephi=true, but namespace " + scratch +
					" is the scratch namespace of a restore drill of PHIWorkload " + w.Namespace + "/records: " +
					"what is restored there is not covered, and goes with the namespace when the drill ends"))
		}, timeout, poll).Should(Succeed())
		expectGone(Default, generated(controller.DeploymentSource, scratch, "api"))

		// The name alone is not phiguard's mark.
		lookalike := fmt.Sprintf("%s%010d", safeguard.DrillNamespacePrefix, nsCounter.Add(1))
		ensureNamespace(lookalike)
		newDeployment(lookalike, "api", ephi, map[string]string{"app": "api"}, map[string]string{"app": "api"})
		Eventually(func(g Gomega) { getWorkload(g, generated(controller.DeploymentSource, lookalike, "api")) }, timeout, poll).Should(Succeed())
	})
})
