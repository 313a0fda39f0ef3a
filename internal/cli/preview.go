package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/controller"
	"github.com/phiguard/phiguard/internal/manifests"
	"github.com/phiguard/phiguard/internal/optionalapi"
	"github.com/phiguard/phiguard/internal/report"
	"github.com/phiguard/phiguard/internal/safeguard"
	phischeme "github.com/phiguard/phiguard/internal/scheme"
)

// Modes a preview runs the safeguards in.
const (
	// ModesEnforce runs every safeguard in Enforce, but one that is Off under
	// a documented decision, which stays Off.
	ModesEnforce = "Enforce"
	// ModesAsWritten runs each safeguard in the mode the file, the PHIPolicy
	// and the built-in defaults give it, as the manager would.
	ModesAsWritten = "AsWritten"
)

var phiWorkloadGVK = phiguardv1alpha1.GroupVersion.WithKind("PHIWorkload")

// PreviewObject is one object phiguard would write, or keeps and would leave
// as it is.
type PreviewObject struct {
	// Action is create, change, delete or unchanged.
	Action     string `json:"action"`
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	// Subresource is set for a write to a subresource (status, say).
	Subresource string `json:"subresource,omitempty"`
	// Changes are the fields a change changes; the apiserver's own fields
	// (managedFields, resourceVersion and the like) and status aside.
	Changes []FieldChange `json:"changes,omitempty"`
}

// PreviewSafeguard is what one safeguard reported in the preview's run:
// what phiguard would report once it had done what the preview shows.
type PreviewSafeguard struct {
	Name    phiguardv1alpha1.SafeguardName `json:"name"`
	Mode    phiguardv1alpha1.Mode          `json:"mode"`
	Status  metav1.ConditionStatus         `json:"status,omitempty"`
	Reason  string                         `json:"reason,omitempty"`
	Message string                         `json:"message,omitempty"`
}

// PreviewResult is the result of `preview`.
type PreviewResult struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Modes is Enforce or AsWritten (--mode-as-written).
	Modes string `json:"modes"`
	// Objects are the PHIWorkload itself and the objects phiguard would
	// create, change or delete for it, and those it keeps unchanged.
	Objects []PreviewObject `json:"objects"`
	// Admission is what phiguard's webhooks would answer for each object of
	// the namespace they judge, created now.
	Admission []AdmissionFinding `json:"admission"`
	// Safeguards are the safeguards' results in the preview's run.
	Safeguards []PreviewSafeguard `json:"safeguards"`
	// Warnings are what kept a safeguard from finishing, and the warnings of
	// the PHIWorkload's own admission.
	Warnings []string `json:"warnings"`
}

// previewOptions are the flags of `preview`.
type previewOptions struct {
	file             string
	modeAsWritten    bool
	managerNamespace string
}

func newPreviewCommand(o *Options) *cobra.Command {
	var p previewOptions
	cmd := &cobra.Command{
		Use:   "preview (<workload.yaml> | -f <workload.yaml>)",
		Short: "What Enforce would do: the objects phiguard would create or change, and what admission would refuse",
		Long: "preview reads a PHIWorkload from a file (applied or not, or an edit of an applied one) and shows,\n" +
			"without writing anything, what phiguard would do with every safeguard in Enforce:\n" +
			"\n" +
			"  - the objects it would create, change or delete: phiguard's own safeguard code runs against\n" +
			"    the cluster with every write sent as a server-side dry run, and each result is compared\n" +
			"    with the stored object;\n" +
			"  - what its admission webhooks would refuse, warn about or change: every object of the\n" +
			"    namespace that a webhook judges (pods, claims, Deployments, StatefulSets, ...) goes through\n" +
			"    the webhooks' own handlers, in-process, as if it were created now.\n" +
			"\n" +
			"A safeguard Off under a documented decision stays Off; --mode-as-written keeps the modes the\n" +
			"file, the PHIPolicy and the built-in defaults give. Admission sees only this PHIWorkload (not\n" +
			"the others of its namespace), so everything it reports is due to this one. A PHIWorkload the\n" +
			"apiserver or phiguard's own webhook would refuse is reported with their message.",
		Example: "  kubectl phiguard preview records.yaml\n" +
			"  kubectl phiguard preview -f - -o yaml < records.yaml\n" +
			"  kubectl phiguard preview records.yaml --mode-as-written",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.CheckOutput(OutputTable, OutputWide, OutputJSON, OutputYAML); err != nil {
				return err
			}
			switch {
			case len(args) == 1 && p.file != "":
				return errors.New("give the PHIWorkload's file once: as an argument or with -f, not both")
			case len(args) == 1:
				p.file = args[0]
			case p.file == "":
				return errors.New("give the PHIWorkload's file: kubectl phiguard preview <workload.yaml> (or -f -, for standard input)")
			}
			obj, err := readWorkload(o, p.file)
			if err != nil {
				return err
			}
			cfg, err := o.Config.ToRESTConfig()
			if err != nil {
				return fmt.Errorf("reading the kubeconfig: %w", err)
			}
			// Safeguards and webhooks log through the context; a command line has no log.
			ctx := logf.IntoContext(cmd.Context(), logr.Discard())
			res, err := runPreview(ctx, cfg, obj, p)
			if err != nil {
				return err
			}
			return o.Print(res, res.render)
		},
	}
	cmd.Flags().StringVarP(&p.file, "filename", "f", "", "File holding the PHIWorkload; - reads standard input.")
	cmd.Flags().BoolVar(&p.modeAsWritten, "mode-as-written", false,
		"Run each safeguard in the mode the file, the PHIPolicy and the built-in defaults give, instead of Enforce.")
	cmd.Flags().StringVar(&p.managerNamespace, "manager-namespace", "phiguard-system",
		"Namespace phiguard runs in: exempt from safeguards, like kube-system.")
	return cmd
}

// readWorkload reads the one PHIWorkload of a file (- : standard input), in
// the namespace it names, or -n's (or the context's) when it names none.
func readWorkload(o *Options, file string) (*unstructured.Unstructured, error) {
	in := o.In
	source := "standard input"
	if file != "-" {
		f, err := os.Open(file) //nolint:gosec // G304: the file the user names
		if err != nil {
			return nil, fmt.Errorf("reading the PHIWorkload: %w", err)
		}
		defer func() { _ = f.Close() }()
		in, source = f, file
	}
	objs, err := manifests.Decode(in, source)
	if err != nil {
		return nil, err
	}
	if len(objs) != 1 {
		return nil, fmt.Errorf("%s holds %d objects: preview reads one PHIWorkload", source, len(objs))
	}
	obj := objs[0]
	if obj.GroupVersionKind() != phiWorkloadGVK {
		return nil, fmt.Errorf("%s holds a %s %s (%s), not a PHIWorkload (%s)", source, obj.GetKind(), obj.GetName(),
			obj.GetAPIVersion(), phiguardv1alpha1.GroupVersion)
	}
	ns, explicit, err := o.Config.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, fmt.Errorf("reading the namespace from the kubeconfig: %w", err)
	}
	switch {
	case obj.GetNamespace() == "":
		obj.SetNamespace(ns)
	case explicit && obj.GetNamespace() != ns:
		return nil, fmt.Errorf("PHIWorkload %s is in namespace %s, not %s (-n): drop -n, or pass -n %s",
			obj.GetName(), obj.GetNamespace(), ns, obj.GetNamespace())
	}
	return obj, nil
}

// previewRun holds what one preview uses.
type previewRun struct {
	opts     previewOptions
	registry safeguard.Registry
	// live reads and never writes; dry dry-runs every write, recorded by rec.
	live client.WithWatch
	dry  client.Client
	rec  *writeRecorder
	res  *PreviewResult
}

// runPreview previews obj, a PHIWorkload as its file holds it.
func runPreview(ctx context.Context, cfg *rest.Config, obj *unstructured.Unstructured, opts previewOptions) (*PreviewResult, error) {
	registry := safeguard.New(safeguard.Options{})
	scheme, err := phischeme.New()
	if err != nil {
		return nil, err
	}
	if err := registry.AddToScheme(scheme); err != nil {
		return nil, err
	}
	live, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("creating a client for %s: %w", cfg.Host, err)
	}
	rec := newWriteRecorder(live)
	r := &previewRun{opts: opts, registry: registry, live: live, dry: newDryRunClient(live, rec), rec: rec,
		res: &PreviewResult{Namespace: obj.GetNamespace(), Name: obj.GetName(), Modes: ModesEnforce,
			Objects: []PreviewObject{}, Admission: []AdmissionFinding{}, Safeguards: []PreviewSafeguard{}, Warnings: []string{}}}
	if opts.modeAsWritten {
		r.res.Modes = ModesAsWritten
	}

	stored, written, err := r.dryRunWorkload(ctx, obj)
	if err != nil {
		return nil, err
	}
	w := &phiguardv1alpha1.PHIWorkload{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(written.Object, w); err != nil {
		return nil, fmt.Errorf("decoding PHIWorkload %s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	previewed, err := r.withModes(ctx, w)
	if err != nil {
		return nil, err
	}
	exempt := []string{"kube-system", opts.managerNamespace}
	user, err := whoAmI(ctx, live)
	if err != nil {
		r.res.Warnings = append(r.res.Warnings, err.Error()+"; the webhooks judge the requests as an unknown user")
	}
	adm, err := newAdmissionPreview(cfg, scheme, safeguard.AdmissionEnv{
		Reader: newAdmissionReader(live, previewed), ExemptNamespaces: exempt, Registry: registry, Clock: clock.RealClock{},
	}, user)
	if err != nil {
		return nil, err
	}
	if err := r.admitWorkload(ctx, adm, written, stored); err != nil {
		return nil, err
	}
	if err := r.enforce(ctx, previewed, exempt); err != nil {
		return nil, err
	}
	if r.res.Admission, err = adm.judgeNamespace(ctx, live, previewed.Namespace); err != nil {
		return nil, err
	}
	return r.res, nil
}

// dryRunWorkload sends the PHIWorkload to the apiserver as a dry run: a
// create, or, when one of its name is stored, an update of that one with
// the file's content (finalizers and owner references kept, labels and
// annotations merged over the stored ones, as kubectl apply leaves them).
// It returns the stored one (nil: none) and the one the apiserver would store,
// and records the PHIWorkload's own action. A PHIWorkload the apiserver
// refuses (the CRD's validation) is an error with the apiserver's message.
func (r *previewRun) dryRunWorkload(ctx context.Context, obj *unstructured.Unstructured) (stored, written *unstructured.Unstructured, err error) {
	key := client.ObjectKeyFromObject(obj)
	stored = &unstructured.Unstructured{}
	stored.SetGroupVersionKind(phiWorkloadGVK)
	switch err := r.live.Get(ctx, key, stored); {
	case apierrors.IsNotFound(err):
		stored = nil
	case err != nil:
		return nil, nil, fmt.Errorf("reading PHIWorkload %s: %w", key, err)
	}
	written = obj.DeepCopy()
	strict := client.FieldValidation(metav1.FieldValidationStrict)
	if stored == nil {
		err = r.live.Create(ctx, written, client.DryRunAll, strict)
	} else {
		written.SetResourceVersion(stored.GetResourceVersion())
		written.SetFinalizers(stored.GetFinalizers())
		written.SetOwnerReferences(stored.GetOwnerReferences())
		written.SetLabels(merged(stored.GetLabels(), obj.GetLabels()))
		written.SetAnnotations(merged(stored.GetAnnotations(), obj.GetAnnotations()))
		err = r.live.Update(ctx, written, client.DryRunAll, strict)
	}
	if err != nil {
		if apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || apierrors.IsForbidden(err) {
			return nil, nil, fmt.Errorf("the apiserver would refuse PHIWorkload %s (server-side dry run): %w", key, err)
		}
		return nil, nil, fmt.Errorf("dry-running PHIWorkload %s: %w", key, err)
	}
	row := PreviewObject{Action: ActionCreate, APIVersion: phiWorkloadGVK.GroupVersion().String(), Kind: phiWorkloadGVK.Kind,
		Namespace: key.Namespace, Name: key.Name}
	if stored != nil {
		if row.Changes, err = fieldChanges(stored, written); err != nil {
			return nil, nil, err
		}
		row.Action = ActionChange
		if len(row.Changes) == 0 {
			row.Action = ActionUnchanged
		}
	}
	r.res.Objects = append(r.res.Objects, row)
	return stored, written, nil
}

// merged returns over laid on base; nil when both are empty.
func merged(base, over map[string]string) map[string]string {
	if len(base)+len(over) == 0 {
		return nil
	}
	out := make(map[string]string, len(base)+len(over))
	maps.Copy(out, base)
	maps.Copy(out, over)
	return out
}

// withModes returns the workload with the modes the preview runs it in:
// every safeguard Enforce but one whose effective mode is Off (which the
// CRD allows only under a decision), or, with --mode-as-written, as written.
func (r *previewRun) withModes(ctx context.Context, w *phiguardv1alpha1.PHIWorkload) (*phiguardv1alpha1.PHIWorkload, error) {
	out := w.DeepCopy()
	if r.opts.modeAsWritten {
		return out, nil
	}
	policy, err := safeguard.DefaultPolicy(ctx, r.live)
	if err != nil {
		return nil, err
	}
	effective, _, err := r.registry.Effective(&w.Spec.SafeguardSettings, policy)
	if err != nil {
		return nil, err
	}
	for _, name := range r.registry.Names() {
		if effective.Mode(name) != phiguardv1alpha1.ModeOff {
			out.Spec.SetMode(name, phiguardv1alpha1.ModeEnforce)
		}
	}
	return out, nil
}

// admitWorkload runs the PHIWorkload, as the apiserver would store it,
// through phiguard's own webhooks: a refusal is an error, with the webhook's
// message; warnings are the preview's.
func (r *previewRun) admitWorkload(ctx context.Context, adm *admissionPreview, written, stored *unstructured.Unstructured) error {
	found, err := adm.judge(ctx, written, stored, phiguardv1alpha1.GroupVersion.WithResource("phiworkloads"))
	if err != nil {
		return err
	}
	for _, f := range found {
		switch f.Result {
		case AdmissionRefused:
			return fmt.Errorf("phiguard's webhook %s would refuse PHIWorkload %s/%s: %s", f.Webhook, f.Namespace, f.Name, f.Message)
		case AdmissionWarned:
			r.res.Warnings = append(r.res.Warnings, "PHIWorkload: "+f.Message)
		}
	}
	return nil
}

// enforce runs every safeguard on the previewed workload, as a reconcile
// does (controller.Evaluate), with writes that are only dry-run, and records
// what they would write and the objects phiguard keeps for the workload.
func (r *previewRun) enforce(ctx context.Context, w *phiguardv1alpha1.PHIWorkload, exempt []string) error {
	env := safeguard.Env{Reader: r.live, Client: r.dry, ExemptNamespaces: exempt,
		APIs: optionalapi.NewTracker(r.live.RESTMapper(), r.live, nil)}
	scope, err := r.registry.Scope(ctx, env, w, time.Now())
	if stalled := safeguard.AsStalled(err); stalled != nil {
		r.res.Warnings = append(r.res.Warnings, fmt.Sprintf("phiguard would not act on this PHIWorkload (%s): %v", stalled.Reason, stalled))
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading what the safeguards of PHIWorkload %s/%s judge: %w", w.Namespace, w.Name, err)
	}
	for _, o := range controller.Evaluate(ctx, r.registry, scope) {
		r.res.Safeguards = append(r.res.Safeguards, PreviewSafeguard{Name: o.Name, Mode: o.Mode,
			Status: o.Result.Status, Reason: o.Result.Reason, Message: o.Result.Message})
		if o.Result.Err != nil {
			r.res.Warnings = append(r.res.Warnings, fmt.Sprintf("%s could not finish: %v", o.Name, o.Result.Err))
		}
	}
	written, err := r.writtenObjects()
	if err != nil {
		return err
	}
	kept, err := r.keptObjects(ctx, scope, w, written)
	if err != nil {
		return err
	}
	objects := append(written, kept...)
	slices.SortFunc(objects, func(a, b PreviewObject) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name),
			cmp.Compare(a.Subresource, b.Subresource))
	})
	r.res.Objects = append(r.res.Objects, objects...)
	return nil
}

// writtenObjects turns the recorded writes into objects and their actions.
func (r *previewRun) writtenObjects() ([]PreviewObject, error) {
	var out []PreviewObject
	for _, wr := range r.rec.recorded() {
		o := PreviewObject{APIVersion: wr.ref.gvk.GroupVersion().String(), Kind: wr.ref.gvk.Kind,
			Namespace: wr.ref.namespace, Name: wr.ref.name, Subresource: wr.ref.subresource}
		switch {
		case wr.after == nil:
			o.Action = ActionDelete
		case wr.before == nil:
			o.Action = ActionCreate
		default:
			changes, err := fieldChanges(wr.before, wr.after)
			if err != nil {
				return nil, err
			}
			o.Action, o.Changes = ActionChange, changes
			if len(changes) == 0 {
				o.Action = ActionUnchanged
			}
		}
		out = append(out, o)
	}
	return out, nil
}

// keptObjects returns the objects phiguard keeps for the workload
// (safeguard.Keeps) that no write touched: those its safeguards found as they
// want them. They are looked for among the kinds the safeguards watch.
func (r *previewRun) keptObjects(ctx context.Context, s *safeguard.Scope, w *phiguardv1alpha1.PHIWorkload, written []PreviewObject) ([]PreviewObject, error) {
	var out []PreviewObject
	seen := map[string]bool{}
	for _, o := range written {
		seen[o.APIVersion+"/"+o.Kind+"/"+o.Namespace+"/"+o.Name] = true
	}
	for _, watch := range r.registry.Watches() {
		if watch.API != nil && s.API(watch.API) != optionalapi.Served {
			continue
		}
		gvk, err := r.live.GroupVersionKindFor(watch.Object)
		if err != nil {
			return nil, fmt.Errorf("finding the kind of %T: %w", watch.Object, err)
		}
		if seen[gvk.String()] {
			continue // two watches of one kind
		}
		seen[gvk.String()] = true
		list, err := r.listOwned(ctx, gvk, watch.Object, w)
		if err != nil {
			return nil, err
		}
		for i := range list.Items {
			item := &list.Items[i]
			key := gvk.GroupVersion().String() + "/" + gvk.Kind + "/" + item.Namespace + "/" + item.Name
			if seen[key] || !safeguard.Keeps(item, w) {
				continue
			}
			seen[key] = true
			out = append(out, PreviewObject{Action: ActionUnchanged, APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind,
				Namespace: item.Namespace, Name: item.Name})
		}
	}
	return out, nil
}

// listOwned lists the objects of kind gvk (obj's) that carry phiguard's
// labels for the workload w: in every namespace, or in w's alone when the
// user may list them only there. The list is empty when the kind is not
// served, or when the user may not list it, which adds a warning.
func (r *previewRun) listOwned(ctx context.Context, gvk schema.GroupVersionKind, obj client.Object,
	w *phiguardv1alpha1.PHIWorkload) (*metav1.PartialObjectMetadataList, error) {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	owned := client.MatchingLabels{phiguardv1alpha1.ManagedByLabel: phiguardv1alpha1.ManagedByValue, phiguardv1alpha1.WorkloadLabel: w.Name}
	err := r.live.List(ctx, list, owned)
	if namespaced, nerr := r.live.IsObjectNamespaced(obj); apierrors.IsForbidden(err) && nerr == nil && namespaced {
		// Allowed in the workload's namespace only: look there.
		err = r.live.List(ctx, list, owned, client.InNamespace(w.Namespace))
	}
	switch {
	case meta.IsNoMatchError(err):
		return &metav1.PartialObjectMetadataList{}, nil // not served: nothing of the kind to keep
	case apierrors.IsForbidden(err):
		r.res.Warnings = append(r.res.Warnings, fmt.Sprintf(
			"you may not list %ss, so those phiguard keeps unchanged for the workload are not shown: %v", gvk.Kind, err))
		return &metav1.PartialObjectMetadataList{}, nil
	case err != nil:
		return nil, fmt.Errorf("listing the %ss phiguard keeps for %s/%s: %w", gvk.Kind, w.Namespace, w.Name, err)
	}
	return list, nil
}

// render writes the result as text: the objects, the changes, what admission
// would refuse, warn about and change, and the warnings; -o wide adds the
// safeguards' results.
func (res *PreviewResult) render(w io.Writer, wide bool) error {
	p := &textWriter{w: w}
	modes := "every safeguard in Enforce (one Off under a decision stays Off)"
	if res.Modes == ModesAsWritten {
		modes = "each safeguard in the mode written (file, PHIPolicy, built-in defaults)"
	}
	p.line("Preview of PHIWorkload %s/%s with %s. Server-side dry run: nothing was written.", res.Namespace, res.Name, modes)
	p.line("")
	p.line("Would create/change:")
	res.renderObjects(p)
	for _, section := range []struct{ title, result string }{
		{"Admission would refuse (each object as if it were created now):", AdmissionRefused},
		{"Admission would warn:", AdmissionWarned},
		{"Admission would change:", AdmissionMutated},
	} {
		p.line("")
		p.line("%s", section.title)
		res.renderAdmission(p, section.result)
	}
	if wide {
		p.line("")
		p.line("Safeguards (as phiguard would report them after this run):")
		rows := make([][]string, 0, len(res.Safeguards))
		for _, s := range res.Safeguards {
			rows = append(rows, []string{string(s.Name), string(s.Mode), string(s.Status), s.Reason})
		}
		p.table([]string{"SAFEGUARD", "MODE", "STATUS", "REASON"}, rows)
	}
	if len(res.Warnings) > 0 {
		p.line("")
		p.line("Warnings:")
		for _, msg := range res.Warnings {
			p.line("  %s", msg)
		}
	}
	return p.err
}

// renderObjects writes the objects' table, then the changes of each
// changed object: "+" a field added, "-" one removed, "~" one changed.
func (res *PreviewResult) renderObjects(p *textWriter) {
	rows := make([][]string, 0, len(res.Objects))
	for _, o := range res.Objects {
		name := o.Name
		if o.Subresource != "" {
			name += "/" + o.Subresource
		}
		rows = append(rows, []string{o.Action, o.Kind, o.Namespace, name})
	}
	p.table([]string{"ACTION", "KIND", "NAMESPACE", "NAME"}, rows)
	for _, o := range res.Objects {
		if len(o.Changes) == 0 {
			continue
		}
		p.line("")
		p.line("Changes to %s %s:", o.Kind, namespacedName(o.Namespace, o.Name))
		for _, c := range o.Changes {
			switch {
			case c.Old == nil:
				p.line("  + %s: %s", c.Path, compactJSON(c.New))
			case c.New == nil:
				p.line("  - %s: %s", c.Path, compactJSON(c.Old))
			default:
				p.line("  ~ %s: %s -> %s", c.Path, compactJSON(c.Old), compactJSON(c.New))
			}
		}
	}
}

// renderAdmission writes the admission findings of one result, one a line,
// or "nothing".
func (res *PreviewResult) renderAdmission(p *textWriter, result string) {
	n := 0
	for _, f := range res.Admission {
		if f.Result == result {
			n++
			p.line("  %s %s (%s): %s", f.Kind, namespacedName(f.Namespace, f.Name), f.Webhook, f.Message)
		}
	}
	if n == 0 {
		p.line("  nothing")
	}
}

// textWriter writes lines and tables, keeping the first error.
type textWriter struct {
	w   io.Writer
	err error
}

func (t *textWriter) line(format string, args ...any) {
	if t.err == nil {
		_, t.err = fmt.Fprintf(t.w, format+"\n", args...)
	}
}

// table writes rows under header in aligned columns ("-" for an empty cell).
func (t *textWriter) table(header []string, rows [][]string) {
	if t.err == nil {
		t.err = report.Rows(t.w, header, rows)
	}
}

// compactJSON writes a value of an unstructured object as one line of JSON.
func compactJSON(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v) // unstructured values always encode; this is a fallback
	}
	return strings.TrimSuffix(b.String(), "\n")
}
