package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/localcluster"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// locationCredentials is the Secret, in phiguard's namespace, with which the
// manager reads the bucket's versioning and Object Lock configuration.
const locationCredentials = "backup-location-readonly"

// managerNamespace is the namespace the manager runs for (its --namespace).
const managerNamespace = "phiguard-system"

// startBackups starts Velero and its object store beside the cluster.
func startBackups(ctx context.Context, cluster *localcluster.Cluster, root string) (*localcluster.Backups, error) {
	start := time.Now()
	b, err := cluster.StartBackups(ctx, localcluster.BackupOptions{Root: root})
	if err != nil {
		return nil, fmt.Errorf("starting Velero and its object store: %w", err)
	}
	fmt.Printf("  Velero %s and versitygw (S3 at %s, bucket %s: versioning, Object Lock COMPLIANCE %d days) up in %s; BackupStorageLocation %s/%s Available\n",
		"v1.18.3", b.Store.Endpoint, b.Bucket, localcluster.BackupRetentionDays, time.Since(start).Round(100*time.Millisecond),
		localcluster.VeleroNamespace, localcluster.BackupLocation)
	return b, nil
}

// configureBackupPolicy gives the samples' PHIPolicy what only this machine
// has: credentials for the object store, so that phiguard checks the bucket's
// Object Lock, and acceptance of the store's default encryption.
//
// The local store has one user: the Secret holds its keys. In production it
// holds a read-only user's (s3:GetBucketVersioning,
// s3:GetBucketObjectLockConfiguration). And the local store encrypts
// nothing: the demo's PHIPolicy accepts the provider's default only so that
// the rest of the backup judgement shows; a real location declares
// serverSideEncryption or kmsKeyId.
func configureBackupPolicy(ctx context.Context, c client.Client, b *localcluster.Backups) error {
	fmt.Printf("The demo's PHIPolicy reads the bucket's Object Lock with the Secret %s/%s, and accepts the local store's "+
		"default encryption (it encrypts nothing: production locations declare serverSideEncryption or kmsKeyId)\n", managerNamespace, locationCredentials)
	objects := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: managerNamespace}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: managerNamespace, Name: locationCredentials},
			StringData: map[string]string{"accessKeyID": b.Store.AccessKey, "secretAccessKey": b.Store.SecretKey}},
	}
	for _, obj := range objects {
		if err := c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %T %s: %w", obj, obj.GetName(), err)
		}
	}
	patch := []byte(`{"spec":{"backup":{"acceptProviderDefaultEncryption":true,"locationCredentials":{"name":"` + locationCredentials + `"}}}}`)
	policy := &phiguardv1alpha1.PHIPolicy{ObjectMeta: metav1.ObjectMeta{Name: phiguardv1alpha1.DefaultPolicyName}}
	if err := c.Patch(ctx, policy, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("setting the PHIPolicy's backup credentials: %w", err)
	}
	return nil
}

// showBackups prints, for each of phiguard's Schedules for the namespace,
// the latest backup Velero completed and what it stored in the bucket, and
// the latest restore drill with its result.
func showBackups(ctx context.Context, w io.Writer, c client.Client, b *localcluster.Backups, ns string) error {
	var out bytes.Buffer
	var schedules velerov1.ScheduleList
	if err := c.List(ctx, &schedules, client.InNamespace(localcluster.VeleroNamespace), client.MatchingLabels{"phiguard.io/workload-namespace": ns}); err != nil {
		return fmt.Errorf("listing phiguard's Schedules: %w", err)
	}
	var backups velerov1.BackupList
	if err := c.List(ctx, &backups, client.InNamespace(localcluster.VeleroNamespace)); err != nil {
		return fmt.Errorf("listing Velero's Backups: %w", err)
	}
	var restores velerov1.RestoreList
	if err := c.List(ctx, &restores, client.InNamespace(localcluster.VeleroNamespace), client.MatchingLabels{safeguard.DrillLabel: "true"}); err != nil {
		return fmt.Errorf("listing phiguard's restore drills: %w", err)
	}
	fmt.Fprintf(&out, "Backups that Velero took and stored in %s, bucket %s:\n\n", b.Store.Endpoint, b.Bucket)
	for _, s := range schedules.Items {
		last := safeguard.LastCompleted(s.Name, backups.Items)
		if last == nil {
			fmt.Fprintf(&out, "  Schedule %s: no Completed backup yet\n", s.Name)
			continue
		}
		objects, err := b.BackupObjects(ctx, last.Name)
		if err != nil {
			return err
		}
		var size int64
		for _, o := range objects {
			size += o.Size
		}
		fmt.Fprintf(&out, "  Schedule %s: backup %s Completed at %s, %d items; %d objects, %d bytes in the bucket\n",
			s.Name, last.Name, last.Status.CompletionTimestamp.UTC().Format(time.RFC3339), last.Status.Progress.ItemsBackedUp, len(objects), size)
		for _, o := range objects {
			fmt.Fprintf(&out, "    %s (%d bytes)\n", o.Key, o.Size)
		}
		if d := latestDrill(s.Labels, restores.Items); d != nil {
			fmt.Fprintf(&out, "  restore drill %s of backup %s: %s, %s\n", d.Name, d.Spec.BackupName,
				d.Annotations[safeguard.DrillResultAnnotation], d.Annotations[safeguard.DrillMessageAnnotation])
		}
	}
	out.WriteString("\n")
	if _, err := w.Write(out.Bytes()); err != nil {
		return fmt.Errorf("writing the backups: %w", err)
	}
	return nil
}

// latestDrill is the workload's latest restore drill with a recorded result.
func latestDrill(scheduleLabels map[string]string, restores []velerov1.Restore) *velerov1.Restore {
	var drills []*velerov1.Restore
	for i := range restores {
		r := &restores[i]
		if r.Labels[phiguardv1alpha1.WorkloadLabel] == scheduleLabels[phiguardv1alpha1.WorkloadLabel] &&
			r.Labels["phiguard.io/workload-namespace"] == scheduleLabels["phiguard.io/workload-namespace"] &&
			r.Annotations[safeguard.DrillResultAnnotation] != "" {
			drills = append(drills, r)
		}
	}
	if len(drills) == 0 {
		return nil
	}
	return slices.MaxFunc(drills, func(a, b *velerov1.Restore) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
}

// prepareBackups gives the PHIPolicy the store's credentials, then takes
// each workload's first backup.
func prepareBackups(ctx context.Context, c client.Client, b *localcluster.Backups, workloads []types.NamespacedName, timeout time.Duration) error {
	if err := configureBackupPolicy(ctx, c, b); err != nil {
		return err
	}
	return firstBackups(ctx, c, b, workloads, timeout)
}

// firstBackups waits for phiguard's Schedule of each workload and takes its
// first backup with the Velero CLI, as an operator would after onboarding:
// the schedules' own cron runs at night.
func firstBackups(ctx context.Context, c client.Client, b *localcluster.Backups, workloads []types.NamespacedName, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, key := range workloads {
		name := safeguard.ScheduleName(&phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}})
		for {
			err := c.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: name}, &velerov1.Schedule{})
			if err == nil {
				break
			}
			if !apierrors.IsNotFound(err) {
				return fmt.Errorf("reading Schedule %s: %w", name, err)
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("phiguard made no Schedule %s/%s for %s within %s", b.Namespace, name, key, timeout)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for phiguard's Schedules: %w", ctx.Err())
			case <-time.After(250 * time.Millisecond):
			}
		}
		backup, err := b.BackupNow(ctx, name)
		if err != nil {
			return err
		}
		fmt.Printf("  velero backup create --from-schedule %s: backup %s submitted\n", name, backup)
	}
	return nil
}
