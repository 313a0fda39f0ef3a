package safeguard

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/optionalapi"
)

// Input is something a safeguard reads, held by the Scope. The scope builder
// reads each input of the registry once per reconcile, from the cache.
type Input interface {
	name() string
	api() *optionalapi.API
	read(ctx context.Context, r client.Reader, s *Scope) (any, error)
}

// Sharing says whether what an input lists is the cache's own objects or
// copies of them.
type Sharing int

const (
	// Copied means the input lists deep copies of the cache's objects, which
	// a safeguard may change. Every reconcile then copies every object of the
	// kinds it lists (in the workload's namespace, or the cluster).
	Copied Sharing = iota
	// Shared means the input lists the cache's own objects, without copies
	// (client.UnsafeDisableDeepCopy). The items of a list are shallow copies:
	// their maps, slices and pointers are the cache's, read by the informer
	// and by every other reconcile at the same time. Nothing that reads the
	// input may change anything reachable from it (a label, an element of a
	// slice, the TypeMeta of an item held by pointer), nor pass it to code
	// that does (scheme defaulting, SetGroupVersionKind, a patch helper that
	// edits its object, a client call that decodes into it); copy the one
	// object first (DeepCopy) where a change is needed. Items may carry no
	// TypeMeta: the cache sets it on copies only.
	// TestReconcileChangesNoSharedObject runs every safeguard over shared
	// inputs and fails on a change.
	Shared
)

// InputOf is an input of type T. Declare one as a package variable next to
// the safeguard that reads it; another safeguard may declare the same one.
type InputOf[T any] struct {
	// Name names the input in errors.
	Name string
	// API, when set, is the optional API whose kinds the input reads: Read runs
	// only while it is served, and the input holds T's zero value otherwise
	// (see Scope.API).
	API *optionalapi.API
	// Sharing says whether Read lists the cache's own objects (Shared) or
	// copies (Copied, the zero value). Shared lists are what make a
	// reconcile cheap; declare an input Shared only when no code that reads
	// it changes it (see Shared). It applies to Read's lists, not its Gets.
	Sharing Sharing
	// Read lists what the input holds. It runs after the scope's workload,
	// policy, settings, selector and pods are set.
	Read func(ctx context.Context, r client.Reader, s *Scope) (T, error)
}

func (in *InputOf[T]) name() string          { return in.Name }
func (in *InputOf[T]) api() *optionalapi.API { return in.API }
func (in *InputOf[T]) read(ctx context.Context, r client.Reader, s *Scope) (any, error) {
	if in.Sharing == Shared {
		r = uncopied{r}
	}
	return in.Read(ctx, r, s)
}

// Get returns what the input read for this scope; T's zero value when it was
// not read (its API is not served).
func (in *InputOf[T]) Get(s *Scope) T {
	v, _ := s.inputs[in].(T)
	return v
}

// Set puts a value in the scope, as the scope builder does: for tests that
// build a Scope by hand.
func (in *InputOf[T]) Set(s *Scope, v T) {
	if s.inputs == nil {
		s.inputs = map[Input]any{}
	}
	s.inputs[in] = v
}

// ListIn returns an InputOf that lists one kind in the workload's namespace,
// shared with the cache or copied as sharing says. L is the list type, T its
// item type.
func ListIn[T any, L any, PL interface {
	*L
	client.ObjectList
}](name string, sharing Sharing, items func(*L) []T) *InputOf[[]T] {
	return &InputOf[[]T]{Name: name, Sharing: sharing, Read: func(ctx context.Context, r client.Reader, s *Scope) ([]T, error) {
		var list L
		if err := r.List(ctx, PL(&list), client.InNamespace(s.Workload.Namespace)); err != nil {
			return nil, fmt.Errorf("listing %s in %s: %w", name, s.Workload.Namespace, err)
		}
		return items(&list), nil
	}}
}

// ListCluster returns an InputOf that lists one kind across the cluster: a
// cluster-scoped kind (ClusterRoles), or a namespaced one in every namespace;
// shared with the cache or copied as sharing says. L is the list type, T its
// item type.
func ListCluster[T any, L any, PL interface {
	*L
	client.ObjectList
}](name string, sharing Sharing, items func(*L) []T) *InputOf[[]T] {
	return &InputOf[[]T]{Name: name, Sharing: sharing, Read: func(ctx context.Context, r client.Reader, _ *Scope) ([]T, error) {
		var list L
		if err := r.List(ctx, PL(&list)); err != nil {
			return nil, fmt.Errorf("listing %s: %w", name, err)
		}
		return items(&list), nil
	}}
}

// Watch re-evaluates workloads when objects of one kind change.
type Watch struct {
	// Object is an empty object of the kind watched.
	Object client.Object
	// API, when set, is the optional API that serves the kind: the watch
	// starts once the API is served, without a restart.
	API *optionalapi.API
	// Map names the workloads to re-evaluate for a changed object.
	Map func(ctx context.Context, w Workloads, obj client.Object) []reconcile.Request
	// Predicates filter the events before Map.
	Predicates []predicate.Predicate
}

// Workloads finds PHIWorkloads for the watches' map functions, from the cache.
type Workloads struct {
	Reader client.Reader
}

// CacheWorkloads returns the Workloads of the watches' map functions: they
// read the cache's own objects, not copies (client.UnsafeDisableDeepCopy),
// since each event of a busy namespace would otherwise copy every workload
// and pod of it. A map function never modifies what it reads.
func CacheWorkloads(cache client.Reader) Workloads {
	return Workloads{Reader: uncopied{cache}}
}

// uncopied lists without deep copies: the cache's own objects (see Shared).
// Its Gets still copy.
type uncopied struct{ client.Reader }

func (u uncopied) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	return u.Reader.List(ctx, list, append(opts, client.UnsafeDisableDeepCopy)...) //nolint:wrapcheck // a reader's own error
}

// In returns every PHIWorkload in a namespace, or everywhere for "".
func (w Workloads) In(ctx context.Context, namespace string) []reconcile.Request {
	var list phiguardv1alpha1.PHIWorkloadList
	if err := w.Reader.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		// A map function cannot return an error; the next change or resync
		// brings the workloads back.
		logf.FromContext(ctx).Error(err, "listing PHIWorkloads", "namespace", namespace)
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}

// Selecting returns the PHIWorkloads in a namespace whose selector matches a
// pod's labels (every namespace-wide one does).
func (w Workloads) Selecting(ctx context.Context, namespace string, podLabels map[string]string) []reconcile.Request {
	var list phiguardv1alpha1.PHIWorkloadList
	if err := w.Reader.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		logf.FromContext(ctx).Error(err, "listing PHIWorkloads", "namespace", namespace)
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if selectsPod(&list.Items[i].Spec.Selector, podLabels) {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return reqs
}

// selectsPod says whether a workload's selector selects a pod with podLabels,
// for the map functions, which run on every pod event against every workload
// of its namespace. A selector of matchLabels alone (the usual kind) is
// checked in place, without building a labels.Selector; one with
// matchExpressions is parsed, and when it cannot be (reported on the workload
// itself) selects nothing. A matchLabels value that is not a valid label value
// is matched as written: a map function that brings back one workload too
// many costs a reconcile, never a verdict.
func selectsPod(sel *metav1.LabelSelector, podLabels map[string]string) bool {
	if len(sel.MatchExpressions) == 0 {
		for k, v := range sel.MatchLabels {
			if got, ok := podLabels[k]; !ok || got != v {
				return false
			}
		}
		return true
	}
	parsed, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && parsed.Matches(labels.Set(podLabels))
}

// Controller returns the PHIWorkload that controls obj, if any; otherwise
// every PHIWorkload in obj's namespace.
func (w Workloads) Controller(ctx context.Context, obj client.Object) []reconcile.Request {
	if owner := metav1.GetControllerOf(obj); owner != nil && owner.Kind == kindPHIWorkload &&
		owner.APIVersion == phiguardv1alpha1.GroupVersion.String() {
		return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: obj.GetNamespace(), Name: owner.Name}}}
	}
	return w.In(ctx, obj.GetNamespace())
}
