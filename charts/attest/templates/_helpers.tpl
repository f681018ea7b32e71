{{/* The name of every object: the release name unless nameOverride is set. */}}
{{- define "attest.name" -}}
{{- default .Release.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The labels manifests/base puts on every object, plus Helm's. */}}
{{- define "attest.labels" -}}
app.kubernetes.io/name: attest
app.kubernetes.io/part-of: attest
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The webhook Pods, as the Deployment, PDB and Services select them. */}}
{{- define "attest.selectorLabels" -}}
app.kubernetes.io/name: attest
app.kubernetes.io/component: webhook
{{- end -}}

{{- define "attest.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}
{{- end -}}

{{- define "attest.configMapName" -}}
{{- if .Values.config.existingConfigMap -}}
{{ .Values.config.existingConfigMap }}
{{- else -}}
{{ include "attest.name" . }}-config
{{- end -}}
{{- end -}}

{{- define "attest.validate" -}}
{{- if not (has .Values.certificates.mode (list "self" "cert-manager")) -}}
{{- fail (printf "certificates.mode: %q is neither self nor cert-manager" .Values.certificates.mode) -}}
{{- end -}}
{{- if not (has .Values.webhook.failurePolicy (list "Fail" "Ignore")) -}}
{{- fail (printf "webhook.failurePolicy: %q is neither Fail nor Ignore" .Values.webhook.failurePolicy) -}}
{{- end -}}
{{- $t := int .Values.webhook.timeoutSeconds -}}
{{- if or (lt $t 1) (gt $t 30) -}}
{{- fail (printf "webhook.timeoutSeconds: %v is outside 1-30 (the API server's limits)" .Values.webhook.timeoutSeconds) -}}
{{- end -}}
{{- end -}}

{{/* The namespaces no webhook covers: the configured ones and always ATTEST's own. */}}
{{- define "attest.namespaceSelector" -}}
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values:
        {{- range .Values.webhook.excludedNamespaces }}
        - {{ . }}
        {{- end }}
        {{- if not (has .Release.Namespace .Values.webhook.excludedNamespaces) }}
        - {{ .Release.Namespace }}
        {{- end }}
{{- end -}}

{{/* The workload kinds both webhooks judge. */}}
{{- define "attest.workloadRules" -}}
rules:
  - apiGroups: [""]
    apiVersions: [v1]
    operations: [CREATE, UPDATE]
    resources: [pods, pods/ephemeralcontainers, replicationcontrollers]
    scope: Namespaced
  - apiGroups: [apps]
    apiVersions: [v1]
    operations: [CREATE, UPDATE]
    resources: [deployments, replicasets, statefulsets, daemonsets]
    scope: Namespaced
  - apiGroups: [batch]
    apiVersions: [v1]
    operations: [CREATE, UPDATE]
    resources: [jobs, cronjobs]
    scope: Namespaced
{{- end -}}

{{- define "attest.resourceRules" -}}
rules:
  - apiGroups: [policy.attest.continuu.ms]
    apiVersions: [v1alpha1]
    operations: [CREATE, UPDATE]
    resources: [policyexceptions, policies, policyconfigs]
    scope: "*"
{{- end -}}

{{/* With gatekeeper.watch the validating resource webhook also judges ConstraintTemplates and constraints: a
template whose Rego or CEL does not compile, or a constraint its template refuses, is refused at kubectl apply. */}}
{{- define "attest.gatekeeperRules" -}}
- apiGroups: [templates.gatekeeper.sh]
  apiVersions: ["*"]
  operations: [CREATE, UPDATE]
  resources: [constrainttemplates]
  scope: Cluster
- apiGroups: [constraints.gatekeeper.sh]
  apiVersions: ["*"]
  operations: [CREATE, UPDATE]
  resources: ["*"]
  scope: Cluster
{{- end -}}

{{- define "attest.certManagerAnnotation" -}}
{{- if eq .Values.certificates.mode "cert-manager" }}
annotations:
  cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/{{ include "attest.name" . }}
{{- end }}
{{- end -}}

{{/* What every webhook of both configurations shares. */}}
{{- define "attest.webhookCommon" -}}
admissionReviewVersions: [v1]
sideEffects: None
failurePolicy: {{ .Values.webhook.failurePolicy }}
matchPolicy: Equivalent
timeoutSeconds: {{ .Values.webhook.timeoutSeconds }}
{{- end -}}
