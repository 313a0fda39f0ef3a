package main

import (
	"bytes"
	"context"
	"fmt"
	"text/tabwriter"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/phiguard/phiguard/internal/safeguard"
)

// renderPods lists the pods of a namespace as the cluster made them: the
// ReplicaSet that created each, the Node it runs on, its phase, and whether it
// carries phiguard's audit sidecar.
func renderPods(ctx context.Context, c client.Client, ns string) ([]byte, error) {
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing pods in %s: %w", ns, err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "Pods in %s (created by their ReplicaSets, scheduled by kube-scheduler, run by kwok):\n\n", ns)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "  POD\tCREATED BY\tNODE\tPHASE\tAUDIT SIDECAR")
	for i := range pods.Items {
		p := &pods.Items[i]
		owner := "-"
		if ref := metav1.GetControllerOf(p); ref != nil {
			owner = ref.Kind + "/" + ref.Name
		}
		sidecar := "no"
		for _, c := range p.Spec.InitContainers {
			if c.Name == safeguard.AuditSidecarName {
				sidecar = "yes"
			}
		}
		node := p.Spec.NodeName
		if node == "" {
			node = "-"
		}
		_, _ = fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", p.Name, owner, node, p.Status.Phase, sidecar)
	}
	if err := tw.Flush(); err != nil {
		return nil, fmt.Errorf("rendering pods: %w", err)
	}
	b.WriteString("\n")
	return b.Bytes(), nil
}
