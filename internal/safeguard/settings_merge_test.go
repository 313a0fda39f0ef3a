package safeguard

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// merge skips the layers that set nothing, and without a layer left returns
// the built-in defaults without encoding them: in every case what the JSON
// merge of every layer gives.
func TestMergeSkipsLayersThatSetNothing(t *testing.T) {
	r := New(Options{})
	none := phiguardv1alpha1.SafeguardSettings{}
	some := phiguardv1alpha1.SafeguardSettings{
		Backup:           &phiguardv1alpha1.BackupSpec{Schedule: "0 4 * * *", RPO: &metav1.Duration{Duration: 12 * time.Hour}},
		NetworkIsolation: &phiguardv1alpha1.NetworkIsolationSpec{AllowDNS: ptr.To(false)},
	}
	// A block that is there but empty is a layer that sets something: {"encryptionAtRest":{}}.
	emptyBlock := phiguardv1alpha1.SafeguardSettings{EncryptionAtRest: &phiguardv1alpha1.EncryptionAtRestSpec{}}
	policyOf := func(defaults phiguardv1alpha1.SafeguardSettings) *phiguardv1alpha1.PHIPolicy {
		return &phiguardv1alpha1.PHIPolicy{Spec: phiguardv1alpha1.PHIPolicySpec{Defaults: defaults,
			Ruleset: phiguardv1alpha1.RulesetProposedRule2025, ExemptNamespaces: []string{"legacy"}}}
	}
	for name, tc := range map[string]struct {
		workload phiguardv1alpha1.SafeguardSettings
		policy   *phiguardv1alpha1.PHIPolicy
	}{
		"nothing, no policy":                    {none, nil},
		"nothing, a policy setting nothing":     {none, policyOf(none)},
		"the workload's, no policy":             {some, nil},
		"the workload's, a policy's of nothing": {some, policyOf(none)},
		"the policy's only":                     {none, policyOf(some)},
		"both":                                  {emptyBlock, policyOf(some)},
		"an empty block":                        {emptyBlock, nil},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			every := []*phiguardv1alpha1.SafeguardSettings{&tc.workload}
			if tc.policy != nil {
				every = append(every, &tc.policy.Spec.Defaults)
			}
			want, err := r.mergeJSON(every)
			g.Expect(err).NotTo(HaveOccurred())
			got, err := r.merge(&tc.workload, tc.policy)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(want))
		})
	}

	// Without a layer, each call returns settings of its own: changing one
	// changes neither the defaults nor the next caller's.
	g := NewWithT(t)
	first, err := r.merge(&none, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(first.EncryptionAtRest.Mode).To(Equal(phiguardv1alpha1.ModeEnforce))
	first.SetMode(phiguardv1alpha1.EncryptedAtRest, phiguardv1alpha1.ModeAudit)
	*first.NetworkIsolation.AllowDNS = false
	second, err := r.merge(&none, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(second).To(Equal(r.Defaults()))
	g.Expect(second.EncryptionAtRest.Mode).To(Equal(phiguardv1alpha1.ModeEnforce))
	g.Expect(*second.NetworkIsolation.AllowDNS).To(BeTrue())
}
