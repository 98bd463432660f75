{{/* Chart name, overridable. */}}
{{- define "wasmkube.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Full name of the release's objects. A release already named after the chart (the usual
`helm install wasmkube ...`) is not repeated: "wasmkube", not "wasmkube-wasmkube".
*/}}
{{- define "wasmkube.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "wasmkube.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Selector labels: only the stable name and instance, because a Deployment's selector cannot change
after creation (version or chart labels here would break every upgrade).
*/}}
{{- define "wasmkube.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wasmkube.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
Standard labels for an object of the given component:
  include "wasmkube.labels" (dict "context" $ "component" "operator")
*/}}
{{- define "wasmkube.labels" -}}
{{- $ctx := .context -}}
{{ include "wasmkube.selectorLabels" $ctx }}
app.kubernetes.io/version: {{ $ctx.Chart.AppVersion | quote }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: wasmkube
app.kubernetes.io/managed-by: {{ $ctx.Release.Service }}
helm.sh/chart: {{ include "wasmkube.chart" $ctx }}
{{- end -}}

{{- define "wasmkube.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "wasmkube.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
"true" when this render must leave the WasmRuntimes out: the release installs the CRDs and the
cluster does not serve the WasmRuntime API yet (see wasmruntimes.yaml).
*/}}
{{- define "wasmkube.runtimesDeferred" -}}
{{- and .Values.crds.install (not (.Capabilities.APIVersions.Has "wasmkube.dev/v1alpha1/WasmRuntime")) -}}
{{- end -}}

{{- define "wasmkube.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* Ports the operator listens on; the probe, the Service and the arguments all use these. */}}
{{- define "wasmkube.livenessPort" -}}8080{{- end -}}
{{- define "wasmkube.metricsPort" -}}9090{{- end -}}
{{- define "wasmkube.activatorPort" -}}8012{{- end -}}
{{- define "wasmkube.activatorMetricsPort" -}}9090{{- end -}}
{{- define "wasmkube.activatorHealthPort" -}}8081{{- end -}}
{{- define "wasmkube.activatorName" -}}{{ include "wasmkube.fullname" . | trunc 53 | trimSuffix "-" }}-activator{{- end -}}

{{/*
The activator's selector labels: its own name, so neither the operator's Deployment nor its
metrics Service (which select by the chart's name and instance) ever match activator pods.
*/}}
{{- define "wasmkube.activatorSelectorLabels" -}}
app.kubernetes.io/name: {{ include "wasmkube.name" . }}-activator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "wasmkube.activatorServiceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- include "wasmkube.activatorName" . -}}
{{- else -}}
{{- required "activator.serviceAccountName is required when serviceAccount.create is false" .Values.activator.serviceAccountName -}}
{{- end -}}
{{- end -}}

{{- define "wasmkube.activatorLabels" -}}
{{ include "wasmkube.activatorSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: activator
app.kubernetes.io/part-of: wasmkube
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ include "wasmkube.chart" . }}
{{- end -}}

{{/*
RBAC rules for the namespaced kinds: what the operator reads and the children it owns, in every
namespace it watches. Secrets are only read by name (pull secrets a WasmApp names), never listed.
Every write is a PATCH (server-side apply, which needs `create` for a new object; status is a merge
patch), so no `update`. Deployments are never deleted by the operator: the garbage collector removes
them with their WasmApp through the ownerReference; Services and HPAs are deleted when a spec drops them.
*/}}
{{- define "wasmkube.rbac.namespacedRules" -}}
- apiGroups: [wasmkube.dev]
  resources: [wasmapps]
  verbs: [get, list, watch]
- apiGroups: [wasmkube.dev]
  resources: [wasmapps/status]
  verbs: [patch]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch]
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, delete]
# Scale to zero: the EndpointSlice of each such app's Service is the operator's (it lists the pods
# or the activator), the slices of `<app>-pods` are read; while awake, spec.replicas is followed
# through the Deployment's /scale (a precondition-guarded PATCH: the activator owns 0 <-> 1).
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [apps]
  resources: [deployments/scale]
  verbs: [patch]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
{{- /* Read only, and only listed by an app's selector while its rollout is stuck: why pods fail
(waiting reasons, termination messages) and their probe Events. Nothing watches them. */}}
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
- apiGroups: [""]
  resources: [events]
  verbs: [list]
{{ include "wasmkube.rbac.eventRules" . }}
{{- end -}}

{{/*
Events: the operator and Kopf only ever create core/v1 Events (a new Event per transition, never
a patched count).
*/}}
{{- define "wasmkube.rbac.eventRules" -}}
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end -}}

{{/* The activator's rules, in every namespace it serves (see activator-rbac.yaml). */}}
{{- define "wasmkube.activator.rbacRules" -}}
- apiGroups: [wasmkube.dev]
  resources: [wasmapps]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
- apiGroups: [apps]
  resources: [deployments/scale]
  verbs: [get, patch]
{{- end -}}

{{/* RBAC rules for the cluster-scoped kinds, needed in both watch modes. */}}
{{- define "wasmkube.rbac.clusterRules" -}}
- apiGroups: [wasmkube.dev]
  resources: [wasmruntimes]
  verbs: [get, list, watch]
- apiGroups: [wasmkube.dev]
  resources: [wasmruntimes/status]
  verbs: [patch]
- apiGroups: [node.k8s.io]
  resources: [runtimeclasses]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [nodes]
  verbs: [get, list, watch]
{{- end -}}
