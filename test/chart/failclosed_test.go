//go:build chart

package chart

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

const (
	mutatingKey   = "MutatingWebhookConfiguration/phiguard-mutating-webhook-configuration"
	validatingKey = "ValidatingWebhookConfiguration/phiguard-validating-webhook-configuration"
	// failClosed is the value that makes the pod and claim webhooks fail
	// closed in the namespaces that hold ePHI.
	failClosed = "webhook.failClosedForEPHI=true"
)

// The webhooks webhook.failClosedForEPHI splits, by the configuration that
// holds them.
var splitWebhooks = map[string]string{
	"mpod.phiguard.io":                   mutatingKey,
	"vpersistentvolumeclaim.phiguard.io": validatingKey,
}

// webhook is what matters here of one webhook of a rendered configuration.
type webhook struct {
	name, path        string
	failurePolicy     admissionregistrationv1.FailurePolicyType
	namespaceSelector *metav1.LabelSelector
	// rest is everything else, for comparing a split webhook's entries.
	rest map[string]any
}

// webhooksOf returns the webhooks of the rendered configuration at key, in order.
func webhooksOf(t *testing.T, objs map[string]*unstructured.Unstructured, key string) []webhook {
	t.Helper()
	obj := objs[key]
	if obj == nil {
		t.Fatalf("the chart renders no %s", key)
	}
	list, _, err := unstructured.NestedSlice(obj.Object, "webhooks")
	if err != nil {
		t.Fatal(err)
	}
	out := make([]webhook, 0, len(list))
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			t.Fatalf("%s: a webhook is a %T", key, item)
		}
		var typed admissionregistrationv1.ValidatingWebhook // the fields read here are the same in both kinds
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &typed); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		rest := runtime.DeepCopyJSON(m)
		for _, field := range []string{"name", "failurePolicy", "namespaceSelector"} {
			delete(rest, field)
		}
		h := webhook{name: typed.Name, namespaceSelector: typed.NamespaceSelector, rest: rest}
		if typed.FailurePolicy != nil {
			h.failurePolicy = *typed.FailurePolicy
		}
		if s := typed.ClientConfig.Service; s != nil && s.Path != nil {
			h.path = *s.Path
		}
		out = append(out, h)
	}
	return out
}

// TestChartFailClosedMatchesConfigFailClosed: the chart's
// webhook.failClosedForEPHI and the config/fail-closed-ephi overlay install
// the same.
func TestChartFailClosedMatchesConfigFailClosed(t *testing.T) {
	compare(t, objects(t, render(t, "--set", failClosed)), objects(t, kustomize(t, "fail-closed-ephi")))
}

// namespaceCase is a namespace, by its labels, and the entry of a split
// webhook ("" for the original, "-ephi", "-holds-ephi") that must be called
// for it, or none.
type namespaceCase struct {
	labels map[string]string
	want   string
}

const none = "none"

func nsLabels(name string, extra ...string) map[string]string {
	l := map[string]string{"kubernetes.io/metadata.name": name}
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return l
}

var (
	ephi  = phiguardv1alpha1.EPHILabel
	holds = phiguardv1alpha1.HoldsEPHILabel
)

// TestChartFailClosedForEPHI: with webhook.failClosedForEPHI, each split
// webhook is three entries, alike but for name, failurePolicy and
// namespaceSelector, whose selectors call exactly one of them for any
// namespace but kube-system, kube-node-lease and the release's, which none
// of them sees, however labelled; without it, one entry as before.
func TestChartFailClosedForEPHI(t *testing.T) {
	// Exempt namespaces carry both labels: the name alone keeps them out.
	exempt := []namespaceCase{
		{nsLabels("kube-system", ephi, "true", holds, "true"), none},
		{nsLabels("kube-node-lease", ephi, "true", holds, "true"), none},
		{nsLabels("phiguard-system", ephi, "true", holds, "true"), none},
	}
	ordinary := []namespaceCase{
		{nsLabels("clinic"), ""},
		{nsLabels("clinic", ephi, "false"), ""},
		{nsLabels("clinic", holds, "false"), ""},
	}
	ePHI := []namespaceCase{
		{nsLabels("clinic", ephi, "true"), "-ephi"},
		{nsLabels("clinic", ephi, "true", holds, "true"), "-ephi"},
		{nsLabels("clinic", holds, "true"), "-holds-ephi"},
		{nsLabels("clinic", ephi, "false", holds, "true"), "-holds-ephi"},
	}
	for _, tc := range []struct {
		name   string
		values []string
		// policies are the failurePolicy of each entry, by suffix.
		policies map[string]admissionregistrationv1.FailurePolicyType
		cases    []namespaceCase
	}{{
		name:     "fail closed for ePHI",
		values:   []string{"--set", failClosed},
		policies: map[string]admissionregistrationv1.FailurePolicyType{"": "Ignore", "-ephi": "Fail", "-holds-ephi": "Fail"},
		cases:    slices.Concat(exempt, ordinary, ePHI),
	}, {
		name:     "fail closed for ePHI, and everywhere else",
		values:   []string{"--set", failClosed, "--set", "webhook.failurePolicy=Fail"},
		policies: map[string]admissionregistrationv1.FailurePolicyType{"": "Fail", "-ephi": "Fail", "-holds-ephi": "Fail"},
		cases:    slices.Concat(exempt, ordinary, ePHI),
	}, {
		name:     "defaults: one entry, failing open",
		policies: map[string]admissionregistrationv1.FailurePolicyType{"": "Ignore"},
		cases: slices.Concat([]namespaceCase{
			{nsLabels("kube-system", ephi, "true"), none},
			{nsLabels("phiguard-system", ephi, "true"), none},
		}, ordinary, []namespaceCase{
			{nsLabels("clinic", ephi, "true"), ""},
			{nsLabels("clinic", holds, "true"), ""},
		}),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			objs := objects(t, render(t, tc.values...))
			for base, key := range splitWebhooks {
				entries := splitEntries(t, webhooksOf(t, objs, key), base)
				policies := map[string]admissionregistrationv1.FailurePolicyType{}
				for suffix, h := range entries {
					policies[suffix] = h.failurePolicy
					if !reflect.DeepEqual(h.rest, entries[""].rest) {
						t.Errorf("%s%s differs from %s in more than name, failurePolicy and namespaceSelector:\n%v\n%v", base, suffix, base, h.rest, entries[""].rest)
					}
				}
				if !reflect.DeepEqual(policies, tc.policies) {
					t.Errorf("%s: failurePolicy by entry %v, want %v", base, policies, tc.policies)
				}
				for _, c := range tc.cases {
					if got := calledFor(t, base, entries, c.labels); got != c.want {
						t.Errorf("%s: a namespace labelled %v is seen by %q, want %q", base, c.labels, got, c.want)
					}
				}
			}
		})
	}
}

// splitEntries returns the entries of the split webhook base among hooks,
// by suffix ("" for base itself), failing on a name used twice.
func splitEntries(t *testing.T, hooks []webhook, base string) map[string]webhook {
	t.Helper()
	stem := strings.TrimSuffix(base, ".phiguard.io")
	out := map[string]webhook{}
	seen := map[string]bool{}
	for _, h := range hooks {
		if seen[h.name] {
			t.Errorf("webhook name %s used twice", h.name)
		}
		seen[h.name] = true
		for _, suffix := range []string{"", "-ephi", "-holds-ephi"} {
			if h.name == stem+suffix+".phiguard.io" {
				out[suffix] = h
			}
		}
	}
	if _, ok := out[""]; !ok {
		t.Fatalf("no webhook %s", base)
	}
	return out
}

// calledFor returns the suffix of the one entry whose namespaceSelector
// matches a namespace with these labels, or none; more than one fails the
// test, since the request would be judged twice.
func calledFor(t *testing.T, base string, entries map[string]webhook, nsLabels map[string]string) string {
	t.Helper()
	var matched []string
	for suffix, h := range entries {
		sel := labels.Everything()
		if h.namespaceSelector != nil {
			var err error
			if sel, err = metav1.LabelSelectorAsSelector(h.namespaceSelector); err != nil {
				t.Fatalf("%s: %v", h.name, err)
			}
		}
		if sel.Matches(labels.Set(nsLabels)) {
			matched = append(matched, suffix)
		}
	}
	switch len(matched) {
	case 0:
		return none
	case 1:
		return matched[0]
	}
	slices.Sort(matched)
	t.Errorf("%s: a namespace labelled %v is seen by several entries %q: its requests would be judged more than once", base, nsLabels, matched)
	return matched[0]
}

// TestChartFailClosedChangesOnlyTheSplitWebhooks: every other webhook
// renders the same either way.
func TestChartFailClosedChangesOnlyTheSplitWebhooks(t *testing.T) {
	closed, open := objects(t, render(t, "--set", failClosed)), objects(t, render(t))
	for _, key := range []string{mutatingKey, validatingKey} {
		others := func(objs map[string]*unstructured.Unstructured) []webhook {
			var out []webhook
			for _, h := range webhooksOf(t, objs, key) {
				if !strings.HasSuffix(h.name, "-ephi.phiguard.io") && splitWebhooks[h.name] == "" {
					out = append(out, h)
				}
			}
			return out
		}
		got, want := others(closed), others(open)
		if len(want) == 0 || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the webhooks not split differ with %s (%d webhooks, %d without)", key, failClosed, len(got), len(want))
		}
	}
}
