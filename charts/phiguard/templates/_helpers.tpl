{{/* Labels of every object the chart makes. */}}
{{- define "phiguard.labels" -}}
app.kubernetes.io/name: phiguard
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}

{{/* The webhook configurations' annotations: cert-manager's CA injection. */}}
{{- define "phiguard.webhookAnnotations" -}}
{{- if .Values.webhook.certManager.enabled }}
annotations:
  cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/phiguard-serving-cert
{{- end }}
{{- end }}
