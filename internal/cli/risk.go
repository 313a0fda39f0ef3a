package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/controller"
	"github.com/phiguard/phiguard/internal/safeguard"
	"github.com/phiguard/phiguard/internal/storageclass"
)

// riskSection is the HIPAA implementation specification a risk analysis serves.
const riskSection = "§164.308(a)(1)(ii)(A)"

// defaultExpiringWithin is how far ahead risk looks for expiring decisions.
const defaultExpiringWithin = 30 * 24 * time.Hour

// RiskResult is the result of `risk`: a risk analysis (HIPAA
// §164.308(a)(1)(ii)(A)) of the ePHI workloads of a namespace or the cluster,
// from what phiguard judged (their status) and what the cluster holds now.
// Every list is sorted.
type RiskResult struct {
	// Scope is what was analysed, and when.
	Scope RiskScope `json:"scope"`
	// Workloads are the PHIWorkloads, each with the safeguards that do not hold.
	Workloads []RiskWorkload `json:"workloads"`
	// Uncovered are the objects labelled phiguard.io/ephi that no PHIWorkload covers.
	Uncovered []UncoveredObject `json:"uncovered"`
	// PodsWithoutAuditSidecar are the selected pods that lack phiguard's audit sidecar.
	PodsWithoutAuditSidecar []PodWithoutSidecar `json:"podsWithoutAuditSidecar"`
	// Decisions are the documented decisions that expire within
	// Scope.ExpiringWithin, or have expired.
	Decisions []DecisionExpiry `json:"decisions"`
	// UnencryptedStorageClasses are the StorageClasses that do not encrypt at
	// rest, with the selected pods' claims that use them.
	UnencryptedStorageClasses []UnencryptedClass `json:"unencryptedStorageClasses"`
	// ReachInside are the subjects RBAC allows to exec into, attach to,
	// port-forward to or debug the pods of each namespace with ePHI workloads.
	ReachInside []ReachRow `json:"reachInside"`
}

// RiskScope says what a risk analysis covers.
type RiskScope struct {
	// Namespace is the namespace analysed; empty for the whole cluster.
	Namespace string `json:"namespace,omitempty"`
	// Time is the time decisions are judged at (--at, or when risk ran).
	Time metav1.Time `json:"time"`
	// ExpiringWithin is how far ahead expiring decisions are reported.
	ExpiringWithin metav1.Duration `json:"expiringWithin"`
}

// RiskWorkload is one PHIWorkload in a risk analysis.
type RiskWorkload struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Source is the labelled object a generated workload covers, as Kind/name.
	Source     string                      `json:"source,omitempty"`
	Compliance phiguardv1alpha1.Compliance `json:"compliance,omitempty"`
	Score      string                      `json:"score,omitempty"`
	Pods       int32                       `json:"pods"`
	// Stalled is the message of the Stalled condition when the spec cannot be acted on.
	Stalled string `json:"stalled,omitempty"`
	// NotEvaluated says why phiguard does not judge the workload (an exempt
	// namespace, an invalid selector) when its status does not say so yet.
	NotEvaluated string `json:"notEvaluated,omitempty"`
	// Failing are the safeguards whose condition is not True, in phiguard's order.
	Failing []FailingSafeguard `json:"failing"`
}

// FailingSafeguard is a safeguard that does not hold (False) or could not be
// judged (Unknown, or no condition yet).
type FailingSafeguard struct {
	Safeguard     phiguardv1alpha1.SafeguardName `json:"safeguard"`
	Section       string                         `json:"section"`
	Specification phiguardv1alpha1.Specification `json:"specification"`
	// Status is the condition's status; empty when phiguard has not written it.
	Status  metav1.ConditionStatus `json:"status,omitempty"`
	Reason  string                 `json:"reason,omitempty"`
	Message string                 `json:"message,omitempty"`
}

// UncoveredObject is an object labelled phiguard.io/ephi whose pods no
// PHIWorkload covers.
type UncoveredObject struct {
	Kind string `json:"kind"`
	// Namespace is empty for a Namespace.
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Label is the value of its phiguard.io/ephi label.
	Label string `json:"label"`
	// Reason is phiguard's coverage reason, when it has one.
	Reason string `json:"reason,omitempty"`
	// Message says why the object is not covered.
	Message string `json:"message"`
}

// PodWithoutSidecar is a selected pod that lacks phiguard's audit sidecar.
type PodWithoutSidecar struct {
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	// Workloads are the PHIWorkloads selecting it.
	Workloads []string `json:"workloads"`
	// Problem says what is missing, as AuditLogging judges it.
	Problem string `json:"problem"`
}

// DecisionExpiry is a documented decision that expires soon or has expired.
type DecisionExpiry struct {
	Namespace  string                         `json:"namespace"`
	Workload   string                         `json:"workload"`
	Safeguard  phiguardv1alpha1.SafeguardName `json:"safeguard"`
	Kind       phiguardv1alpha1.DecisionKind  `json:"kind"`
	ApprovedBy string                         `json:"approvedBy"`
	// RecordedBy is the user phiguard recorded adding or changing it.
	RecordedBy string      `json:"recordedBy,omitempty"`
	Expires    metav1.Time `json:"expires"`
	// Expired is true when it expired at or before the scope's time: its
	// safeguard is then False (DecisionExpired).
	Expired bool `json:"expired"`
}

// UnencryptedClass is a StorageClass that does not encrypt at rest and that
// claims of selected pods use.
type UnencryptedClass struct {
	// StorageClass is the class; empty for claims that resolve to none.
	StorageClass string `json:"storageClass"`
	Provider     string `json:"provider,omitempty"`
	// Reason says why it is not encrypted, as EncryptedAtRest judges it.
	Reason string `json:"reason"`
	// Claims are the claims that use it, as namespace/name.
	Claims []string `json:"claims"`
	// Workloads are the PHIWorkloads whose pods mount those claims.
	Workloads []string `json:"workloads"`
}

// ReachRow is a subject RBAC allows to reach inside the pods of a namespace.
type ReachRow struct {
	Namespace string `json:"namespace"`
	Subject   string `json:"subject"`
	// Via are the pod subresources it may use: exec, attach, portforward,
	// ephemeralcontainers.
	Via []string `json:"via"`
}

// riskFlags are risk's own flags.
type riskFlags struct {
	ephiFlags
	at             string
	expiringWithin time.Duration
}

func newRiskCommand(o *Options) *cobra.Command {
	f := &riskFlags{}
	cmd := &cobra.Command{
		Use:   "risk",
		Short: "A risk analysis (HIPAA §164.308(a)(1)(ii)(A)) of the ePHI workloads of a namespace (-A: the cluster)",
		Long: "risk analyses the ePHI workloads of a namespace, or of the cluster with -A: each PHIWorkload and the\n" +
			"safeguards that do not hold, with their reasons; objects labelled phiguard.io/ephi that no PHIWorkload\n" +
			"covers, and why; selected pods without the audit sidecar; documented decisions expiring within\n" +
			"--expiring-within (30 days) or expired; unencrypted StorageClasses that ePHI claims use; and who RBAC\n" +
			"lets exec into, attach to or port-forward to the pods. It reads what phiguard wrote on each workload's\n" +
			"status and judges the rest with phiguard's own rules; it changes nothing.\n\n" +
			"-o table (the default) prints the report as Markdown; -o json and -o yaml print it as data.",
		Example: "  kubectl phiguard risk -n clinic > risk-analysis.md\n" +
			"  kubectl phiguard risk -A -o json\n" +
			"  kubectl phiguard risk -n clinic --at 2026-07-01T00:00:00Z   # what will have expired by then",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.CheckOutput(OutputTable, OutputJSON, OutputYAML); err != nil {
				return err
			}
			now, err := parseAt(f.at)
			if err != nil {
				return err
			}
			if f.expiringWithin < 0 {
				return fmt.Errorf("--expiring-within %s is negative", f.expiringWithin)
			}
			ns, err := o.ListNamespace()
			if err != nil {
				return err
			}
			r, err := newEPHIReader(o, &f.ephiFlags, now)
			if err != nil {
				return err
			}
			res, err := analyseRisk(cmd.Context(), r, ns, f.expiringWithin)
			if err != nil {
				return err
			}
			return o.Print(res, func(w io.Writer, _ bool) error { return renderRisk(w, &res) })
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&f.at, "at", "", "Judge decisions as of this time (RFC 3339, such as 2026-07-01T00:00:00Z) instead of now.")
	cmd.Flags().DurationVar(&f.expiringWithin, "expiring-within", defaultExpiringWithin,
		"Report decisions that expire within this long (and those expired).")
	return cmd
}

// timeFlag parses --at; empty is now.
func parseAt(at string) (time.Time, error) {
	if at == "" {
		return time.Now().UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, at)
	if err != nil {
		return time.Time{}, fmt.Errorf("--at %q is not an RFC 3339 time such as 2026-07-01T00:00:00Z: %w", at, err)
	}
	return t.UTC(), nil
}

// analyseRisk builds the risk analysis of namespace ns ("" for the cluster).
func analyseRisk(ctx context.Context, r *ephiReader, ns string, within time.Duration) (RiskResult, error) {
	res := RiskResult{
		Scope:                     RiskScope{Namespace: ns, Time: metav1.NewTime(r.now), ExpiringWithin: metav1.Duration{Duration: within}},
		Workloads:                 []RiskWorkload{},
		PodsWithoutAuditSidecar:   []PodWithoutSidecar{},
		Decisions:                 []DecisionExpiry{},
		UnencryptedStorageClasses: []UnencryptedClass{},
		ReachInside:               []ReachRow{},
	}
	workloads, err := r.workloads(ctx, ns)
	if err != nil {
		return RiskResult{}, err
	}
	for _, w := range workloads {
		res.Workloads = append(res.Workloads, riskWorkload(w))
		res.Decisions = append(res.Decisions, expiringDecisions(w, r.now, within)...)
	}
	if res.Uncovered, err = uncoveredObjects(ctx, r, ns); err != nil {
		return RiskResult{}, err
	}
	res.PodsWithoutAuditSidecar = podsWithoutSidecar(workloads)
	res.UnencryptedStorageClasses = unencryptedClasses(workloads)
	res.ReachInside = reachInside(ctx, workloads)
	return res, nil
}

// riskWorkload reads a workload's compliance and failing safeguards from the
// status phiguard wrote.
func riskWorkload(w *ephiWorkload) RiskWorkload {
	st := &w.Status
	rw := RiskWorkload{Namespace: w.Namespace, Name: w.Name, Source: w.Annotations[phiguardv1alpha1.SourceAnnotation],
		Compliance: st.Compliance, Score: st.Score, Pods: st.MatchedPods, Failing: []FailingSafeguard{}}
	if c := meta.FindStatusCondition(st.Conditions, phiguardv1alpha1.StalledCondition); c != nil && c.Status == metav1.ConditionTrue {
		rw.Stalled = c.Message
	} else {
		rw.NotEvaluated = w.notEvaluated
	}
	registry := safeguard.New(safeguard.Options{})
	names := registry.Names()
	for _, s := range st.Safeguards {
		if !slices.Contains(names, s.Name) {
			names = append(names, s.Name) // reported by a newer manager
		}
	}
	for _, name := range names {
		rule := registry.Rule(name)
		f := FailingSafeguard{Safeguard: name, Section: rule.Section, Specification: rule.Specification}
		if i := slices.IndexFunc(st.Safeguards, func(s phiguardv1alpha1.SafeguardStatus) bool { return s.Name == name }); i >= 0 {
			f.Section, f.Specification = st.Safeguards[i].Section, st.Safeguards[i].Specification
		}
		c := meta.FindStatusCondition(st.Conditions, string(name))
		if c != nil && c.Status == metav1.ConditionTrue {
			continue
		}
		if c != nil {
			f.Status, f.Reason, f.Message = c.Status, c.Reason, c.Message
		} else {
			f.Message = "phiguard has not written this condition yet"
		}
		rw.Failing = append(rw.Failing, f)
	}
	return rw
}

// expiringDecisions are the workload's decisions that expire within the
// window after now, or have expired. A decision expires at its expires time,
// as safeguard.EvaluateDecision judges it.
func expiringDecisions(w *ephiWorkload, now time.Time, within time.Duration) []DecisionExpiry {
	var out []DecisionExpiry
	for _, d := range w.Spec.Decisions {
		if d.Expires.After(now.Add(within)) {
			continue
		}
		e := DecisionExpiry{Namespace: w.Namespace, Workload: w.Name, Safeguard: d.Safeguard, Kind: d.Kind,
			ApprovedBy: d.ApprovedBy, Expires: metav1.NewTime(d.Expires.UTC()), Expired: !now.Before(d.Expires.Time)}
		if i := slices.IndexFunc(w.Status.Decisions, func(s phiguardv1alpha1.DecisionStatus) bool { return s.Safeguard == d.Safeguard }); i >= 0 {
			e.RecordedBy = w.Status.Decisions[i].RecordedBy
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b DecisionExpiry) int {
		return cmp.Or(a.Expires.Compare(b.Expires.Time), cmp.Compare(a.Namespace, b.Namespace),
			cmp.Compare(a.Workload, b.Workload), cmp.Compare(a.Safeguard, b.Safeguard))
	})
	return out
}

// riskLabelSources are the kinds a developer labels phiguard.io/ephi, with an
// empty list of each.
var riskLabelSources = []struct {
	source  controller.LabelSource
	newList func() client.ObjectList
}{
	{controller.NamespaceSource, func() client.ObjectList { return &corev1.NamespaceList{} }},
	{controller.DeploymentSource, func() client.ObjectList { return &appsv1.DeploymentList{} }},
	{controller.StatefulSetSource, func() client.ObjectList { return &appsv1.StatefulSetList{} }},
	{controller.ServiceSource, func() client.ObjectList { return &corev1.ServiceList{} }},
}

// uncoveredObjects judges every object labelled phiguard.io/ephi in the
// namespace (and the namespace itself), or in the cluster, as phiguard's
// label reconciler does, and returns those no PHIWorkload covers. A value
// other than "true" asks for no coverage: it is reported, unless it is
// "false", which says the object handles no ePHI.
func uncoveredObjects(ctx context.Context, r *ephiReader, ns string) ([]UncoveredObject, error) {
	out := []UncoveredObject{}
	c := cachedClient{Client: r.client, cache: r.reader}
	for _, ls := range riskLabelSources {
		list, err := labelledObjects(ctx, c, ls.source.Kind, ls.newList(), ns)
		if err != nil {
			return nil, err
		}
		judge := &controller.LabelReconciler{Client: c, Source: ls.source, ExemptNamespaces: r.env.ExemptNamespaces}
		err = meta.EachListItem(list, func(item runtime.Object) error {
			obj := item.(client.Object)
			u := UncoveredObject{Kind: ls.source.Kind, Namespace: obj.GetNamespace(), Name: obj.GetName(),
				Label: obj.GetLabels()[phiguardv1alpha1.EPHILabel]}
			switch u.Label {
			case phiguardv1alpha1.EPHILabelValue:
				cov, err := judge.JudgeCoverage(ctx, obj)
				if err != nil {
					return fmt.Errorf("judging the coverage of %s %s: %w", u.Kind, client.ObjectKeyFromObject(obj), err)
				}
				if cov.Covered {
					return nil
				}
				u.Reason, u.Message = cov.Reason, cov.Message
			case "false":
				return nil
			default:
				u.Message = fmt.Sprintf("labelled %s=%q: only %q asks phiguard to cover it", phiguardv1alpha1.EPHILabel, u.Label, phiguardv1alpha1.EPHILabelValue)
			}
			out = append(out, u)
			return nil
		})
		if err != nil {
			return nil, err //nolint:wrapcheck // the error names the object
		}
	}
	slices.SortFunc(out, func(a, b UncoveredObject) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
	})
	return out, nil
}

// labelled lists the objects of a kind that carry the phiguard.io/ephi
// label in namespace ns ("" for every namespace). For Namespaces, ns itself
// when it carries it: nothing cluster-wide is read for one namespace.
func labelledObjects(ctx context.Context, c client.Reader, kind string, list client.ObjectList, ns string) (client.ObjectList, error) {
	if kind == controller.NamespaceSource.Kind && ns != "" {
		var n corev1.Namespace
		if err := c.Get(ctx, client.ObjectKey{Name: ns}, &n); err != nil {
			return nil, fmt.Errorf("reading namespace %s: %w", ns, err)
		}
		out := &corev1.NamespaceList{}
		if _, ok := n.Labels[phiguardv1alpha1.EPHILabel]; ok {
			out.Items = append(out.Items, n)
		}
		return out, nil
	}
	if err := c.List(ctx, list, client.InNamespace(ns), client.HasLabels{phiguardv1alpha1.EPHILabel}); err != nil {
		return nil, fmt.Errorf("listing %ss labelled %s: %w", kind, phiguardv1alpha1.EPHILabel, err)
	}
	return list, nil
}

// podsWithoutSidecar lists the selected pods that lack the audit sidecar the
// effective settings ask for, as AuditLogging judges them; a pod several
// workloads select is listed once.
func podsWithoutSidecar(workloads []*ephiWorkload) []PodWithoutSidecar {
	byPod := map[string]*PodWithoutSidecar{}
	for _, w := range workloads {
		if w.scope == nil {
			continue
		}
		image := w.scope.Settings.AuditLogging.Sidecar.Image
		for i := range w.scope.Pods {
			p := &w.scope.Pods[i]
			problem := safeguard.AuditSidecarProblem(p, image)
			if problem == "" {
				continue
			}
			if safeguard.OptedOut(p) {
				problem = "opted out with " + safeguard.AuditOptOutAnnotation + "=false"
			}
			k := p.Namespace + "/" + p.Name
			if byPod[k] == nil {
				byPod[k] = &PodWithoutSidecar{Namespace: p.Namespace, Pod: p.Name, Problem: problem}
			}
			byPod[k].Workloads = append(byPod[k].Workloads, w.Name)
		}
	}
	out := make([]PodWithoutSidecar, 0, len(byPod))
	for _, k := range sortedMapKeys(byPod) {
		out = append(out, *byPod[k])
	}
	return out
}

// unencryptedClasses groups the claims the selected pods mount whose class
// does not encrypt (storageclass.Judge, with the PHIPolicy's storage facts)
// by class. Claims that do not exist are EncryptedAtRest's ClaimMissing, not
// listed here.
func unencryptedClasses(workloads []*ephiWorkload) []UnencryptedClass {
	byClass := map[string]*UnencryptedClass{}
	for _, w := range workloads {
		if w.scope == nil {
			continue
		}
		claims, classes := safeguard.Claims.Get(w.scope), safeguard.StorageClasses.Get(w.scope)
		opts := safeguard.StorageOptions(w.scope.Policy)
		for _, name := range safeguard.ClaimNames(w.scope.Pods) {
			i := slices.IndexFunc(claims, func(c corev1.PersistentVolumeClaim) bool { return c.Name == name })
			if i < 0 {
				continue
			}
			class, v := storageclass.Judge(&claims[i].Spec, classes, opts)
			if v.Encrypted {
				continue
			}
			uc := byClass[class]
			if uc == nil {
				uc = &UnencryptedClass{StorageClass: class, Provider: v.Provider, Reason: v.Reason}
				byClass[class] = uc
			}
			uc.Claims = append(uc.Claims, w.Namespace+"/"+name)
			uc.Workloads = append(uc.Workloads, w.key())
		}
	}
	out := make([]UnencryptedClass, 0, len(byClass))
	for _, k := range sortedMapKeys(byClass) {
		uc := byClass[k]
		uc.Claims, uc.Workloads = sortedUnique(uc.Claims), sortedUnique(uc.Workloads)
		out = append(out, *uc)
	}
	return out
}

// reachInside lists, for each namespace with an ePHI workload, who RBAC
// allows to reach inside its pods (safeguard.ReachInsideBy, the apiserver's
// own subject locator).
func reachInside(ctx context.Context, workloads []*ephiWorkload) []ReachRow {
	out := []ReachRow{}
	done := map[string]bool{}
	for _, w := range workloads {
		if w.scope == nil || done[w.Namespace] {
			continue
		}
		done[w.Namespace] = true
		rbac := safeguard.NamespacedRBAC.Get(w.scope)
		rbac.ClusterRoles, rbac.ClusterRoleBindings = safeguard.ClusterRoles.Get(w.scope), safeguard.ClusterRoleBindings.Get(w.scope)
		for _, a := range safeguard.ReachInsideBy(ctx, &rbac, w.Namespace) {
			out = append(out, ReachRow{Namespace: w.Namespace, Subject: a.Subject, Via: a.Via})
		}
	}
	return out
}

// renderRisk writes the analysis as Markdown, one section after another.
func renderRisk(out io.Writer, res *RiskResult) error {
	md := &mdWriter{}
	md.line("# Risk analysis of ePHI workloads")
	md.line("")
	md.line("HIPAA %s: the risks and vulnerabilities to the confidentiality, integrity and availability of ePHI, as phiguard sees them.", riskSection)
	for _, section := range []func(*mdWriter, *RiskResult){
		riskScopeSection, riskWorkloadsSection, riskUncoveredSection, riskSidecarSection,
		riskDecisionsSection, riskStorageSection, riskReachSection,
	} {
		section(md, res)
	}
	if _, err := io.WriteString(out, md.String()); err != nil {
		return fmt.Errorf("writing the risk analysis: %w", err)
	}
	return nil
}

func riskScopeSection(md *mdWriter, res *RiskResult) {
	md.heading("Scope")
	if res.Scope.Namespace == "" {
		md.line("- Namespaces: every namespace of the cluster")
	} else {
		md.line("- Namespace: %s", res.Scope.Namespace)
	}
	md.line("- As of: %s", res.Scope.Time.UTC().Format(time.RFC3339))
	md.line("- PHIWorkloads: %s", complianceCounts(res.Workloads))
}

// riskWorkloadsSection writes a table of the workloads, then what fails in
// each, with phiguard's reason and message.
func riskWorkloadsSection(md *mdWriter, res *RiskResult) {
	md.heading("ePHI workloads")
	if len(res.Workloads) == 0 {
		md.line("No PHIWorkloads.")
		return
	}
	rows := make([][]string, 0, len(res.Workloads))
	for _, w := range res.Workloads {
		failing := make([]string, 0, len(w.Failing))
		for _, f := range w.Failing {
			failing = append(failing, string(f.Safeguard))
		}
		rows = append(rows, []string{w.Namespace + "/" + w.Name, cmp.Or(w.Source, "-"), cmp.Or(string(w.Compliance), "-"),
			cmp.Or(w.Score, "-"), fmt.Sprint(w.Pods), cmp.Or(strings.Join(failing, ", "), "none")})
	}
	md.table([]string{"Workload", "Covers", "Compliance", "Score", "Pods", "Failing safeguards"}, rows)
	for _, w := range res.Workloads {
		if len(w.Failing) == 0 && w.Stalled == "" && w.NotEvaluated == "" {
			continue
		}
		md.subheading(w.Namespace + "/" + w.Name)
		if w.Stalled != "" {
			md.line("- **Stalled**: %s", w.Stalled)
		}
		if w.NotEvaluated != "" {
			md.line("- **Not evaluated**: %s", w.NotEvaluated)
		}
		for _, f := range w.Failing {
			state := "not evaluated"
			if f.Status != "" {
				state = fmt.Sprintf("%s (%s)", f.Status, f.Reason)
			}
			md.line("- **%s** (%s, %s): %s. %s", f.Safeguard, f.Section, f.Specification, state, f.Message)
		}
	}
}

func riskUncoveredSection(md *mdWriter, res *RiskResult) {
	md.heading("Uncovered labelled objects")
	if len(res.Uncovered) == 0 {
		md.line("None: every object labelled %s=%s is covered by a PHIWorkload.", phiguardv1alpha1.EPHILabel, phiguardv1alpha1.EPHILabelValue)
		return
	}
	rows := make([][]string, 0, len(res.Uncovered))
	for _, u := range res.Uncovered {
		rows = append(rows, []string{u.Kind + " " + riskObjectName(u.Namespace, u.Name), u.Label, cmp.Or(u.Reason, "-"), u.Message})
	}
	md.table([]string{"Object", "Label", "Reason", "Why"}, rows)
}

func riskSidecarSection(md *mdWriter, res *RiskResult) {
	md.heading("Pods without the audit sidecar")
	if len(res.PodsWithoutAuditSidecar) == 0 {
		md.line("None: every selected pod carries the audit sidecar.")
		return
	}
	rows := make([][]string, 0, len(res.PodsWithoutAuditSidecar))
	for _, p := range res.PodsWithoutAuditSidecar {
		rows = append(rows, []string{p.Namespace + "/" + p.Pod, strings.Join(p.Workloads, ", "), p.Problem})
	}
	md.table([]string{"Pod", "Workloads", "Problem"}, rows)
}

func riskDecisionsSection(md *mdWriter, res *RiskResult) {
	md.heading(fmt.Sprintf("Decisions expiring within %s", windowText(res.Scope.ExpiringWithin.Duration)))
	if len(res.Decisions) == 0 {
		md.line("None.")
		return
	}
	rows := make([][]string, 0, len(res.Decisions))
	for _, d := range res.Decisions {
		when := "expires in " + ageText(d.Expires.Sub(res.Scope.Time.Time))
		if d.Expired {
			when = "expired " + ageText(res.Scope.Time.Sub(d.Expires.Time)) + " ago"
		}
		rows = append(rows, []string{d.Namespace + "/" + d.Workload, string(d.Safeguard), string(d.Kind), d.ApprovedBy,
			cmp.Or(d.RecordedBy, "-"), d.Expires.UTC().Format(time.RFC3339), when})
	}
	md.table([]string{"Workload", "Safeguard", "Kind", "Approved by", "Recorded by", "Expires", "State"}, rows)
}

func riskStorageSection(md *mdWriter, res *RiskResult) {
	md.heading("Unencrypted StorageClasses in use")
	if len(res.UnencryptedStorageClasses) == 0 {
		md.line("None: every claim the selected pods mount uses an encrypted StorageClass.")
		return
	}
	rows := make([][]string, 0, len(res.UnencryptedStorageClasses))
	for _, c := range res.UnencryptedStorageClasses {
		rows = append(rows, []string{cmp.Or(c.StorageClass, "(none)"), cmp.Or(c.Provider, "-"), strings.Join(c.Claims, ", "),
			strings.Join(c.Workloads, ", "), c.Reason})
	}
	md.table([]string{"StorageClass", "Provider", "Claims", "Workloads", "Why"}, rows)
}

func riskReachSection(md *mdWriter, res *RiskResult) {
	md.heading("Who can exec, attach or port-forward into ePHI pods")
	if len(res.ReachInside) == 0 {
		md.line("No namespace with ePHI workloads.")
		return
	}
	md.line("Subjects RBAC allows to reach inside the pods of each namespace with ePHI workloads (exec, attach, port-forward, ephemeral containers); cluster administrators (system:masters) always can.")
	md.line("")
	rows := make([][]string, 0, len(res.ReachInside))
	for _, r := range res.ReachInside {
		rows = append(rows, []string{r.Namespace, r.Subject, strings.Join(r.Via, ", ")})
	}
	md.table([]string{"Namespace", "Subject", "Via"}, rows)
}

// complianceCounts is "2 (Compliant 1, NonCompliant 1)".
func complianceCounts(workloads []RiskWorkload) string {
	counts := map[string]int{}
	for _, w := range workloads {
		counts[cmp.Or(string(w.Compliance), "not evaluated")]++
	}
	parts := make([]string, 0, len(counts))
	for _, k := range sortedMapKeys(counts) {
		parts = append(parts, fmt.Sprintf("%s %d", k, counts[k]))
	}
	if len(parts) == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%s)", len(workloads), strings.Join(parts, ", "))
}

// oneDay is the unit of decision expiry in the report.
const oneDay = 24 * time.Hour

// windowText is a window in whole days ("30 days", "1 day"), or the
// duration when it is not whole days.
func windowText(d time.Duration) string {
	if d > 0 && d%oneDay == 0 {
		return wholeDays(d)
	}
	return d.String()
}

// ageText is how long until or since something: whole days, rounded
// down, from a day on; below, hours and minutes.
func ageText(d time.Duration) string {
	if d >= oneDay {
		return wholeDays(d)
	}
	return d.Round(time.Minute).String()
}

func wholeDays(d time.Duration) string {
	if n := d / oneDay; n != 1 {
		return fmt.Sprintf("%d days", n)
	}
	return "1 day"
}

// objectName is namespace/name, or name for a cluster-scoped object.
func riskObjectName(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}
