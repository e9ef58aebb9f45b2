{{/* Names ------------------------------------------------------------------------------- */}}
{{- define "portcullis.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "portcullis.fullname" -}}
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

{{/* Component names are "<fullname>-<component>", kept under 63 characters. */}}
{{- define "portcullis.extauthz.fullname" -}}
{{- printf "%s-extauthz" (include "portcullis.fullname" . | trunc 54 | trimSuffix "-") -}}
{{- end -}}

{{- define "portcullis.operator.fullname" -}}
{{- printf "%s-operator" (include "portcullis.fullname" . | trunc 54 | trimSuffix "-") -}}
{{- end -}}

{{- define "portcullis.extauthz.serviceAccountName" -}}
{{- if .Values.extauthz.serviceAccount.create -}}
{{- default (include "portcullis.extauthz.fullname" .) .Values.extauthz.serviceAccount.name -}}
{{- else -}}
{{- required "extauthz.serviceAccount.name is required when extauthz.serviceAccount.create=false" .Values.extauthz.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "portcullis.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create -}}
{{- default (include "portcullis.operator.fullname" .) .Values.operator.serviceAccount.name -}}
{{- else -}}
{{- required "operator.serviceAccount.name is required when operator.serviceAccount.create=false" .Values.operator.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Labels ------------------------------------------------------------------------------ */}}
{{- define "portcullis.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "portcullis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: portcullis
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: call with (dict "ctx" $ "component" "extauthz"). */}}
{{- define "portcullis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "portcullis.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "portcullis.componentLabels" -}}
{{ include "portcullis.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Images: digest wins over tag; the tag defaults to appVersion. Call with (dict "ctx" $ "image" .Values.x.image). */}}
{{- define "portcullis.image" -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (default .ctx.Chart.AppVersion .image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Security ---------------------------------------------------------------------------- */}}
{{/* Pod-level context; the fixed parts are not configurable on purpose (restricted Pod Security Standard). */}}
{{- define "portcullis.podSecurityContext" -}}
runAsNonRoot: true
{{- with .Values.securityContext.runAsUser }}
runAsUser: {{ . }}
{{- end }}
{{- with .Values.securityContext.runAsGroup }}
runAsGroup: {{ . }}
{{- end }}
{{- with .Values.securityContext.fsGroup }}
fsGroup: {{ . }}
{{- end }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "portcullis.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* One topologySpreadConstraint per key. Call with (dict "spread" .Values.x.topologySpread "selector" <labels yaml>). */}}
{{- define "portcullis.topologySpread" -}}
{{- $spread := .spread -}}
{{- $selector := .selector -}}
{{- range $spread.topologyKeys }}
- maxSkew: {{ $spread.maxSkew }}
  topologyKey: {{ . }}
  whenUnsatisfiable: {{ $spread.whenUnsatisfiable }}
  labelSelector:
    matchLabels:
      {{- $selector | nindent 6 }}
{{- end }}
{{- end -}}

{{/* Secrets ----------------------------------------------------------------------------- */}}
{{- define "portcullis.auditSecretName" -}}
{{- default (printf "%s-audit-signing-key" (include "portcullis.fullname" .)) .Values.audit.signingKey.existingSecret -}}
{{- end -}}

{{- define "portcullis.redisSecretName" -}}
{{- default (printf "%s-redis" (include "portcullis.fullname" .)) .Values.quotas.redis.existingSecret -}}
{{- end -}}

{{- define "portcullis.extauthz.serviceHost" -}}
{{- printf "%s.%s.svc.cluster.local" (include "portcullis.extauthz.fullname" .) .Release.Namespace -}}
{{- end -}}

{{- define "portcullis.sharedKeysSecretName" -}}
{{- default (printf "%s-shared-keys" (include "portcullis.fullname" .)) .Values.sharedKeys.existingSecret -}}
{{- end -}}
