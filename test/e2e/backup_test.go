//go:build e2e

package e2e

import (
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/localcluster"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// liveVelero is the namespace the real Velero server runs for in this
// suite. The other cases judge backups that they make by hand in "velero",
// where no Velero runs; these ones get real backups, in versitygw.
const liveVelero = "velero-live"

var _ = Describe("Backups with the real Velero and an S3-compatible store", Ordered, func() {
	var (
		backups *localcluster.Backups
		ns      string
		records *phiguardv1alpha1.PHIWorkload
		backup  string // the first backup Velero took of records
	)

	BeforeAll(func() {
		var err error
		start := time.Now()
		// The store encrypts nothing at rest; the location says AES256 so that
		// the rest of the judgement shows (phiguard reads what a location declares).
		backups, err = cluster.StartBackups(ctx, localcluster.BackupOptions{Root: root, Namespace: liveVelero,
			LocationConfig: map[string]string{"serverSideEncryption": "AES256"}})
		Expect(err).NotTo(HaveOccurred())
		AddReportEntry("velero and versitygw start", time.Since(start).Round(100*time.Millisecond).String())
		DeferCleanup(func() { Expect(backups.Stop(15 * time.Second)).To(Succeed()) })

		ns = newNamespace("e2e-backup")
		By("an app whose Deployment, Service and ConfigMap carry the workload's labels, so that its backups hold them")
		for _, obj := range []client.Object{
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records-config", Labels: labels("records")},
				Data: map[string]string{"retention": "6y"}},
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records", Labels: labels("records")},
				Spec: corev1.ServiceSpec{Selector: labels("records"), Ports: []corev1.ServicePort{{Name: "https", Port: 443}}}},
			deployment(ns, "records", 1, labels("records")),
		} {
			Expect(k8s.Create(ctx, obj)).To(Succeed())
		}
		records = workload(ns, "records", "records")
		records.Spec.Backup = &phiguardv1alpha1.BackupSpec{VeleroNamespace: liveVelero, RestoreTest: "@every 24h"}
		Expect(k8s.Create(ctx, records)).To(Succeed())
	})

	It("takes a real backup on phiguard's Schedule and stores its tarball in the bucket", func() {
		schedule := safeguard.ScheduleName(records)
		Eventually(func() error {
			return k8s.Get(ctx, types.NamespacedName{Namespace: liveVelero, Name: schedule}, &velerov1.Schedule{})
		}, timeout, poll).Should(Succeed())
		By("velero backup create --from-schedule, as an operator takes a first backup before the schedule's cron is due")
		var err error
		backup, err = backups.BackupNow(ctx, schedule)
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			var b velerov1.Backup
			g.Expect(k8s.Get(ctx, types.NamespacedName{Namespace: liveVelero, Name: backup}, &b)).To(Succeed())
			g.Expect(b.Labels).To(HaveKeyWithValue(velerov1.ScheduleNameLabel, schedule))
			g.Expect(b.Status.Phase).To(Equal(velerov1.BackupPhaseCompleted), "backup %s: %+v", b.Name, b.Status)
		}, timeout, time.Second).Should(Succeed())
		objects, err := backups.BackupObjects(ctx, backup)
		Expect(err).NotTo(HaveOccurred())
		keys := make([]string, 0, len(objects))
		for _, o := range objects {
			keys = append(keys, o.Key)
			if o.Key == localcluster.Tarball(backup) {
				Expect(o.Size).To(BeNumerically(">", 0))
			}
		}
		Expect(keys).To(ContainElement(localcluster.Tarball(backup)))
		Eventually(func(g Gomega) {
			c := condition(g, client.ObjectKeyFromObject(records), string(phiguardv1alpha1.BackupScheduled))
			g.Expect(c.Message).To(ContainSubstring("the last successful backup " + backup))
		}, timeout, poll).Should(Succeed())
	})

	It("restores the backup in a drill, checks what came back and removes the scratch namespace", func() {
		Eventually(func(g Gomega) {
			c := condition(g, client.ObjectKeyFromObject(records), string(phiguardv1alpha1.BackupScheduled))
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonRestoreVerified), c.Message)
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		}, timeout, time.Second).Should(Succeed())
		var drills velerov1.RestoreList
		Expect(k8s.List(ctx, &drills, client.InNamespace(liveVelero), client.MatchingLabels{safeguard.DrillLabel: "true"})).To(Succeed())
		Expect(drills.Items).To(HaveLen(1))
		d := drills.Items[0]
		Expect(d.Status.Phase).To(Equal(velerov1.RestorePhaseCompleted))
		Expect(d.Spec.BackupName).To(Equal(backup))
		Expect(d.Annotations).To(HaveKeyWithValue(safeguard.DrillResultAnnotation, "Verified"))
		// The Deployment, the Service and the ConfigMap came back.
		Expect(d.Annotations[safeguard.DrillMessageAnnotation]).To(HaveSuffix("and verified 3 objects"))
		Expect(d.Spec.NamespaceMapping).To(HaveKeyWithValue(ns, safeguard.DrillNamespace(records)))
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, types.NamespacedName{Name: safeguard.DrillNamespace(records)}, &corev1.Namespace{}))
		}, timeout, poll).Should(BeTrue(), "the scratch namespace is deleted")
		// The original is untouched.
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "records"}, &appsv1.Deployment{})).To(Succeed())
	})

	It("finds the bucket immutable with read-only credentials, and Object Lock refuses to delete a backup", func() {
		By("the PHIPolicy names a Secret with the store's credentials")
		Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: managerNamespace, Name: "backup-location-readonly"},
			StringData: map[string]string{"accessKeyID": backups.Store.AccessKey, "secretAccessKey": backups.Store.SecretKey}})).To(Succeed())
		setLocationCredentials("backup-location-readonly")
		DeferCleanup(setLocationCredentials, "")
		Eventually(func(g Gomega) {
			c := condition(g, client.ObjectKeyFromObject(records), string(phiguardv1alpha1.BackupScheduled))
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
			g.Expect(c.Message).To(ContainSubstring("BackupStorageLocation default is immutable: bucket \"phiguard-backups\""))
			g.Expect(c.Message).NotTo(ContainSubstring("not checked"))
		}, timeout, time.Second).Should(Succeed())

		By("deleting the tarball's version in the bucket, as someone with the store's keys")
		mc, err := backups.Store.Client()
		Expect(err).NotTo(HaveOccurred())
		info, err := mc.StatObject(ctx, backups.Bucket, localcluster.Tarball(backup), minio.StatObjectOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(info.VersionID).NotTo(BeEmpty())
		err = mc.RemoveObject(ctx, backups.Bucket, localcluster.Tarball(backup), minio.RemoveObjectOptions{VersionID: info.VersionID})
		Expect(err).To(HaveOccurred(), "Object Lock must refuse")
		_, err = mc.StatObject(ctx, backups.Bucket, localcluster.Tarball(backup), minio.StatObjectOptions{VersionID: info.VersionID})
		Expect(err).NotTo(HaveOccurred(), "the locked version is still there")
	})

	It("keeps every backup object in the bucket when the workload is deleted", func() {
		before, err := backups.BackupObjects(ctx, backup)
		Expect(err).NotTo(HaveOccurred())
		Expect(k8s.Delete(ctx, records)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(records), &phiguardv1alpha1.PHIWorkload{}))
		}, timeout, poll).Should(BeTrue())
		Expect(apierrors.IsNotFound(k8s.Get(ctx, types.NamespacedName{Namespace: liveVelero, Name: safeguard.ScheduleName(records)}, &velerov1.Schedule{}))).
			To(BeTrue(), "the Schedule goes with the workload")
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: liveVelero, Name: backup}, &velerov1.Backup{})).To(Succeed(), "the Backup object stays")
		// Velero syncs the bucket into the cluster now and then: give it the time to act on anything.
		Consistently(func(g Gomega) {
			after, err := backups.BackupObjects(ctx, backup)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(after).To(Equal(before))
		}, 10*time.Second, time.Second).Should(Succeed())
	})

	It("reports BackupStale at the RPO once Velero stops taking backups", func() {
		app := "ledger"
		Expect(k8s.Create(ctx, deployment(ns, app, 1, labels(app)))).To(Succeed())
		ledger := workload(ns, app, app)
		// Velero runs a schedule at most once a minute: every minute, fresh within 90 seconds.
		ledger.Spec.Backup = &phiguardv1alpha1.BackupSpec{VeleroNamespace: liveVelero, Schedule: "* * * * *",
			RPO: &metav1.Duration{Duration: 90 * time.Second}}
		Expect(k8s.Create(ctx, ledger)).To(Succeed())
		Eventually(func(g Gomega) {
			c := condition(g, client.ObjectKeyFromObject(ledger), string(phiguardv1alpha1.BackupScheduled))
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonBackupFresh), c.Message)
		}, timeout, time.Second).Should(Succeed())

		By("stopping Velero")
		Expect(backups.StopVelero(15 * time.Second)).To(Succeed())
		stopped := time.Now()
		Eventually(func(g Gomega) {
			c := condition(g, client.ObjectKeyFromObject(ledger), string(phiguardv1alpha1.BackupScheduled))
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonBackupStale), c.Message)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(strings.Contains(c.Message, "longer ago than the rpo of 1m30s")).To(BeTrue(), c.Message)
		}, 3*time.Minute, time.Second).Should(Succeed())
		AddReportEntry("BackupStale after Velero stopped", time.Since(stopped).Round(time.Second).String())
	})
})

// setLocationCredentials sets (or, with "", clears) the PHIPolicy's
// backup.locationCredentials.
func setLocationCredentials(name string) {
	GinkgoHelper()
	patch := `{"spec":{"backup":{"locationCredentials":null}}}`
	if name != "" {
		patch = `{"spec":{"backup":{"locationCredentials":{"name":"` + name + `"}}}}`
	}
	policy := &phiguardv1alpha1.PHIPolicy{ObjectMeta: metav1.ObjectMeta{Name: phiguardv1alpha1.DefaultPolicyName}}
	Expect(k8s.Patch(ctx, policy, client.RawPatch(types.MergePatchType, []byte(patch)))).To(Succeed())
}
