#!/usr/bin/env python3
"""check_k8s_manifests.py - offline checks of deploy/k8s (docs/kubernetes.md).

Renders the kustomize base and each overlay, then checks every object:

1. rendering: a small renderer here handles exactly the kustomization
   fields deploy/k8s uses (resources, namespace, labels, images) and
   refuses any other, so a new field cannot be silently ignored; when a
   kubectl with kustomize v4 or newer (or a kustomize binary) is on PATH,
   its output must equal ours, object for object;
2. built-in kinds (Deployment, Service, ...) against the Kubernetes OpenAPI
   schemas of the PyPI package kubernetes-validate, strict (unknown fields
   are errors), for each version in --k8s-version;
3. KEDA kinds (ScaledObject, ScaledJob, TriggerAuthentication) against the
   openAPIV3Schema of KEDA's CRDs vendored in deploy/k8s/vendor/keda, with
   jsonschema; unknown fields are errors, as with `kubectl apply
   --validate=strict`;
4. what no schema knows: references between objects (ScaledObject ->
   Deployment, the metrics-api URL -> a Service and port, Service and PDB
   selectors -> pods, ConfigMaps, probe ports, the Downward API's
   container), that the scheduler's bounds equal the ScaledObject's, that
   no secret is on argv or in a plain env value, that a Deployment scaled
   by KEDA has no `replicas`; the pod-deletion-cost set-up (only pods that
   set it get a token; their ServiceAccount exists and is bound to a Role
   that may patch pods; POD_NAME comes from the Downward API), and that a
   Kafka-scaled Deployment's maxReplicaCount is at most its topic's
   partitions (optional/strimzi-kafka.yaml) and above 1 for trainers only
   with the deletion cost on.

With --mutations it instead breaks copies of the tree on purpose and
requires every break to be caught (tests/test_k8s_manifests.sh lists them).

Exit 0 when everything passes, 1 with one line per finding otherwise, 2 on
usage errors.  Needs PyYAML, jsonschema and kubernetes-validate (the venv
of tools/setup-venv-k8s).
"""

import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys

import yaml

try:
    import jsonschema
    import kubernetes_validate
except ImportError as e:  # pragma: no cover - the test skips before this
    print("check_k8s_manifests: %s (run tools/setup-venv-k8s)" % e, file=sys.stderr)
    sys.exit(2)

KEDA_GROUP = "keda.sh"
# Secrets the manifests mount but do not contain: the operator creates them
# (docs/kubernetes.md, "Secrets").
EXTERNAL_SECRETS = {"aas-secrets", "aas-gateway-keys"}
SUPPORTED_FIELDS = {"apiVersion", "kind", "resources", "namespace", "labels", "images"}


class Finding(Exception):
    pass


# ---------------------------------------------------------------- rendering

# libyaml's loader when PyYAML has it: the CRDs are large.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.load_all(f, Loader=SAFE_LOADER) if d is not None]


def render(directory):
    """Our kustomize: the subset deploy/k8s uses, in kustomize's semantics."""
    kpath = os.path.join(directory, "kustomization.yaml")
    if not os.path.isfile(kpath):
        raise Finding("%s: no kustomization.yaml" % directory)
    k = load_yaml_docs(kpath)[0]
    unknown = set(k) - SUPPORTED_FIELDS
    if unknown:
        raise Finding("%s: kustomization fields this renderer does not implement: %s"
                      % (kpath, ", ".join(sorted(unknown))))
    objs = []
    for res in k.get("resources", []):
        p = os.path.normpath(os.path.join(directory, res))
        if os.path.isdir(p):
            objs.extend(render(p))
        elif os.path.isfile(p):
            objs.extend(load_yaml_docs(p))
        else:
            raise Finding("%s: resource %s does not exist" % (kpath, res))
    for o in objs:
        md = o.setdefault("metadata", {})
        if "namespace" in k and o.get("kind") not in ("Namespace",):
            md["namespace"] = k["namespace"]
            # kustomize also puts a binding's ServiceAccount subjects
            # without a namespace into it.
            if o.get("kind") in ("RoleBinding", "ClusterRoleBinding"):
                for s in o.get("subjects", []):
                    if s.get("kind") == "ServiceAccount" and "namespace" not in s:
                        s["namespace"] = k["namespace"]
        for entry in k.get("labels", []):
            if entry.get("includeSelectors") or entry.get("includeTemplates"):
                raise Finding("%s: labels with includeSelectors/includeTemplates are "
                              "not implemented here" % kpath)
            md.setdefault("labels", {}).update(entry["pairs"])
        for img in k.get("images", []):
            set_image(o, img)
    return objs


def set_image(obj, img):
    spec = obj.get("spec", {}).get("template", {}).get("spec", {})
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        name, tag = split_image(c.get("image", ""))
        if name != img["name"]:
            continue
        name = img.get("newName", name)
        tag = img.get("newTag", tag)
        c["image"] = name + (":" + tag if tag else "")


def split_image(ref):
    if "@" in ref:
        return ref.split("@", 1)[0], None
    m = re.match(r"^(.*?)(?::([^:/]+))?$", ref)
    return m.group(1), m.group(2)


def key(o):
    md = o.get("metadata", {})
    return (o.get("apiVersion"), o.get("kind"), md.get("namespace"), md.get("name"))


def external_kustomize():
    """argv of a kustomize v4+ renderer, or None."""
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        try:
            out = subprocess.run(["kubectl", "version", "--client"], capture_output=True,
                                 text=True, timeout=20).stdout
        except (OSError, subprocess.TimeoutExpired):
            return None
        m = re.search(r"Kustomize Version: v(\d+)", out)
        if m and int(m.group(1)) >= 4:
            return ["kubectl", "kustomize"]
    return None


def compare_with_kustomize(directory, ours, argv, findings):
    r = subprocess.run(argv + [directory], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        findings.append("%s: %s failed: %s" % (directory, " ".join(argv), r.stderr.strip()))
        return
    theirs = [d for d in yaml.safe_load_all(r.stdout) if d is not None]
    a = {key(o): o for o in ours}
    b = {key(o): o for o in theirs}
    if set(a) != set(b):
        findings.append("%s: kustomize renders %s, ours %s" %
                        (directory, sorted(map(str, set(b) - set(a))),
                         sorted(map(str, set(a) - set(b)))))
        return
    for k in a:
        if a[k] != b[k]:
            findings.append("%s: %s differs between kustomize and our renderer" %
                            (directory, "/".join(map(str, k))))


# --------------------------------------------------------------- schemas

def strict_schema(schema):
    """A CRD schema with additionalProperties: false wherever the API
    server would report an unknown field."""
    s = copy.deepcopy(schema)

    def walk(n):
        if isinstance(n, dict):
            if (n.get("type") == "object" and "properties" in n
                    and "additionalProperties" not in n
                    and not n.get("x-kubernetes-preserve-unknown-fields")):
                n["additionalProperties"] = False
            for v in n.values():
                walk(v)
        elif isinstance(n, list):
            for v in n:
                walk(v)
    walk(s)
    return s


def load_crds(vendor_dir):
    crds = {}
    for fn in sorted(os.listdir(vendor_dir)):
        if not fn.endswith(".yaml"):
            continue
        for d in load_yaml_docs(os.path.join(vendor_dir, fn)):
            if d.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = d["spec"]["group"], d["spec"]["names"]["kind"]
            for v in d["spec"]["versions"]:
                schema = strict_schema(v["schema"]["openAPIV3Schema"])
                # metadata is the API server's to check: a name is enough here.
                schema.setdefault("properties", {})["metadata"] = {
                    "type": "object", "required": ["name"]}
                crds[("%s/%s" % (group, v["name"]), kind)] = schema
    return crds


def validate_object(o, where, crds, versions, findings):
    api, kind = o.get("apiVersion", ""), o.get("kind", "")
    name = "%s %s/%s" % (where, kind, o.get("metadata", {}).get("name"))
    if api.split("/")[0] == KEDA_GROUP:
        schema = crds.get((api, kind))
        if schema is None:
            findings.append("%s: no vendored CRD for %s %s" % (name, api, kind))
            return
        v = jsonschema.Draft7Validator(schema)
        for e in sorted(v.iter_errors(o), key=lambda e: list(e.path)):
            findings.append("%s: %s: %s" % (name, "/".join(map(str, e.path)) or "(root)",
                                             e.message))
        return
    if "." in api.split("/")[0] and not api.startswith(("apps/", "policy/", "autoscaling/",
                                                         "batch/", "networking.k8s.io/",
                                                         "rbac.authorization.k8s.io/")):
        findings.append("%s: %s is neither built in nor a vendored CRD" % (name, api))
        return
    for ver in versions:
        # The same object comes back in every tree and broken copy: each
        # distinct one is validated once per version.
        ck = (json.dumps(o, sort_keys=True), ver)
        if ck not in K8S_CACHE:
            try:
                kubernetes_validate.validate(o, ver, strict=True)
                K8S_CACHE[ck] = None
            except kubernetes_validate.ValidationError as e:
                K8S_CACHE[ck] = "against Kubernetes %s: %s: %s" % (
                    ver, ".".join(map(str, e.path)) or "(root)", e.message)
            except kubernetes_validate.SchemaNotFoundError as e:
                K8S_CACHE[ck] = "no Kubernetes %s schema: %s" % (ver, e)
        if K8S_CACHE[ck]:
            findings.append("%s: %s" % (name, K8S_CACHE[ck]))


K8S_CACHE = {}


# --------------------------------------------------------------- semantics

def pod_specs(objs):
    for o in objs:
        if o.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield o, o["spec"]["template"]


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def env_value(c, name):
    for e in c.get("env", []):
        if e["name"] == name:
            return e
    return None


def may_patch_pods(objs, sa, ns):
    """Is ServiceAccount sa (namespace ns) bound to a Role or ClusterRole
    with patch on core pods?"""
    roles = {(o["kind"], o["metadata"]["name"]): o for o in objs
             if o.get("kind") in ("Role", "ClusterRole")}
    for b in objs:
        if b.get("kind") not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if not any(s.get("kind") == "ServiceAccount" and s.get("name") == sa
                   and s.get("namespace", b["metadata"].get("namespace")) == ns
                   for s in b.get("subjects", [])):
            continue
        role = roles.get((b["roleRef"]["kind"], b["roleRef"]["name"]))
        for r in (role or {}).get("rules", []):
            if "" in r.get("apiGroups", []) and \
                    {"pods", "*"} & set(r.get("resources", [])) and \
                    {"patch", "*"} & set(r.get("verbs", [])):
                return True
    return False


def check_podcost(objs, o, spec, containers, bad):
    """The pod-deletion-cost PATCH (worker/podcost.h): a token only for a
    pod that sets the cost, and everything that PATCH needs."""
    n = o["metadata"]["name"]
    accounts = {x["metadata"]["name"] for x in objs if x.get("kind") == "ServiceAccount"}
    sa = spec.get("serviceAccountName")
    if sa and sa != "default" and sa not in accounts:
        bad("%s: serviceAccountName %s: no ServiceAccount %s" % (n, sa, sa))
    users = [c for c in containers
             if (env_value(c, "AAS_K8S_POD_DELETION_COST_ENABLED") or {}).get("value")
             in ("true", "auto")]
    token = spec.get("automountServiceAccountToken", True)
    if not users:
        if token is not False:
            bad("%s: automountServiceAccountToken must be false: only pods that set "
                "their pod-deletion-cost get a token" % n)
        return
    if token is not True:
        bad("%s: sets its pod-deletion-cost but has no token "
            "(automountServiceAccountToken: true)" % n)
    if not sa or sa == "default":
        bad("%s: sets its pod-deletion-cost with the default ServiceAccount; give it "
            "its own" % n)
    elif not may_patch_pods(objs, sa, o["metadata"].get("namespace")):
        bad("%s: ServiceAccount %s may not patch pods (no RoleBinding to a Role with "
            "verb patch on pods)" % (n, sa))
    for c in users:
        pn = env_value(c, "POD_NAME") or {}
        if pn.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "metadata.name":
            bad("%s/%s: POD_NAME must come from the Downward API (fieldRef "
                "metadata.name)" % (n, c["name"]))


def check_semantics(objs, where, findings, topics=None):
    """topics: {topic name: partitions} from optional/strimzi-kafka.yaml."""
    def bad(msg):
        findings.append("%s: %s" % (where, msg))

    by_kind = {}
    for o in objs:
        by_kind.setdefault(o["kind"], {})[o["metadata"]["name"]] = o
    deployments = by_kind.get("Deployment", {})
    configmaps = by_kind.get("ConfigMap", {})
    secrets = set(by_kind.get("Secret", {})) | EXTERNAL_SECRETS
    services = by_kind.get("Service", {})
    scaled = by_kind.get("ScaledObject", {})

    for o, tpl in pod_specs(objs):
        n = o["metadata"]["name"]
        labels = tpl["metadata"].get("labels", {})
        if not selects(o["spec"]["selector"]["matchLabels"], labels):
            bad("%s: selector does not match its pod template" % n)
        spec = tpl["spec"]
        vols = {v["name"]: v for v in spec.get("volumes", [])}
        for v in vols.values():
            if "configMap" in v and v["configMap"]["name"] not in configmaps:
                bad("%s: volume %s: no ConfigMap %s" % (n, v["name"], v["configMap"]["name"]))
            if "secret" in v and v["secret"]["secretName"] not in secrets:
                bad("%s: volume %s: unknown Secret %s" % (n, v["name"],
                                                          v["secret"]["secretName"]))
        containers = spec.get("containers", []) + spec.get("initContainers", [])
        names = {c["name"] for c in containers}
        check_podcost(objs, o, spec, containers, bad)
        for c in containers:
            cn = "%s/%s" % (n, c["name"])
            for m in c.get("volumeMounts", []):
                if m["name"] not in vols:
                    bad("%s: mounts unknown volume %s" % (cn, m["name"]))
            for ef in c.get("envFrom", []):
                ref = ef.get("configMapRef", {}).get("name")
                if ref and ref not in configmaps:
                    bad("%s: envFrom: no ConfigMap %s" % (cn, ref))
            argv = " ".join(c.get("command", []) + c.get("args", []))
            # A value on argv (-X redis.password=..., --password ...), not
            # a path under /run/secrets.
            if re.search(r"(password|secret)[a-z0-9._-]*(=|\s+[^-/\s])", argv, re.I):
                bad("%s: a secret on the command line: %s" % (cn, argv))
            ports = {p.get("name") for p in c.get("ports", [])}
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                port = c.get(probe, {}).get("httpGet", {}).get("port")
                if isinstance(port, str) and port not in ports:
                    bad("%s: %s on unknown port %s" % (cn, probe, port))
            env = {e["name"]: e for e in c.get("env", [])}
            for e in env.values():
                if re.search(r"PASSWORD|SECRET", e["name"]) and not e["name"].endswith("_FILE") \
                        and "value" in e:
                    bad("%s: %s given as a plain value" % (cn, e["name"]))
            omp = env.get("OMP_NUM_THREADS")
            if omp is not None:
                rf = omp.get("valueFrom", {}).get("resourceFieldRef")
                if not rf or rf.get("resource") != "limits.cpu":
                    bad("%s: OMP_NUM_THREADS not from limits.cpu" % cn)
                elif rf.get("containerName", c["name"]) not in names:
                    bad("%s: OMP_NUM_THREADS from unknown container %s" % (cn, rf["containerName"]))
                else:
                    cpu = str(c.get("resources", {}).get("limits", {}).get("cpu", ""))
                    if not re.fullmatch(r"[1-9][0-9]*", cpu):
                        bad("%s: OMP_NUM_THREADS follows limits.cpu, which should be a "
                            "whole number of CPUs (is %r)" % (cn, cpu or None))

    for kind in ("Service", "PodDisruptionBudget"):
        for n, o in by_kind.get(kind, {}).items():
            sel = o["spec"]["selector"]
            sel = sel.get("matchLabels", sel) if kind == "PodDisruptionBudget" else sel
            if not any(selects(sel, tpl["metadata"].get("labels", {})) for _, tpl in pod_specs(objs)):
                bad("%s %s selects no pods" % (kind, n))
            if kind == "Service":
                for p in o["spec"]["ports"]:
                    tp = p.get("targetPort", p["port"])
                    ok = False
                    for _, tpl in pod_specs(objs):
                        if selects(sel, tpl["metadata"].get("labels", {})):
                            for c in tpl["spec"]["containers"]:
                                for cp in c.get("ports", []):
                                    if tp in (cp.get("name"), cp["containerPort"]):
                                        ok = True
                    if not ok:
                        bad("Service %s: port %s reaches no container port" % (n, tp))

    for n, so in scaled.items():
        target = so["spec"]["scaleTargetRef"]
        if target.get("kind", "Deployment") != "Deployment" or target["name"] not in deployments:
            bad("ScaledObject %s: no Deployment %s" % (n, target["name"]))
            continue
        if "replicas" in deployments[target["name"]]["spec"]:
            bad("Deployment %s has replicas, but ScaledObject %s owns the count"
                % (target["name"], n))
        for t in so["spec"]["triggers"]:
            md = t.get("metadata", {})
            if t["type"] == "metrics-api":
                check_metrics_api(n, so, t, md, services, deployments, bad)
            elif t["type"] == "kafka":
                dep = deployments[target["name"]]
                group = env_of(dep, "AAS_WORKER_GROUP") or "aas-workers"
                if md.get("consumerGroup") != group:
                    bad("ScaledObject %s: consumerGroup %s, but %s runs in group %s"
                        % (n, md.get("consumerGroup"), target["name"], group))
                if md.get("offsetResetPolicy") != "earliest":
                    bad("ScaledObject %s: offsetResetPolicy must be earliest (aas "
                        "consumers start new groups there)" % n)
                mx = so["spec"].get("maxReplicaCount", 100)
                parts = (topics or {}).get(md.get("topic"))
                if parts is not None and mx > parts:
                    bad("ScaledObject %s: maxReplicaCount %s above the %d partitions of "
                        "%s: the extra pods would sit idle" % (n, mx, parts, md.get("topic")))
                cost = [env_value(c, "AAS_K8S_POD_DELETION_COST_ENABLED")
                        for c in dep["spec"]["template"]["spec"]["containers"]]
                if env_of(dep, "AAS_WORKER_TRAIN") == "true" and mx > 1 and \
                        not any(e and e.get("value") in ("true", "auto") for e in cost):
                    bad("ScaledObject %s: maxReplicaCount %s for trainers without their "
                        "pod-deletion-cost: scale-in may remove a busy trainer" % (n, mx))


def env_of(dep, name):
    for c in dep["spec"]["template"]["spec"]["containers"]:
        for e in c.get("env", []):
            if e["name"] == name:
                return e.get("value")
    return None


def check_metrics_api(n, so, t, md, services, deployments, bad):
    if t.get("metricType", "AverageValue") != "AverageValue" or md.get("targetValue") != "1":
        bad("ScaledObject %s: desired_workers is a count: metricType AverageValue and "
            "targetValue \"1\" make the HPA's count equal to it" % n)
    if md.get("valueLocation") != "desired_workers":
        bad("ScaledObject %s: valueLocation must be desired_workers" % n)
    m = re.fullmatch(r"http://([a-z0-9-]+)(?:\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?)?:(\d+)/keda",
                     md.get("url", ""))
    ns = so["metadata"].get("namespace")
    if not m:
        bad("ScaledObject %s: url %r is not http://SERVICE.NAMESPACE.svc:PORT/keda" % (n, md.get("url")))
        return
    svc, svc_ns, port = m.group(1), m.group(2), int(m.group(3))
    if svc_ns is None:
        bad("ScaledObject %s: url without a namespace resolves in KEDA's namespace" % n)
    elif ns and svc_ns != ns:
        bad("ScaledObject %s: url names namespace %s, the objects are in %s" % (n, svc_ns, ns))
    if svc not in services or port not in [p["port"] for p in services[svc]["spec"]["ports"]]:
        bad("ScaledObject %s: url names Service %s port %d, which is not rendered" % (n, svc, port))
    sched = deployments.get("aas-scheduler")
    if sched is None:
        bad("ScaledObject %s reads /keda but there is no aas-scheduler" % n)
        return
    if env_of(sched, "AAS_SCHEDULER_ACTUATOR") != "none":
        bad("aas-scheduler: AAS_SCHEDULER_ACTUATOR must be none when KEDA acts")
    for key_, field in (("AAS_SCHEDULER_MIN", "minReplicaCount"),
                        ("AAS_SCHEDULER_MAX", "maxReplicaCount")):
        if str(so["spec"].get(field)) != str(env_of(sched, key_)):
            bad("ScaledObject %s: %s %s differs from the scheduler's %s %s"
                % (n, field, so["spec"].get(field), key_, env_of(sched, key_)))


# --------------------------------------------------------------------- main

def check_tree(root, versions, crds, ext, verbose=False):
    """Every check on one deploy/k8s tree; returns (findings, trees)."""
    findings = []
    topics = {}
    strimzi = os.path.join(root, "optional", "strimzi-kafka.yaml")
    if os.path.isfile(strimzi):
        try:
            for o in load_yaml_docs(strimzi):
                if o.get("kind") == "KafkaTopic":
                    topics[o["spec"].get("topicName", o["metadata"]["name"])] = \
                        o["spec"]["partitions"]
        except (yaml.YAMLError, KeyError, TypeError) as e:
            findings.append("%s: %s" % (strimzi, e))
    trees = ["base"] + ["overlays/" + d for d in sorted(os.listdir(os.path.join(root, "overlays")))]
    for tree in trees:
        d = os.path.join(root, tree)
        try:
            objs = render(d)
        except (Finding, yaml.YAMLError, OSError) as e:
            findings.append(str(e))
            continue
        if ext:
            compare_with_kustomize(d, objs, ext, findings)
        for o in objs:
            validate_object(o, tree, crds, versions, findings)
        try:
            check_semantics(objs, tree, findings, topics)
        except (KeyError, TypeError, AttributeError) as e:
            findings.append("%s: malformed object (%s: %s)" % (tree, type(e).__name__, e))
        if verbose:
            print("%s: %d objects: %s" % (tree, len(objs),
                                          ", ".join("%s/%s" % (o["kind"], o["metadata"]["name"])
                                                    for o in objs)))
    # Optional files: built-in and KEDA kinds validated, others (Strimzi)
    # parsed only.
    for fn in sorted(os.listdir(os.path.join(root, "optional"))):
        p = os.path.join(root, "optional", fn)
        try:
            docs = load_yaml_docs(p)
        except yaml.YAMLError as e:
            findings.append("%s: %s" % (p, e))
            continue
        for o in docs:
            if o.get("apiVersion") == "v1" or o.get("apiVersion", "").split("/")[0] == KEDA_GROUP:
                validate_object(o, "optional/" + fn, crds, versions, findings)
    return findings, trees


def run_mutations(root, cases, versions, crds):
    """Break copies of the tree on purpose, one case a copy; each must be
    caught with a finding containing the expected words.  A case is a line
    FILE|PYTHON-EXPRESSION-OF-s|WORDS (s: the file's text)."""
    import tempfile
    failed = n = 0
    for line in cases:
        line = line.rstrip("\n")
        if not line.strip() or line.startswith("#"):
            continue
        n += 1
        fn, expr, want = line.split("|", 2)
        with tempfile.TemporaryDirectory() as tmp:
            copy_ = os.path.join(tmp, "k8s")
            shutil.copytree(root, copy_)
            p = os.path.join(copy_, fn)
            with open(p, encoding="utf-8") as f:
                s = f.read()
            t = eval(expr, {"s": s})  # the cases are ours, in the test script
            if t == s:
                print("FAIL: case %d: %s: the edit %s changes nothing" % (n, fn, expr))
                failed += 1
                continue
            with open(p, "w", encoding="utf-8") as f:
                f.write(t)
            findings, _ = check_tree(copy_, versions, crds, None)
        hit = [f for f in findings if want in f]
        if not findings:
            print("FAIL: broken %s (%s) passed every check" % (fn, expr))
            failed += 1
        elif not hit:
            print("FAIL: broken %s (%s) failed, but not on %r: %s" % (fn, expr, want, findings))
            failed += 1
        else:
            print("ok: broken %s caught: %s" % (fn, hit[0]))
    print("%d of %d broken copies caught" % (n - failed, n))
    return 1 if failed or not n else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.join(os.path.dirname(__file__), "..", "deploy", "k8s"),
                    help="deploy/k8s directory (default: the repository's)")
    ap.add_argument("--k8s-version", action="append",
                    help="Kubernetes versions to validate against (default 1.30.0 and 1.37.0)")
    ap.add_argument("--no-kustomize", action="store_true",
                    help="do not compare with an installed kustomize")
    ap.add_argument("--mutations", metavar="FILE",
                    help="break copies of the tree as FILE's cases say ('-': stdin) and "
                         "require each to be caught")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    root = os.path.abspath(a.root)
    versions = a.k8s_version or ["1.30.0", "1.37.0"]
    crds = load_crds(os.path.join(root, "vendor", "keda"))
    if a.mutations:
        f = sys.stdin if a.mutations == "-" else open(a.mutations, encoding="utf-8")
        return run_mutations(root, f.readlines(), versions[:1], crds)
    ext = None if a.no_kustomize else external_kustomize()
    findings, trees = check_tree(root, versions, crds, ext, a.verbose)
    for f in findings:
        print("FAIL " + f)
    if not findings:
        print("ok: %s rendered%s; built-in kinds valid for Kubernetes %s; KEDA kinds valid "
              "for the vendored CRDs; references consistent"
              % (", ".join(trees), " (same as %s)" % " ".join(ext) if ext else "",
                 ", ".join(versions)))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
