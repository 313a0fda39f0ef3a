package main

import (
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// UID is the dashboard's uid: links and provisioning find it by this name.
const UID = "phiguard-compliance"

// managerJob is the job of the manager's metrics as the chart's
// ServiceMonitor scrapes them (the name of the metrics Service), the default
// of the dashboard's job variable; the alert rules select the same job.
const managerJob = "phiguard-controller-manager-metrics-service"

// The days and hours the thresholds are set in, in seconds.
const (
	hour = 3600.0
	day  = 24 * hour
)

// datasource is the Prometheus every panel queries: the one the datasource
// variable selects.
var datasource = common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}

// ns is the label matcher of the namespace variable (multi-valued, All = .*).
const ns = `namespace=~"$namespace"`

// Field properties the panels override.
const (
	propUnit       = "unit"
	propThresholds = "thresholds"
)

// Dashboard builds phiguard's Grafana dashboard: compliance by namespace and
// safeguard, the workloads and safeguards that fail, documented decisions
// and their expiry, the age of each workload's last backup, the admission
// webhooks' decisions, latency and errors, and the manager's reconciles.
//
//nolint:staticcheck // SA1019: the SDK prefers its v2 schema, but Grafana's dashboard sidecar and Grafana before 12 load this classic JSON model.
func Dashboard() (dashboard.Dashboard, error) {
	d, err := dashboard.NewDashboardBuilder("phiguard: HIPAA safeguards").
		Uid(UID).
		Description("Compliance of PHIWorkloads with the HIPAA Security Rule's safeguards, as phiguard reports it, and phiguard's admission webhooks.").
		Tags([]string{"phiguard", "hipaa", "compliance"}).
		Editable().
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Refresh("1m").
		Time("now-6h", "now").
		Timezone(common.TimeZoneBrowser).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").
			Label("Data source").
			Type("prometheus")).
		WithVariable(dashboard.NewQueryVariableBuilder("namespace").
			Label("Namespace").
			Description("Namespaces of the PHIWorkloads shown (the webhook and manager panels are not per namespace).").
			Datasource(datasource).
			Query(dashboard.StringOrMap{String: cog.ToPtr("label_values(phiguard_workload_compliant, namespace)")}).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
			Sort(dashboard.VariableSortAlphabeticalAsc).
			Multi(true).
			IncludeAll(true).
			AllValue(".*").
			Current(dashboard.VariableOption{
				Selected: cog.ToPtr(true),
				Text:     dashboard.StringOrArrayOfString{ArrayOfString: []string{"All"}},
				Value:    dashboard.StringOrArrayOfString{ArrayOfString: []string{"$__all"}},
			})).
		WithVariable(dashboard.NewCustomVariableBuilder("job").
			Label("Manager job").
			Description("The job of phiguard's metrics, to tell its controller-runtime metrics from other controllers': the chart's ServiceMonitor scrapes " + managerJob + ".").
			Values(dashboard.StringOrMap{String: cog.ToPtr(managerJob)}).
			Current(dashboard.VariableOption{
				Selected: cog.ToPtr(true),
				Text:     dashboard.StringOrArrayOfString{String: cog.ToPtr(managerJob)},
				Value:    dashboard.StringOrArrayOfString{String: cog.ToPtr(managerJob)},
			}).
			AllowCustomValue(true)).
		WithRow(dashboard.NewRowBuilder("Compliance")).
		WithPanel(workloadsStat()).
		WithPanel(notCompliantStat()).
		WithPanel(holdingStat()).
		WithPanel(expiringDecisionsStat()).
		WithPanel(complianceMatrix()).
		WithPanel(failingWorkloads()).
		WithPanel(failingSafeguards()).
		WithRow(dashboard.NewRowBuilder("Decisions and backups")).
		WithPanel(decisionsExpiring()).
		WithPanel(backupAge()).
		WithPanel(restoreAge()).
		WithRow(dashboard.NewRowBuilder("Admission webhooks")).
		WithPanel(admissionsByResult()).
		WithPanel(refusalsByWebhook()).
		WithPanel(webhookLatency()).
		WithPanel(webhookErrors()).
		WithRow(dashboard.NewRowBuilder("Manager")).
		WithPanel(reconciles()).
		WithPanel(queueDepth()).
		Build()
	if err != nil {
		return dashboard.Dashboard{}, fmt.Errorf("building the dashboard: %w", err)
	}
	// Ids in layout order, so that links to a panel (viewPanel=<id>) stay put.
	for i, p := range d.Panels {
		id := uint32(i + 1)
		switch {
		case p.Panel != nil:
			p.Panel.Id = &id
		case p.RowPanel != nil:
			p.RowPanel.Id = id
		}
	}
	return d, nil
}

// JSON is the dashboard as Grafana imports it, indented, with a final newline.
func JSON() ([]byte, error) {
	d, err := Dashboard()
	if err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding the dashboard: %w", err)
	}
	return append(data, '\n'), nil
}

// query is an instant query returning a table: one row per series, a column
// per label.
func query(ref, expr string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().RefId(ref).Expr(expr).Instant().
		Format(prometheus.PromQueryFormatTable).Datasource(datasource)
}

// series is a range query, one line per series, named by legend.
func series(ref, expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().RefId(ref).Expr(expr).Range().
		LegendFormat(legend).Datasource(datasource)
}

// thresholds colour values from base, then from each step's value up.
func thresholds(base string, steps ...dashboard.Threshold) dashboard.ThresholdsConfig {
	return dashboard.ThresholdsConfig{Mode: dashboard.ThresholdsModeAbsolute,
		Steps: append([]dashboard.Threshold{{Color: base}}, steps...)}
}

// from is a threshold step: color from value up.
func from(value float64, color string) dashboard.Threshold {
	return dashboard.Threshold{Value: &value, Color: color}
}

// panelThresholds are thresholds for a whole panel, which takes a builder.
func panelThresholds(t dashboard.ThresholdsConfig) *dashboard.ThresholdsConfigBuilder {
	return dashboard.NewThresholdsConfigBuilder().Mode(t.Mode).Steps(t.Steps)
}

// coloured is a table column whose cells take the thresholds' colour.
var coloured = dashboard.DynamicConfigValue{Id: "custom.cellOptions", Value: common.TableCellOptions{
	TableColoredBackgroundCellOptions: &common.TableColoredBackgroundCellOptions{Type: common.TableCellDisplayModeColorBackground},
}}

// columns keeps only the named columns of a table, in order, renamed: each
// column's name is followed by its title. The other columns (Time, and the
// labels Prometheus adds: job, instance, pod...) are dropped.
func columns(namesAndTitles ...string) []dashboard.DataTransformerConfig {
	var names []string
	order, rename := map[string]int{}, map[string]string{}
	for i := 0; i+1 < len(namesAndTitles); i += 2 {
		name := namesAndTitles[i]
		names = append(names, name)
		order[name], rename[name] = len(names)-1, namesAndTitles[i+1]
	}
	return []dashboard.DataTransformerConfig{
		{Id: "filterFieldsByName", Options: map[string]any{"include": map[string]any{"names": names}}},
		{Id: "organize", Options: map[string]any{"indexByName": order, "renameByName": rename}},
	}
}

// bigNumber is a stat panel of the last value of one query, a quarter of the
// dashboard's width.
func bigNumber(title, description, expr string) *stat.PanelBuilder {
	return stat.NewPanelBuilder().Title(title).Description(description).
		Datasource(datasource).Height(4).Span(6).
		WithTarget(series("A", expr, "")).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})).
		Orientation(common.VizOrientationAuto).
		GraphMode(common.BigValueGraphModeArea)
}

func workloadsStat() *stat.PanelBuilder {
	return bigNumber("PHIWorkloads", "PHIWorkloads in the selected namespaces.",
		`count(phiguard_workload_compliant{`+ns+`})`).
		NoValue("0").
		Thresholds(panelThresholds(thresholds("blue")))
}

func notCompliantStat() *stat.PanelBuilder {
	return bigNumber("Not Compliant",
		"PHIWorkloads whose compliance is NonCompliant or Pending: a safeguard fails, carries an expired decision, or is not evaluated.",
		`sum(1 - phiguard_workload_compliant{`+ns+`})`).
		NoValue("0").
		Thresholds(panelThresholds(thresholds("green", from(1, "red")))).
		ColorMode(common.BigValueColorModeBackground)
}

func holdingStat() *stat.PanelBuilder {
	return bigNumber("Safeguards holding", "Share of the selected workloads' safeguards whose condition is True.",
		`avg(phiguard_safeguard_status{`+ns+`, status="True"})`).
		Unit("percentunit").Min(0).Max(1).
		Thresholds(panelThresholds(thresholds("red", from(0.75, "orange"), from(1, "green"))))
}

func expiringDecisionsStat() *stat.PanelBuilder {
	return bigNumber("Decisions expired or expiring in 14 days",
		"Documented decisions turning a safeguard off that have expired or expire within 14 days (the PHIWorkloadDecisionExpiring alert).",
		`count(phiguard_decision_expiry_timestamp_seconds{`+ns+`} - time() < 14 * 86400)`).
		NoValue("0").
		Thresholds(panelThresholds(thresholds("green", from(1, "orange")))).
		ColorMode(common.BigValueColorModeBackground)
}

// tablePanel is a table of the dashboard's data source, without a footer.
func tablePanel(title, description string) *table.PanelBuilder {
	return table.NewPanelBuilder().Title(title).Description(description).Datasource(datasource).
		Footer(common.NewTableFooterOptionsBuilder().Show(false).Reducer([]string{}))
}

// complianceMatrix is a namespace × safeguard table: the share of the
// namespace's workloads for which the safeguard holds.
func complianceMatrix() *table.PanelBuilder {
	return tablePanel("Compliance by namespace and safeguard",
		"Share of each namespace's PHIWorkloads whose safeguard condition is True. Below 100%: some workload's safeguard is False or Unknown (see the tables below).").Height(9).Span(24).
		WithTarget(query("A", `avg by (namespace, safeguard) (phiguard_safeguard_status{`+ns+`, status="True"})`)).
		WithTransformation(dashboard.DataTransformerConfig{Id: "groupingToMatrix", Options: map[string]any{
			"rowField": "namespace", "columnField": "safeguard", "valueField": "Value",
		}}).
		Unit("percentunit").Min(0).Max(1).
		Thresholds(panelThresholds(thresholds("red", from(0.5, "orange"), from(1, "green")))).
		OverrideByFieldType("number", []dashboard.DynamicConfigValue{coloured}).
		SortBy([]cog.Builder[common.TableSortByFieldState]{
			common.NewTableSortByFieldStateBuilder().DisplayName("namespace\\safeguard"),
		})
}

// failingWorkloads lists the workloads that are not Compliant with their
// score and the number of safeguards False and Unknown.
func failingWorkloads() *table.PanelBuilder {
	notCompliant := `on (namespace, workload) (phiguard_workload_compliant{` + ns + `} == 0)`
	return tablePanel("Workloads not Compliant",
		"PHIWorkloads whose compliance is not Compliant, with their score and how many safeguards are False or Unknown. `kubectl -n <namespace> get phiworkload <workload> -o yaml` says why.").Height(10).Span(12).
		WithTarget(query("A", `phiguard_workload_score_ratio{`+ns+`} and `+notCompliant)).
		WithTarget(query("B", `sum by (namespace, workload) (phiguard_safeguard_status{`+ns+`, status="False"}) and `+notCompliant)).
		WithTarget(query("C", `sum by (namespace, workload) (phiguard_safeguard_status{`+ns+`, status="Unknown"}) and `+notCompliant)).
		// One row per workload, a column per query.
		Transformations(append([]dashboard.DataTransformerConfig{{Id: "merge", Options: map[string]any{}}},
			columns("namespace", "Namespace", "workload", "Workload", "Value #A", "Score", "Value #B", "False", "Value #C", "Unknown")...)).
		OverrideByName("Score", []dashboard.DynamicConfigValue{
			{Id: propUnit, Value: "percentunit"}, coloured,
			{Id: propThresholds, Value: thresholds("red", from(0.75, "orange"), from(1, "green"))},
		}).
		SortBy([]cog.Builder[common.TableSortByFieldState]{
			common.NewTableSortByFieldStateBuilder().DisplayName("Score"),
		}).
		Filterable(true)
}

// failingSafeguards lists each safeguard condition that is not True.
func failingSafeguards() *table.PanelBuilder {
	return tablePanel("Safeguards not holding",
		"Each safeguard condition that is False (it fails) or Unknown (it could not be judged: no pods selected, an input missing).").Height(10).Span(12).
		WithTarget(query("A", `phiguard_safeguard_status{`+ns+`, status=~"False|Unknown"} == 1`)).
		Transformations(columns("namespace", "Namespace", "workload", "Workload", "safeguard", "Safeguard", "status", "Status")).
		OverrideByName("Status", []dashboard.DynamicConfigValue{
			coloured,
			{Id: "mappings", Value: []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{
				Type: dashboard.MappingTypeValueToText,
				Options: map[string]dashboard.ValueMappingResult{
					"False":   {Color: cog.ToPtr("red"), Index: cog.ToPtr(int32(0))},
					"Unknown": {Color: cog.ToPtr("orange"), Index: cog.ToPtr(int32(1))},
				},
			}}}},
		}).
		Filterable(true)
}

// decisionsExpiring lists documented decisions by the time left until they
// expire, the soonest first; negative when expired.
func decisionsExpiring() *table.PanelBuilder {
	return tablePanel("Documented decisions by expiry",
		"Decisions turning a safeguard off (Alternative or NotReasonable), by the time left before they expire; negative once expired, when the safeguard counts as NonCompliant again. Orange within 14 days.").Height(9).Span(12).
		WithTarget(query("A", `sort(phiguard_decision_expiry_timestamp_seconds{`+ns+`} - time())`)).
		Transformations(columns("namespace", "Namespace", "workload", "Workload", "safeguard", "Safeguard", "Value", "Expires in")).
		OverrideByName("Expires in", []dashboard.DynamicConfigValue{
			{Id: propUnit, Value: "s"}, coloured,
			{Id: propThresholds, Value: thresholds("red", from(0, "orange"), from(14*day, "green"))},
		}).
		SortBy([]cog.Builder[common.TableSortByFieldState]{
			common.NewTableSortByFieldStateBuilder().DisplayName("Expires in"),
		})
}

// backupAge lists the age of each workload's last successful backup, the
// oldest first.
func backupAge() *table.PanelBuilder {
	return ageTable("Age of the last successful backup",
		"Time since each PHIWorkload's last successful Velero backup completed. Orange past 25 hours (the default RPO; the BackupScheduled condition judges each workload's own), red past 26 hours (the PHIWorkloadBackupStale alert). A workload with no backup yet is absent.",
		"phiguard_backup_last_success_timestamp_seconds", 25*hour, 26*hour)
}

// restoreAge lists the age of each workload's last verified restore drill,
// the oldest first.
func restoreAge() *table.PanelBuilder {
	return ageTable("Age of the last verified restore drill",
		"Time since each PHIWorkload's last restore drill (backup.restoreTest) brought its objects back. Orange past 7 days (a weekly drill), red past 8 days (the PHIWorkloadRestoreNotVerified alert). A workload with no verified drill yet is absent.",
		"phiguard_backup_last_restore_verified_timestamp_seconds", 7*day, 8*day)
}

// ageTable lists, per workload, the time since a timestamp metric's value,
// the oldest first: green, orange from orange, red from red (seconds).
func ageTable(title, description, metric string, orange, red float64) *table.PanelBuilder {
	return tablePanel(title, description).Height(9).Span(12).
		WithTarget(query("A", `sort_desc(time() - `+metric+`{`+ns+`})`)).
		Transformations(columns("namespace", "Namespace", "workload", "Workload", "Value", "Age")).
		OverrideByName("Age", []dashboard.DynamicConfigValue{
			{Id: propUnit, Value: "s"}, coloured,
			{Id: propThresholds, Value: thresholds("green", from(orange, "orange"), from(red, "red"))},
		}).
		SortBy([]cog.Builder[common.TableSortByFieldState]{
			common.NewTableSortByFieldStateBuilder().DisplayName("Age").Desc(true),
		})
}

// resultColours colour each admission result the same on every panel.
var resultColours = map[string]string{"allowed": "green", "warned": "orange", "denied": "red", "errored": "purple"}

func admissionsByResult() *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().Title("Admission decisions by result").
		Description("Requests phiguard's admission webhooks decided, per second: allowed, warned (admitted with a warning: Audit mode), denied (Enforce mode) or errored (undecided; the apiserver applies the webhook's failurePolicy). Summed over the replicas.").
		Datasource(datasource).Height(8).Span(12).
		WithTarget(series("A", `sum by (result) (rate(phiguard_admission_decisions_total[$__rate_interval]))`, "{{result}}")).
		Unit("reqps").Min(0).
		FillOpacity(30).
		Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal))
	for _, result := range []string{"allowed", "warned", "denied", "errored"} {
		p.OverrideByName(result, []dashboard.DynamicConfigValue{{Id: "color", Value: map[string]any{
			"mode": "fixed", "fixedColor": resultColours[result],
		}}})
	}
	return p
}

func refusalsByWebhook() *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().Title("Denied, warned and errored by webhook").
		Description("The admission requests each webhook (its path) did not simply allow, per second.").
		Datasource(datasource).Height(8).Span(12).
		WithTarget(series("A", `sum by (webhook, result) (rate(phiguard_admission_decisions_total{result=~"denied|warned|errored"}[$__rate_interval]))`, "{{webhook}} {{result}}")).
		Unit("reqps").Min(0).
		Legend(common.NewVizLegendOptionsBuilder().DisplayMode(common.LegendDisplayModeTable).
			Placement(common.LegendPlacementRight).ShowLegend(true).Calcs([]string{"max", "lastNotNull"}))
}

// latency is the q quantile of each webhook's latency.
func latency(ref, q string) *prometheus.DataqueryBuilder {
	return series(ref, `histogram_quantile(`+q+`, sum by (webhook, le) (rate(controller_runtime_webhook_latency_seconds_bucket{job="$job"}[$__rate_interval])))`,
		"p"+q[2:]+" {{webhook}}")
}

func webhookLatency() *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().Title("Webhook latency").
		Description("The 50th and 99th percentile of each webhook's response time. The apiserver gives up after the webhook's timeoutSeconds (5 by default); the PhiguardWebhookSlow alert fires when the 99th percentile stays above 2 seconds.").
		Datasource(datasource).Height(8).Span(12).
		WithTarget(latency("A", "0.99")).
		WithTarget(latency("B", "0.50")).
		Unit("s").Min(0).
		Thresholds(panelThresholds(thresholds("green", from(2, "red")))).
		ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed))
}

func webhookErrors() *timeseries.PanelBuilder {
	requests := `sum by (webhook) (rate(controller_runtime_webhook_requests_total{job="$job"%s}[$__rate_interval]))`
	return timeseries.NewPanelBuilder().Title("Webhook errors").
		Description("Share of each webhook's requests answered with a 5xx code (a denial is a 200). The PhiguardWebhookErrors alert fires above 5%.").
		Datasource(datasource).Height(8).Span(12).
		WithTarget(series("A", fmt.Sprintf(requests, `, code=~"5.."`)+" / "+fmt.Sprintf(requests, ""), "{{webhook}}")).
		Unit("percentunit").Min(0).
		Thresholds(panelThresholds(thresholds("green", from(0.05, "red")))).
		ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed))
}

func reconciles() *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().Title("Reconciles by result").
		Description("Reconciles per second of each of the manager's controllers (the leader's), by result: success, error, requeue, requeue_after. Errors are retried with backoff; the manager's log says why.").
		Datasource(datasource).Height(8).Span(12).
		WithTarget(series("A", `sum by (controller, result) (rate(controller_runtime_reconcile_total{job="$job"}[$__rate_interval]))`, "{{controller}} {{result}}")).
		Unit("ops").Min(0)
}

func queueDepth() *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().Title("Work queue depth").
		Description("Objects waiting in each controller's work queue. A depth that keeps growing means statuses and metrics lag behind the cluster: raise --concurrency or the API budget (values concurrency and kubeAPI).").
		Datasource(datasource).Height(8).Span(12).
		WithTarget(series("A", `sum by (name) (workqueue_depth{job="$job"})`, "{{name}}")).
		Min(0)
}
