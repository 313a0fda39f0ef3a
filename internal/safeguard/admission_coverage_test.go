package safeguard

import (
	"slices"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// coverage answers with the strongest mode, the first workload by name
// among equals, and asks no workload after the first that covers in Enforce
// whether it covers: it could not change the answer.
func TestCoverageStopsAtTheFirstEnforce(t *testing.T) {
	workload := func(name string, mode phiguardv1alpha1.Mode) *phiguardv1alpha1.PHIWorkload {
		w := &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: name},
			Spec: phiguardv1alpha1.PHIWorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}}}
		if mode != "" {
			w.Spec.EncryptionAtRest = &phiguardv1alpha1.EncryptionAtRestSpec{Mode: mode}
		}
		return w
	}
	// Listed out of order; b and c are in Enforce by default.
	env := AdmissionEnv{Registry: New(Options{}), Reader: &memReader{objs: []client.Object{
		workload("c", ""), workload("a", phiguardv1alpha1.ModeAudit), workload("d", phiguardv1alpha1.ModeAudit), workload("b", ""),
	}}}
	for name, tc := range map[string]struct {
		covering  []string
		want      string
		wantMode  phiguardv1alpha1.Mode
		wantAsked []string
	}{
		"every one covers":      {[]string{"a", "b", "c", "d"}, "b", phiguardv1alpha1.ModeEnforce, []string{"a", "b"}},
		"the second in Enforce": {[]string{"a", "c", "d"}, "c", phiguardv1alpha1.ModeEnforce, []string{"a", "b", "c"}},
		"only in Audit":         {[]string{"d", "a"}, "a", phiguardv1alpha1.ModeAudit, []string{"a", "b", "c", "d"}},
		"none":                  {nil, "", "", []string{"a", "b", "c", "d"}},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			var asked []string
			c, ok, err := env.coverage(t.Context(), "clinic", phiguardv1alpha1.EncryptedAtRest, func(sel labels.Selector) (bool, error) {
				app, _ := sel.RequiresExactMatch("app")
				asked = append(asked, app)
				return slices.Contains(tc.covering, app), nil
			})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(asked).To(Equal(tc.wantAsked))
			g.Expect(ok).To(Equal(tc.want != ""))
			g.Expect(c.mode).To(Equal(tc.wantMode))
			if tc.want != "" {
				g.Expect(c.workload.Name).To(Equal(tc.want))
				g.Expect(c.settings.Mode(phiguardv1alpha1.EncryptedAtRest)).To(Equal(tc.wantMode))
			}
		})
	}
}

// mountsClaim names claims as ClaimNames does.
func TestMountsClaimAgreesWithClaimNames(t *testing.T) {
	g := NewWithT(t)
	pods := []corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Name: "db-0"}, Spec: corev1.PodSpec{Volumes: []corev1.Volume{
			{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-db-0"}}},
			{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "web-1"}, Spec: corev1.PodSpec{Volumes: []corev1.Volume{
			{Name: "scratch", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{}}},
			{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}},
		}}},
	}
	var mounted []string
	for _, name := range []string{"data-db-0", "data", "db-0", "tmp", "db-0-tmp", "web-1-scratch", "scratch", "web-1", "web-1-config", "", "other"} {
		g.Expect(mountsClaim(pods, name)).To(Equal(slices.Contains(ClaimNames(pods), name)), name)
		if mountsClaim(pods, name) {
			mounted = append(mounted, name)
		}
	}
	g.Expect(mounted).To(Equal([]string{"data-db-0", "web-1-scratch"}))
	g.Expect(mountsClaim(nil, "data-db-0")).To(BeFalse())
}
