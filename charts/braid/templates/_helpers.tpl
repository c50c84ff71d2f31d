{{/*
braid.name: the chart name, or .Values.nameOverride.
*/}}
{{- define "braid.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
braid.fullname: the name of every object of the release. The release name
when it already contains the chart name (release "braid" -> "braid"),
otherwise "<release>-<chart>"; .Values.fullnameOverride wins. At most 63
characters (a DNS label), since Services and Leases take it as their name.
*/}}
{{- define "braid.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
braid.chart: chart name and version, for the helm.sh/chart label.
*/}}
{{- define "braid.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
braid.selectorLabels: the labels that select the operator's pods. They never
change between releases (a Deployment's selector is immutable).
*/}}
{{- define "braid.selectorLabels" -}}
app.kubernetes.io/name: {{ include "braid.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/*
braid.labels: the recommended app.kubernetes.io labels, on every object.
*/}}
{{- define "braid.labels" -}}
helm.sh/chart: {{ include "braid.chart" . }}
{{ include "braid.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: braid
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
braid.serviceAccountName: the ServiceAccount the operator runs as.
*/}}
{{- define "braid.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "braid.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
braid.image: "<repository>:<tag>" of one entry of .Values.image, the tag
defaulting to the chart's appVersion. Call with (dict "image" X "root" $).
*/}}
{{- define "braid.image" -}}
{{- $tag := .image.tag | default .root.Chart.AppVersion | toString }}
{{- printf "%s:%s" (required "image.*.repository must be set" .image.repository) $tag }}
{{- end }}

{{/*
braid.federationPort: the container port of the coordinator's federation
endpoint (--federation-listen); the federation Service targets it by name.
*/}}
{{- define "braid.federationPort" -}}
9443
{{- end }}
