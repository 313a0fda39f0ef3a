//go:build chart

package chart

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/manifests"
	phischeme "github.com/phiguard/phiguard/internal/scheme"
	"github.com/phiguard/phiguard/internal/testenv"
)

// The namespaces of the test. The exempt ones carry both ePHI labels: their
// name alone keeps them out of the fail-closed webhooks.
var (
	exemptNamespaces = []string{"kube-system", "kube-node-lease", "phiguard-system"}
	// ePHINamespaces maps each ePHI namespace to the suffix of the webhooks
	// that fail closed there.
	ePHINamespaces = map[string]string{"clinic-ephi": "-ephi", "clinic-holds": "-holds-ephi"}
	plainNamespace = "clinic-plain"
)

// TestFailClosedWebhooksWhileTheManagerIsDown installs the chart's webhook
// configurations into a real kube-apiserver where phiguard's webhook server
// does not answer (its Service is missing, as when the manager is down): with
// the defaults every pod and claim is admitted; with
// webhook.failClosedForEPHI those created in a namespace labelled
// phiguard.io/ephi=true or phiguard.io/holds-ephi=true are refused, naming
// the webhook, and those in an ordinary namespace are admitted. Pods, claims
// and Leases in kube-system, kube-node-lease and phiguard's own namespace are
// admitted either way.
func TestFailClosedWebhooksWhileTheManagerIsDown(t *testing.T) {
	env, err := testenv.New()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting the control plane: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Error(err)
		}
	})
	scheme, err := phischeme.New()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	setUpNamespaces(ctx, NewWithT(t), c)

	// Open first: the second install then shows itself by its refusals.
	for _, closed := range []bool{false, true} {
		t.Run(fmt.Sprintf("failClosedForEPHI=%t", closed), func(t *testing.T) {
			g := NewWithT(t)
			installWebhooks(ctx, g, c, render(t, "--set", fmt.Sprintf("webhook.failClosedForEPHI=%t", closed)))
			waitForWebhooks(ctx, g, c, closed)
			run := fmt.Sprintf("fc-%t", closed)

			for ns, suffix := range ePHINamespaces {
				for _, obj := range []client.Object{pod(ns, run), claim(ns, run)} {
					err := c.Create(ctx, obj)
					if !closed {
						g.Expect(err).NotTo(HaveOccurred(), "%T in %s", obj, ns)
						continue
					}
					g.Expect(err).To(MatchError(ContainSubstring(fmt.Sprintf(`failed calling webhook "%s%s.phiguard.io"`, webhookStem(obj), suffix))),
						"%T in %s", obj, ns)
					t.Logf("%T in %s refused: %v", obj, ns, err)
					g.Expect(apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(obj), obj))).To(BeTrue(), "%T in %s was stored", obj, ns)
				}
			}
			for _, ns := range append([]string{plainNamespace}, exemptNamespaces...) {
				g.Expect(c.Create(ctx, pod(ns, run))).To(Succeed(), "pod in %s", ns)
				g.Expect(c.Create(ctx, claim(ns, run))).To(Succeed(), "claim in %s", ns)
			}
			for _, ns := range exemptNamespaces {
				lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: run},
					Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("node-1"), LeaseDurationSeconds: ptr.To(int32(40))}}
				g.Expect(c.Create(ctx, lease)).To(Succeed(), "Lease in %s", ns)
				lease.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
				g.Expect(c.Update(ctx, lease)).To(Succeed(), "Lease renewed in %s", ns)
			}
		})
	}
}

// setUpNamespaces creates phiguard's namespace and the clinic ones, and labels
// the exempt namespaces with both ePHI labels.
func setUpNamespaces(ctx context.Context, g Gomega, c client.Client) {
	g.Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "phiguard-system"}})).To(Succeed())
	for _, name := range exemptNamespaces {
		// The apiserver creates kube-system and kube-node-lease as it starts.
		g.Eventually(func() error {
			return c.Get(ctx, client.ObjectKey{Name: name}, &corev1.Namespace{})
		}, 30*time.Second, 100*time.Millisecond).Should(Succeed(), "namespace %s", name)
		labels := fmt.Sprintf(`{"metadata":{"labels":{%q:"true",%q:"true"}}}`, phiguardv1alpha1.EPHILabel, phiguardv1alpha1.HoldsEPHILabel)
		g.Expect(c.Patch(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}},
			client.RawPatch(client.Merge.Type(), []byte(labels)))).To(Succeed())
	}
	for name, l := range map[string]map[string]string{
		"clinic-ephi":  {phiguardv1alpha1.EPHILabel: "true"},
		"clinic-holds": {phiguardv1alpha1.HoldsEPHILabel: "true"},
		plainNamespace: nil,
	} {
		g.Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}})).To(Succeed())
	}
}

// installWebhooks creates, or replaces, the webhook configurations the
// rendered chart holds.
func installWebhooks(ctx context.Context, g Gomega, c client.Client, rendered []byte) {
	objs, err := manifests.Decode(bytes.NewReader(rendered), "rendered chart")
	g.Expect(err).NotTo(HaveOccurred())
	installed := 0
	for _, obj := range objs {
		if obj.GetKind() != "MutatingWebhookConfiguration" && obj.GetKind() != "ValidatingWebhookConfiguration" {
			continue
		}
		installed++
		existing := &unstructured.Unstructured{}
		existing.SetGroupVersionKind(obj.GroupVersionKind())
		switch err := c.Get(ctx, client.ObjectKeyFromObject(obj), existing); {
		case apierrors.IsNotFound(err):
			g.Expect(c.Create(ctx, obj)).To(Succeed())
		case err != nil:
			g.Expect(err).NotTo(HaveOccurred())
		default:
			obj.SetResourceVersion(existing.GetResourceVersion())
			g.Expect(c.Update(ctx, obj)).To(Succeed())
		}
	}
	g.Expect(installed).To(Equal(2))
}

// waitForWebhooks waits until the apiserver calls the installed webhooks:
// the ones that always fail closed refuse (the PHIWorkload mutator, the
// Namespace unlabel validator) and, when closed, the pod and claim webhooks
// refuse in an ePHI namespace. The requests are dry runs.
func waitForWebhooks(ctx context.Context, g Gomega, c client.Client, closed bool) {
	type probe struct {
		obj     client.Object
		webhook string
	}
	probes := []probe{
		{&phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: plainNamespace, Name: "probe"},
			Spec: phiguardv1alpha1.PHIWorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "probe"}}}},
			"mphiworkload.phiguard.io"},
	}
	if closed {
		probes = append(probes, probe{pod("clinic-ephi", "probe"), "mpod-ephi.phiguard.io"},
			probe{claim("clinic-ephi", "probe"), "vpersistentvolumeclaim-ephi.phiguard.io"})
	}
	for _, p := range probes {
		g.Eventually(func() error {
			return c.Create(ctx, p.obj.DeepCopyObject().(client.Object), client.DryRunAll)
		}, 30*time.Second, 100*time.Millisecond).Should(MatchError(ContainSubstring(`failed calling webhook "` + p.webhook + `"`)))
	}
	// An update of a namespace labelled phiguard.io/ephi goes to the unlabel webhook.
	g.Eventually(func() error {
		ns := &corev1.Namespace{}
		if err := c.Get(ctx, client.ObjectKey{Name: "clinic-ephi"}, ns); err != nil {
			return err
		}
		ns.Annotations = map[string]string{"probe": "true"}
		return c.Update(ctx, ns, client.DryRunAll)
	}, 30*time.Second, 100*time.Millisecond).Should(MatchError(ContainSubstring(`failed calling webhook "vnamespace-unlabel.phiguard.io"`)))
}

func pod(ns, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": "records"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/records:1"}}},
	}
}

func claim(ns, name string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": "records"}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
}

// webhookStem is the name, without suffix and domain, of the split webhook
// that sees obj's kind.
func webhookStem(obj client.Object) string {
	if _, ok := obj.(*corev1.Pod); ok {
		return "mpod"
	}
	return "vpersistentvolumeclaim"
}
