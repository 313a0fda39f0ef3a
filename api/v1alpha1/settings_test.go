package v1alpha1_test

import (
	"os"
	"testing"

	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// Every safeguard has a settings block that Mode and SetMode find by its tag.
func TestModeAndSetModeReachEverySafeguardsBlock(t *testing.T) {
	names := []phiguardv1alpha1.SafeguardName{
		phiguardv1alpha1.NetworkIsolated, phiguardv1alpha1.EncryptedAtRest, phiguardv1alpha1.BackupScheduled,
		phiguardv1alpha1.AuditLogging, phiguardv1alpha1.TransmissionSecure, phiguardv1alpha1.AccessControlled,
		phiguardv1alpha1.IntegrityProtected, phiguardv1alpha1.Available,
	}
	for _, name := range names {
		t.Run(string(name), func(t *testing.T) {
			g := NewWithT(t)
			var s phiguardv1alpha1.SafeguardSettings
			g.Expect(s.Mode(name)).To(BeEmpty(), "no block, no mode")
			s.SetMode(name, phiguardv1alpha1.ModeAudit)
			g.Expect(s.Mode(name)).To(Equal(phiguardv1alpha1.ModeAudit))
			s.SetMode(name, phiguardv1alpha1.ModeEnforce)
			g.Expect(s.Mode(name)).To(Equal(phiguardv1alpha1.ModeEnforce), "an existing block is changed in place")
			for _, other := range names {
				if other != name {
					g.Expect(s.Mode(other)).To(BeEmpty(), "%s is untouched", other)
				}
			}
		})
	}
	t.Run("a block is kept whole", func(t *testing.T) {
		g := NewWithT(t)
		s := phiguardv1alpha1.SafeguardSettings{Backup: &phiguardv1alpha1.BackupSpec{Schedule: "@daily"}}
		s.SetMode(phiguardv1alpha1.BackupScheduled, phiguardv1alpha1.ModeAudit)
		g.Expect(s.Backup).To(Equal(&phiguardv1alpha1.BackupSpec{Schedule: "@daily", Mode: phiguardv1alpha1.ModeAudit}))
	})
	t.Run("a name without a block", func(t *testing.T) {
		g := NewWithT(t)
		var s phiguardv1alpha1.SafeguardSettings
		s.SetMode("NoSuchSafeguard", phiguardv1alpha1.ModeAudit)
		g.Expect(s).To(Equal(phiguardv1alpha1.SafeguardSettings{}))
		g.Expect(s.Mode("NoSuchSafeguard")).To(BeEmpty())
	})
}

// MinJustificationLength and the CRD's MinLength marker say the same number.
func TestMinJustificationLengthIsTheCRDs(t *testing.T) {
	g := NewWithT(t)
	raw, err := os.ReadFile("../../config/crd/bases/compliance.phiguard.io_phiworkloads.yaml")
	g.Expect(err).NotTo(HaveOccurred())
	var crd apiextensionsv1.CustomResourceDefinition
	g.Expect(yaml.Unmarshal(raw, &crd)).To(Succeed())
	decision := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["decisions"].Items.Schema
	g.Expect(decision.Properties["justification"].MinLength).To(HaveValue(BeEquivalentTo(phiguardv1alpha1.MinJustificationLength)))
}
