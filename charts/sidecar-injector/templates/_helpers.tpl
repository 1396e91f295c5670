{{/*
Chart name, cut to 63 characters (the limit of a label value and a DNS label).
*/}}
{{- define "sidecar-injector.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's resources: "<release>-<chart>", or "<release>" when the release
name already contains the chart name; cut to 63 characters.
*/}}
{{- define "sidecar-injector.fullname" -}}
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
"<chart>-<version>" for the helm.sh/chart label.
*/}}
{{- define "sidecar-injector.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels that select the injector's Pods. Never change these in an upgrade: a Deployment's
selector is immutable.
*/}}
{{- define "sidecar-injector.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sidecar-injector.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Standard labels of every resource.
*/}}
{{- define "sidecar-injector.labels" -}}
helm.sh/chart: {{ include "sidecar-injector.chart" . }}
{{ include "sidecar-injector.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: webhook
app.kubernetes.io/part-of: sidecar-injector
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Name of the ServiceAccount.
*/}}
{{- define "sidecar-injector.serviceAccountName" -}}
{{- include "sidecar-injector.fullname" . }}
{{- end }}

{{/*
Name of the Secret holding the serving certificate (tls.crt, tls.key).
*/}}
{{- define "sidecar-injector.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "sidecar-injector.fullname" .)) .Values.tls.secretName }}
{{- end }}

{{/*
Name of the Secret holding the injector's CA.
*/}}
{{- define "sidecar-injector.caSecretName" -}}
{{- default (printf "%s-ca" (include "sidecar-injector.fullname" .)) .Values.tls.caSecretName }}
{{- end }}

{{/*
Name of the cert-manager Certificate that issues the serving certificate. Not cut to 63
characters: a Certificate's name is a DNS subdomain (253), and cutting "<fullname>-serving"
gave back the fullname itself for a fullname of 55 characters or more.
*/}}
{{- define "sidecar-injector.certificateName" -}}
{{- printf "%s-serving" (include "sidecar-injector.fullname" .) }}
{{- end }}

{{/*
Name of the Grafana dashboard's ConfigMap. Not cut to 63 characters: a ConfigMap's name is a
DNS subdomain (253), and cutting "<fullname>-dashboard" gave back the fullname itself, the
config ConfigMap's name, for a fullname of 62 or 63 characters.
*/}}
{{- define "sidecar-injector.dashboardName" -}}
{{- printf "%s-dashboard" (include "sidecar-injector.fullname" .) }}
{{- end }}

{{/*
The container image: repository@digest when a digest is given, else repository:tag (the
tag defaults to the chart's appVersion).
*/}}
{{- define "sidecar-injector.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The injector config file (config.yaml): `.Values.config` with the chart's `revision`, so
that the revision written into Pods is the one the webhook selectors match, and its
`revisionTags` (when there are any) and `webhook.enableNamespacesByDefault` (when true), so
that explanations know every selector that calls it.
*/}}
{{- define "sidecar-injector.config" -}}
{{- $config := deepCopy (.Values.config | default dict) }}
{{- if and (hasKey $config "revision") (ne (toString (get $config "revision")) .Values.revision) }}
{{- fail (printf "config.revision (%v) differs from revision (%s): set only the top-level value revision, the chart copies it into the config" (get $config "revision") .Values.revision) }}
{{- end }}
{{- $_ := set $config "revision" .Values.revision }}
{{- if and (hasKey $config "revisionTags") (ne (toJson (get $config "revisionTags")) (toJson .Values.revisionTags)) }}
{{- fail "config.revisionTags differs from revisionTags: set only the top-level value revisionTags, the chart copies it into the config" }}
{{- end }}
{{- if .Values.revisionTags }}
{{- $_ := set $config "revisionTags" .Values.revisionTags }}
{{- end }}
{{- if and (hasKey $config "enableNamespacesByDefault") (ne (toString (get $config "enableNamespacesByDefault")) (toString .Values.webhook.enableNamespacesByDefault)) }}
{{- fail "config.enableNamespacesByDefault differs from webhook.enableNamespacesByDefault: set only webhook.enableNamespacesByDefault, the chart copies it into the config" }}
{{- end }}
{{- if .Values.webhook.enableNamespacesByDefault }}
{{- $_ := set $config "enableNamespacesByDefault" true }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/*
Labels that pick this release's MutatingWebhookConfigurations (its own and its revision tags'),
for `serve --webhook-config-selector`, which keeps the caBundle of each.
*/}}
{{- define "sidecar-injector.webhookConfigSelector" -}}
{{- printf "app.kubernetes.io/part-of=sidecar-injector,app.kubernetes.io/name=%s,app.kubernetes.io/instance=%s" (include "sidecar-injector.name" .) .Release.Name }}
{{- end }}

{{/*
Name of the MutatingWebhookConfiguration of a revision tag: (dict "root" $ "tag" "<tag>").
*/}}
{{- define "sidecar-injector.tagWebhookConfigName" -}}
{{- printf "%s-tag-%s" (include "sidecar-injector.fullname" .root) .tag }}
{{- end }}

{{/*
The Istio revision whose ConfigMaps istioConfig names: REV of NAMESPACE/REV, "default" for
NAMESPACE alone (istio-sidecar-injector and istio, the default revision's).
*/}}
{{- define "sidecar-injector.istioConfigRevision" -}}
{{- $parts := splitList "/" .Values.istioConfig }}
{{- if gt (len $parts) 1 }}{{ last $parts | default "default" }}{{ else }}default{{ end }}
{{- end }}

{{/*
caBundle for the webhook clientConfig: PEM is base64-encoded, base64 is taken as it is.
*/}}
{{- define "sidecar-injector.caBundle" -}}
{{- $bundle := trim .Values.webhook.caBundle }}
{{- if hasPrefix "-----BEGIN" $bundle }}
{{- $bundle | b64enc }}
{{- else }}
{{- $bundle }}
{{- end }}
{{- end }}

{{/*
Expression added to every namespaceSelector: the injector's own namespace and kube-system
are never sent to the webhook, so the injector can always be (re)started, even when its
webhook is failing closed.
*/}}
{{- define "sidecar-injector.excludeOwnNamespaces" -}}
- key: kubernetes.io/metadata.name
  operator: NotIn
  values:
    {{- range (list .Release.Namespace "kube-system" | uniq) }}
    - {{ . | quote }}
    {{- end }}
{{- end }}

{{/*
Processes that serve (`serve --workers`): `workers` when set, else the CPU limit rounded down
("2" and "2500m" give 2, "500m" gives 1), at least 1; 1 without a CPU limit.
*/}}
{{- define "sidecar-injector.workers" -}}
{{- if .Values.workers }}
{{- .Values.workers | int }}
{{- else }}
{{- $cpu := toString (dig "limits" "cpu" "" (.Values.resources | default dict)) }}
{{- $n := 1 }}
{{- if hasSuffix "m" $cpu }}
{{- $n = div (trimSuffix "m" $cpu | atoi) 1000 }}
{{- else if $cpu }}
{{- $n = $cpu | float64 | floor | int }}
{{- end }}
{{- max 1 $n }}
{{- end }}
{{- end }}

{{/*
Seconds the injector may take to drain after SIGTERM (README "Rollouts"): at most 15, and with
more than one worker 5 more, after which a worker still draining is killed.
*/}}
{{- define "sidecar-injector.drainSeconds" -}}
{{- ternary 20 15 (gt (include "sidecar-injector.workers" . | int) 1) }}
{{- end }}

{{/*
resources.limits.memory in MiB (rounded down), or -1 when there is none or it is in a form
not read here. Limits in Ki/Mi/Gi/M/G or bytes are read; other forms are left alone.
*/}}
{{- define "sidecar-injector.memoryLimitMiB" -}}
{{- $mem := toString (dig "limits" "memory" "" (.Values.resources | default dict)) }}
{{- $mib := -1 }}
{{- /* mulf and divf: mul and div take integers, and would read 0.5Gi as 0. */}}
{{- if hasSuffix "Gi" $mem }}{{ $mib = mulf (trimSuffix "Gi" $mem | float64) 1024 | floor | int }}
{{- else if hasSuffix "Mi" $mem }}{{ $mib = trimSuffix "Mi" $mem | float64 | floor | int }}
{{- else if hasSuffix "Ki" $mem }}{{ $mib = divf (trimSuffix "Ki" $mem | float64) 1024 | floor | int }}
{{- else if hasSuffix "G" $mem }}{{ $mib = divf (mulf (trimSuffix "G" $mem | float64) 1000000000) 1048576 | floor | int }}
{{- else if hasSuffix "M" $mem }}{{ $mib = divf (mulf (trimSuffix "M" $mem | float64) 1000000) 1048576 | floor | int }}
{{- else if regexMatch "^[0-9]+$" $mem }}{{ $mib = div ($mem | int64) 1048576 }}
{{- end }}
{{- $mib }}
{{- end }}

{{/*
Fails when the memory limit cannot hold what the processes may use.
- The workers: each process (the primary and every worker) holds its own code and heap.
  Measured (README "Workers"): the primary, which alone loads the Kubernetes client, about 120
  MiB idle; a worker about 65 MiB idle, growing by up to about 150 MiB under overload; so 160Mi
  + 224Mi per worker, the 1-worker figure being the chart's default of 384Mi (one process, no
  primary).
- V8's heap limits (maxHeapMiB and the young generation, 3 x maxSemiSpaceMiB, in every serving
  process): they must leave 160 MiB of the limit for what lives outside V8's heap, so that
  memory pressure makes the garbage collector work harder rather than the kernel kill the Pod:
  the code and runtime (about 45 MiB idle, 80 with the Kubernetes client), TLS buffers of up to
  256 connections, and up to 64 MiB of request bodies (Buffers, outside the heap).
Limits in a form sidecar-injector.memoryLimitMiB does not read are left alone.
*/}}
{{- define "sidecar-injector.checkMemory" -}}
{{- $workers := include "sidecar-injector.workers" . | int }}
{{- $mem := toString (dig "limits" "memory" "" (.Values.resources | default dict)) }}
{{- $mib := include "sidecar-injector.memoryLimitMiB" . | int }}
{{- if ge $mib 0 }}
{{- $need := add 160 (mul 224 $workers) }}
{{- if and (gt $workers 1) (lt $mib $need) }}
{{- fail (printf "resources.limits.memory (%s) is too small for %d workers: each worker process needs about 224Mi and the primary 160Mi, %dMi in all; raise the limit, or set workers to fewer" $mem $workers $need) }}
{{- end }}
{{- $young := mul 3 (int .Values.maxSemiSpaceMiB) }}
{{- $heaps := mul $workers (add (int .Values.maxHeapMiB) $young) }}
{{- if lt $mib (add $heaps 160) }}
{{- $each := ternary "" (printf " in each of the %d workers" $workers) (eq $workers 1) }}
{{- $room := sub (div (sub $mib 160) $workers) $young }}
{{- fail (printf "maxHeapMiB (%d) and the young generation (3 x maxSemiSpaceMiB = %d)%s leave less than 160Mi of resources.limits.memory (%s) for the code, TLS buffers and request bodies outside V8's heap, so the kernel would kill the Pod before the garbage collector works harder; raise resources.limits.memory to %dMi or more, or lower maxHeapMiB%s" (int .Values.maxHeapMiB) $young $each $mem (add $heaps 160) (ternary (printf " to %d or less" $room) "" (ge $room 64))) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
PromQL label matchers (no braces) that pick the injector's series: monitoring.prometheusRule.selector,
else the job and namespace labels the chart's ServiceMonitor gives them (job: the Service name).
*/}}
{{- define "sidecar-injector.metricsSelector" -}}
{{- default (printf "job=%q,namespace=%q" (include "sidecar-injector.fullname" .) .Release.Namespace) .Values.monitoring.prometheusRule.selector }}
{{- end }}

{{/*
policy.manifest, checked: the List `sidecar-injector policy render` prints, a
MutatingAdmissionPolicy first (annotated with the webhooks' matchCondition), then its bindings,
at the apiVersion sidecar-injector.policyApiVersion says.
*/}}
{{- define "sidecar-injector.policyList" -}}
{{- if not .Values.policy.manifest }}
{{- fail "policy.enabled needs policy.manifest: run `sidecar-injector policy render` with this release's config and pass it with --set-file policy.manifest=FILE" }}
{{- end }}
{{- $list := fromYaml .Values.policy.manifest }}
{{- if or (hasKey $list "Error") (ne (get $list "kind") "List") }}
{{- fail "policy.manifest is not the List `sidecar-injector policy render` prints" }}
{{- end }}
{{- $first := first $list.items | default dict }}
{{- if ne (get $first "kind") "MutatingAdmissionPolicy" }}
{{- fail "policy.manifest does not start with a MutatingAdmissionPolicy: render it with `sidecar-injector policy render`" }}
{{- end }}
{{- /* Its bindings must select what this release's webhooks select (revision, tags, auto), or the
Pods the webhooks leave to the policy would reach neither. */}}
{{- $want := printf "revision=%s;revisionTags=%s;enableNamespacesByDefault=%t;namespace=%s" .Values.revision (join "," .Values.revisionTags) .Values.webhook.enableNamespacesByDefault .Release.Namespace }}
{{- $got := index ($first.metadata.annotations | default dict) "sidecar-injector.dev/selects" }}
{{- if ne $got $want }}
{{- fail (printf "policy.manifest's bindings select %s, this release's webhooks %s: render it again with `sidecar-injector policy render` and this release's config (the chart's config.yaml, which carries revision, revisionTags and enableNamespacesByDefault) and namespace (-n)" ($got | default "(not said)") $want) }}
{{- end }}
{{- $apiVersion := include "sidecar-injector.policyApiVersion" (dict "root" . "list" $list) }}
{{- range $list.items }}
{{- $_ := set . "apiVersion" $apiVersion }}
{{- end }}
{{- toYaml $list }}
{{- end }}

{{/*
The apiVersion the policy and its bindings are installed at. The objects are the same at
admissionregistration.k8s.io/v1 and v1beta1 (every field of both kinds), so the List may be
written at either:
- when Helm knows the cluster's kinds (helm install/upgrade, helm template --validate: the
  capabilities then list every served kind, v1/Pod among them; or --api-versions naming
  them): the version the cluster serves the policies at, v1 preferred (a release recorded at a
  beta version the cluster later stops serving could not be upgraded); none: fail, naming what
  the cluster serves of the group, rather than the API server's "no matches for kind";
- otherwise (helm template: only the built-in group versions, no kinds): as rendered.
Items at another apiVersion than these two are refused.
*/}}
{{- define "sidecar-injector.policyApiVersion" -}}
{{- $caps := .root.Capabilities.APIVersions }}
{{- $group := "admissionregistration.k8s.io" }}
{{- $rendered := (first .list.items).apiVersion | default "" }}
{{- range .list.items }}
{{- if not (has .apiVersion (list (printf "%s/v1" $group) (printf "%s/v1beta1" $group))) }}
{{- fail (printf "policy.manifest's %s %s is at apiVersion %s: render it with `sidecar-injector policy render --api-version v1|v1beta1|auto`" (.kind | default "item") (.metadata.name | default "") (.apiVersion | default "(none)" | quote)) }}
{{- end }}
{{- if ne .apiVersion $rendered }}
{{- fail (printf "policy.manifest mixes apiVersions (%s, %s): render it again with `sidecar-injector policy render`" $rendered .apiVersion) }}
{{- end }}
{{- end }}
{{- $served := list }}
{{- $said := list }}
{{- range $v := list "v1" "v1beta1" "v1alpha1" }}
{{- $with := and ($caps.Has (printf "%s/%s/MutatingAdmissionPolicy" $group $v)) ($caps.Has (printf "%s/%s/MutatingAdmissionPolicyBinding" $group $v)) }}
{{- if and $with (ne $v "v1alpha1") }}
{{- $served = append $served $v }}
{{- end }}
{{- if $caps.Has (printf "%s/%s" $group $v) }}
{{- $said = append $said (printf "%s (%s MutatingAdmissionPolicy)" $v (ternary "with" "without" $with)) }}
{{- end }}
{{- end }}
{{- if $served }}
{{- printf "%s/%s" $group (first $served) }}
{{- else if $caps.Has "v1/Pod" }}
{{- fail (printf "policy.enabled: the cluster serves no MutatingAdmissionPolicy at v1 or v1beta1: it serves %s. Kubernetes 1.36 and later serve v1; 1.34 and 1.35 serve v1beta1 only with the kube-apiserver flags --feature-gates=MutatingAdmissionPolicy=true and --runtime-config=%s/v1beta1=true" (ternary (printf "%s %s" $group (join ", " $said)) (printf "no version of %s" $group) (gt (len $said) 0)) $group) }}
{{- else }}
{{- $rendered }}
{{- end }}
{{- end }}

{{/*
The webhooks' matchCondition with policy.enabled: the Pods the policy leaves to the webhook.
*/}}
{{- define "sidecar-injector.policyWebhookCondition" -}}
{{- $list := include "sidecar-injector.policyList" . | fromYaml }}
{{- $first := first $list.items }}
{{- $expr := index ($first.metadata.annotations | default dict) "sidecar-injector.dev/webhook-match-condition" }}
{{- if not $expr }}
{{- fail "policy.manifest's MutatingAdmissionPolicy has no sidecar-injector.dev/webhook-match-condition annotation: render it with `sidecar-injector policy render`" }}
{{- end }}
{{- $expr }}
{{- end }}

{{/*
Istio's `auto` webhook (sidecarInjectorWebhook.enableNamespacesByDefault): every namespace
with neither istio-injection nor istio.io/rev but the system ones, for Pods with neither
label. Rendered by the default revision's configuration and by the revision tag default's,
as Istio's mutatingwebhook.yaml and revision-tags-mwc.yaml do.
*/}}
{{- define "sidecar-injector.autoWebhook" -}}
  {{- include "sidecar-injector.webhook" (dict "root" . "name" "auto") }}
    namespaceSelector:
      matchExpressions:
        - key: istio-injection
          operator: DoesNotExist
        - key: istio.io/rev
          operator: DoesNotExist
        - key: kubernetes.io/metadata.name
          operator: NotIn
          values:
            - kube-system
            - kube-public
            - kube-node-lease
            - local-path-storage
        {{- include "sidecar-injector.excludeOwnNamespaces" . | nindent 8 }}
    objectSelector:
      matchExpressions:
        - key: sidecar.istio.io/inject
          operator: DoesNotExist
        - key: istio.io/rev
          operator: DoesNotExist
{{- end }}
