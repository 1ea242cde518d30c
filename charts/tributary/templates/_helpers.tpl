{{/* Chart name, overridable. */}}
{{- define "tributary.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object-name prefix: <release>-tributary, or the release name if it already says tributary. */}}
{{- define "tributary.fullname" -}}
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

{{/* Name of the operator's objects. */}}
{{- define "tributary.operatorName" -}}
{{- printf "%s-operator" (include "tributary.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "tributary.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "tributary.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tributary
{{- end }}

{{/* Selector labels of the operator pods (never change across upgrades). */}}
{{- define "tributary.operatorSelectorLabels" -}}
app.kubernetes.io/name: {{ include "tributary.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Labels of operator objects. */}}
{{- define "tributary.operatorLabels" -}}
{{ include "tributary.labels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{/* The operator's ServiceAccount. */}}
{{- define "tributary.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tributary.operatorName" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Operator image reference. */}}
{{- define "tributary.operatorImage" -}}
{{- printf "%s:%s" .Values.operator.image.repository (default .Chart.AppVersion .Values.operator.image.tag) }}
{{- end }}

{{/* Broker image reference. */}}
{{- define "tributary.brokerImage" -}}
{{- printf "%s:%s" .Values.brokerImage.repository (default .Chart.AppVersion .Values.brokerImage.tag) }}
{{- end }}

{{/* Name of the chart's KafkaCluster. */}}
{{- define "tributary.clusterName" -}}
{{- default .Release.Name .Values.kafkaCluster.name }}
{{- end }}

{{/* Namespace the operator watches, or "" for all. */}}
{{- define "tributary.watchNamespace" -}}
{{- .Values.operator.watchNamespace }}
{{- end }}

{{/*
Rules the operator needs inside every namespace it watches. Creating the brokers' Role needs
every right that Role grants (Kubernetes forbids escalation), hence create on kafkatopics.
*/}}
{{- define "tributary.namespacedRules" -}}
- apiGroups: ["tributary.dev"]
  resources: ["kafkaclusters"]
  verbs: ["get", "list", "watch"]
# delete on kafkatopics only so the operator may grant it to the brokers (the Kafka admin
# API's DeleteTopics); Kubernetes refuses a Role granting more than its creator holds.
- apiGroups: ["tributary.dev"]
  resources: ["kafkatopics"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
# One KafkaPartition per partition: the topic reconciler creates them and replaces their
# replicas; the controller role writes leadership and ISR into their status.
- apiGroups: ["tributary.dev"]
  resources: ["kafkapartitions"]
  verbs: ["get", "list", "watch", "create", "update", "patch"]
# KafkaUsers: the operator adds and removes its finalizer and writes their status; it creates
# (server-side apply) and deletes the schema registry's own KafkaUser.
- apiGroups: ["tributary.dev"]
  resources: ["kafkausers"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
# KafkaSchemas: the operator adds and removes its finalizer (soft-deleting the subject with
# deletionPolicy Delete) and writes their status; it reads the ConfigMaps schemas come from.
- apiGroups: ["tributary.dev"]
  resources: ["kafkaschemas"]
  verbs: ["get", "list", "watch", "update", "patch"]
- apiGroups: ["tributary.dev"]
  resources: ["kafkaclusters/status", "kafkatopics/status", "kafkapartitions/status", "kafkausers/status", "kafkaschemas/status"]
  verbs: ["get", "update", "patch"]
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch"]
# The schema registry of a KafkaCluster's spec.schemaRegistry; deleted when the field goes.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# update on configmaps only so the operator may grant the brokers update on the producer-id
# and ACL ConfigMaps (the operator itself only creates those).
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create", "update", "patch"]
# The SCRAM credential Secret: created once by the operator, read, watched and updated by the
# brokers (the operator may grant only what it holds); the operator also updates it, and the
# ACL ConfigMap, for KafkaUsers. A KafkaUser's own Secret is created, replaced, and deleted
# when the user no longer has credentials.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "update", "delete"]
# delete: the schema registry's ServiceAccount (and its Role and RoleBinding) go when
# spec.schemaRegistry does.
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# delete: the per-broker Services of external listeners go when their broker or listener does.
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# delete: rolling updates (the broker StatefulSet is OnDelete; the operator restarts one
# broker at a time once it is safe).
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "create", "patch", "delete"]
# The NetworkPolicies of each KafkaCluster (brokers, schema registry); the registry's is
# deleted when spec.schemaRegistry goes.
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "list", "watch", "create", "update", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
# PodMonitor and PrometheusRule of a KafkaCluster's spec.monitoring (prometheus-operator).
- apiGroups: ["monitoring.coreos.com"]
  resources: ["podmonitors", "prometheusrules"]
  verbs: ["get", "create", "patch", "delete"]
{{- end }}
