package cli

import (
	"context"
	"fmt"
	"reflect"
	"sync"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// newAdmissionReader returns what the webhooks read in a preview: the
// cluster, in which the only PHIWorkload is w (admission then decides as it
// would once w is applied, for w alone), each read made once. The manager's
// webhooks read a cache; judging every object of a namespace would
// otherwise read the PHIPolicy, the StorageClasses and the pods again for
// each one.
func newAdmissionReader(c client.WithWatch, w *phiguardv1alpha1.PHIWorkload) client.Reader {
	m := &memo{results: map[string]memoResult{}}
	return interceptor.NewClient(c, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if pw, ok := obj.(*phiguardv1alpha1.PHIWorkload); ok {
				if key != client.ObjectKeyFromObject(w) {
					return apierrors.NewNotFound(phiguardv1alpha1.GroupVersion.WithResource("phiworkloads").GroupResource(), key.Name)
				}
				w.DeepCopyInto(pw)
				return nil
			}
			return m.do(fmt.Sprintf("get %T %s", obj, key), obj, func() error { return c.Get(ctx, key, obj, opts...) })
		},
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			lo := (&client.ListOptions{}).ApplyOptions(opts)
			if pl, ok := list.(*phiguardv1alpha1.PHIWorkloadList); ok {
				pl.Items = nil
				if (lo.Namespace == "" || lo.Namespace == w.Namespace) &&
					(lo.LabelSelector == nil || lo.LabelSelector.Matches(labels.Set(w.Labels))) {
					pl.Items = []phiguardv1alpha1.PHIWorkload{*w.DeepCopy()}
				}
				return nil
			}
			key := fmt.Sprintf("list %T %s %v %v %d %s", list, lo.Namespace, lo.LabelSelector, lo.FieldSelector, lo.Limit, lo.Continue)
			return m.do(key, list, func() error { return c.List(ctx, list, opts...) })
		},
	})
}

// memo keeps the result of each read by a key: the object read (a copy) or
// the error.
type memo struct {
	mu      sync.Mutex
	results map[string]memoResult
}

type memoResult struct {
	obj runtime.Object
	err error
}

// do fills into with what the read of key returned, reading it (with read,
// into into) the first time. into must be a pointer to a struct, as every
// object and list is.
func (m *memo) do(key string, into runtime.Object, read func() error) error {
	m.mu.Lock()
	r, ok := m.results[key]
	m.mu.Unlock()
	if ok {
		if r.err == nil {
			reflect.ValueOf(into).Elem().Set(reflect.ValueOf(r.obj.DeepCopyObject()).Elem())
		}
		return r.err
	}
	err := read()
	r = memoResult{err: err}
	if err == nil {
		r.obj = into.DeepCopyObject()
	}
	m.mu.Lock()
	m.results[key] = r
	m.mu.Unlock()
	return err
}

// whoAmI returns the user the apiserver authenticates this command as, for
// the webhooks that judge who asks (a decision's approvers).
func whoAmI(ctx context.Context, c client.Client) (authenticationv1.UserInfo, error) {
	review := &authenticationv1.SelfSubjectReview{}
	if err := c.Create(ctx, review); err != nil {
		return authenticationv1.UserInfo{}, fmt.Errorf("could not ask the apiserver who you are (SelfSubjectReview): %w", err)
	}
	return review.Status.UserInfo, nil
}
