package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// showAdmission asks the apiserver, in a dry run, to create a claim for the
// sample workload on the cluster's default class, which is not encrypted, and
// prints phiguard's answer: the webhook refuses it and says what to use.
func showAdmission(ctx context.Context, c client.Client) error {
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "patient-records-scratch",
			Labels: map[string]string{"app": "patient-records"}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	fmt.Println("\nAdmission: creating PersistentVolumeClaim clinic/patient-records-scratch on the default class (dry run) ...")
	// The webhook decides from the manager's cache; give it a moment to know the samples.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Create(ctx, pvc.DeepCopy(), client.DryRunAll)
		if err != nil {
			fmt.Printf("  refused: %v\n", err)
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("the encryption webhook admitted an unencrypted claim for an ePHI workload in Enforce mode")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the admission check: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
