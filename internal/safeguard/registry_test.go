package safeguard

import (
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/optionalapi"
)

func TestRegistryListsEverySafeguardWithItsRuleInOrder(t *testing.T) {
	g := NewWithT(t)
	want := []struct {
		name    phiguardv1alpha1.SafeguardName
		section string
		spec    phiguardv1alpha1.Specification
		mode    phiguardv1alpha1.Mode
	}{
		{phiguardv1alpha1.NetworkIsolated, "§164.312(e)(1)", phiguardv1alpha1.Required, phiguardv1alpha1.ModeEnforce},
		{phiguardv1alpha1.EncryptedAtRest, "§164.312(a)(2)(iv)", phiguardv1alpha1.Addressable, phiguardv1alpha1.ModeEnforce},
		{phiguardv1alpha1.BackupScheduled, "§164.308(a)(7)(ii)(A)", phiguardv1alpha1.Required, phiguardv1alpha1.ModeEnforce},
		{phiguardv1alpha1.AuditLogging, "§164.312(b)", phiguardv1alpha1.Required, phiguardv1alpha1.ModeEnforce},
		{phiguardv1alpha1.TransmissionSecure, "§164.312(e)(2)(ii)", phiguardv1alpha1.Addressable, phiguardv1alpha1.ModeEnforce},
		{phiguardv1alpha1.AccessControlled, "§164.312(a)(1)", phiguardv1alpha1.Required, phiguardv1alpha1.ModeAudit},
		{phiguardv1alpha1.IntegrityProtected, "§164.312(c)(1)", phiguardv1alpha1.Required, phiguardv1alpha1.ModeAudit},
		{phiguardv1alpha1.Available, "§164.308(a)(7)(ii)(C)", phiguardv1alpha1.Required, phiguardv1alpha1.ModeAudit},
	}
	reg := New(Options{})
	g.Expect(reg).To(HaveLen(len(want)))
	defaults := reg.Defaults()
	for i, sg := range reg {
		g.Expect(sg.Name()).To(Equal(want[i].name))
		g.Expect(sg.Rule().Section).To(Equal(want[i].section), string(sg.Name()))
		g.Expect(sg.Rule().Specification).To(Equal(want[i].spec), string(sg.Name()))
		g.Expect(sg.Rule().Summary).NotTo(BeEmpty(), string(sg.Name()))
		g.Expect(defaults.Mode(sg.Name())).To(Equal(want[i].mode), string(sg.Name()))
		g.Expect(reg.Rule(sg.Name())).To(Equal(sg.Rule()))
	}
	g.Expect(reg.Rule("NoSuchSafeguard")).To(Equal(Rule{}))
}

func TestRegistryCollectsInputsWatchesAPIsAndFinalizersOnce(t *testing.T) {
	g := NewWithT(t)
	reg := New(Options{})
	g.Expect(reg.Inputs()).To(Equal([]Input{NetworkPolicies, Claims, StorageClasses, VeleroObjects, DrillObjects,
		Ingresses, Services, WorkloadNamespace, GatewayRoutes, PeerAuthentications,
		ServiceAccounts, NamespacePods, ClusterRoles, ClusterRoleBindings, NamespacedRBAC,
		ReplicaSets, Deployments, StatefulSets, Autoscalers, DisruptionBudgets}))
	g.Expect(reg.APIs()).To(Equal([]*optionalapi.API{optionalapi.Velero, optionalapi.GatewayAPI, optionalapi.Istio}))
	g.Expect(reg.Watches()).To(HaveLen(26)) // NetworkPolicy; claim, class; Schedule, Backup, location, Restore; Ingress, Service, Namespace, HTTPRoute, GRPCRoute, Gateway, PeerAuthentication; ServiceAccount, pod, RoleBinding, Role, ClusterRole, ClusterRoleBinding; Deployment, StatefulSet, ReplicaSet, autoscaler, budget, pod scheduled
	g.Expect(reg.Finalizers()).To(HaveLen(1))
	g.Expect(reg.Finalizers()[0]).To(BeAssignableToTypeOf(BackupScheduling{}))

	// Two safeguards that read the same input get it read once.
	twice := Registry{NetworkIsolation{}, NetworkIsolation{}}
	g.Expect(twice.Inputs()).To(Equal([]Input{NetworkPolicies}))
}

// schemed is a safeguard that brings a kind of its own.
type schemed struct{ Safeguard }

var schemedGVK = schema.GroupVersionKind{Group: "example.phiguard.io", Version: "v1", Kind: "Gadget"}

func (schemed) AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypeWithName(schemedGVK, &unstructured.Unstructured{})
	return nil
}

func TestRegistryAddsTheKindsOfSafeguardsThatBringTheirOwn(t *testing.T) {
	g := NewWithT(t)
	s := runtime.NewScheme()
	g.Expect(Registry{NetworkIsolation{}}.AddToScheme(s)).To(Succeed())
	g.Expect(s.Recognizes(schemedGVK)).To(BeFalse())
	g.Expect(Registry{NetworkIsolation{}, schemed{Integrity{}}}.AddToScheme(s)).To(Succeed())
	g.Expect(s.Recognizes(schemedGVK)).To(BeTrue())
}
