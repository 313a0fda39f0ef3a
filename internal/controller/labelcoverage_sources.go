package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// The kinds a developer labels phiguard.io/ephi=true, and how each one's pods
// are found.

// LabelSource is one kind of object that can be labelled phiguard.io/ephi.
type LabelSource struct {
	// Kind is the object's kind, also the value of GeneratedFromLabel.
	Kind string
	// prefix starts the name of the generated PHIWorkload.
	prefix string
	// newObject returns an empty object of the kind.
	newObject func() client.Object
	// newList returns an empty list of the kind.
	newList func() client.ObjectList
	// target returns the pods the object's coverage selects; ok is false when
	// it selects none (a Service without a selector), with the reason.
	target func(client.Object) (t coverageTarget, ok bool, why string)
}

// The four labelled kinds.
var (
	DeploymentSource = LabelSource{
		Kind: "Deployment", prefix: "deploy",
		newObject: func() client.Object { return &appsv1.Deployment{} },
		newList:   func() client.ObjectList { return &appsv1.DeploymentList{} },
		target: func(o client.Object) (coverageTarget, bool, string) {
			d := o.(*appsv1.Deployment)
			return podTemplateTarget(d.Spec.Selector, d.Spec.Template.Labels)
		},
	}
	StatefulSetSource = LabelSource{
		Kind: "StatefulSet", prefix: "sts",
		newObject: func() client.Object { return &appsv1.StatefulSet{} },
		newList:   func() client.ObjectList { return &appsv1.StatefulSetList{} },
		target: func(o client.Object) (coverageTarget, bool, string) {
			s := o.(*appsv1.StatefulSet)
			return podTemplateTarget(s.Spec.Selector, s.Spec.Template.Labels)
		},
	}
	ServiceSource = LabelSource{
		Kind: "Service", prefix: "svc",
		newObject: func() client.Object { return &corev1.Service{} },
		newList:   func() client.ObjectList { return &corev1.ServiceList{} },
		target: func(o client.Object) (coverageTarget, bool, string) {
			s := o.(*corev1.Service)
			if len(s.Spec.Selector) == 0 {
				return coverageTarget{}, false, "the Service has no selector (ExternalName or manually managed endpoints), so phiguard cannot tell which pods serve it; label the Deployment or StatefulSet behind it instead"
			}
			return coverageTarget{
				selector:  metav1.LabelSelector{MatchLabels: maps.Clone(s.Spec.Selector)},
				podLabels: labels.Set(s.Spec.Selector),
			}, true, ""
		},
	}
	NamespaceSource = LabelSource{
		Kind: "Namespace", prefix: "ns",
		newObject: func() client.Object { return &corev1.Namespace{} },
		newList:   func() client.ObjectList { return &corev1.NamespaceList{} },
		target: func(client.Object) (coverageTarget, bool, string) {
			return coverageTarget{namespaceWide: true}, true, ""
		},
	}
)

// LabelSources are all the labelled kinds.
var LabelSources = []LabelSource{DeploymentSource, StatefulSetSource, ServiceSource, NamespaceSource}

// coverageTarget is the set of pods a labelled object's coverage selects.
type coverageTarget struct {
	// selector is the generated PHIWorkload's selector (empty when namespaceWide).
	selector metav1.LabelSelector
	// namespaceWide covers every pod in the namespace.
	namespaceWide bool
	// podLabels are labels every one of those pods carries: another
	// PHIWorkload whose selector matches them covers the same pods.
	podLabels labels.Set
}

// podTemplateTarget covers the pods of a Deployment or StatefulSet: those its
// own selector selects. The apiserver requires that selector to match the pod
// template's labels; unlike the template labels it is immutable, and it also
// selects the pods of an older template still running mid-rollout.
func podTemplateTarget(sel *metav1.LabelSelector, template map[string]string) (coverageTarget, bool, string) {
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		return coverageTarget{}, false, "the object has no pod selector"
	}
	return coverageTarget{selector: *sel.DeepCopy(), podLabels: labels.Set(maps.Clone(template))}, true, ""
}

// coveredBy says whether another PHIWorkload selects every pod of t.
func (t coverageTarget) coveredBy(w *phiguardv1alpha1.PHIWorkload) bool {
	if w.Spec.NamespaceWide {
		return true
	}
	sel, err := metav1.LabelSelectorAsSelector(&w.Spec.Selector)
	if err != nil || t.namespaceWide {
		return false // a selector can cover a whole namespace only as namespaceWide
	}
	return sel.Matches(t.podLabels)
}

// GeneratedName is the name of the PHIWorkload generated for the object of the
// source's kind named name: <prefix>-<name>, or, when that is longer than a
// PHIWorkload name may be (63), its first characters and a hash of the whole.
func (s LabelSource) GeneratedName(name string) string {
	const limit, hashLen = 63, 8
	full := s.prefix + "-" + name
	if len(full) <= limit {
		return full
	}
	sum := sha256.Sum256([]byte(full))
	head := strings.TrimRight(full[:limit-hashLen-1], "-.")
	return head + "-" + hex.EncodeToString(sum[:])[:hashLen]
}

// generatedNamespace is the namespace of the PHIWorkload generated for obj.
func (s LabelSource) generatedNamespace(key client.ObjectKey) string {
	if s.Kind == NamespaceSource.Kind {
		return key.Name
	}
	return key.Namespace
}

// generatedFor says whether w is the PHIWorkload generated for the object of
// this kind named name.
func (s LabelSource) generatedFor(w *phiguardv1alpha1.PHIWorkload, name string) bool {
	return w.Labels[phiguardv1alpha1.GeneratedFromLabel] == s.Kind &&
		w.Annotations[phiguardv1alpha1.SourceAnnotation] == s.Kind+"/"+name
}

// supersedes says whether an existing PHIWorkload takes precedence over the
// one this kind would generate: a hand-written one always, and one generated
// for a Namespace over those generated for the objects inside it.
func (s LabelSource) supersedes(w *phiguardv1alpha1.PHIWorkload) bool {
	from, generated := w.Labels[phiguardv1alpha1.GeneratedFromLabel]
	return !generated || (from == NamespaceSource.Kind && s.Kind != NamespaceSource.Kind)
}

// labelled says whether an object asks to be covered.
func labelled(o client.Object) bool {
	return o.GetLabels()[phiguardv1alpha1.EPHILabel] == phiguardv1alpha1.EPHILabelValue
}
