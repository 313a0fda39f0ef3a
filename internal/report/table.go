// Package report renders the compliance of PHIWorkloads as text tables. It only
// formats objects it is given and never talks to a cluster, so that the demo and
// a kubectl plugin can share it.
package report

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// None is the cell of a value the status does not report (yet).
const None = "-"

// headers are the short column headers of the safeguards.
var headers = map[phiguardv1alpha1.SafeguardName]string{
	phiguardv1alpha1.NetworkIsolated:    "NETWORK",
	phiguardv1alpha1.EncryptedAtRest:    "ENCRYPTION",
	phiguardv1alpha1.BackupScheduled:    "BACKUP",
	phiguardv1alpha1.AuditLogging:       "AUDIT",
	phiguardv1alpha1.TransmissionSecure: "TRANSMISSION",
	phiguardv1alpha1.AccessControlled:   "ACCESS",
	phiguardv1alpha1.IntegrityProtected: "INTEGRITY",
	phiguardv1alpha1.Available:          "AVAILABILITY",
}

// Header returns the short column header of a safeguard.
func Header(name phiguardv1alpha1.SafeguardName) string {
	if h, ok := headers[name]; ok {
		return h
	}
	return strings.ToUpper(string(name))
}

// Table writes one row per workload, sorted by namespace and name: NAMESPACE,
// NAME, READY, COMPLIANCE, SCORE, PODS, then the status of each safeguard's
// condition in safeguard.New(safeguard.Options{}).Names(). A value the status does not report is "-".
func Table(out io.Writer, workloads []phiguardv1alpha1.PHIWorkload) error {
	p := newPrinter(out)
	p.row(tableHeader()...)
	for _, w := range Sorted(workloads) {
		p.row(tableRow(w)...)
	}
	if err := p.flush(); err != nil {
		return fmt.Errorf("writing the compliance table: %w", err)
	}
	return nil
}

// WideTable writes Table's columns plus POLICY (the PHIPolicy whose defaults
// applied) and NOT HOLDING: each safeguard whose condition is not True, as
// Name=Status(Reason), or "-" when every one holds.
func WideTable(out io.Writer, workloads []phiguardv1alpha1.PHIWorkload) error {
	p := newPrinter(out)
	p.row(append(tableHeader(), "POLICY", "NOT HOLDING")...)
	for _, w := range Sorted(workloads) {
		p.row(append(tableRow(w), orNone(w.Status.Policy), notHolding(&w.Status))...)
	}
	if err := p.flush(); err != nil {
		return fmt.Errorf("writing the compliance table: %w", err)
	}
	return nil
}

// notHolding lists the safeguards whose condition is not True.
func notHolding(st *phiguardv1alpha1.PHIWorkloadStatus) string {
	var out []string
	for _, name := range detailOrder(st) {
		c := meta.FindStatusCondition(st.Conditions, string(name))
		switch {
		case c == nil:
			out = append(out, string(name)+"="+None)
		case c.Status != metav1.ConditionTrue:
			out = append(out, fmt.Sprintf("%s=%s(%s)", name, c.Status, c.Reason))
		}
	}
	return orNone(strings.Join(out, ","))
}

func tableHeader() []string {
	head := make([]string, 0, 6+len(safeguard.New(safeguard.Options{}).Names()))
	head = append(head, "NAMESPACE", "NAME", "READY", "COMPLIANCE", "SCORE", "PODS")
	for _, name := range safeguard.New(safeguard.Options{}).Names() {
		head = append(head, Header(name))
	}
	return head
}

func tableRow(w *phiguardv1alpha1.PHIWorkload) []string {
	st := &w.Status
	row := make([]string, 0, 6+len(safeguard.New(safeguard.Options{}).Names()))
	row = append(row, w.Namespace, w.Name, conditionStatus(st, phiguardv1alpha1.ReadyCondition),
		orNone(string(st.Compliance)), orNone(st.Score), matchedPods(st))
	for _, name := range safeguard.New(safeguard.Options{}).Names() {
		row = append(row, conditionStatus(st, string(name)))
	}
	return row
}

// Detail writes the per-safeguard detail of one workload: a summary (Ready,
// Stalled when set, compliance, score, pods, policy) and, for each safeguard,
// its HIPAA section and specification, effective mode and where it came from,
// and the status, reason and message of its condition.
func Detail(out io.Writer, w *phiguardv1alpha1.PHIWorkload) error {
	st := &w.Status
	p := newPrinter(out)
	p.line("PHIWorkload %s/%s (generation %d, observed %d)", w.Namespace, w.Name, w.Generation, st.ObservedGeneration)
	p.line("  %s", conditionLine(st, phiguardv1alpha1.ReadyCondition))
	if meta.FindStatusCondition(st.Conditions, phiguardv1alpha1.StalledCondition) != nil {
		p.line("  %s", conditionLine(st, phiguardv1alpha1.StalledCondition))
	}
	p.line("  Compliance: %s, score %s, pods %s, policy %s",
		orNone(string(st.Compliance)), orNone(st.Score), matchedPods(st), orNone(st.Policy))
	p.line("")
	p.row("  SAFEGUARD", "SECTION", "SPECIFICATION", "MODE", "STATUS", "REASON", "MESSAGE")
	for _, name := range detailOrder(st) {
		p.row(detailRow(st, name)...)
	}
	if err := p.flush(); err != nil {
		return fmt.Errorf("writing the detail of %s/%s: %w", w.Namespace, w.Name, err)
	}
	return nil
}

// detailOrder is safeguard.New(safeguard.Options{}).Names() followed by any safeguard the status reports
// that this build does not know (from a newer controller).
func detailOrder(st *phiguardv1alpha1.PHIWorkloadStatus) []phiguardv1alpha1.SafeguardName {
	names := slices.Clone(safeguard.New(safeguard.Options{}).Names())
	for _, s := range st.Safeguards {
		if !slices.Contains(names, s.Name) {
			names = append(names, s.Name)
		}
	}
	return names
}

func detailRow(st *phiguardv1alpha1.PHIWorkloadStatus, name phiguardv1alpha1.SafeguardName) []string {
	rule := safeguard.New(safeguard.Options{}).Rule(name)
	section, spec, mode := orNone(rule.Section), orNone(string(rule.Specification)), None
	if s := findSafeguard(st, name); s != nil {
		section, spec = s.Section, string(s.Specification)
		mode = fmt.Sprintf("%s (%s)", s.Mode, s.ModeSource)
	}
	status, reason, message := None, None, None
	if c := meta.FindStatusCondition(st.Conditions, string(name)); c != nil {
		status, reason, message = string(c.Status), orNone(c.Reason), orNone(c.Message)
	}
	return []string{"  " + string(name), section, spec, mode, status, reason, message}
}

// conditionLine is "Type: Status (Reason) message", or "Type: -" when the
// status does not have the condition.
func conditionLine(st *phiguardv1alpha1.PHIWorkloadStatus, typ string) string {
	c := meta.FindStatusCondition(st.Conditions, typ)
	if c == nil {
		return typ + ": " + None
	}
	return fmt.Sprintf("%s: %s (%s) %s", typ, c.Status, c.Reason, c.Message)
}

func findSafeguard(st *phiguardv1alpha1.PHIWorkloadStatus, name phiguardv1alpha1.SafeguardName) *phiguardv1alpha1.SafeguardStatus {
	for i := range st.Safeguards {
		if st.Safeguards[i].Name == name {
			return &st.Safeguards[i]
		}
	}
	return nil
}

// conditionStatus is the status of a condition: True, False, Unknown, or "-"
// when the status does not have it.
func conditionStatus(st *phiguardv1alpha1.PHIWorkloadStatus, typ string) string {
	if c := meta.FindStatusCondition(st.Conditions, typ); c != nil {
		return orNone(string(c.Status))
	}
	return None
}

// matchedPods is the number of matched pods, or "-" until the controller has
// written the status: before that a zero means "not counted", not "no pods".
func matchedPods(st *phiguardv1alpha1.PHIWorkloadStatus) string {
	if st.ObservedGeneration == 0 && len(st.Conditions) == 0 {
		return None
	}
	return strconv.Itoa(int(st.MatchedPods))
}

// Sorted returns pointers to workloads sorted by namespace and name.
func Sorted(workloads []phiguardv1alpha1.PHIWorkload) []*phiguardv1alpha1.PHIWorkload {
	out := make([]*phiguardv1alpha1.PHIWorkload, 0, len(workloads))
	for i := range workloads {
		out = append(out, &workloads[i])
	}
	slices.SortStableFunc(out, func(a, b *phiguardv1alpha1.PHIWorkload) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// printer writes aligned columns through a tabwriter and keeps the first
// write error, so that rendering reads straight through and checks it once.
type printer struct {
	tw  *tabwriter.Writer
	err error
}

func newPrinter(out io.Writer) *printer {
	return &printer{tw: tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)}
}

// line writes one line that is not part of a table. It also ends the column
// block above it, so tables before and after it align separately.
func (p *printer) line(format string, args ...any) {
	p.write(oneLine(fmt.Sprintf(format, args...)))
}

// row writes one table row. Tabs and line breaks inside a cell would break the
// columns, so they become spaces.
func (p *printer) row(cells ...string) {
	clean := make([]string, len(cells))
	for i, c := range cells {
		clean[i] = oneLine(c)
	}
	p.write(strings.Join(clean, "\t"))
}

func (p *printer) write(line string) {
	if p.err == nil {
		_, p.err = io.WriteString(p.tw, line+"\n")
	}
}

// flush writes what the tabwriter holds and returns the first error.
func (p *printer) flush() error {
	if p.err == nil {
		p.err = p.tw.Flush()
	}
	return p.err
}

// lineBreaks are the characters that end a cell or a line for tabwriter.
var lineBreaks = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ", "\v", " ", "\f", " ")

func oneLine(s string) string {
	return lineBreaks.Replace(s)
}

func orNone(s string) string {
	if s == "" {
		return None
	}
	return s
}
