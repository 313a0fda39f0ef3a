package webhook_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// as returns a clientset impersonating user with groups (system:masters among
// them, so that RBAC lets the request reach admission), whose warnings go to
// the suite's collector.
func as(user string, groups ...string) *kubernetes.Clientset {
	GinkgoHelper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: append([]string{"system:masters"}, groups...)}
	cfg.WarningHandler = warnings
	cs, err := kubernetes.NewForConfig(cfg)
	Expect(err).NotTo(HaveOccurred())
	return cs
}

// connect makes a CONNECT request to a pod's subresource with options.
func connect(cs *kubernetes.Clientset, ns, pod, subresource string, options runtime.Object) error {
	return cs.CoreV1().RESTClient().Post().Namespace(ns).Resource("pods").Name(pod).SubResource(subresource).
		VersionedParams(options, clientgoscheme.ParameterCodec).Do(ctx).Error()
}

// execInto makes the request `kubectl exec` starts with. No kubelet runs in
// the suite: a request admission lets through fails afterwards, as the pod
// has no node.
func execInto(cs *kubernetes.Clientset, ns, pod string, command ...string) error {
	return connect(cs, ns, pod, "exec", &corev1.PodExecOptions{Container: "app", Command: command, Stdout: true})
}

// breakGlassEvents lists the break-glass Events regarding the workload.
func breakGlassEvents(g Gomega, ns string) []eventsv1.Event {
	var list eventsv1.EventList
	g.Expect(k8s.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Kind == "PHIWorkload" && e.Action == safeguard.BreakGlassAction {
			out = append(out, e)
		}
	}
	return out
}

func accessWorkload(ns string, mode phiguardv1alpha1.Mode) {
	GinkgoHelper()
	workload(ns, phiguardv1alpha1.ModeAudit, func(w *phiguardv1alpha1.PHIWorkload) {
		w.Spec.AccessControl = &phiguardv1alpha1.AccessControlSpec{Mode: mode, EmergencyAccessGroups: []string{"oncall"}}
	})
	for _, name := range []string{"records-0", "batch-0"} {
		labels := records
		if name == "batch-0" {
			labels = map[string]string{"app": "batch"}
		}
		Expect(k8s.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{hardenedContainer("app")}}})).To(Succeed())
	}
}

var _ = Describe("Break-glass admission", func() {
	const noHost = "does not have a host assigned"

	It("refuses, in Enforce, an exec by someone in no emergency access group, admits a member's, and records both", func() {
		ns := newNamespace()
		accessWorkload(ns, phiguardv1alpha1.ModeEnforce)
		bob, alice := as("bob"), as("alice", "oncall")
		// The webhook's cache may not know the workload yet: an exec it lets
		// through fails on the missing node instead.
		var err error
		Eventually(func() error {
			err = execInto(bob, ns, "records-0", "cat", "/etc/hostname")
			return err
		}, 10*time.Second, 50*time.Millisecond).Should(MatchError(ContainSubstring("denied the request")))
		Expect(err).To(MatchError(`admission webhook "vpod-connect-access.phiguard.io" denied the request: ` +
			`bob (groups [system:masters system:authenticated]) may not exec into container app of pod ` + ns + `/records-0: command ["cat" "/etc/hostname"]: ` +
			"PHIWorkload " + ns + "/records requires break-glass access to its pods (HIPAA §164.312(a)(2)(ii), accessControl.mode Enforce), " +
			"and only members of oncall may (accessControl.emergencyAccessGroups)"))

		const refused = `may not %s: PHIWorkload %s/records requires break-glass access`
		Expect(connect(bob, ns, "records-0", "attach", &corev1.PodAttachOptions{Container: "app", Stdin: true, TTY: true})).To(MatchError(ContainSubstring(
			fmt.Sprintf(refused, "attach to container app of pod "+ns+"/records-0 (stdin true, tty true)", ns))))
		Expect(connect(bob, ns, "records-0", "portforward", &corev1.PodPortForwardOptions{Ports: []int32{5432}})).To(MatchError(ContainSubstring(
			fmt.Sprintf(refused, "port-forward to pod "+ns+"/records-0 (ports [5432])", ns))))
		Expect(execInto(alice, ns, "records-0", "sh")).To(MatchError(ContainSubstring(noHost)), "admitted: the apiserver goes on to find the pod's node")
		Expect(execInto(bob, ns, "batch-0", "sh")).To(MatchError(ContainSubstring(noHost)), "a pod the workload does not select")

		Eventually(func(g Gomega) {
			g.Expect(breakGlassEvents(g, ns)).To(ContainElements(
				And(HaveField("Reason", phiguardv1alpha1.ReasonEmergencyAccessDenied), HaveField("Type", corev1.EventTypeWarning),
					HaveField("Related", HaveValue(And(HaveField("Kind", "Pod"), HaveField("Name", "records-0"), HaveField("FieldPath", "spec.containers{app}")))),
					HaveField("Note", HavePrefix("denied: bob (groups [system:masters system:authenticated]) may not exec into container app of pod "+ns+"/records-0"))),
				And(HaveField("Reason", phiguardv1alpha1.ReasonEmergencyAccess), HaveField("Type", corev1.EventTypeNormal),
					HaveField("Note", "admitted: alice (groups [system:masters oncall system:authenticated]): exec into container app of pod "+ns+
						`/records-0: command ["sh"], as a member of emergency access group oncall of PHIWorkload `+ns+"/records")),
			))
		}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(breakGlassEvents(g, ns)).NotTo(ContainElement(HaveField("Note", ContainSubstring("batch-0"))))
		}, "1s", "100ms").Should(Succeed())
	})

	It("admits, in Audit, an ephemeral container by anyone, with a warning and an Event", func() {
		ns := newNamespace()
		accessWorkload(ns, phiguardv1alpha1.ModeAudit)
		bob := as("bob")
		// Wait until the webhook knows the workload, with execs (which add nothing).
		Eventually(func(g Gomega) {
			warnings.take()
			g.Expect(execInto(bob, ns, "records-0", "true")).To(MatchError(ContainSubstring(noHost)))
			g.Expect(warnings.take()).NotTo(BeEmpty())
		}, 10*time.Second, 50*time.Millisecond).Should(Succeed())

		pod, err := bob.CoreV1().Pods(ns).Get(ctx, "records-0", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		pod.Spec.EphemeralContainers = append(pod.Spec.EphemeralContainers, corev1.EphemeralContainer{
			EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger", Image: "busybox:1.37", Command: []string{"sh"},
				TerminationMessagePolicy: corev1.TerminationMessageReadFile, ImagePullPolicy: corev1.PullIfNotPresent},
			TargetContainerName: "app"})
		_, err = bob.CoreV1().Pods(ns).UpdateEphemeralContainers(ctx, "records-0", pod, metav1.UpdateOptions{})
		Expect(err).NotTo(HaveOccurred())
		msg := "bob (groups [system:masters system:authenticated]) may not add ephemeral container debugger (image busybox:1.37, target app, " +
			`command ["sh"]) to pod ` + ns + "/records-0: PHIWorkload " + ns + "/records requires break-glass access to its pods " +
			"(HIPAA §164.312(a)(2)(ii), accessControl.mode Audit), and only members of oncall may (accessControl.emergencyAccessGroups)"
		Expect(warnings.take()).To(ConsistOf("phiguard (Audit, allowed, recorded): " + msg))
		Eventually(func(g Gomega) {
			g.Expect(breakGlassEvents(g, ns)).To(ContainElement(And(
				HaveField("Reason", phiguardv1alpha1.ReasonEmergencyAccess), HaveField("Type", corev1.EventTypeWarning),
				HaveField("Related", HaveValue(HaveField("FieldPath", "spec.ephemeralContainers{debugger}"))),
				HaveField("Note", "admitted (Audit): "+msg))))
		}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
	})
})
