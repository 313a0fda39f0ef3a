//go:build e2e

package e2e

import (
	"bytes"
	"os/exec"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// hardenedTemplate is a pod template every safeguard's pod checks pass: its
// own ServiceAccount without a token, the restricted Pod Security Standard, a
// read-only root filesystem, an image pinned by digest, and replicas spread
// over nodes.
func hardenedTemplate(app string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels(app)},
		Spec: corev1.PodSpec{
			ServiceAccountName:           app,
			AutomountServiceAccountToken: ptrTo(false),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptrTo(true),
				RunAsUser:      ptrTo(int64(10001)),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
				MaxSkew: 1, TopologyKey: corev1.LabelHostname, WhenUnsatisfiable: corev1.DoNotSchedule,
				LabelSelector:  &metav1.LabelSelector{MatchLabels: labels(app)},
				MatchLabelKeys: []string{appsv1.DefaultDeploymentUniqueLabelKey},
			}},
			Containers: []corev1.Container{{
				Name:  "app",
				Image: "registry.example/" + app + "@sha256:cfac4c8fd632dc5981acd978aaefb1114065a0c70b27cbb54308876d1bcacdd4",
				Ports: []corev1.ContainerPort{{Name: "https", ContainerPort: 8443}},
				SecurityContext: &corev1.SecurityContext{
					ReadOnlyRootFilesystem:   ptrTo(true),
					AllowPrivilegeEscalation: ptrTo(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
}

// compliantApp creates, in ns, what a team handling ePHI well runs: a
// ServiceAccount of its own with no token, a Service that declares TLS on
// its only port, and a Deployment of two hardened replicas.
func compliantApp(ns, app string) {
	GinkgoHelper()
	Expect(k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: app},
		AutomountServiceAccountToken: ptrTo(false)})).To(Succeed())
	Expect(k8s.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: app},
		Spec: corev1.ServiceSpec{Selector: labels(app), Ports: []corev1.ServicePort{{
			Name: "https", Port: 443, TargetPort: intstr.FromString("https"), AppProtocol: ptrTo("https")}}},
	})).To(Succeed())
	Expect(k8s.Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: app},
		Spec: appsv1.DeploymentSpec{Replicas: ptrTo(int32(2)), Selector: &metav1.LabelSelector{MatchLabels: labels(app)},
			Template: hardenedTemplate(app)},
	})).To(Succeed())
}

// completeBackup plays Velero: a Completed backup of the workload's Schedule.
func completeBackup(w *phiguardv1alpha1.PHIWorkload) {
	GinkgoHelper()
	schedule := safeguard.ScheduleName(w)
	Eventually(func() error {
		return k8s.Get(ctx, types.NamespacedName{Namespace: "velero", Name: schedule}, &velerov1.Schedule{})
	}, timeout, poll).Should(Succeed())
	now := metav1.Now()
	Expect(k8s.Create(ctx, &velerov1.Backup{
		ObjectMeta: metav1.ObjectMeta{Namespace: "velero", Name: schedule + "-1", Labels: map[string]string{velerov1.ScheduleNameLabel: schedule}},
		Status:     velerov1.BackupStatus{Phase: velerov1.BackupPhaseCompleted, StartTimestamp: &now, CompletionTimestamp: &now},
	})).To(Succeed())
}

// kubectl runs bin/k8s/kubectl against the cluster, as its administrator.
func kubectl(args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(root, "bin", "k8s", "kubectl"),
		append([]string{"--kubeconfig", cluster.Kubeconfig}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func condition(g Gomega, key types.NamespacedName, typ string) *metav1.Condition {
	c := meta.FindStatusCondition(get(g, key).Status.Conditions, typ)
	g.ExpectWithOffset(1, c).NotTo(BeNil(), "condition %s", typ)
	return c
}

var _ = Describe("a workload that meets every safeguard", Ordered, func() {
	var ns string
	var key types.NamespacedName

	It("is Ready, Compliant and 8/8, and kubectl wait --for=condition=Ready returns", func() {
		ns = newNamespace("e2e-compliant")
		w := workload(ns, "vault", "vault")
		// phiguard generates the PodDisruptionBudget.
		w.Spec.Availability = &phiguardv1alpha1.AvailabilitySpec{Mode: phiguardv1alpha1.ModeEnforce}
		key = client.ObjectKeyFromObject(w)
		Expect(k8s.Create(ctx, w)).To(Succeed())
		compliantApp(ns, "vault")
		completeBackup(w)

		out, err := kubectl("wait", "--for=condition=Ready", "phiw/vault", "-n", ns, "--timeout=120s")
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(out).To(ContainSubstring("phiworkload.compliance.phiguard.io/vault condition met"))

		w = get(Default, key)
		Expect(w.Status.Compliance).To(Equal(phiguardv1alpha1.Compliant))
		Expect(w.Status.Score).To(Equal("8/8"))
		Expect(w.Status.ObservedGeneration).To(Equal(w.Generation))
		for _, c := range w.Status.Conditions {
			if c.Type != phiguardv1alpha1.ReconcilingCondition && c.Type != phiguardv1alpha1.StalledCondition {
				Expect(c.Status).To(Equal(metav1.ConditionTrue), "%s: %s (%s)", c.Type, c.Reason, c.Message)
			}
		}
		nodes := map[string]bool{}
		for _, p := range runningPods(Default, ns, "vault") {
			Expect(hasSidecar(p)).To(BeTrue())
			nodes[p.Spec.NodeName] = true
		}
		Expect(nodes).To(HaveLen(2), "the two replicas run on the two nodes")
		var pdbs policyv1.PodDisruptionBudgetList
		Expect(k8s.List(ctx, &pdbs, client.InNamespace(ns))).To(Succeed())
		Expect(pdbs.Items).To(HaveLen(1))
		Expect(metav1.IsControlledBy(&pdbs.Items[0], w)).To(BeTrue(), "phiguard's PodDisruptionBudget is owned by the workload")
		Expect(pdbs.Items[0].Spec.MaxUnavailable).To(Equal(ptrTo(intstr.FromInt32(1))))
	})

	It("turns not Ready when one replica is left, and Ready again at two", func() {
		scale := func(n int32) {
			var d appsv1.Deployment
			Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "vault"}, &d)).To(Succeed())
			d.Spec.Replicas = ptrTo(n)
			Expect(k8s.Update(ctx, &d)).To(Succeed())
		}
		scale(1)
		Eventually(func(g Gomega) {
			g.Expect(condition(g, key, string(phiguardv1alpha1.Available)).Status).To(Equal(metav1.ConditionFalse))
			w := get(g, key)
			g.Expect(w.Status.Compliance).To(Equal(phiguardv1alpha1.NonCompliant))
			g.Expect(w.Status.Score).To(Equal("7/8"))
			g.Expect(condition(g, key, phiguardv1alpha1.ReadyCondition).Message).To(Equal("failing: Available"))
		}, timeout, poll).Should(Succeed())
		scale(2)
		out, err := kubectl("wait", "--for=condition=Ready", "phiw/vault", "-n", ns, "--timeout=120s")
		Expect(err).NotTo(HaveOccurred(), out)
	})

	It("turns AccessControlled False when its ServiceAccount is bound to a wildcard Role, naming the binding", func() {
		Expect(k8s.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "everything"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}}})).To(Succeed())
		binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vault-everything"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "everything"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "vault"}}}
		Expect(k8s.Create(ctx, binding)).To(Succeed())
		Eventually(func(g Gomega) {
			c := condition(g, key, string(phiguardv1alpha1.AccessControlled))
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Message).To(ContainSubstring(`RoleBinding "vault-everything/` + ns + `" of Role "everything"`))
			g.Expect(condition(g, key, phiguardv1alpha1.ReadyCondition).Status).To(Equal(metav1.ConditionFalse))
		}, timeout, poll).Should(Succeed())
		Expect(k8s.Delete(ctx, binding)).To(Succeed())
		out, err := kubectl("wait", "--for=condition=Ready", "phiw/vault", "-n", ns, "--timeout=120s")
		Expect(err).NotTo(HaveOccurred(), out)
	})

	It("turns TransmissionSecure False for an Ingress without TLS for its host, and True once it has it", func() {
		ingress := &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vault"},
			Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{
				Host: "vault.clinic.example",
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
					Path: "/", PathType: ptrTo(networkingv1.PathTypePrefix),
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
						Name: "vault", Port: networkingv1.ServiceBackendPort{Name: "https"}}},
				}}}},
			}}},
		}
		Expect(k8s.Create(ctx, ingress)).To(Succeed())
		Eventually(func(g Gomega) {
			c := condition(g, key, string(phiguardv1alpha1.TransmissionSecure))
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonIngressWithoutTLS))
			g.Expect(c.Message).To(ContainSubstring("Ingress vault serves host vault.clinic.example (to Service vault) without TLS"))
		}, timeout, poll).Should(Succeed())

		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(ingress), ingress)).To(Succeed())
		ingress.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"vault.clinic.example"}, SecretName: "vault-tls"}}
		Expect(k8s.Update(ctx, ingress)).To(Succeed())
		Eventually(func(g Gomega) {
			c := condition(g, key, string(phiguardv1alpha1.TransmissionSecure))
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonEncryptedInTransit), c.Message)
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		}, timeout, poll).Should(Succeed())
	})

	It("lets only the emergency access group exec into the pods in Enforce, and records every attempt", func() {
		w := get(Default, key)
		w.Spec.AccessControl = &phiguardv1alpha1.AccessControlSpec{Mode: phiguardv1alpha1.ModeEnforce, EmergencyAccessGroups: []string{"oncall"}}
		Expect(k8s.Update(ctx, w)).To(Succeed())
		Eventually(func(g Gomega) {
			w := get(g, key)
			g.Expect(w.Status.ObservedGeneration).To(Equal(w.Generation))
		}, timeout, poll).Should(Succeed())
		pod := runningPods(Default, ns, "vault")[0].Name

		By("bob, a cluster administrator outside the group, is refused")
		// The webhook reads the workload from the manager's cache, which the
		// status above shows is current.
		out, err := kubectl("exec", "-n", ns, pod, "-c", "app", "--as=bob", "--as-group=system:masters", "--", "cat", "/var/lib/records/patient.db")
		Expect(err).To(HaveOccurred())
		Expect(out).To(And(ContainSubstring("denied the request"), ContainSubstring("bob"), ContainSubstring("only members of oncall may")))

		By("carol, on call, gets past admission (kwok's simulated kubelet then has no container to run it in)")
		out, err = kubectl("exec", "-n", ns, pod, "-c", "app", "--as=carol", "--as-group=system:masters", "--as-group=oncall", "--", "id")
		Expect(out).NotTo(ContainSubstring("denied the request"), "%v", err)

		Eventually(func(g Gomega) {
			var events eventsv1.EventList
			g.Expect(k8s.List(ctx, &events, client.InNamespace(ns))).To(Succeed())
			notes := map[string]string{}
			for _, e := range events.Items {
				if e.Regarding.Kind == "PHIWorkload" && e.Regarding.Name == "vault" && e.Action == safeguard.BreakGlassAction {
					notes[e.Reason] = e.Note
				}
			}
			g.Expect(notes).To(HaveKeyWithValue(phiguardv1alpha1.ReasonEmergencyAccessDenied,
				And(ContainSubstring("bob"), ContainSubstring("exec into container app of pod "+ns+"/"+pod), ContainSubstring("patient.db"))))
			g.Expect(notes).To(HaveKeyWithValue(phiguardv1alpha1.ReasonEmergencyAccess,
				And(ContainSubstring("carol"), ContainSubstring("oncall"))))
		}, timeout, poll).Should(Succeed())
	})

	It("refuses, with integrity in Enforce, a Deployment whose pods would not be hardened, naming every failed check", func() {
		w := get(Default, key)
		w.Spec.Integrity = &phiguardv1alpha1.IntegritySpec{Mode: phiguardv1alpha1.ModeEnforce}
		Expect(k8s.Update(ctx, w)).To(Succeed())
		Eventually(func(g Gomega) {
			w := get(g, key)
			g.Expect(w.Status.ObservedGeneration).To(Equal(w.Generation))
		}, timeout, poll).Should(Succeed())
		d := deployment(ns, "vault-canary", 1, nil)
		d.Spec.Template.Labels = labels("vault")
		d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "vault", "track": "canary"}}
		d.Spec.Template.Labels["track"] = "canary"
		err := k8s.Create(ctx, d)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(And(ContainSubstring("container app"), ContainSubstring("root filesystem not read-only"),
			ContainSubstring("not pinned by digest"), ContainSubstring("allowPrivilegeEscalation")))
		Expect(condition(Default, key, phiguardv1alpha1.ReadyCondition).Status).To(Equal(metav1.ConditionTrue), "nothing refused reached the cluster")
	})
})
