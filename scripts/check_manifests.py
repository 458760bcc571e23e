#!/usr/bin/env python3
"""Static checks of Lectern's deployment files (run by ``make k8s-check``).

- every YAML file under deploy/ and docker-compose.yml parses (JSON files under
  deploy/, i.e. Grafana dashboards, too);
- every resource validates against the Kubernetes 1.31 JSON schemas in strict mode
  (kubernetes-validate, offline), and the operators' custom resources (KEDA,
  RabbitmqCluster, CNPG Cluster) against scripts/k8s_crd_schemas.py;
- every Deployment's containers have a readinessProbe, a livenessProbe and
  resource limits, and run with runAsNonRoot (pod or container level), no privilege
  escalation, a read-only root filesystem, every capability dropped and the
  RuntimeDefault seccomp profile; Jobs' containers need the same but probes;
- every entry of each kustomization.yaml's ``resources:`` (and ``components:``,
  ``patches[].path``) exists; a directory must hold a kustomization file;
- docker-compose.yml's bind-mounted ./paths exist;
- if ``kustomize`` or ``kubectl`` is on PATH, every overlay under
  deploy/k8s/overlays renders, and its rendered Deployments pass the checks
  above (skipped otherwise: no cluster is needed either way).

Needs PyYAML; without it the script says so and exits 0 (nothing checked).
Exit status: 0 when everything passes, 1 otherwise.

Usage: python scripts/check_manifests.py [--root PATH]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the environment
    yaml = None
try:
    import jsonschema
    import kubernetes_validate
except ImportError:  # pragma: no cover - a dev dependency
    jsonschema = kubernetes_validate = None

sys.path.insert(0, str(Path(__file__).resolve().parent))
from k8s_crd_schemas import SCHEMAS as CRD_SCHEMAS

K8S_VERSION = "1.31.0"  # the schema set kubernetes-validate ships; clusters 1.29+ agree

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


class Report:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.counts: dict[str, int] = {}

    def error(self, where: str, message: str) -> None:
        self.errors.append(f"{where}: {message}")

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n


def rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def load_yaml_docs(path: Path, root: Path, report: Report) -> list[Any] | None:
    try:
        with path.open(encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
    except (OSError, yaml.YAMLError) as exc:
        report.error(rel(path, root), f"does not parse: {exc}")
        return None
    report.count("YAML files parsed")
    return docs


# --------------------------------------------------------------------------
# workloads
# --------------------------------------------------------------------------


def check_workload(doc: dict, where: str, report: Report) -> None:
    kind = doc.get("kind")
    name = (doc.get("metadata") or {}).get("name", "?")
    label = f"{where}: {kind} {name}"
    pod = ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
    containers = pod.get("containers") or []
    if not containers:
        report.error(label, "has no containers")
        return
    pod_non_root = (pod.get("securityContext") or {}).get("runAsNonRoot")
    for c in containers:
        cname = c.get("name", "?")
        if kind == "Deployment":
            for probe in ("readinessProbe", "livenessProbe"):
                if not c.get(probe):
                    report.error(label, f"container {cname} has no {probe}")
        limits = (c.get("resources") or {}).get("limits") or {}
        if not limits:
            report.error(label, f"container {cname} has no resources.limits")
        csc = c.get("securityContext") or {}
        if csc.get("allowPrivilegeEscalation") is not False:
            report.error(label, f"container {cname}: allowPrivilegeEscalation must be false")
        if csc.get("readOnlyRootFilesystem") is not True:
            report.error(label, f"container {cname}: readOnlyRootFilesystem must be true")
        if "ALL" not in ((csc.get("capabilities") or {}).get("drop") or []):
            report.error(label, f"container {cname}: capabilities must drop ALL")
        seccomp = (
            csc.get("seccompProfile")
            or (pod.get("securityContext") or {}).get("seccompProfile")
            or {}
        ).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            report.error(label, f"container {cname}: no RuntimeDefault seccomp profile")
        c_non_root = csc.get("runAsNonRoot")
        # The container setting overrides the pod's; either must say true
        # and neither may say false.
        effective = c_non_root if c_non_root is not None else pod_non_root
        if effective is not True:
            report.error(label, f"container {cname} does not set runAsNonRoot: true")
    report.count(f"{kind}s checked")


def validate_schema(doc: dict, where: str, report: Report) -> None:
    """Validate ``doc`` against the Kubernetes schemas (strict: unknown fields fail) or,
    for the operators' custom resources, against scripts/k8s_crd_schemas.py."""
    api, kind = doc.get("apiVersion"), doc.get("kind")
    if not api or not kind or kind == "Kustomization":
        return
    label = f"{where}: {kind} {(doc.get('metadata') or {}).get('name', '?')}"
    custom = CRD_SCHEMAS.get((api, kind))
    if custom is not None:
        errors = sorted(jsonschema.Draft202012Validator(custom).iter_errors(doc), key=str)
        for error in errors:
            path = ".".join(str(p) for p in error.absolute_path)
            report.error(label, f"{path}: {error.message}")
        report.count("custom resources validated (CRD schemas)")
        return
    if kubernetes_validate is None:
        report.error(label, "kubernetes-validate is not installed: cannot validate")
        return
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        report.error(label, f"no schema for {api} {kind} (Kubernetes {K8S_VERSION})")
        return
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        report.error(label, f"{path}: {exc.message}")
        return
    report.count(f"resources validated (Kubernetes {K8S_VERSION} schemas)")


def check_docs(docs: list[Any], where: str, report: Report) -> None:
    for doc in docs:
        if isinstance(doc, dict):
            validate_schema(doc, where, report)
        if isinstance(doc, dict) and doc.get("kind") in ("Deployment", "Job"):
            check_workload(doc, where, report)


# --------------------------------------------------------------------------
# kustomize
# --------------------------------------------------------------------------


def is_remote(entry: str) -> bool:
    return "://" in entry or entry.startswith(("github.com/", "git@"))


def check_kustomization(path: Path, doc: Any, root: Path, report: Report) -> None:
    where = rel(path, root)
    if not isinstance(doc, dict):
        report.error(where, "is not a mapping")
        return
    base = path.parent
    entries: list[tuple[str, str]] = []
    for key in ("resources", "components"):
        for entry in doc.get(key) or []:
            entries.append((key, entry))
    for patch in doc.get("patches") or []:
        if isinstance(patch, dict) and patch.get("path"):
            entries.append(("patches", patch["path"]))
    for key, entry in entries:
        if not isinstance(entry, str):
            report.error(where, f"{key}: entry is not a string: {entry!r}")
            continue
        if is_remote(entry):
            continue
        target = (base / entry).resolve()
        if target.is_dir():
            if not any((target / n).is_file() for n in KUSTOMIZATION_NAMES):
                report.error(where, f"{key}: directory {entry} has no kustomization.yaml")
        elif not target.is_file():
            report.error(where, f"{key}: {entry} does not exist")
        report.count("kustomization entries checked")
    report.count("kustomizations checked")


def kustomize_command() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def render_overlays(root: Path, report: Report) -> str:
    overlays = root / "deploy" / "k8s" / "overlays"
    if not overlays.is_dir():
        return "no deploy/k8s/overlays"
    cmd = kustomize_command()
    if cmd is None:
        return "skipped (neither kustomize nor kubectl on PATH)"
    rendered = 0
    for overlay in sorted(p for p in overlays.iterdir() if p.is_dir()):
        where = f"{rel(overlay, root)} (rendered)"
        proc = subprocess.run([*cmd, str(overlay)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            report.error(where, f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
            continue
        try:
            docs = [d for d in yaml.safe_load_all(proc.stdout) if d is not None]
        except yaml.YAMLError as exc:
            report.error(where, f"output does not parse: {exc}")
            continue
        check_docs(docs, where, report)
        rendered += 1
    return f"{rendered} overlay(s) rendered with {' '.join(cmd)}"


# --------------------------------------------------------------------------
# docker compose
# --------------------------------------------------------------------------


def check_compose(path: Path, doc: Any, root: Path, report: Report) -> None:
    where = rel(path, root)
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict):
        report.error(where, "has no services mapping")
        return
    for name, svc in doc["services"].items():
        for volume in (svc or {}).get("volumes") or []:
            if isinstance(volume, str):
                source = volume.split(":", 1)[0]
            else:
                source = volume.get("source", "")
            if isinstance(source, str) and source.startswith(("./", "../")):
                if not (path.parent / source).exists():
                    report.error(where, f"service {name}: mounted path {source} does not exist")
                report.count("compose bind mounts checked")
    report.count("compose services", len(doc["services"]))


# --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root",
        type=Path,
        default=Path(__file__).resolve().parent.parent,
        help="repository root (default: the parent of scripts/)",
    )
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()

    if yaml is None:
        print("check_manifests: SKIPPED - PyYAML is not installed (pip install pyyaml)")
        return 0

    report = Report()
    deploy = root / "deploy"
    files = sorted(p for p in deploy.rglob("*") if p.suffix in (".yaml", ".yml"))
    compose = root / "docker-compose.yml"
    if compose.is_file():
        files.append(compose)
    else:
        report.error("docker-compose.yml", "missing")

    for path in files:
        docs = load_yaml_docs(path, root, report)
        if docs is None:
            continue
        where = rel(path, root)
        if path.name in KUSTOMIZATION_NAMES:
            check_kustomization(path, docs[0] if docs else None, root, report)
        elif path == compose:
            check_compose(path, docs[0] if docs else None, root, report)
        else:
            check_docs(docs, where, report)

    for path in sorted(deploy.rglob("*.json")):
        try:
            json.loads(path.read_text(encoding="utf-8"))
            report.count("JSON files parsed")
        except (OSError, ValueError) as exc:
            report.error(rel(path, root), f"does not parse: {exc}")

    render_note = render_overlays(root, report)

    print("check_manifests summary")
    for what, n in report.counts.items():
        print(f"  {what}: {n}")
    print(f"  overlays: {render_note}")
    if report.errors:
        print(f"FAILED: {len(report.errors)} problem(s)")
        for e in report.errors:
            print(f"  - {e}")
        return 1
    print("OK: all manifest checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
