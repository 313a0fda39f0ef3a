package main

import (
	"context"
	"fmt"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// veleroNamespace is where the samples' Schedules live (the built-in default).
const veleroNamespace = "velero"

// standInForVelero plays Velero, which does not run on the local cluster: it
// stores a default BackupStorageLocation (an S3 bucket with a KMS key)
// marked Available, and, for each Schedule phiguard made for a workload in
// namespace, one Completed Backup, as Velero would record after its first
// run. phiguard then judges those objects as it judges Velero's own: what it
// reports about backups here says nothing about real data, and the demo says so.
func standInForVelero(ctx context.Context, c client.Client, namespace string, want int, timeout time.Duration) error {
	fmt.Println("\nVelero does not run on the local cluster: the demo stands in for it, with a BackupStorageLocation " +
		"marked Available and one Completed Backup per phiguard Schedule (no data is backed up).")
	bsl := &velerov1.BackupStorageLocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: veleroNamespace, Name: "default"},
		Spec: velerov1.BackupStorageLocationSpec{Provider: "aws", Default: true,
			Config:      map[string]string{"region": "us-east-1", "kmsKeyId": "alias/clinic-backups"},
			StorageType: velerov1.StorageType{ObjectStorage: &velerov1.ObjectStorageLocation{Bucket: "clinic-backups"}}},
		// Velero's CRDs have no status subresource: the status is stored as created.
		Status: velerov1.BackupStorageLocationStatus{Phase: velerov1.BackupStorageLocationPhaseAvailable,
			LastValidationTime: &metav1.Time{Time: time.Now()}},
	}
	if err := createIfAbsent(ctx, c, bsl); err != nil {
		return err
	}

	var schedules velerov1.ScheduleList
	deadline := time.Now().Add(timeout)
	for {
		if err := c.List(ctx, &schedules, client.InNamespace(veleroNamespace),
			client.MatchingLabels{"phiguard.io/workload-namespace": namespace}); err != nil {
			return fmt.Errorf("listing phiguard's Schedules: %w", err)
		}
		if len(schedules.Items) >= want {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("phiguard made %d of the %d Schedules expected in %s within %s", len(schedules.Items), want, veleroNamespace, timeout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for phiguard's Schedules: %w", ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
	for _, s := range schedules.Items {
		now := metav1.Now()
		backup := &velerov1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: veleroNamespace, Name: s.Name + "-demo",
			Labels: map[string]string{velerov1.ScheduleNameLabel: s.Name}},
			Status: velerov1.BackupStatus{Phase: velerov1.BackupPhaseCompleted, StartTimestamp: &now, CompletionTimestamp: &now}}
		if err := createIfAbsent(ctx, c, backup); err != nil {
			return err
		}
		fmt.Printf("  Backup %s/%s of Schedule %s: Completed\n", veleroNamespace, backup.Name, s.Name)
	}
	return nil
}

func createIfAbsent(ctx context.Context, c client.Client, obj client.Object) error {
	if err := c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating %T %s: %w", obj, obj.GetName(), err)
	}
	return nil
}
