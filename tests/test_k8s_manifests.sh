#!/usr/bin/env bash
# test_k8s_manifests.sh - offline checks of the Kubernetes manifests in
# deploy/k8s (docs/kubernetes.md): renders the kustomize base and overlays,
# validates every object against the Kubernetes OpenAPI schemas
# (kubernetes-validate) and KEDA's vendored CRD schemas (jsonschema), checks
# the references between them (tests/check_k8s_manifests.py), then breaks
# copies of the manifests on purpose and requires each break to be caught.
# No cluster, no network.  Skipped (77) when the venv of
# tools/setup-venv-k8s is missing.
#
#   tools/setup-venv-k8s && bash tests/test_k8s_manifests.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${AAS_VENV_K8S:-${AAS_VENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aas}/venv-k8s}
PY=$VENV/bin/python
if ! [ -x "$PY" ] || ! "$PY" -c 'import kubernetes_validate, jsonschema, yaml' 2>/dev/null; then
  echo "SKIP: no venv with kubernetes-validate at $VENV (run tools/setup-venv-k8s)"
  exit 77
fi
CHECK=$ROOT/tests/check_k8s_manifests.py

echo "== the manifests as they are"
"$PY" "$CHECK" --root "$ROOT/deploy/k8s"

echo "== broken copies, each of which must fail"
# Each case: a file under deploy/k8s, a Python expression that edits its
# text s, and words the findings must contain.  Only the checker's own
# renderer runs on the copies (a kustomize binary would stop first on some
# of them, which proves less).
"$PY" "$CHECK" --root "$ROOT/deploy/k8s" --mutations - <<'CASES'
base/worker.yaml|s.replace("terminationGracePeriodSeconds: 60", "terminationGracePeriodSecond: 60")|terminationGracePeriodSecond
base/worker.yaml|s.replace("containerPort: 9464", "containerPort: \"9464\"", 1)|containerPort
base/worker.yaml|s.replace("path: /healthz\n              port: metrics", "path: /healthz\n              port: metric")|unknown port metric
base/worker.yaml|s.replace("cpu: \"1\"\n              # model", "cpu: 1500m\n              # model")|whole number
base/gateway.yaml|s.replace("name: aas-env", "name: aas-environment", 1)|no ConfigMap aas-environment
base/scheduler.yaml|s.replace("value: none", "value: local")|AAS_SCHEDULER_ACTUATOR
base/scheduler.yaml|s.replace("\"8\"", "\"4\"")|maxReplicaCount
base/worker.yaml|s.replace("spec:\n  selector:", "spec:\n  replicas: 2\n  selector:", 1)|owns the count
overlays/keda-metrics-api/scaledobject-worker.yaml|s.replace("targetValue: \"1\"", "targetValue: 1")|targetValue
overlays/keda-metrics-api/scaledobject-worker.yaml|s.replace("maxReplicaCount: 8", "maxReplicas: 8")|maxReplicas
overlays/keda-metrics-api/scaledobject-worker.yaml|s.replace("metricType: AverageValue", "metricType: Value")|AverageValue
overlays/keda-metrics-api/scaledobject-worker.yaml|s.replace("aas-scheduler.aas.svc:9464", "aas-scheduler:9464")|namespace
overlays/keda-metrics-api/scaledobject-worker.yaml|s.replace("scaleTargetRef:\n    name: aas-worker", "scaleTargetRef:\n    name: aas-workers")|no Deployment aas-workers
overlays/keda-kafka-lag/scaledobject-worker.yaml|s.replace("allowIdleConsumers: \"false\"", "allowIdleConsumers: false")|allowIdleConsumers
training-scaler/scaledobject-trainer.yaml|s.replace("consumerGroup: aas-trainers", "consumerGroup: aas-workers")|consumerGroup
overlays/keda-kafka-lag/kustomization.yaml|s + "patches:\n  - path: x.yaml\n"|does not implement
base/trainer.yaml|s.replace("automountServiceAccountToken: true", "automountServiceAccountToken: false")|has no token
base/worker.yaml|s.replace("automountServiceAccountToken: false", "automountServiceAccountToken: true")|automountServiceAccountToken must be false
base/trainer.yaml|s.replace("serviceAccountName: aas-trainer", "serviceAccountName: aas-trainers")|no ServiceAccount aas-trainers
base/trainer-rbac.yaml|s.replace("verbs: [\"patch\"]", "verbs: [\"get\"]")|may not patch pods
base/trainer-rbac.yaml|s.replace("    name: aas-trainer\n", "    name: aas-worker\n")|may not patch pods
base/trainer.yaml|s.replace("fieldPath: metadata.name\n            - name: POD_NAMESPACE", "fieldPath: metadata.uid\n            - name: POD_NAMESPACE")|POD_NAME must come from the Downward API
training-scaler/scaledobject-trainer.yaml|s.replace("maxReplicaCount: 2", "maxReplicaCount: 3")|partitions of aas.jobs.train
base/trainer.yaml|s.replace("AAS_K8S_POD_DELETION_COST_ENABLED\n              value: \"true\"", "AAS_K8S_POD_DELETION_COST_ENABLED\n              value: \"false\"")|scale-in may remove a busy trainer
CASES
