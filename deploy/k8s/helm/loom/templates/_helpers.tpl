{{/* Names */}}
{{- define "loom.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "loom.fullname" -}}
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

{{- define "loom.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "loom.labels" -}}
helm.sh/chart: {{ include "loom.chart" . }}
{{ include "loom.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: loom
{{- end -}}

{{/* Labels that select the release's pods (every component). */}}
{{- define "loom.selectorLabels" -}}
app.kubernetes.io/name: {{ include "loom.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "loom.componentSelectorLabels" -}}
{{ include "loom.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Orleans Kubernetes hosting labels: only silo pods carry them (the cluster
     agent treats every pod it selects by these labels as a silo). */}}
{{- define "loom.orleansLabels" -}}
orleans/serviceId: {{ .Values.config.cluster.service_id | quote }}
orleans/clusterId: {{ .Values.config.cluster.cluster_id | quote }}
{{- end -}}

{{- define "loom.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "loom.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "loom.gatewayImage" -}}
{{- printf "%s:%s" .Values.image.gateway.repository (default .Chart.AppVersion .Values.image.gateway.tag) -}}
{{- end -}}

{{- define "loom.siloImage" -}}
{{- printf "%s:%s" .Values.image.silo.repository (default .Chart.AppVersion .Values.image.silo.tag) -}}
{{- end -}}

{{- define "loom.redisName" -}}
{{- printf "%s-redis" (include "loom.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "loom.siloHeadlessName" -}}
{{- printf "%s-silo-headless" (include "loom.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The Redis connection string that goes into loom.yaml (empty when it comes
     from an existing Secret as LOOM_CLUSTER__REDIS). */}}
{{- define "loom.redisConnectionString" -}}
{{- if .Values.redis.enabled -}}
{{- printf "%s:6379" (include "loom.redisName" .) -}}
{{- else if .Values.redis.external.existingSecret -}}
{{- "" -}}
{{- else if .Values.redis.external.connectionString -}}
{{- .Values.redis.external.connectionString -}}
{{- else -}}
{{- fail "redis.enabled is false: set redis.external.connectionString or redis.external.existingSecret" -}}
{{- end -}}
{{- end -}}

{{- define "loom.modelPath" -}}
{{- if .Values.config.model.path -}}
{{- .Values.config.model.path -}}
{{- else if eq .Values.model.source "none" -}}
{{- "" -}}
{{- else -}}
{{- printf "%s/%s" (trimSuffix "/" .Values.model.mountPath) .Values.model.subPath -}}
{{- end -}}
{{- end -}}

{{/* loom.yaml: the values' `config` with what the chart computes merged in. */}}
{{- define "loom.configYaml" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $_ := set $cfg.cluster "redis" (include "loom.redisConnectionString" .) -}}
{{- $_ := set $cfg.model "path" (include "loom.modelPath" .) -}}
{{- $_ := set $cfg.gateway "api_keys" (list) -}}
{{- toYaml $cfg -}}
{{- end -}}

{{- define "loom.configPath" -}}/etc/loom/loom.yaml{{- end -}}

{{/* Env shared by gateway and silo: pod identity (Orleans Kubernetes hosting),
     the config file, the host's shutdown timeout, Redis from a Secret. */}}
{{- define "loom.commonEnv" -}}
- name: LOOM_CONFIG
  value: {{ include "loom.configPath" . | quote }}
- name: POD_NAME
  valueFrom: { fieldRef: { fieldPath: metadata.name } }
- name: POD_NAMESPACE
  valueFrom: { fieldRef: { fieldPath: metadata.namespace } }
- name: POD_IP
  valueFrom: { fieldRef: { fieldPath: status.podIP } }
{{- if and (not .Values.redis.enabled) .Values.redis.external.existingSecret }}
- name: LOOM_CLUSTER__REDIS
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.external.existingSecret | quote }}
      key: {{ .Values.redis.external.existingSecretKey | quote }}
{{- end }}
{{- end -}}

{{- define "loom.apiKeySecretName" -}}
{{- if .Values.apiKeys.existingSecret -}}
{{- .Values.apiKeys.existingSecret -}}
{{- else -}}
{{- printf "%s-api-keys" (include "loom.fullname" .) -}}
{{- end -}}
{{- end -}}
