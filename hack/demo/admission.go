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

// showAdmission shows phiguard's webhooks answering the apiserver, in dry
// runs: a new pod of the sample workload gets the audit sidecar, and a claim
// on the cluster's default class, which is not encrypted, is refused.
func showAdmission(ctx context.Context, c client.Client) error {
	if err := showInjection(ctx, c); err != nil {
		return err
	}
	return showRefusal(ctx, c)
}

// showInjection creates (dry run) a new pod of the sample workload and prints
// what the audit webhook added to it.
func showInjection(ctx context.Context, c client.Client) error {
	fmt.Println("\nAdmission: creating a new pod of patient-records (dry run) ...")
	return retry(ctx, func() (bool, error) {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: sampleNamespace, Name: "patient-records-2", Labels: map[string]string{"app": compliantSample}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "records", Image: "registry.example/patient-records:1"}}},
		}
		if err := c.Create(ctx, pod, client.DryRunAll); err != nil {
			return false, fmt.Errorf("dry-run pod create: %w", err)
		}
		if len(pod.Spec.InitContainers) == 0 {
			return false, nil
		}
		s := pod.Spec.InitContainers[0]
		fmt.Printf("  injected: native sidecar %s (%s, restartPolicy %s), log volume mounted at %s, annotation %s\n",
			s.Name, s.Image, *s.RestartPolicy, pod.Spec.Containers[0].VolumeMounts[len(pod.Spec.Containers[0].VolumeMounts)-1].MountPath,
			pod.Annotations["phiguard.io/audit-sidecar"])
		return true, nil
	}, "the audit webhook did not inject the sidecar into a pod of an ePHI workload in Enforce mode")
}

// retry runs try until it reports done, for up to 10 s: the webhooks decide
// from the manager's cache, which needs a moment to know the samples.
func retry(ctx context.Context, try func() (bool, error), failure string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		done, err := try()
		if err != nil || done {
			return err
		}
		if time.Now().After(deadline) {
			return errors.New(failure)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the admission check: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// showRefusal creates (dry run) a claim on the unencrypted default class and
// prints the refusal.
func showRefusal(ctx context.Context, c client.Client) error {
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: sampleNamespace, Name: "patient-records-scratch",
			Labels: map[string]string{"app": compliantSample}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	fmt.Println("\nAdmission: creating PersistentVolumeClaim clinic/patient-records-scratch on the default class (dry run) ...")
	return retry(ctx, func() (bool, error) {
		if err := c.Create(ctx, pvc.DeepCopy(), client.DryRunAll); err != nil {
			fmt.Printf("  refused: %v\n", err)
			return true, nil
		}
		return false, nil
	}, "the encryption webhook admitted an unencrypted claim for an ePHI workload in Enforce mode")
}
