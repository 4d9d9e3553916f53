"""One image per service (deploy/docker/<service>.Dockerfile): hadolint finds nothing to warn
about, a builder stage installs the service from uv.lock with the Makefile's uv, and the final
stage is python:3.11-slim with the virtualenv only, run as a numeric non-root user. No Docker
engine here: these checks read the files; the Deployments run the images they describe."""

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from manifests import DOCKERFILES, OVERLAYS, REPO, SERVICES, container, objects

HADOLINT = Path(sys.executable).parent / "hadolint"


def stages(service: str) -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), stage by stage."""
    text = (DOCKERFILES / f"{service}.Dockerfile").read_text()
    lines = [line for line in text.replace("\\\n", " ").splitlines() if line.strip()]
    instructions = [re.sub(r"\s+", " ", line).strip() for line in lines if not line.startswith("#")]
    found: list[list[str]] = []
    for instruction in instructions:
        if instruction.startswith("FROM "):
            found.append([])
        found[-1].append(instruction)
    return found


def test_every_service_has_an_image_and_nothing_else_does() -> None:
    assert {p.name.removesuffix(".Dockerfile") for p in DOCKERFILES.glob("*.Dockerfile")} == set(
        SERVICES
    )


def hadolint(dockerfile: str) -> tuple[int, list[dict[str, str]]]:
    done = subprocess.run(
        [str(HADOLINT), "--failure-threshold", "warning", "--format", "json", "-"],
        input=dockerfile,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, json.loads(done.stdout or "[]")


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_hadolint_finds_nothing_to_warn_about(service: str) -> None:
    assert hadolint((DOCKERFILES / f"{service}.Dockerfile").read_text()) == (0, [])


def test_hadolint_fails_a_dockerfile_it_warns_about() -> None:
    returncode, findings = hadolint("FROM python\nUSER root\n")
    assert returncode != 0
    assert {f["code"] for f in findings} >= {"DL3006", "DL3002"}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_builder_installs_the_service_from_the_lock_with_the_makefiles_uv(service: str) -> None:
    uv_version = re.search(r"^UV_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.M)
    assert uv_version is not None
    uv, builder, _ = stages(service)
    assert uv == [f"FROM ghcr.io/astral-sh/uv:{uv_version[1]} AS uv"]
    syncs = [i for i in builder if i.startswith("RUN uv sync")]
    assert syncs, "the builder installs with uv sync"
    for sync in syncs:
        assert "--frozen" in sync, "exactly what uv.lock says"
        assert f"--package clinic-{service}" in sync
        assert "--no-default-groups" in sync, "no development tools in the image"
    assert "--no-editable" in syncs[-1], "the code is copied into the virtualenv"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_final_image_is_the_virtualenv_on_python_slim_run_unprivileged(service: str) -> None:
    final = stages(service)[-1]
    assert final[0] == "FROM python:3.11-slim"
    copies = [i for i in final if i.startswith("COPY")]
    assert copies == ["COPY --from=builder /app/.venv /app/.venv"]
    for run in (i for i in final if i.startswith("RUN")):
        assert not re.search(r"apt-get|apk |pip |gcc|make ", run), run
    (user,) = (i.split()[1] for i in final if i.startswith("USER "))
    uid, gid = user.split(":")
    assert int(uid) > 0, "numeric and not root, as runAsNonRoot can check"
    assert int(gid) > 0
    package = SERVICES[service].package
    assert final[-1] == f'ENTRYPOINT ["python", "-m", "clinic.{package}"]'
    # The services listen on 127.0.0.1 by default (a laptop's choice); a container listens
    # on every interface, whoever runs the image.
    (env,) = (i for i in final if i.startswith("ENV "))
    listeners = {"host", "mllp_host"} & set(SERVICES[service].settings.model_fields)
    for listener in listeners:
        assert f"{SERVICES[service].prefix}{listener.upper()}=0.0.0.0" in env.split()
    assert importlib.util.find_spec(f"clinic.{package}.__main__") is not None


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", sorted(SERVICES))
def test_each_deployment_runs_its_services_image_as_the_image_user(
    overlay: str, service: str
) -> None:
    deployment = objects(overlay, "Deployment")[service]
    main = container(deployment)
    assert main["image"].split(":")[0].endswith(f"/{service}")
    assert "command" not in main, "the image's ENTRYPOINT runs it"
    assert "args" not in main
    (user,) = (i.split()[1] for i in stages(service)[-1] if i.startswith("USER "))
    pod = deployment["spec"]["template"]["spec"]["securityContext"]
    assert f"{pod['runAsUser']}:{pod['runAsGroup']}" == user
    exposed = {int(p) for i in stages(service)[-1] if i.startswith("EXPOSE") for p in i.split()[1:]}
    assert {p["containerPort"] for p in main["ports"]} == exposed
