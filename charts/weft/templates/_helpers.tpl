{{/*
Names. Cluster-scoped objects (ClusterRoles, bindings, the admission policy) carry the full
name, so that two releases never share one; it is "weft" for a release named weft.
*/}}
{{- define "weft.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "weft.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "weft.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "weft.controller.name" -}}{{ include "weft.fullname" . }}-controller{{- end -}}
{{- define "weft.agent.name" -}}{{ include "weft.fullname" . }}-agent{{- end -}}

{{/* The agent's identity as the apiserver sees it (the admission policy matches on it). */}}
{{- define "weft.agent.username" -}}
system:serviceaccount:{{ .Release.Namespace }}:{{ include "weft.agent.name" . }}
{{- end -}}

{{/* No release-changing values here (no chart version, no dates): applying twice changes nothing. */}}
{{- define "weft.labels" -}}
app.kubernetes.io/name: {{ include "weft.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: weft
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "weft.selectorLabels" -}}
app.kubernetes.io/name: {{ include "weft.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "weft.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{- define "weft.encapsulation" -}}
{{- get (dict "vxlan" "VXLAN" "host-gw" "HostGW" "bgp" "BGP") .Values.mode -}}
{{- end -}}

{{/* The conflist the installer writes into cni.confDir; toJson sorts keys, so it is stable. */}}
{{- define "weft.conflist" -}}
{{- $weft := dict "type" "weft" "agentSocket" (printf "%s/agent.sock" .Values.cni.socketDir) -}}
{{- if .Values.cni.mtu -}}{{- $_ := set $weft "mtu" (int .Values.cni.mtu) -}}{{- end -}}
{{- $families := .Values.cni.families -}}
{{- if not $families -}}{{- $families = list (ternary "ipv6" "ipv4" (contains ":" .Values.defaultPool.cidr)) -}}{{- end -}}
{{- $_ := set $weft "families" $families -}}
{{- $plugins := list $weft -}}
{{- if .Values.cni.portmap -}}
{{- $plugins = append $plugins (dict "type" "portmap" "snat" true "capabilities" (dict "portMappings" true)) -}}
{{- end -}}
{{- toPrettyJson (dict "cniVersion" "1.0.0" "name" "weft" "plugins" $plugins) -}}
{{- end -}}

{{/* A label selector for kubectl -l: matchLabels as k=v, matchExpressions In/NotIn/Exists. */}}
{{- define "weft.selectorString" -}}
{{- $parts := list -}}
{{- range $k, $v := .matchLabels -}}{{- $parts = append $parts (printf "%s=%s" $k $v) -}}{{- end -}}
{{- range .matchExpressions -}}
{{- if eq .operator "In" -}}{{- $parts = append $parts (printf "%s in (%s)" .key (join "," .values)) -}}
{{- else if eq .operator "NotIn" -}}{{- $parts = append $parts (printf "%s notin (%s)" .key (join "," .values)) -}}
{{- else if eq .operator "Exists" -}}{{- $parts = append $parts .key -}}
{{- else -}}{{- $parts = append $parts (printf "!%s" .key) -}}
{{- end -}}
{{- end -}}
{{- join "," $parts | squote -}}
{{- end -}}

{{/* Where the plugin's shebang points on the host. */}}
{{- define "weft.hostNode" -}}
{{- .Values.cni.hostNode | default (printf "%s/weft-node" .Values.cni.binDir) -}}
{{- end -}}
