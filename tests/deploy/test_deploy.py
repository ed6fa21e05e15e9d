"""deploy/: the Dockerfile's steps run for real; compose, systemd unit and docs checked.

No Docker engine runs here, so the Dockerfile is interpreted: its build steps
(COPY from the .dockerignore-filtered context, RUN python -m venv + pip install)
run in a fresh directory standing in for the image's file system, and the
installed entry point, the default command and the HEALTHCHECK then run with the
image's environment. `pip install .` resolves the dependencies from PyPI, as the
real build does; the only network the tests use.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import discord
import pytest
import yaml

from bot.backup import database_lock
from bot.cli_failures import EXIT_USAGE
from bot.cli_parser import build_parser
from bot.config import load_settings
from bot.runner import parse_shards

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
UNIT = DEPLOY / "paperbell.service"
README_DEPLOY = DEPLOY.parent / "README.md"  # its Deploy section

# Image paths the Dockerfile's steps may touch; each is re-rooted under a temp dir.
MAPPED_ROOTS = ("/opt/paperbell", "/src", "/data")
_MAPPED = re.compile(r"(?<![\w./:-])(/(?:opt/paperbell|src|data))(?=[/\s\"':]|$)")
_ABSOLUTE = re.compile(r"(?<![\w./:-])/[\w.-]+(?:/[\w.-]+)*")


# ---- a small Dockerfile interpreter ------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def one(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert len(found) == 1, f"expected one {keyword} in stage {self.name}, got {len(found)}"
        return found[0]


def read_dockerfile(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text("utf-8").splitlines():
        if raw.strip().startswith("#"):
            continue
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        line = (pending + raw).strip()
        pending = ""
        if line:
            logical.append(line)
    assert not pending, "Dockerfile ends inside a continuation line"
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(expand(parts[0], global_args), name))
        elif not stages:
            assert keyword == "ARG", f"{keyword} before the first FROM"
            key, _, default = args.partition("=")
            global_args[key] = default
        else:
            stages[-1].instructions.append(Instruction(keyword, args))
    return global_args, stages


_VAR = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)")


def expand(text: str, values: dict[str, str]) -> str:
    """Dockerfile variable substitution: $VAR, ${VAR}, ${VAR:-default}."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        value = values.get(name, "")
        return value if value or match.group(2) is None else match.group(2)

    return _VAR.sub(one, text)


def env_pairs(args: str) -> list[tuple[str, str]]:
    """`ENV A=1 B="x y"` (the key=value form) as pairs, quotes removed."""
    pairs = []
    for token in shlex.split(args, posix=True):
        key, sep, value = token.partition("=")
        assert sep, f"ENV {args!r}: use the KEY=value form"
        pairs.append((key, value))
    return pairs


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


# ---- .dockerignore ----------------------------------------------------------------------


def _ignore_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        else:
            char = pattern[i]
            out += {"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char))
            i += 1
    return re.compile(out)


def read_dockerignore(path: Path) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in path.read_text("utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        rules.append((negated, _ignore_regex(line.lstrip("!").strip().strip("/"))))
    return rules


def ignored(rel: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for negated, regex in rules:
        if any(regex.fullmatch(p) for p in prefixes):
            result = not negated
    return result


def copy_context(source: Path, target: Path, rules: list[tuple[bool, re.Pattern[str]]]) -> None:
    """What `docker build` sends: the tree without the ignored paths."""
    can_prune = not any(negated for negated, _ in rules)
    for folder, dirs, files in os.walk(source):
        rel_dir = Path(folder).relative_to(source)
        if can_prune:
            dirs[:] = [d for d in dirs if not ignored((rel_dir / d).as_posix(), rules)]
        for name in files:
            rel = (rel_dir / name).as_posix()
            if not ignored(rel, rules):
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(folder) / name, target / rel)


# ---- the interpreted image --------------------------------------------------------------


@dataclass
class Image:
    """The final stage's file system (under `root`) and runtime configuration."""

    root: Path
    env: dict[str, str]
    workdir: Path
    entrypoint: list[str]
    cmd: list[str]
    healthcheck: list[str]

    def host(self, path: str) -> Path:
        assert path.startswith(MAPPED_ROOTS), path
        return self.root / path.lstrip("/")

    def run(self, argv: list[str], **extra_env: str) -> subprocess.CompletedProcess[str]:
        """Run `argv` as the container would, its image paths (/data/...) re-rooted."""
        argv = [_map(arg, self.root) for arg in argv]
        env = {**self.env, **{k: _map(v, self.root) for k, v in extra_env.items()}}
        executable = shutil.which(argv[0], path=env["PATH"])
        assert executable, f"{argv[0]} is not on the image's PATH {env['PATH']}"
        return subprocess.run(
            [executable, *argv[1:]],
            env=env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def _base_env(root: Path) -> dict[str, str]:
    """python:3.11-slim's environment: `python` first on PATH; the host's pip cache and proxy."""
    local_bin = root / "usr" / "local" / "bin"
    local_bin.mkdir(parents=True, exist_ok=True)
    python = local_bin / "python"
    python.write_text(f'#!/bin/sh\nexec {shlex.quote(sys._base_executable)} "$@"\n')
    python.chmod(0o755)
    env = {"PATH": f"{local_bin}:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(Path.home())}
    for name, value in os.environ.items():
        if name.upper() in {"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"} or name.startswith("PIP_"):
            env[name] = value
    return env


def _map(text: str, root: Path) -> str:
    return _MAPPED.sub(lambda m: str(root) + m.group(1), text)


def build_image(root: Path) -> Image:
    """Run the Dockerfile's build steps with the image's paths re-rooted under `root`."""
    _, stages = read_dockerfile(DOCKERFILE)
    context = root / "context"
    copy_context(ROOT, context, read_dockerignore(ROOT / ".dockerignore"))
    base_env = _base_env(root)
    builder, final = stages

    values = dict(base_env)
    workdir = root
    for ins in builder.instructions:
        args = _map(ins.args, root)
        if ins.keyword == "ENV":
            values.update((k, expand(v, values)) for k, v in env_pairs(args))
        elif ins.keyword == "ARG":
            key, _, default = args.partition("=")
            values[key] = default
        elif ins.keyword == "WORKDIR":
            workdir = Path(expand(args, values))
            workdir.mkdir(parents=True, exist_ok=True)
        elif ins.keyword == "COPY":
            *sources, dest = shlex.split(args)
            target = Path(dest) if Path(dest).is_absolute() else workdir / dest
            for source in sources:
                origin = context / source
                assert origin.exists(), f"COPY {source}: not in the build context"
                if origin.is_dir():
                    shutil.copytree(origin, target, dirs_exist_ok=True)
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, target / origin.name)
        elif ins.keyword == "RUN":
            unmapped = [p for p in _ABSOLUTE.findall(args) if not p.startswith(str(root))]
            assert not unmapped, f"RUN touches paths outside the image roots: {unmapped}"
            done = subprocess.run(
                ["/bin/sh", "-c", args],
                env=values,
                cwd=workdir,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert done.returncode == 0, f"RUN {ins.args}\n{done.stdout[-3000:]}{done.stderr}"
        else:
            raise AssertionError(f"builder stage: unexpected {ins.keyword}")

    values = dict(base_env)
    workdir = root
    entrypoint: list[str] = []
    cmd: list[str] = []
    healthcheck: list[str] = []
    for ins in final.instructions:
        args = _map(ins.args, root)
        if ins.keyword == "ENV":
            values.update((k, expand(v, values)) for k, v in env_pairs(args))
        elif ins.keyword == "COPY":
            source, dest = shlex.split(args)[-2:]
            # A venv is not relocatable: it must land where the builder made it.
            assert args.startswith("--from=builder ") and source == dest, ins.args
            assert Path(dest).is_dir()
        elif ins.keyword == "WORKDIR":
            workdir = Path(expand(args, values))
            workdir.mkdir(parents=True, exist_ok=True)
        elif ins.keyword == "ENTRYPOINT":
            entrypoint = exec_form(args)
        elif ins.keyword == "CMD":
            cmd = exec_form(args)
        elif ins.keyword == "HEALTHCHECK":
            healthcheck = exec_form(args[args.index("CMD ") + 4 :])
        # ARG, RUN (user and /data creation), USER, VOLUME, STOPSIGNAL: checked by
        # test_dockerfile_runtime_configuration; they need root or a container.
    return Image(root, values, workdir, entrypoint, cmd, healthcheck)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    """The image built once per module (about 20 s: a real pip install into a fresh venv)."""
    return build_image(tmp_path_factory.mktemp("image"))


# ---- Dockerfile -------------------------------------------------------------------------


def test_dockerfile_runtime_configuration() -> None:
    """Two stages on one python:3.11-slim, a fixed non-root uid, /data volume, paperbell run."""
    _, stages = read_dockerfile(DOCKERFILE)
    assert [s.base for s in stages] == ["python:3.11-slim", "python:3.11-slim"]
    assert [s.name for s in stages] == ["builder", None]
    final = stages[1]
    uid_arg = final.one("ARG").args
    assert uid_arg.startswith("PAPERBELL_UID=")
    uid = uid_arg.partition("=")[2]
    assert uid.isdigit() and int(uid) >= 1000
    user_setup = final.one("RUN").args
    assert '--uid "${PAPERBELL_UID}"' in user_setup and '--gid "${PAPERBELL_UID}"' in user_setup
    assert "-o paperbell -g paperbell" in user_setup and "/data" in user_setup
    user = expand(final.one("USER").args, {"PAPERBELL_UID": uid})
    assert user == f"{uid}:{uid}"
    assert exec_form(final.one("VOLUME").args) == ["/data"]
    env = dict(pair for ins in final.all("ENV") for pair in env_pairs(ins.args))
    assert env["PAPERBELL_DATABASE"] == "/data/paperbell.db"
    assert env["PAPERBELL_HEALTH_HOST"] == "127.0.0.1"
    assert env["PAPERBELL_HEALTH_PORT"] == "8080"
    assert "DISCORD_TOKEN" not in env
    assert exec_form(final.one("ENTRYPOINT").args) == ["paperbell"]
    assert exec_form(final.one("CMD").args) == ["run"]
    health = final.one("HEALTHCHECK").args
    timeout = re.search(r"--timeout=(\d+)s", health)
    urlopen_timeout = re.search(r"timeout=(\d+)\)", health)
    assert timeout and urlopen_timeout
    # urllib must give up before Docker kills the check, so a hang reads as a clean failure.
    assert int(urlopen_timeout.group(1)) < int(timeout.group(1))


def test_dockerignore_keeps_secrets_and_junk_out(tmp_path: Path) -> None:
    """The build context has the sources but no .env, database, venv, git or bench output."""
    tree = tmp_path / "repo"
    kept = [
        "pyproject.toml",
        "README.md",
        "bot/cli.py",
        "bot/data/categories.tsv",
        "storage/migrations/0001_initial.sql",
        "deploy/.env.example",
        "deploy/Dockerfile",
    ]
    dropped = ["deploy/.env", ".env", "paperbell.db", "data/x.db-wal", "x/y.db-shm",
               "paperbell.db.lock", ".venv/bin/python", ".git/HEAD", "bench/out/run.json",
               "bot/__pycache__/cli.cpython-311.pyc", ".pytest_cache/v/x", "paperbell.egg-info/x",
               ".hypothesis/examples/x", "build/lib/bot/cli.py"]  # fmt: skip
    for rel in kept + dropped:
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(rel)
    context = tmp_path / "context"
    copy_context(tree, context, read_dockerignore(ROOT / ".dockerignore"))
    sent = sorted(p.relative_to(context).as_posix() for p in context.rglob("*") if p.is_file())
    assert sent == sorted(kept)


def test_image_entry_point_and_database(image: Image) -> None:
    """The installed `paperbell` runs: --version, run without token exits 2, db migrate."""
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    shown = image.run([*image.entrypoint, "--version"])
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == f"paperbell {version}"
    assert shutil.which("paperbell", path=image.env["PATH"]) == str(
        image.host("/opt/paperbell/venv/bin/paperbell")
    )

    default = image.run([*image.entrypoint, *image.cmd])
    assert default.returncode == 2
    lines = default.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("paperbell: DISCORD_TOKEN is not set"), lines

    migrated = image.run([*image.entrypoint, "db", "migrate"])
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.startswith("applied 0001_initial.sql")
    migrations = sorted((ROOT / "storage" / "migrations").glob("[0-9][0-9][0-9][0-9]_*.sql"))
    database = image.host("/data/paperbell.db")
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(migrations)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"papers", "subscriptions", "deliveries", "destinations"} <= tables
    again = image.run([*image.entrypoint, "db", "migrate"])
    assert again.stdout.strip() == f"up to date (schema version {len(migrations)})"


def test_image_backup_while_running_and_restore_refused(image: Image) -> None:
    """With the bot's database lock held, db backup works and db restore refuses (exit 2)."""
    assert image.run([*image.entrypoint, "db", "migrate"]).returncode == 0
    # `paperbell run` holds exactly this lock for its whole life (bot/runner.py).
    with database_lock(str(image.host("/data/paperbell.db")), purpose="test"):
        backup = image.run([*image.entrypoint, "db", "backup", "/data/backup.db"])
        assert backup.returncode == 0, backup.stderr
        restore = image.run([*image.entrypoint, "db", "restore", "/data/backup.db"])
    assert restore.returncode == 2
    assert "in use by a running paperbell" in restore.stderr
    with sqlite3.connect(image.host("/data/backup.db")) as conn:
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA user_version").fetchone()[0] >= 1
    restored = image.run([*image.entrypoint, "db", "restore", "/data/backup.db"])
    assert restored.returncode == 0, restored.stderr


class _HealthServer:
    """A stand-in health endpoint on 127.0.0.1 answering with a settable status."""

    def __init__(self) -> None:
        self.status = 200
        self.paths: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.paths.append(self.path)
                body = b"ok" if outer.status == 200 else b"not ready"
                self.send_response(outer.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def health_server() -> Iterator[_HealthServer]:
    server = _HealthServer()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_image_healthcheck(image: Image, health_server: _HealthServer) -> None:
    """HEALTHCHECK passes on 200 from /healthz, fails on 503 and when nothing listens."""
    port = str(health_server.port)
    healthy = image.run(image.healthcheck, PAPERBELL_HEALTH_PORT=port)
    assert healthy.returncode == 0, healthy.stderr
    assert health_server.paths == ["/healthz"]

    health_server.status = 503
    sick = image.run(image.healthcheck, PAPERBELL_HEALTH_PORT=port)
    assert sick.returncode == 1
    assert sick.stderr.strip() == "unhealthy: HTTP Error 503: Service Unavailable"

    health_server.server.shutdown()
    health_server.server.server_close()
    down = image.run(image.healthcheck, PAPERBELL_HEALTH_PORT=port)
    assert down.returncode == 1 and "Connection refused" in down.stderr


_MDWE_PROBE = """
import asyncio, ctypes, http.server, importlib, mmap, pkgutil, sys, threading
import aiohttp, bot, storage
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(65, 1, 0, 0, 0) == 0, ctypes.get_errno()  # PR_SET_MDWE, REFUSE_EXEC_GAIN
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    sys.exit("writable+executable memory was allowed")
except PermissionError:
    pass
for package in (bot, storage):
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if module.name != "bot.__main__":
            importlib.import_module(module.name)
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
threading.Thread(target=server.serve_forever, daemon=True).start()
async def fetch():
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{server.server_address[1]}/") as response:
            return response.status
assert asyncio.run(fetch()) == 200
from bot.cli import main
sys.exit(main(["db", "migrate"]))
"""


def _kernel_has_mdwe() -> bool:
    release = os.uname().release.split(".")
    return sys.platform == "linux" and (int(release[0]), int(release[1])) >= (6, 3)


@pytest.mark.skipif(not _kernel_has_mdwe(), reason="PR_SET_MDWE needs Linux 6.3 or newer")
def test_installed_bot_runs_without_writable_executable_memory(image: Image) -> None:
    """Under the kernel's MDWE (what MemoryDenyWriteExecute=yes enforces) the bot's code runs."""
    probe = image.run(["python", "-c", _MDWE_PROBE])
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.startswith(("applied", "up to date"))


# ---- systemd ----------------------------------------------------------------------------


def read_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Sections of a unit file as (key, value) lists: systemd allows repeated keys."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for raw in path.read_text("utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections.setdefault(current, [])
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not key=value: {line!r}"
        sections[current].append((key.strip(), value.strip()))
    return sections


def test_unit_runs_hardened_and_does_not_loop_on_bad_config() -> None:
    """The unit's user, paths, restart policy and sandbox directives are all there."""
    service = read_unit(UNIT)["Service"]
    single = {key: value for key, value in service}
    assert len(single) == len(service) - sum(1 for k, _ in service if k == "SystemCallFilter") + 1
    expected = {
        "DynamicUser": "yes",
        "StateDirectory": "paperbell",
        "EnvironmentFile": "/etc/paperbell/paperbell.env",
        "ExecStart": "/opt/paperbell/venv/bin/paperbell run",
        "Restart": "on-failure",
        "RestartPreventExitStatus": str(EXIT_USAGE),
        "KillSignal": "SIGTERM",
        "TimeoutStopSec": "30",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "RestrictNamespaces": "yes",
        "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes",
        "CapabilityBoundingSet": "",
        "UMask": "0077",
    }
    assert {key: single.get(key) for key in expected} == expected
    assert ("Environment", "PAPERBELL_DATABASE=%S/paperbell/paperbell.db") in service
    assert ("SystemCallFilter", "@system-service") in service


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze (systemd's unit checker) is not installed on this machine",
)
def test_unit_passes_systemd_analyze(image: Image, tmp_path: Path) -> None:
    """systemd-analyze verifies the unit (ExecStart in the installed venv) and rates it OK."""
    env_file = tmp_path / "paperbell.env"
    shutil.copy(DEPLOY / ".env.example", env_file)
    text = UNIT.read_text("utf-8")
    # verify checks that ExecStart exists: point it at the same path in the built image.
    replacements = {
        "ExecStart=/opt/paperbell/venv/bin/paperbell ": (
            f"ExecStart={image.host('/opt/paperbell/venv/bin/paperbell')} "
        ),
        "EnvironmentFile=/etc/paperbell/paperbell.env": f"EnvironmentFile={env_file}",
    }
    for old, new in replacements.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    unit = tmp_path / "paperbell.service"
    unit.write_text(text)

    verify = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip
    complaints = [
        line for line in (verify.stdout + verify.stderr).splitlines() if "paperbell" in line
    ]
    assert verify.returncode == 0 and not complaints, verify.stdout + verify.stderr

    # Exposure is rated 0.0 (locked down) to 10.0; the threshold is in tenths.
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--threshold=20", str(unit)],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert security.returncode == 0, security.stdout[-2000:] + security.stderr


# ---- compose ----------------------------------------------------------------------------


def load_compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "compose.yaml").read_text("utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_compose_services_volumes_and_profiles() -> None:
    """SQLite bot by default; the postgres profile adds postgres:16 and a bot pointed at it."""
    compose = load_compose()
    services = compose["services"]
    assert set(services) == {"paperbell", "postgres", "paperbell-pg"}

    bot = services["paperbell"]
    assert "profiles" not in bot
    assert (DEPLOY / bot["build"]["context"]).resolve() == ROOT
    assert (ROOT / bot["build"]["dockerfile"]).resolve() == DOCKERFILE
    assert bot["env_file"] == ".env"
    assert bot["restart"] == "unless-stopped"
    assert "healthcheck" not in bot  # the image's HEALTHCHECK applies
    _, stages = read_dockerfile(DOCKERFILE)
    image_env = dict(pair for ins in stages[1].all("ENV") for pair in env_pairs(ins.args))
    data = exec_form(stages[1].one("VOLUME").args)[0]
    assert bot["volumes"] == [f"paperbell-data:{data}"]
    assert str(Path(image_env["PAPERBELL_DATABASE"]).parent) == data

    postgres = services["postgres"]
    assert postgres["image"] == "postgres:16"
    assert postgres["profiles"] == ["postgres"]
    pg_env = postgres["environment"]
    assert pg_env["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD:-}"  # from .env, never literal
    check = postgres["healthcheck"]["test"]
    assert check[:2] == ["CMD", "pg_isready"]
    assert check[check.index("-U") + 1] == pg_env["POSTGRES_USER"]
    assert check[check.index("-d") + 1] == pg_env["POSTGRES_DB"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])

    variant = services["paperbell-pg"]
    assert variant["profiles"] == ["postgres"]
    assert variant["build"] == bot["build"] and variant["env_file"] == ".env"
    assert variant["restart"] == "unless-stopped"
    assert variant["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    url = urlparse(variant["environment"]["PAPERBELL_DATABASE"])
    assert url.scheme == "postgresql" and url.hostname == "postgres" and url.port == 5432
    assert url.username == pg_env["POSTGRES_USER"] and url.path == "/" + pg_env["POSTGRES_DB"]
    assert url.password == "${POSTGRES_PASSWORD:-}"

    filled = variant["environment"]["PAPERBELL_DATABASE"].replace(url.password, "s3cret")
    settings = load_settings({"PAPERBELL_DATABASE": filled})
    assert settings.is_postgres and "s3cret" not in settings.database_for_display()

    used = {
        volume.split(":")[0]
        for service in services.values()
        for volume in service.get("volumes", [])
    }
    assert used == set(compose["volumes"])


def test_compose_reads_only_documented_variables() -> None:
    """The only variable Compose fills in is POSTGRES_PASSWORD, and the deploy docs explain it."""
    text = (DEPLOY / "compose.yaml").read_text("utf-8")
    assert set(re.findall(r"\$\{(\w+)", text)) == {"POSTGRES_PASSWORD"}
    assert "POSTGRES_PASSWORD" in README_DEPLOY.read_text("utf-8")


# ---- README.md, Deploy ---------------------------------------------------------------------


def test_readme_invite_url_asks_for_exactly_the_needed_permissions() -> None:
    """The invite URL asks for View Channel, Send Messages (+ in Threads), Embed Links: no more."""
    text = README_DEPLOY.read_text("utf-8")
    urls = re.findall(r"https://discord\.com/oauth2/authorize\?\S+", text)
    assert len(urls) == 1
    query = parse_qs(urlparse(urls[0]).query)
    assert query["client_id"] == ["<APP_ID>"]
    assert query["scope"] == ["bot applications.commands"]
    needed = discord.Permissions(
        view_channel=True, send_messages=True, embed_links=True, send_messages_in_threads=True
    ).value
    assert needed == (1 << 10) | (1 << 11) | (1 << 14) | (1 << 38)
    assert int(query["permissions"][0]) == needed
    rows = re.findall(r"\| `1 << (\d+)` \| ([\d,]+) \|", text)
    assert len(rows) == 4
    assert sum(1 << int(bit) for bit, _ in rows) == needed
    assert all(int(value.replace(",", "")) == 1 << int(bit) for bit, value in rows)


def _shell_lines(text: str) -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def test_readme_paperbell_commands_parse() -> None:
    """Every `paperbell ...` command in the deploy docs is accepted by the real CLI parser."""
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands = set(subparsers.choices)
    found = []
    for line in _shell_lines(README_DEPLOY.read_text("utf-8")):
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        segments: list[list[str]] = [[]]
        for token in lexer:
            if token in {"&&", "||", "|", ";", ">", ">>", "<"}:
                segments.append([])
            else:
                segments[-1].append(token)
        for tokens in segments:
            for i, token in enumerate(tokens[:-1]):
                if Path(token).name == "paperbell" and tokens[i + 1] in commands:
                    found.append(tokens[i + 1 :])
    assert len(found) >= 4, found
    for argv in found:
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            raise AssertionError(f"paperbell {shlex.join(argv)} does not parse") from exc


def test_readme_shard_override_covers_every_shard_once() -> None:
    """The documented compose.override.yaml runs shards 0..N-1 once each, on PostgreSQL."""
    text = README_DEPLOY.read_text("utf-8")
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "--shard-count" in b]
    assert len(blocks) == 1
    override = yaml.safe_load(blocks[0])["services"]
    base = load_compose()["services"]
    variant = base["paperbell-pg"]
    shard_ids: list[int] = []
    counts = set()
    for name, extra in override.items():
        service = {**base.get(name, {}), **extra}
        args = build_parser().parse_args(service["command"])
        assert args.command == "run"
        count, ids = parse_shards(args.shard_count, args.shard_ids)
        assert count is not None and ids is not None
        counts.add(count)
        shard_ids += ids
        assert service["profiles"] == ["postgres"]
        assert service["env_file"] == ".env"
        assert service["depends_on"] == variant["depends_on"]
        assert service["environment"] == variant["environment"]
        assert service.get("image", variant["image"]) == variant["image"]
    assert len(counts) == 1
    assert sorted(shard_ids) == list(range(counts.pop()))


def test_env_example_shows_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """.env.example says "the value shown is the default": uncommenting any of its lines
    changes nothing (PAPERBELL_DATABASE included)."""
    from bot.config import Settings
    from bot.discord_endpoints import DISCORD_API_URL, DISCORD_GATEWAY_URL

    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    text = (DEPLOY / ".env.example").read_text("utf-8")
    assert "the value shown is the default" in text
    default = load_settings({})
    assert default == Settings()
    # These two default to "Discord's own", which discord_endpoints spells out.
    effective = {
        "PAPERBELL_DISCORD_API_URL": DISCORD_API_URL,
        "PAPERBELL_DISCORD_GATEWAY_URL": DISCORD_GATEWAY_URL,
    }
    shown = re.findall(r"^# (PAPERBELL_\w+)=(.*)$", text, re.MULTILINE)
    assert len(shown) >= 20
    for name, value in shown:
        if name in effective:
            assert value == effective[name], name
        else:
            assert load_settings({name: value}) == default, (name, value)
