package safeguard

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// selectsPod answers as labels.Selector does for every selector admission
// lets through, and selects nothing for one it cannot parse.
func TestSelectsPodAgreesWithLabelSelector(t *testing.T) {
	pods := []map[string]string{
		nil,
		{},
		{"app": "records"},
		{"app": "records", "tier": "db"},
		{"app": "billing", "tier": "db"},
		{"tier": "db"},
	}
	selectors := map[string]metav1.LabelSelector{
		"empty":          {},
		"one label":      {MatchLabels: map[string]string{"app": "records"}},
		"two labels":     {MatchLabels: map[string]string{"app": "records", "tier": "db"}},
		"empty value":    {MatchLabels: map[string]string{"app": ""}},
		"In":             {MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"records", "billing"}}}},
		"NotIn":          {MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"records"}}}},
		"Exists":         {MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpExists}}},
		"DoesNotExist":   {MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpDoesNotExist}}},
		"label and expr": {MatchLabels: map[string]string{"tier": "db"}, MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"billing"}}}},
	}
	for name, sel := range selectors {
		parsed, err := metav1.LabelSelectorAsSelector(&sel)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, pod := range pods {
			if got, want := selectsPod(&sel, pod), parsed.Matches(labels.Set(pod)); got != want {
				t.Errorf("%s on %v: selectsPod says %v, labels.Selector %v", name, pod, got, want)
			}
		}
	}
	invalid := metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn}}}
	if selectsPod(&invalid, map[string]string{"app": "records"}) {
		t.Error("a selector that cannot be parsed selected a pod")
	}
}
