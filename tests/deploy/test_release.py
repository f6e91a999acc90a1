"""What a release is made of: the container image (Dockerfile, `make image`) and the LICENSE.

No container engine runs here, so the Dockerfile is checked for what makes it
reproducible, cheap to rebuild and safe to run: every base pinned by digest, the
locked dependencies installed in a layer before the code is copied, a non-root user.
"""

from __future__ import annotations

import re
import subprocess
import tomllib

from k8s_render import render

from helpers import REPO

DIGEST = re.compile(r"^[^@\s]+:[^@\s]+@sha256:[0-9a-f]{64}$")
CODE = ("libs", "services", "cli")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in joined.splitlines() if line.strip()]


def stages(steps: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for step in steps:
        if step[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(step)
    return found


def bases(steps: list[tuple[str, str]]) -> list[str]:
    """The image each FROM names, with ARG defaults substituted; earlier stages left out."""
    args = dict(re.match(r"(\w+)=(\S+)", a).groups() for kind, a in steps if kind == "ARG" and "=" in a)
    named = {m.group(1) for kind, a in steps if kind == "FROM" and (m := re.search(r"\bAS\s+(\S+)", a, re.I))}
    images = [re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], a.split()[0]) for kind, a in steps if kind == "FROM"]
    return [image for image in images if image not in named]


def dockerfile() -> list[tuple[str, str]]:
    return instructions((REPO / "Dockerfile").read_text())


def test_every_base_image_is_pinned_by_digest():
    images = bases(dockerfile())
    assert images and all(DIGEST.match(image) for image in images), images
    assert all(image.startswith("python:3.11") and "slim-bookworm" in image for image in images)
    broken = instructions((REPO / "Dockerfile").read_text().replace("@sha256:", "-no-digest-"))
    assert not all(DIGEST.match(image) for image in bases(broken))


def dependencies_before_code(steps: list[tuple[str, str]]) -> bool:
    """Whether the build installs the locked dependencies in a layer before any code is copied."""
    build = stages(steps)[0]
    copies_code = [i for i, (kind, a) in enumerate(build) if kind == "COPY" and a.split()[0] in CODE]
    installs = [
        i
        for i, (kind, a) in enumerate(build)
        if kind == "RUN" and "uv sync" in a and "--locked" in a and "--no-install-project" in a and "--no-dev" in a
    ]
    lock = [
        i for i, (kind, a) in enumerate(build) if kind == "COPY" and {"pyproject.toml", "uv.lock"} <= set(a.split())
    ]
    return bool(copies_code and installs and lock) and lock[0] < installs[0] < min(copies_code)


def test_dependencies_are_installed_before_the_code_is_copied():
    steps = dockerfile()
    assert dependencies_before_code(steps)
    code_first = [s for s in steps if s[0] == "COPY" and s[1].split()[0] in CODE]
    reordered = [s for s in steps if s not in code_first]
    reordered[3:3] = code_first  # the code copied right after the FROM/RUN/WORKDIR: every edit reinstalls
    assert not dependencies_before_code(reordered)


def test_the_image_runs_as_the_non_root_user_the_pods_ask_for():
    final = stages(dockerfile())[-1]
    users = [a for kind, a in final if kind == "USER"]
    assert users, "the final stage sets no USER: it would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0  # numeric, so runAsNonRoot can check it
    assert any(kind == "RUN" and f"--uid {uid}" in a for kind, a in final)
    pod = next(d for d in render("prod") if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == int(uid)


def make_image(*overrides: str) -> list[str]:
    import os

    # Run by `make test`, a child make inherits the parent's flags and prints "Entering directory".
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "image", *overrides],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_make_image_builds_the_dev_overlays_image_with_docker_or_podman():
    command = make_image()
    assert command[0].rsplit("/", 1)[-1] in ("docker", "podman") and command[1] == "build"
    tag = command[command.index("--tag") + 1]
    dev = next(i for i in overlay_images("dev") if i["name"] == "hookyard")
    assert tag == f"hookyard:{dev['newTag']}"  # what the dev overlay's pods run
    assert command[-1] == "."
    pushed = make_image("IMAGE=registry.example.com/hookyard:1.2.3", "CONTAINER_ENGINE=podman")
    assert pushed[:4] == ["podman", "build", "--tag", "registry.example.com/hookyard:1.2.3"]


def overlay_images(overlay: str) -> list[dict]:
    import yaml

    return yaml.safe_load((REPO / "deploy" / "k8s" / "overlays" / overlay / "kustomization.yaml").read_text())["images"]


def test_the_license_is_the_apache_2_0_text_pyproject_declares():
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["license"] == "Apache-2.0"
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    for section in ("1. Definitions.", "2. Grant of Copyright License.", "9. Accepting Warranty or Additional"):
        assert section in text  # the full terms, not a pointer to them
    assert "END OF TERMS AND CONDITIONS" in text and "APPENDIX: How to apply the Apache License" in text
