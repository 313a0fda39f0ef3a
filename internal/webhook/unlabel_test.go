package webhook_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// Covers the unlabel webhook: with PHIPolicy requireApprovalToUnlabel, a
// Namespace keeps its phiguard.io/ephi label unless the same change documents
// an approved, unexpired decision.
var _ = Describe("Removing the ePHI label", Ordered, func() {
	var policy *phiguardv1alpha1.PHIPolicy

	labelledNamespace := func() *corev1.Namespace {
		ns := &corev1.Namespace{}
		Expect(k8s.Get(ctx, types.NamespacedName{Name: newNamespace()}, ns)).To(Succeed())
		Expect(k8s.Patch(ctx, ns, client.RawPatch(types.MergePatchType,
			[]byte(`{"metadata":{"labels":{"phiguard.io/ephi":"true"}}}`)))).To(Succeed())
		return ns
	}
	unlabel := func(obj client.Object, annotations string) error {
		return k8s.Patch(ctx, obj, client.RawPatch(types.MergePatchType,
			[]byte(`{"metadata":{"labels":{"phiguard.io/ephi":null},"annotations":{`+annotations+`}}}`)))
	}

	BeforeAll(func() {
		policy = &phiguardv1alpha1.PHIPolicy{ObjectMeta: metav1.ObjectMeta{Name: phiguardv1alpha1.DefaultPolicyName}}
		Expect(k8s.Create(ctx, policy)).To(Succeed())
		DeferCleanup(func() { Expect(k8s.Delete(ctx, policy)).To(Succeed()) })
	})

	It("lets the label go by default (requireApprovalToUnlabel is false)", func() {
		ns := labelledNamespace()
		Expect(unlabel(ns, "")).To(Succeed())
	})

	It("refuses, when the policy requires approval, a removal without a decision, saying what to add", func() {
		Expect(k8s.Patch(ctx, policy, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"requireApprovalToUnlabel":true}}`)))).To(Succeed())
		ns := labelledNamespace()
		var err error
		Eventually(func() error { err = unlabel(ns, ""); return err }, 10*time.Second, 50*time.Millisecond).Should(HaveOccurred())
		Expect(err.Error()).To(Equal(`admission webhook "vnamespace-unlabel.phiguard.io" denied the request: ` +
			"Namespace " + ns.Name + " is labelled phiguard.io/ephi=true and PHIPolicy default requires an approved decision to remove it " +
			"(spec.requireApprovalToUnlabel): add the annotations phiguard.io/unlabel-justification (why the namespace no longer handles ePHI, " +
			"at least 20 characters), phiguard.io/unlabel-approved-by (who approved it), phiguard.io/unlabel-expires (when the approval lapses, " +
			"RFC 3339 such as 2030-01-31T00:00:00Z) in the same change"))

		By("setting the label to another value is a removal too")
		Expect(k8s.Patch(ctx, ns, client.RawPatch(types.MergePatchType,
			[]byte(`{"metadata":{"labels":{"phiguard.io/ephi":"false"}}}`)))).To(MatchError(ContainSubstring("requires an approved decision")))

		By("other changes to the namespace are admitted")
		Expect(k8s.Patch(ctx, ns, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"team":"records"}}}`)))).To(Succeed())

		By("an expired approval is refused")
		Expect(unlabel(ns, `"phiguard.io/unlabel-justification":"the clinic moved its records to another cluster",`+
			`"phiguard.io/unlabel-approved-by":"security-officer@clinic.example",`+
			`"phiguard.io/unlabel-expires":"2020-01-01T00:00:00Z"`)).To(MatchError(ContainSubstring(
			"the approval in phiguard.io/unlabel-expires expired at 2020-01-01T00:00:00Z; renew it")))

		By("a complete, current decision lets it go, with a warning")
		warnings.take()
		Expect(unlabel(ns, `"phiguard.io/unlabel-justification":"the clinic moved its records to another cluster",`+
			`"phiguard.io/unlabel-approved-by":"security-officer@clinic.example",`+
			`"phiguard.io/unlabel-expires":"`+time.Now().Add(24*time.Hour).UTC().Format(time.RFC3339)+`"`)).To(Succeed())
		Expect(warnings.take()).To(ContainElement(ContainSubstring("approved by security-officer@clinic.example: every pod in it loses phiguard coverage")))

		By("recording the refusals and the warning as Events on the namespace's generated PHIWorkload")
		w := &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "ns-" + ns.Name}}
		Eventually(func(g Gomega) {
			events := admissionEvents(g, w)
			g.Expect(events).To(ContainElement(And(HaveField("Reason", phiguardv1alpha1.ReasonAdmissionDenied),
				HaveField("Note", ContainSubstring("update of Namespace "+ns.Name+": Namespace "+ns.Name+" is labelled phiguard.io/ephi=true")))))
			g.Expect(events).To(ContainElement(And(HaveField("Reason", phiguardv1alpha1.ReasonAdmissionWarned),
				HaveField("Note", ContainSubstring("approved by security-officer@clinic.example: every pod in it loses phiguard coverage")))))
		}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
	})

	It("only records, never refuses, the label's removal from a Deployment", func() {
		ns := newNamespace()
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "api", Labels: map[string]string{phiguardv1alpha1.EPHILabel: "true"}},
			Spec: appsv1.DeploymentSpec{
				Selector: &metav1.LabelSelector{MatchLabels: records},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: records},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/api:1"}}}},
			},
		}
		Expect(k8s.Create(ctx, d)).To(Succeed())
		Expect(unlabel(d, "")).To(Succeed())
		Expect(k8s.Delete(ctx, d)).To(Succeed())
	})
})
