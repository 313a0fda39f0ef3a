package controller_test

import (
	"context"
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/controller"
	"github.com/phiguard/phiguard/internal/optionalapi"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// A safeguard added through the registry alone: no change to the controller,
// the scope builder or the watches. The throwaway safeguard below takes the
// place of a placeholder, reads an input of its own (ConfigMaps) and one of an
// optional API the cluster does not serve yet (Widgets), watches both kinds,
// keeps a record object in another namespace and removes it in Finalize.
// A manager of its own runs it, over the registryNamespace only (the suite's
// manager leaves that namespace alone).

const (
	registryNamespace = "registry"
	recordsNamespace  = "registry-records"
)

var widgetGVK = schema.GroupVersionKind{Group: "example.phiguard.io", Version: "v1", Kind: "Widget"}

var widgetsAPI = &optionalapi.API{
	Name: "Widgets", NotInstalledReason: "WidgetsNotInstalled", Install: "apply the widgets CRD",
	GroupVersion: widgetGVK.GroupVersion(), Kinds: []string{"Widget"}, CRDs: []string{"widgets.example.phiguard.io"},
}

var (
	approvals = safeguard.ListIn("ConfigMaps", safeguard.Copied, func(l *corev1.ConfigMapList) []corev1.ConfigMap { return l.Items })
	widgets   = &safeguard.InputOf[[]unstructured.Unstructured]{Name: "Widgets", API: widgetsAPI,
		Read: func(ctx context.Context, r client.Reader, s *safeguard.Scope) ([]unstructured.Unstructured, error) {
			var list unstructured.UnstructuredList
			list.SetGroupVersionKind(widgetGVK.GroupVersion().WithKind("WidgetList"))
			if err := r.List(ctx, &list, client.InNamespace(s.Workload.Namespace)); err != nil {
				return nil, fmt.Errorf("listing widgets: %w", err)
			}
			return list.Items, nil
		}}
)

type throwaway struct{}

func (throwaway) Name() phiguardv1alpha1.SafeguardName { return phiguardv1alpha1.Available }
func (throwaway) Rule() safeguard.Rule {
	return safeguard.Rule{Section: "§164.308(a)(7)(ii)(C)", Specification: phiguardv1alpha1.Required, Summary: "a throwaway"}
}
func (throwaway) Defaults(s *phiguardv1alpha1.SafeguardSettings) {
	s.Availability = &phiguardv1alpha1.AvailabilitySpec{Mode: phiguardv1alpha1.ModeAudit, MinReplicas: ptr.To[int32](2)}
}
func (throwaway) Inputs() []safeguard.Input { return []safeguard.Input{approvals, widgets} }
func (throwaway) Watches() []safeguard.Watch {
	inNamespace := func(ctx context.Context, w safeguard.Workloads, obj client.Object) []reconcile.Request {
		return w.In(ctx, obj.GetNamespace())
	}
	widget := &unstructured.Unstructured{}
	widget.SetGroupVersionKind(widgetGVK)
	return []safeguard.Watch{
		{Object: &corev1.ConfigMap{}, Map: inNamespace},
		{Object: widget, API: widgetsAPI, Map: inNamespace},
	}
}

func recordKey(w *phiguardv1alpha1.PHIWorkload) client.ObjectKey {
	return client.ObjectKey{Namespace: recordsNamespace, Name: w.Namespace + "." + w.Name}
}

func (throwaway) Reconcile(ctx context.Context, s *safeguard.Scope) safeguard.Result {
	key := recordKey(s.Workload)
	record := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
	if err := s.Client.Create(ctx, record); err != nil && !apierrors.IsAlreadyExists(err) {
		return safeguard.Result{Err: err}
	}
	if r, missing := safeguard.APINotServed(s, widgetsAPI); missing {
		return r
	}
	approved := false
	for _, cm := range approvals.Get(s) {
		approved = approved || (cm.Name == "approval" && cm.Data["approved"] == "true")
	}
	switch n := len(widgets.Get(s)); {
	case !approved:
		return safeguard.Result{Status: metav1.ConditionFalse, Reason: "NotApproved", Message: fmt.Sprintf("%d widgets, no approval", n)}
	case n == 0:
		return safeguard.Result{Status: metav1.ConditionFalse, Reason: "NoWidgets", Message: "approved, no widgets"}
	default:
		return safeguard.Result{Status: metav1.ConditionTrue, Reason: "Approved", Message: fmt.Sprintf("approved, %d widgets", n)}
	}
}

func (throwaway) Finalize(ctx context.Context, c client.Client, w *phiguardv1alpha1.PHIWorkload) ([]safeguard.Event, error) {
	key := recordKey(w)
	err := c.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}})
	return []safeguard.Event{{Reason: "RecordRemoved", Message: "removed " + key.String()}}, client.IgnoreNotFound(err)
}

var _ = Describe("A safeguard added through the registry alone", Ordered, func() {
	BeforeAll(func() {
		ensureNamespace(registryNamespace)
		ensureNamespace(recordsNamespace)
		registry := safeguard.New(safeguard.Options{})
		replaced := false
		for i := range registry {
			if registry[i].Name() == phiguardv1alpha1.Available {
				registry[i], replaced = throwaway{}, true
			}
		}
		Expect(replaced).To(BeTrue())

		mgr, err := ctrl.NewManager(cfg, ctrl.Options{
			Scheme:     scheme,
			Metrics:    metricsserver.Options{BindAddress: "0"},
			Controller: config.Controller{SkipNameValidation: ptr.To(true)},
			Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
				&phiguardv1alpha1.PHIWorkload{}: {Field: fields.OneTermEqualSelector("metadata.namespace", registryNamespace)},
			}},
		})
		Expect(err).NotTo(HaveOccurred())
		Expect((&controller.PHIWorkloadReconciler{
			Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("phiguard"), Clock: clock.RealClock{}, Registry: registry,
		}).SetupWithManager(mgr)).To(Succeed())
		mgrCtx, stop := context.WithCancel(ctx)
		DeferCleanup(stop)
		go func() {
			defer GinkgoRecover()
			Expect(mgr.Start(mgrCtx)).To(Succeed())
		}()
	})

	var w *phiguardv1alpha1.PHIWorkload
	throwawayCondition := func(g Gomega) metav1.Condition { return condition(g, w, string(phiguardv1alpha1.Available)) }

	It("reports its optional API as not installed, with the API's reason", func() {
		w = newWorkload(registryNamespace, "records", nil)
		Eventually(throwawayCondition, "10s", "50ms").Should(And(
			HaveField("Status", metav1.ConditionFalse), HaveField("Reason", "WidgetsNotInstalled"),
			HaveField("Message", ContainSubstring("Widgets is not installed (no example.phiguard.io/v1 CRDs): apply the widgets CRD"))))
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, recordKey(w), &corev1.ConfigMap{})).To(Succeed())
		}, "10s", "50ms").Should(Succeed(), "its Reconcile ran in Enforce of its own kind and kept a record")
		Expect(fetch(Default, w).Finalizers).To(ContainElement(controller.CleanupFinalizer), "a Finalizer safeguard holds the workload")
	})

	It("starts using the optional API once its CRD is installed, without a restart", func() {
		crd := &apiextensionsv1.CustomResourceDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: "widgets.example.phiguard.io"},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{
				Group: widgetGVK.Group, Scope: apiextensionsv1.NamespaceScoped,
				Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
				Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
					Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
						Type: "object", XPreserveUnknownFields: ptr.To(true)}}}},
			},
		}
		crds := []*apiextensionsv1.CustomResourceDefinition{crd}
		Expect(envtest.CreateCRDs(cfg, crds)).To(Succeed())
		DeferCleanup(func() { Expect(envtest.UninstallCRDs(cfg, envtest.CRDInstallOptions{CRDs: crds})).To(Succeed()) })

		Eventually(throwawayCondition, "10s", "50ms").Should(And(
			HaveField("Status", metav1.ConditionFalse), HaveField("Reason", "NotApproved")), "the CRD watch brought it back")

		Expect(k8s.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: registryNamespace, Name: "approval"},
			Data: map[string]string{"approved": "true"}})).To(Succeed())
		Eventually(throwawayCondition, "10s", "50ms").Should(And(
			HaveField("Status", metav1.ConditionFalse), HaveField("Reason", "NoWidgets")), "its watch on a built-in kind (ConfigMaps)")

		widget := &unstructured.Unstructured{}
		widget.SetGroupVersionKind(widgetGVK)
		widget.SetNamespace(registryNamespace)
		widget.SetName("first")
		Expect(k8s.Create(ctx, widget)).To(Succeed())
		Eventually(throwawayCondition, "10s", "50ms").Should(And(
			HaveField("Status", metav1.ConditionTrue), HaveField("Reason", "Approved"), HaveField("Message", "approved, 1 widgets")),
			"the watch on the API's kind started once it was served")
	})

	It("is finalized when the workload is deleted", func() {
		Expect(k8s.Delete(ctx, w)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(apierrors.IsNotFound(k8s.Get(ctx, recordKey(w), &corev1.ConfigMap{}))).To(BeTrue(), "the record is removed")
			g.Expect(apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(w), &phiguardv1alpha1.PHIWorkload{}))).To(BeTrue(),
				"and then the workload is released")
		}, "10s", "50ms").Should(Succeed())
	})
})
