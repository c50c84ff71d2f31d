#!/usr/bin/env bash
# Offline checks of the Helm chart charts/braid (no cluster needed).
#
# Usage: tests/helm/chart_test.sh
#
# Checks that
#   - `helm lint --strict` passes with no warnings, with default values and
#     with the ServiceMonitor on;
#   - charts/braid/crds/ holds byte-exact copies of the repository's crds/
#     (scripts/sync-chart-crds.sh copies them);
#   - `helm template` renders the operator's objects, and the ServiceMonitor
#     only when metrics.serviceMonitor.enabled;
#   - the Deployment passes the operator the flags it takes, probes
#     /healthz and /readyz, and runs non-root with a read-only root
#     filesystem, no privilege escalation, no capabilities, RuntimeDefault
#     seccomp;
#   - the ClusterRole and Role rules equal tests/helm/testdata/*-rules.yaml
#     (so any change of the operator's privileges is deliberate);
#   - charts/braid/dashboards/braid.json parses and uses only metrics some
#     component defines; its ConfigMap and the dashboard Service render only
#     when enabled;
#   - settings that cannot work are refused at render time;
#   - every value in values.yaml has a comment above it, and docs/operator.md
#     mentions it (or the object holding it).
# helm: $HELM if set, else the one scripts/k8s-tools.sh builds (its bindir);
# fails, saying how to get it, when there is none.
# Exits 0 when all hold, 1 naming each check that failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "${HERE}/../.." && pwd)
CHART="${REPO}/charts/braid"
DOCS="${REPO}/docs/operator.md"
TESTDATA="${HERE}/testdata"

if [[ -z "${HELM:-}" ]]; then
  HELM="$("${REPO}/scripts/k8s-tools.sh" bindir)/helm"
fi
if [[ ! -x "${HELM}" ]]; then
  echo "chart_test: FAIL: no helm at ${HELM}; build it with scripts/k8s-tools.sh (or set HELM=/path/to/helm)" >&2
  exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/braid-chart-test.XXXXXX")
trap 'rm -rf "${WORK}"' EXIT
# Keep helm's caches and config out of the user's home.
export HELM_CACHE_HOME="${WORK}/cache" HELM_CONFIG_HOME="${WORK}/config" HELM_DATA_HOME="${WORK}/data"

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
mark=0
begin() { mark=${failures}; }  # a group of checks starts
pass() {                       # the group passed, unless one of its checks failed
  ((failures == mark)) && echo "ok: $*" >&2
  mark=${failures}
}

render() {  # render OUT [helm template args...]
  local out=$1
  shift
  "${HELM}" template braid "${CHART}" --namespace braid-system "$@" >"${out}" 2>"${out}.err"
}

# doc KIND FILE: the rendered document of that kind (first one), or nothing.
doc() {
  awk -v kind="$1" '
    /^---/ { if (found) exit; buf = ""; next }
    { buf = buf $0 "\n" }
    $0 == "kind: " kind { found = 1 }
    END { if (found) printf "%s", buf }' "$2"
}

# block INDENT KEY TEXT: the lines nested under the first "<INDENT>KEY:" line.
block() {
  awk -v head="$1$2:" -v ind="${#1}" '
    in_block { match($0, /^ */); if (RLENGTH <= ind && $0 !~ /^ *$/) exit; print; next }
    $0 == head { in_block = 1 }' <<<"$3"
}

# rules TEXT: the rules: list of a rendered Role/ClusterRole, comments dropped.
rules() {
  awk '/^[[:space:]]*#/ { next } /^rules:/ { on = 1; next } on && /^[^ -]/ { on = 0 } on' <<<"$1"
}

# --- lint ---------------------------------------------------------------------
for extra in "" "--set metrics.serviceMonitor.enabled=true"; do
  begin
  # shellcheck disable=SC2086
  if out=$("${HELM}" lint --strict "${CHART}" ${extra} 2>&1) &&
    grep -q '1 chart(s) linted, 0 chart(s) failed' <<<"${out}" &&
    ! grep -qE '\[(WARNING|ERROR)\]' <<<"${out}"; then
    pass "helm lint --strict ${extra:-(defaults)}"
  else
    fail "helm lint --strict ${extra:-(defaults)}:"$'\n'"${out}"
  fi
done

# --- CRDs ---------------------------------------------------------------------
begin
for f in "${REPO}"/crds/*.yaml; do
  c="${CHART}/crds/$(basename "${f}")"
  if [[ ! -f "${c}" ]]; then
    fail "charts/braid/crds/$(basename "${f}") missing; run scripts/sync-chart-crds.sh"
  elif ! cmp -s "${f}" "${c}"; then
    fail "charts/braid/crds/$(basename "${f}") differs from crds/$(basename "${f}"); run scripts/sync-chart-crds.sh"
  fi
done
for c in "${CHART}"/crds/*; do
  [[ -f "${REPO}/crds/$(basename "${c}")" ]] || {
    fail "charts/braid/crds/$(basename "${c}") has no counterpart in crds/; run scripts/sync-chart-crds.sh"
  }
done
pass "chart CRDs equal crds/"

# --- rendering with defaults ---------------------------------------------------
begin
if ! render "${WORK}/default.yaml"; then
  fail "helm template (defaults): $(cat "${WORK}/default.yaml.err")"
else
  for kind in ServiceAccount ClusterRole ClusterRoleBinding Role RoleBinding Service Deployment; do
    [[ -n "$(doc "${kind}" "${WORK}/default.yaml")" ]] || fail "helm template (defaults) renders no ${kind}"
  done
  [[ -z "$(doc ServiceMonitor "${WORK}/default.yaml")" ]] ||
    fail "helm template (defaults) renders a ServiceMonitor, though metrics.serviceMonitor.enabled is false"
  render "${WORK}/crds.yaml" --include-crds || fail "helm template --include-crds: $(cat "${WORK}/crds.yaml.err")"
  for crd in federatedjobs.braid.dev tenants.braid.dev tenantapprovals.braid.dev; do
    grep -q "^  name: ${crd}$" "${WORK}/crds.yaml" || fail "helm template --include-crds has no CRD ${crd}"
  done
  pass "helm template (defaults) renders the operator's objects, no ServiceMonitor"

  # The Deployment: flags, probes, security.
  begin
  dep=$(doc Deployment "${WORK}/default.yaml")
  # shellcheck disable=SC2016  # $(POD_NAMESPACE) is for Kubernetes to expand
  for arg in '--namespace=$(POD_NAMESPACE)' --leader-elect=true --lease-name=braid \
    --metrics-listen=0.0.0.0:9090 --aggregator-image=braid-aggregator:0.1.0 \
    --worker-image=braid-worker:0.1.0 --image-pull-policy=IfNotPresent \
    --status-interval=2s --workers=2; do
    grep -qxF -- "        - ${arg}" <<<"${dep}" || fail "Deployment does not pass ${arg}"
  done
  grep -qxF '              fieldPath: metadata.namespace' <<<"${dep}" ||
    fail "Deployment does not set POD_NAMESPACE from the downward API"
  grep -qxF '        image: "braid-operator:0.1.0"' <<<"${dep}" ||
    fail "Deployment's image is not braid-operator:<appVersion>"
  for probe in livenessProbe:/healthz readinessProbe:/readyz; do
    b=$(block "        " "${probe%%:*}" "${dep}")
    { grep -qxF "            path: ${probe#*:}" <<<"${b}" && grep -qxF '            port: metrics' <<<"${b}"; } ||
      fail "Deployment's ${probe%%:*} is not GET ${probe#*:} on the metrics port"
  done
  grep -qxF '          containerPort: 9090' <<<"${dep}" || fail "Deployment does not expose port 9090"
  pod_sc=$(block "      " securityContext "${dep}")
  ctr_sc=$(block "        " securityContext "${dep}")
  for want in 'runAsNonRoot: true' 'runAsUser: 65532' 'seccompProfile:' 'type: RuntimeDefault'; do
    grep -qE "^ +${want}$" <<<"${pod_sc}" || fail "pod securityContext lacks ${want}"
  done
  for want in 'runAsNonRoot: true' 'runAsUser: 65532' 'readOnlyRootFilesystem: true' \
    'allowPrivilegeEscalation: false' '- ALL' 'type: RuntimeDefault'; do
    grep -qE "^ +${want}$" <<<"${ctr_sc}" || fail "container securityContext lacks ${want}"
  done
  grep -qE '^ +drop:$' <<<"${ctr_sc}" || fail "container securityContext drops no capabilities"
  pass "Deployment: flags, probes, non-root security context"

  # RBAC, compared with the golden rules.
  for pair in ClusterRole:clusterrole-rules.yaml Role:role-rules.yaml; do
    begin
    kind=${pair%%:*}
    if d=$(diff -u "${TESTDATA}/${pair#*:}" <(rules "$(doc "${kind}" "${WORK}/default.yaml")")); then
      pass "${kind} rules equal tests/helm/testdata/${pair#*:}"
    else
      fail "${kind} rules differ from tests/helm/testdata/${pair#*:} (change both, deliberately):"$'\n'"${d}"
    fi
  done
  begin
  crb=$(doc ClusterRoleBinding "${WORK}/default.yaml")
  { grep -qxF '  name: braid' <<<"$(block "" roleRef "${crb}")" &&
    grep -qxF '  namespace: braid-system' <<<"${crb}"; } ||
    fail "ClusterRoleBinding does not bind ClusterRole braid to ServiceAccount braid-system/braid"
  pass "ClusterRoleBinding binds ClusterRole braid to ServiceAccount braid-system/braid"
fi

# --- rendering with the ServiceMonitor -----------------------------------------
begin
if ! render "${WORK}/sm.yaml" --set metrics.serviceMonitor.enabled=true \
  --set metrics.serviceMonitor.labels.release=prometheus; then
  fail "helm template (serviceMonitor on): $(cat "${WORK}/sm.yaml.err")"
else
  sm=$(doc ServiceMonitor "${WORK}/sm.yaml")
  if [[ -z "${sm}" ]]; then
    fail "helm template renders no ServiceMonitor with metrics.serviceMonitor.enabled=true"
  else
    grep -qxF '    release: prometheus' <<<"${sm}" || fail "ServiceMonitor lacks metrics.serviceMonitor.labels"
    grep -qxF '  - port: metrics' <<<"${sm}" || fail "ServiceMonitor does not scrape the metrics port"
    pass "ServiceMonitor rendered when enabled, with its labels"
  fi
fi

# --- the Grafana dashboard ----------------------------------------------------------
# dashboards/braid.json must parse and use only metrics the code defines
# (histograms' _bucket/_sum/_count series are their family's).
begin
DASH="${CHART}/dashboards/braid.json"
if ! python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "${DASH}" 2>"${WORK}/dash.err"; then
  fail "charts/braid/dashboards/braid.json is not JSON: $(cat "${WORK}/dash.err")"
else
  defined=$(grep -rhoE '"braid_[a-z_]+"' "${REPO}/aggregator" "${REPO}/operator" "${REPO}/worker" \
              "${REPO}/core" --include='*.cc' | tr -d '"' | sort -u)
  used=$(grep -oE 'braid_[a-z_]+' "${DASH}" | sed -E 's/_(bucket|sum|count)$//' | sort -u)
  [[ -n "${used}" ]] || fail "the Grafana dashboard uses no braid_ metric"
  for m in ${used}; do
    grep -qxF "${m}" <<<"${defined}" || fail "the Grafana dashboard uses ${m}, which no component defines"
  done
  pass "Grafana dashboard parses and uses only defined metrics ($(wc -w <<<"${used}") of them)"
fi
begin
if ! render "${WORK}/grafana.yaml" --set metrics.grafanaDashboard.enabled=true; then
  fail "helm template (grafanaDashboard on): $(cat "${WORK}/grafana.yaml.err")"
else
  cm=$(doc ConfigMap "${WORK}/grafana.yaml")
  grep -qxF '    grafana_dashboard: "1"' <<<"${cm}" || fail "the dashboard ConfigMap lacks the sidecar label"
  grep -qF '"uid": "braid-overview"' <<<"${cm}" || fail "the dashboard ConfigMap does not hold dashboards/braid.json"
  [[ -z "$(doc ConfigMap "${WORK}/default.yaml")" ]] || fail "a dashboard ConfigMap renders by default"
  pass "Grafana dashboard ConfigMap rendered only when enabled, labelled for the sidecar"
fi

# --- the operator's dashboard Service ----------------------------------------------
begin
if ! render "${WORK}/dash.yaml" --set dashboard.enabled=true; then
  fail "helm template (dashboard on): $(cat "${WORK}/dash.yaml.err")"
else
  grep -qF -- '--dashboard-listen=0.0.0.0:8080' "${WORK}/dash.yaml" || fail "dashboard.enabled does not pass --dashboard-listen"
  grep -qF 'name: braid-dashboard' "${WORK}/dash.yaml" || fail "dashboard.enabled renders no braid-dashboard Service"
  ! grep -qF -- '--dashboard-listen' "${WORK}/default.yaml" || fail "the dashboard is on by default"
  pass "dashboard.enabled passes --dashboard-listen and renders its Service"
fi

# --- settings refused at render time ---------------------------------------------
refused() {  # refused WHY PATTERN ARGS...: helm template must fail, saying PATTERN
  local why=$1 pattern=$2
  shift 2
  if render "${WORK}/refused.yaml" "$@"; then
    fail "helm template accepted $* (${why})"
  elif ! grep -q -- "${pattern}" "${WORK}/refused.yaml.err"; then
    fail "helm template refused $* without saying '${pattern}': $(cat "${WORK}/refused.yaml.err")"
  fi
}
begin
refused "two operators without a leader" "leaderElection.enabled" \
  --set replicaCount=2 --set leaderElection.enabled=false
refused "one pull policy for aggregator and worker pods" "pullPolicy" \
  --set image.worker.pullPolicy=Always
refused "a misspelt value" "metrics" --set metrics.prot=1
refused "an existing ServiceAccount needs a name" "serviceAccount.name" \
  --set serviceAccount.create=false
render "${WORK}/norbac.yaml" --set rbac.create=false --set serviceAccount.create=false \
  --set serviceAccount.name=ops || fail "helm template with rbac.create=false: $(cat "${WORK}/norbac.yaml.err")"
if grep -qE '^kind: (Cluster)?Role(Binding)?$|^kind: ServiceAccount$' "${WORK}/norbac.yaml"; then
  fail "rbac.create=false, serviceAccount.create=false still render RBAC objects or a ServiceAccount"
fi
grep -qxF '      serviceAccountName: ops' "${WORK}/norbac.yaml" ||
  fail "serviceAccount.name=ops is not the Deployment's serviceAccountName"
pass "impossible settings refused; rbac.create and serviceAccount.create honoured"

# --- roles (multi-site) -----------------------------------------------------------
# role single is the default and renders no role flag; coordinator serves the
# federation endpoint behind a Service; site passes what it dials with and
# refuses to render without it.
SITE_VALUES=(--set role=site --set site.name=st-mary --set site.tenant=st-mary
  --set site.coordinatorAddress=federation.example.org:443
  --set site.enrollmentTokenSecret=braid-enrollment --set site.coordinatorCaSecret=federation-ca)
COORDINATOR_VALUES=(--set role=coordinator
  --set-json 'coordinator.siteAggregatorAddressTemplate="{name}.{namespace}.fl.example.org:443"')
begin
for r in coordinator site; do
  args=("${COORDINATOR_VALUES[@]}")
  [[ "${r}" == site ]] && args=("${SITE_VALUES[@]}")
  if out=$("${HELM}" lint --strict "${CHART}" "${args[@]}" 2>&1) &&
    grep -q '1 chart(s) linted, 0 chart(s) failed' <<<"${out}" &&
    ! grep -qE '\[(WARNING|ERROR)\]' <<<"${out}"; then
    :
  else
    fail "helm lint --strict --set role=${r}:"$'\n'"${out}"
  fi
done
! grep -qF -- '--role' "${WORK}/default.yaml" || fail "the default (role single) passes --role"
if render "${WORK}/coordinator.yaml" "${COORDINATOR_VALUES[@]}" \
  --set 'coordinator.serverNames={federation.example.org,10.0.0.7}' \
  --set coordinator.federationService.type=ClusterIP --set coordinator.federationService.port=8443; then
  grep -qxF -- '        - --site-aggregator-address-template={name}.{namespace}.fl.example.org:443' \
    "${WORK}/coordinator.yaml" || fail "role coordinator does not pass --site-aggregator-address-template"
  grep -qxF -- '        - --federation-server-names=federation.example.org,10.0.0.7' \
    "${WORK}/coordinator.yaml" || fail "role coordinator does not pass coordinator.serverNames"
  ! grep -qF -- 'tlsroutes' "${WORK}/coordinator.yaml" ||
    fail "without coordinator.aggregatorGateway the operator may still manage TLSRoutes"
  grep -qF -- '- --role=coordinator' "${WORK}/coordinator.yaml" || fail "role coordinator does not pass --role=coordinator"
  grep -qF -- '- --federation-listen=0.0.0.0:9443' "${WORK}/coordinator.yaml" ||
    fail "role coordinator does not pass --federation-listen"
  fed=$(awk '/^---/ {p = 0} /name: braid-federation$/ {p = 1} p' "${WORK}/coordinator.yaml")
  { grep -qxF '  type: ClusterIP' <<<"${fed}" && grep -qxF '    port: 8443' <<<"${fed}" &&
    grep -qxF '    targetPort: federation' <<<"${fed}"; } ||
    fail "role coordinator renders no braid-federation Service of coordinator.federationService"
else
  fail "helm template --set role=coordinator: $(cat "${WORK}/coordinator.yaml.err")"
fi
! grep -qF 'braid-federation' "${WORK}/default.yaml" || fail "role single renders the federation Service"
if render "${WORK}/site.yaml" "${SITE_VALUES[@]}"; then
  for arg in --role=site --site-name=st-mary --site-tenant=st-mary \
    --coordinator-address=federation.example.org:443 \
    --coordinator-ca-file=/etc/braid/coordinator-ca/ca.crt \
    --enrollment-token-file=/etc/braid/enrollment/token; do
    grep -qxF -- "        - ${arg}" "${WORK}/site.yaml" || fail "role site does not pass ${arg}"
  done
  grep -qxF '          secretName: braid-enrollment' "${WORK}/site.yaml" ||
    fail "role site does not mount site.enrollmentTokenSecret"
  ! grep -qF -- '--federation-listen' "${WORK}/site.yaml" || fail "a site listens for the federation"
else
  fail "helm template (role site): $(cat "${WORK}/site.yaml.err")"
fi
refused "a site without its coordinator" "site.coordinatorAddress is required" --set role=site \
  --set site.name=a --set site.tenant=a --set site.enrollmentTokenSecret=t
refused "a coordinator without the sites' aggregator address" \
  "coordinator.siteAggregatorAddressTemplate is required" --set role=coordinator
refused "a site without the federation CA" "site.coordinatorCaSecret is required" --set role=site \
  --set site.name=a --set site.tenant=a --set site.coordinatorAddress=c:443 \
  --set site.enrollmentTokenSecret=t
refused "an unknown role" "role" --set role=hub
refused "a site name that is no label" "site/name" "${SITE_VALUES[@]}" --set site.name=St_Mary
if render "${WORK}/gateway.yaml" "${COORDINATOR_VALUES[@]}" \
  --set coordinator.aggregatorGateway=braid-system/federation/aggregators; then
  grep -qxF -- '        - --site-aggregator-gateway=braid-system/federation/aggregators' \
    "${WORK}/gateway.yaml" || fail "coordinator.aggregatorGateway is not passed"
  grep -qF -- 'resources: [tlsroutes]' "${WORK}/gateway.yaml" ||
    fail "with coordinator.aggregatorGateway the operator may not manage TLSRoutes"
else
  fail "helm template (aggregatorGateway): $(cat "${WORK}/gateway.yaml.err")"
fi
refused "a gateway that is no <namespace>/<name>" "aggregatorGateway" "${COORDINATOR_VALUES[@]}" \
  --set coordinator.aggregatorGateway=federation
pass "roles: coordinator and site lint clean, pass their flags; coordinator serves the federation Service"

# --- values documented ---------------------------------------------------------
# Each "key:" line of values.yaml: its dotted path, whether a comment line is
# right above it, and whether it is a leaf (no nested keys).
values_keys() {
  awk '
    /^[[:space:]]*#/ { commented = 1; next }
    /^[[:space:]]*$/ { commented = 0; next }
    /^[[:space:]]*[A-Za-z0-9_]+:/ {
      match($0, /^ */); ind = RLENGTH
      key = $0; sub(/^ */, "", key); sub(/:.*/, "", key)
      while (depth > 0 && ind <= indent[depth]) depth--
      # the previous key was a parent if this one is nested under it
      if (n > 0 && depth > 0 && path[depth] == last) leaf[n] = 0
      depth++; indent[depth] = ind; path[depth] = (depth > 1 ? path[depth - 1] "." : "") key
      last = path[depth]
      n++; name[n] = last; doc[n] = commented; leaf[n] = 1
      commented = 0
      next
    }
    { commented = 0 }
    END { for (i = 1; i <= n; i++) print name[i], doc[i], leaf[i] }' "${CHART}/values.yaml"
}
begin
undocumented=""
missing_in_docs=""
while read -r key commented leaf; do
  [[ "${commented}" == 1 ]] || undocumented+=" ${key}"
  [[ "${leaf}" == 1 ]] || continue
  found=""
  k=${key}
  while :; do  # the key itself or an ancestor, as `path` in docs/operator.md
    if [[ -f "${DOCS}" ]] && grep -qF "\`${k}\`" "${DOCS}"; then found=1; break; fi
    [[ "${k}" == *.* ]] || break
    k=${k%.*}
  done
  [[ -n "${found}" ]] || missing_in_docs+=" ${key}"
done < <(values_keys)
[[ -z "${undocumented}" ]] || fail "values.yaml keys without a comment above them:${undocumented}"
[[ -z "${missing_in_docs}" ]] || fail "values not in docs/operator.md (as \`path\`):${missing_in_docs}"
pass "every value commented and in docs/operator.md"

if ((failures)); then
  echo "chart_test: ${failures} check(s) failed" >&2
  exit 1
fi
echo "chart_test: PASS"
