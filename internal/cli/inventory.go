package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/report"
	"github.com/phiguard/phiguard/internal/safeguard"
	"github.com/phiguard/phiguard/internal/storageclass"
)

// InventoryResult is the result of `inventory`: the assets that handle ePHI
// in a namespace or the cluster, and the network map of their allowed flows.
type InventoryResult struct {
	// Namespace is the namespace inventoried; empty for the whole cluster.
	Namespace string `json:"namespace,omitempty"`
	// Workloads are the PHIWorkloads, sorted by namespace and name.
	Workloads []InventoryWorkload `json:"workloads"`
	// Network is the map of the flows the NetworkPolicies admit to and from
	// their pods.
	Network NetworkMap `json:"network"`
}

// InventoryWorkload is one PHIWorkload and the assets its pods use. Every
// list is sorted.
type InventoryWorkload struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Source is the labelled object a generated workload covers, as Kind/name.
	Source     string                      `json:"source,omitempty"`
	Compliance phiguardv1alpha1.Compliance `json:"compliance,omitempty"`
	// NotEvaluated says why phiguard does not judge the workload (an exempt
	// namespace, an invalid selector): nothing else is listed then.
	NotEvaluated string `json:"notEvaluated,omitempty"`
	// Owners are what runs the pods: "Deployment records" (through its
	// ReplicaSet), "StatefulSet db", "Pod debug" for a pod nothing owns.
	Owners []string `json:"owners"`
	// Pods are the selected pods.
	Pods []string `json:"pods"`
	// Images are the containers' images, with the digest each runs.
	Images []InventoryImage `json:"images"`
	// ServiceAccounts are the identities the pods run as.
	ServiceAccounts []string `json:"serviceAccounts"`
	// Volumes are the claims the pods mount, with their StorageClass.
	Volumes []InventoryVolume `json:"volumes"`
	// HostPaths are the pods' hostPath volumes: "pod/volume (path)".
	HostPaths []string `json:"hostPaths,omitempty"`
	// Services are the Services that select the pods.
	Services []InventoryService `json:"services"`
	// Ingresses are the Ingresses that route to those Services.
	Ingresses []InventoryIngress `json:"ingresses"`
	// Backup is where the workload is backed up.
	Backup InventoryBackup `json:"backup"`
}

// InventoryImage is one container image a workload runs.
type InventoryImage struct {
	Container string `json:"container"`
	// Image is the image as the pod spec names it.
	Image string `json:"image"`
	// Digest is the image's digest (sha256:...): from the image reference
	// when it is pinned, else the one the kubelet reported it runs; empty
	// when neither says.
	Digest string `json:"digest,omitempty"`
	// Pinned says the image reference itself names the digest.
	Pinned bool `json:"pinned"`
}

// InventoryVolume is a claim a workload's pods mount.
type InventoryVolume struct {
	Claim string `json:"claim"`
	// StorageClass is the class the claim resolves to (the default class when
	// it names none); empty when there is none.
	StorageClass string `json:"storageClass,omitempty"`
	// Encrypted and Reason are EncryptedAtRest's verdict on the class.
	Encrypted bool   `json:"encrypted"`
	Reason    string `json:"reason"`
}

// InventoryService is a Service in front of a workload's pods.
type InventoryService struct {
	Name string             `json:"name"`
	Type corev1.ServiceType `json:"type"`
	// Ports are "name port/protocol -> target".
	Ports []string `json:"ports"`
}

// InventoryIngress is an Ingress routing to a workload's Services.
type InventoryIngress struct {
	Name string `json:"name"`
	// Hosts are the hosts its rules route to the workload's Services ("*"
	// for a rule without a host or the default backend).
	Hosts []string `json:"hosts"`
	// TLSHosts are the hosts its spec.tls covers.
	TLSHosts []string `json:"tlsHosts"`
}

// InventoryBackup is where a workload's backups go.
type InventoryBackup struct {
	// Schedule is the Velero Schedule backing it up, as namespace/name.
	Schedule string `json:"schedule,omitempty"`
	// Cron is the Schedule's schedule.
	Cron string `json:"cron,omitempty"`
	// StorageLocation is the BackupStorageLocation its backups go to.
	StorageLocation string `json:"storageLocation,omitempty"`
	Provider        string `json:"provider,omitempty"`
	// Bucket is the location's object storage bucket (and prefix).
	Bucket string `json:"bucket,omitempty"`
	// Problem says what is missing, as BackupScheduled finds it.
	Problem string `json:"problem,omitempty"`
}

// inventoryFlags are inventory's own flags.
type inventoryFlags struct {
	ephiFlags
	diagram string
}

func newInventoryCommand(o *Options) *cobra.Command {
	f := &inventoryFlags{}
	cmd := &cobra.Command{
		Use:   "inventory",
		Short: "The asset inventory of the ePHI workloads of a namespace (-A: the cluster) and the map of their allowed network flows",
		Long: "inventory lists, for each PHIWorkload, what handles ePHI: the objects that run its pods, the pods,\n" +
			"their images with the digests they run, ServiceAccounts, claims with their StorageClass and whether it\n" +
			"encrypts, the Services and Ingresses in front of them, and where Velero backs them up. It also maps the\n" +
			"flows the NetworkPolicies in force admit to and from the pods (phiguard's own evaluator, the union of\n" +
			"every policy): PHIWorkloads, other pods by namespace and app label, namespaces, address blocks, anywhere.\n\n" +
			"-o table (the default) prints tables; -o json and -o yaml print the inventory and the map as data;\n" +
			"--diagram mermaid or --diagram dot prints only the map, as a Mermaid flowchart or a Graphviz digraph.",
		Example: "  kubectl phiguard inventory -n clinic\n" +
			"  kubectl phiguard inventory -A -o json\n" +
			"  kubectl phiguard inventory -n clinic --diagram dot | dot -Tsvg > flows.svg",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.CheckOutput(OutputTable, OutputJSON, OutputYAML); err != nil {
				return err
			}
			switch {
			case f.diagram != "" && f.diagram != DiagramMermaid && f.diagram != DiagramDOT:
				return fmt.Errorf("unknown diagram %q: use mermaid or dot", f.diagram)
			case f.diagram != "" && o.Output != OutputTable:
				return errors.New("--diagram prints the network map as text: leave out -o, or use -o json|yaml without --diagram")
			}
			ns, err := o.ListNamespace()
			if err != nil {
				return err
			}
			r, err := newEPHIReader(o, &f.ephiFlags, metav1.Now().UTC())
			if err != nil {
				return err
			}
			res, err := takeInventory(cmd.Context(), r, ns)
			if err != nil {
				return err
			}
			switch f.diagram {
			case DiagramMermaid:
				return writeMermaid(o.Out, &res.Network)
			case DiagramDOT:
				return writeDOT(o.Out, &res.Network)
			}
			return o.Print(res, func(w io.Writer, _ bool) error { return renderInventory(w, &res) })
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&f.diagram, "diagram", "", "Print only the network map, as a diagram: mermaid or dot.")
	return cmd
}

// takeInventory inventories the PHIWorkloads of namespace ns ("" for the cluster).
func takeInventory(ctx context.Context, r *ephiReader, ns string) (InventoryResult, error) {
	workloads, err := r.workloads(ctx, ns)
	if err != nil {
		return InventoryResult{}, err
	}
	res := InventoryResult{Namespace: ns, Workloads: []InventoryWorkload{}}
	for _, w := range workloads {
		iw, err := inventoryOf(ctx, r, w)
		if err != nil {
			return InventoryResult{}, err
		}
		res.Workloads = append(res.Workloads, iw)
	}
	if res.Network, err = buildNetworkMap(ctx, r.reader, workloads); err != nil {
		return InventoryResult{}, err
	}
	return res, nil
}

// inventoryOf lists one workload's assets.
func inventoryOf(ctx context.Context, r *ephiReader, w *ephiWorkload) (InventoryWorkload, error) {
	iw := InventoryWorkload{Namespace: w.Namespace, Name: w.Name, Source: w.Annotations[phiguardv1alpha1.SourceAnnotation],
		Compliance: w.Status.Compliance, NotEvaluated: w.notEvaluated, Owners: []string{}, Pods: []string{}, Images: []InventoryImage{},
		ServiceAccounts: []string{}, Volumes: []InventoryVolume{}, Services: []InventoryService{}, Ingresses: []InventoryIngress{}}
	s := w.scope
	if s == nil {
		return iw, nil
	}
	for i := range s.Pods {
		p := &s.Pods[i]
		iw.Pods = append(iw.Pods, p.Name)
		iw.Owners = append(iw.Owners, podOwner(p, s))
		iw.ServiceAccounts = append(iw.ServiceAccounts, safeguard.PodServiceAccount(&p.Spec))
		iw.Images = append(iw.Images, podImages(p)...)
	}
	iw.Pods, iw.Owners, iw.ServiceAccounts = sortedUnique(iw.Pods), sortedUnique(iw.Owners), sortedUnique(iw.ServiceAccounts)
	slices.SortFunc(iw.Images, func(a, b InventoryImage) int {
		return cmp.Or(cmp.Compare(a.Container, b.Container), cmp.Compare(a.Image, b.Image), cmp.Compare(a.Digest, b.Digest))
	})
	iw.Images = slices.Compact(iw.Images)
	iw.Volumes = volumesOf(s)
	iw.HostPaths = safeguard.HostPathVolumes(s.Pods)
	var err error
	if iw.Services, iw.Ingresses, err = exposureOf(ctx, r, s); err != nil {
		return InventoryWorkload{}, err
	}
	iw.Backup = backupOf(w.PHIWorkload, s)
	return iw, nil
}

// podOwner names what runs a pod: its controller, and a ReplicaSet's
// Deployment (from the scope's ReplicaSets), or the pod itself.
func podOwner(p *corev1.Pod, s *safeguard.Scope) string {
	ref := metav1.GetControllerOf(p)
	if ref == nil {
		return "Pod " + p.Name
	}
	if ref.Kind == "ReplicaSet" {
		rs := safeguard.ReplicaSets.Get(s)
		if i := slices.IndexFunc(rs, func(r appsv1.ReplicaSet) bool { return r.Name == ref.Name }); i >= 0 {
			if d := metav1.GetControllerOf(&rs[i]); d != nil {
				return d.Kind + " " + d.Name
			}
		}
	}
	return ref.Kind + " " + ref.Name
}

// podImages lists a pod's container images, init containers (and phiguard's
// audit sidecar) included, with the digest each runs.
func podImages(p *corev1.Pod) []InventoryImage {
	statuses := slices.Concat(p.Status.InitContainerStatuses, p.Status.ContainerStatuses)
	containers := slices.Concat(p.Spec.InitContainers, p.Spec.Containers)
	out := make([]InventoryImage, 0, len(containers))
	for _, c := range containers {
		img := InventoryImage{Container: c.Name, Image: c.Image}
		if _, digest, ok := strings.Cut(c.Image, "@"); ok {
			img.Digest, img.Pinned = digest, true
		} else if i := slices.IndexFunc(statuses, func(s corev1.ContainerStatus) bool { return s.Name == c.Name }); i >= 0 {
			// The kubelet reports the repository digest it pulled as <repo>@sha256:...
			if at := strings.LastIndex(statuses[i].ImageID, "@"); at >= 0 {
				img.Digest = statuses[i].ImageID[at+1:]
			}
		}
		out = append(out, img)
	}
	return out
}

// volumesOf lists the claims the pods mount with EncryptedAtRest's verdict
// on their class; a claim that does not exist has none.
func volumesOf(s *safeguard.Scope) []InventoryVolume {
	claims, classes := safeguard.Claims.Get(s), safeguard.StorageClasses.Get(s)
	opts := safeguard.StorageOptions(s.Policy)
	names := safeguard.ClaimNames(s.Pods)
	out := make([]InventoryVolume, 0, len(names))
	for _, name := range names {
		v := InventoryVolume{Claim: name, Reason: "the claim does not exist"}
		if i := slices.IndexFunc(claims, func(c corev1.PersistentVolumeClaim) bool { return c.Name == name }); i >= 0 {
			class, verdict := storageclass.Judge(&claims[i].Spec, classes, opts)
			v.StorageClass, v.Encrypted, v.Reason = class, verdict.Encrypted, verdict.Reason
		}
		out = append(out, v)
	}
	return out
}

// exposureOf lists the Services that select the pods (as TransmissionSecure
// finds them) and the Ingresses that route to those Services.
func exposureOf(ctx context.Context, r *ephiReader, s *safeguard.Scope) ([]InventoryService, []InventoryIngress, error) {
	services, err := safeguard.Services.Read(ctx, r.reader, s)
	if err != nil {
		return nil, nil, err
	}
	ingresses, err := safeguard.Ingresses.Read(ctx, r.reader, s)
	if err != nil {
		return nil, nil, err
	}
	outSvc := []InventoryService{}
	names := map[string]bool{}
	for i := range services {
		svc := &services[i]
		if len(safeguard.ServicePods(svc, s.Pods)) == 0 {
			continue
		}
		names[svc.Name] = true
		is := InventoryService{Name: svc.Name, Type: cmp.Or(svc.Spec.Type, corev1.ServiceTypeClusterIP), Ports: []string{}}
		for _, p := range svc.Spec.Ports {
			target := p.TargetPort.String()
			if p.TargetPort.Type == intstr.Int && p.TargetPort.IntVal == 0 {
				target = fmt.Sprint(p.Port) // the apiserver's default
			}
			port := fmt.Sprintf("%d/%s -> %s", p.Port, cmp.Or(p.Protocol, corev1.ProtocolTCP), target)
			if p.Name != "" {
				port = p.Name + " " + port
			}
			is.Ports = append(is.Ports, port)
		}
		outSvc = append(outSvc, is)
	}
	slices.SortFunc(outSvc, func(a, b InventoryService) int { return cmp.Compare(a.Name, b.Name) })
	outIng := []InventoryIngress{}
	for i := range ingresses {
		if ii, ok := ingressTo(&ingresses[i], names); ok {
			outIng = append(outIng, ii)
		}
	}
	slices.SortFunc(outIng, func(a, b InventoryIngress) int { return cmp.Compare(a.Name, b.Name) })
	return outSvc, outIng, nil
}

// ingressTo lists the hosts an Ingress routes to one of services, and those
// its TLS covers; ok is false when it routes to none.
func ingressTo(ing *networkingv1.Ingress, services map[string]bool) (InventoryIngress, bool) {
	ii := InventoryIngress{Name: ing.Name, Hosts: []string{}, TLSHosts: []string{}}
	if b := ing.Spec.DefaultBackend; b != nil && b.Service != nil && services[b.Service.Name] {
		ii.Hosts = append(ii.Hosts, "*")
	}
	for _, rule := range ing.Spec.Rules {
		if rule.HTTP == nil {
			continue
		}
		for _, p := range rule.HTTP.Paths {
			if p.Backend.Service != nil && services[p.Backend.Service.Name] {
				ii.Hosts = append(ii.Hosts, cmp.Or(rule.Host, "*"))
			}
		}
	}
	for _, t := range ing.Spec.TLS {
		ii.TLSHosts = append(ii.TLSHosts, t.Hosts...)
	}
	ii.Hosts, ii.TLSHosts = sortedUnique(ii.Hosts), sortedUnique(ii.TLSHosts)
	return ii, len(ii.Hosts) > 0
}

// backupOf finds where the workload is backed up, as BackupScheduled does.
func backupOf(w *phiguardv1alpha1.PHIWorkload, s *safeguard.Scope) InventoryBackup {
	sched, bsl, problem := safeguard.WorkloadBackup(w, safeguard.VeleroObjects.Get(s))
	b := InventoryBackup{Problem: problem}
	if sched != nil {
		b.Schedule, b.Cron = sched.Namespace+"/"+sched.Name, sched.Spec.Schedule
	}
	if bsl != nil {
		b.StorageLocation, b.Provider = bsl.Name, bsl.Spec.Provider
		if os := bsl.Spec.ObjectStorage; os != nil {
			b.Bucket = strings.TrimSuffix(os.Bucket+"/"+os.Prefix, "/")
		}
	}
	return b
}

// renderInventory writes the inventory as tables, one per kind of asset, and
// the allowed flows.
func renderInventory(out io.Writer, res *InventoryResult) error {
	if len(res.Workloads) == 0 {
		if _, err := fmt.Fprintln(out, noWorkloads(res.Namespace)); err != nil {
			return fmt.Errorf("writing the inventory: %w", err)
		}
		return nil
	}
	var workloads, images, volumes, exposure, backups [][]string
	for i := range res.Workloads {
		w := &res.Workloads[i]
		key := w.Namespace + "/" + w.Name
		runs := strings.Join(w.Owners, ", ")
		if w.NotEvaluated != "" {
			runs = "not evaluated: " + w.NotEvaluated
		}
		workloads = append(workloads, []string{key, w.Source, string(w.Compliance), runs, fmt.Sprint(len(w.Pods)), strings.Join(w.ServiceAccounts, ", ")})
		for _, img := range w.Images {
			images = append(images, []string{key, img.Container, img.Image, img.Digest})
		}
		for _, v := range w.Volumes {
			volumes = append(volumes, []string{key, v.Claim, v.StorageClass, fmt.Sprint(v.Encrypted), v.Reason})
		}
		for _, h := range w.HostPaths {
			volumes = append(volumes, []string{key, "hostPath " + h, "", "false", "a hostPath volume is on the node's disk, outside any StorageClass"})
		}
		for _, s := range w.Services {
			exposure = append(exposure, []string{key, "Service", s.Name, string(s.Type) + " " + strings.Join(s.Ports, ", ")})
		}
		for _, ing := range w.Ingresses {
			exposure = append(exposure, []string{key, "Ingress", ing.Name, "hosts " + strings.Join(ing.Hosts, ", ") + "; TLS " + orDash(strings.Join(ing.TLSHosts, ", "))})
		}
		if w.NotEvaluated == "" {
			backups = append(backups, []string{key, w.Backup.Schedule, w.Backup.Cron, w.Backup.StorageLocation, w.Backup.Provider, w.Backup.Bucket, w.Backup.Problem})
		}
	}
	return writeTextSections(out, []textSection{
		{"PHIWorkloads", []string{columnWorkload, "COVERS", "COMPLIANCE", "RUN BY", "PODS", "SERVICE ACCOUNTS"}, workloads},
		{"Images", []string{columnWorkload, "CONTAINER", "IMAGE", "DIGEST"}, images},
		{"Volumes", []string{columnWorkload, "CLAIM", "STORAGECLASS", "ENCRYPTED", "WHY"}, volumes},
		{"Services and Ingresses", []string{columnWorkload, "KIND", "NAME", "EXPOSES"}, exposure},
		{"Backups", []string{columnWorkload, "SCHEDULE", "CRON", "LOCATION", "PROVIDER", "BUCKET", "PROBLEM"}, backups},
		{"Allowed network flows (ingress: the destination's rules admit it; egress: the source's)",
			[]string{"FROM", "TO", "DIRECTION", "PORTS", "POLICIES"}, flowRows(&res.Network)},
	})
}

// flowRows are the edges of the map, each end by its label.
func flowRows(nm *NetworkMap) [][]string {
	labels := map[string]string{}
	for _, n := range nm.Nodes {
		labels[n.ID] = n.Label
	}
	rows := make([][]string, 0, len(nm.Edges))
	for i := range nm.Edges {
		e := &nm.Edges[i]
		policies := e.Policies
		if e.NotIsolated {
			policies = append(slices.Clone(policies), "none isolates some pods")
		}
		rows = append(rows, []string{labels[e.From], labels[e.To], string(e.Direction), strings.Join(e.Ports, ", "), strings.Join(policies, ", ")})
	}
	return rows
}

// columnWorkload heads the column naming each row's PHIWorkload in the
// decisions and inventory tables.
const columnWorkload = "WORKLOAD"

// textSection is a titled table of a text output.
type textSection struct {
	title  string
	header []string
	rows   [][]string
}

// writeTextSections writes each section with rows: its title and its table,
// a blank line between them.
func writeTextSections(out io.Writer, sections []textSection) error {
	first := true
	for _, s := range sections {
		if len(s.rows) == 0 {
			continue
		}
		sep := "\n"
		if first {
			sep, first = "", false
		}
		if _, err := fmt.Fprintf(out, "%s%s\n", sep, s.title); err != nil {
			return fmt.Errorf("writing the %s title: %w", s.title, err)
		}
		if err := report.Rows(out, s.header, s.rows); err != nil {
			return err
		}
	}
	return nil
}

// orDash is s, or "-" when empty.
func orDash(s string) string {
	return cmp.Or(s, report.None)
}
