"""The deployment files (deploy/) and the README's "Deploy on several machines" checked against the code:
the services are there, every environment variable is one the code (or a library it uses) reads, the
commands exist, the queues the workers consume are the ones the settings send work to, the shared
services' addresses and credentials agree, and the throughput the README quotes is the benchmark's."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
DEPLOY = ROOT / "deploy"
#: Read by libraries, not by the project's code: boto3 (through django-storages) and the agents' SDKs.
LIBRARY_VARIABLES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "ANTHROPIC_API_KEY"}
APP_SERVICES = ("web", "worker-sim", "worker-agent")


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def env_example():
    values = {}
    for line in (DEPLOY / "aspire.env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def variables_the_code_reads() -> set[str]:
    names = set()
    pattern = re.compile(r"""os\.environ(?:\.get|\.setdefault|\.pop)?[(\[]\s*["']([A-Z0-9_]+)["']""")
    for path in ROOT.glob("*/**/*.py"):
        if ".venv" in path.parts or "tests" in path.parts or "testing" in path.parts:
            continue
        names.update(pattern.findall(path.read_text(errors="replace")))
    return names


def command_words(service: dict) -> list[str]:
    command = service["command"]
    return command if isinstance(command, list) else shlex.split(command)


def queues_of(service: dict) -> set[str]:
    words = command_words(service)
    return set(words[words.index("-Q") + 1].split(","))


def test_the_compose_file_has_every_part_of_the_deployment(compose):
    services = compose["services"]
    assert {"web", "worker-sim", "worker-agent", "redis", "postgres", "minio"} <= set(services)
    for name in APP_SERVICES:
        service = services[name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        assert service["env_file"] == "aspire.env"
        # The application hosts share nothing on disk: only the database, the broker and the bucket.
        assert "volumes" not in service, f"{name} mounts a volume; hosts must not share local paths"
    assert services["web"]["ports"] == ["8000:8000"]


def test_every_variable_of_the_env_example_is_read_by_the_code(env_example):
    read = variables_the_code_reads() | LIBRARY_VARIABLES
    unknown = sorted(set(env_example) - read)
    assert not unknown, f"deploy/aspire.env.example sets variables nothing reads: {unknown}"
    assert {"DATABASE_URL", "REDIS_URL", "ASPIRE_STORAGE", "ASPIRE_S3_BUCKET"} <= set(env_example)


def test_the_env_example_loads_as_production_settings(env_example, tmp_path):
    """The example, as every host gets it, makes settings: PostgreSQL, the Redis broker, S3, the queues."""
    probe = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({'engine': s.DATABASES['default']['ENGINE'], 'db': s.DATABASES['default']['NAME'], "
        "'broker': s.CELERY_BROKER_URL, 'storage': s.STORAGES['default']['BACKEND'], "
        "'queues': s.ASPIRE['QUEUES'], 'default_queue': s.CELERY_TASK_DEFAULT_QUEUE}))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASPIRE_", "DJANGO_", "DATABASE_URL", "REDIS_"))}
    env.update(env_example, ASPIRE_VAR_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded["engine"] == "django.db.backends.postgresql"
    assert loaded["db"] == "aspire"
    assert loaded["broker"] == env_example["REDIS_URL"]
    assert loaded["storage"] == "storages.backends.s3.S3Storage"
    assert loaded["queues"] == {"coordinator": "agent", "actors": "agent", "episodes": "sim"}
    assert loaded["default_queue"] == "aspire"


def test_the_workers_consume_the_queues_the_work_is_sent_to(compose, env_example):
    from django.conf import settings

    services = compose["services"]
    sim, agent = queues_of(services["worker-sim"]), queues_of(services["worker-agent"])
    assert env_example["ASPIRE_QUEUE_EPISODES"] in sim
    assert settings.CELERY_TASK_DEFAULT_QUEUE in sim  # skill re-execution, the reconciler's pass
    assert {env_example["ASPIRE_QUEUE_ACTORS"], env_example["ASPIRE_QUEUE_COORDINATOR"]} <= agent
    assert env_example["ASPIRE_QUEUE_EPISODES"] not in agent


def test_the_commands_exist(compose):
    from django.core.management import get_commands

    commands = get_commands()
    web = " ".join(command_words(compose["services"]["web"]))
    used = re.findall(r"manage\.py (\w+)", web)
    assert {"migrate", "collectstatic", "load_tasks"} <= set(used)
    assert not set(used) - set(commands), f"unknown manage.py commands: {set(used) - set(commands)}"
    app_path = re.search(r"daphne .* (\S+):(\w+)", web)
    module = __import__(app_path.group(1), fromlist=[app_path.group(2)])
    assert callable(getattr(module, app_path.group(2)))
    for name in ("worker-sim", "worker-agent"):
        words = command_words(compose["services"][name])
        assert words[:4] == ["celery", "-A", "aspire_web", "worker"]
    from aspire_web.celery import app

    app.loader.import_default_modules()  # the tasks of every app, as a worker loads them
    assert "aspire.run_episode" in app.tasks and "aspire.actor_step" in app.tasks


def test_the_shared_services_addresses_and_credentials_agree(compose, env_example):
    import dj_database_url

    services = compose["services"]
    db = dj_database_url.parse(env_example["DATABASE_URL"])
    pg = services["postgres"]["environment"]
    assert (db["HOST"], db["PORT"]) == ("postgres", 5432)
    assert (db["USER"], db["PASSWORD"], db["NAME"]) == (pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], pg["POSTGRES_DB"])
    assert re.match(r"redis://redis:6379/\d+$", env_example["REDIS_URL"])
    minio = services["minio"]["environment"]
    assert env_example["ASPIRE_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert (env_example["AWS_ACCESS_KEY_ID"], env_example["AWS_SECRET_ACCESS_KEY"]) == (
        minio["MINIO_ROOT_USER"],
        minio["MINIO_ROOT_PASSWORD"],
    )
    assert f"store/{env_example['ASPIRE_S3_BUCKET']}" in services["minio-bucket"]["entrypoint"]


def test_the_readme_quotes_the_benchmarks_throughput():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Deploy on several machines", 1)[1].split("\n## ", 1)[0]
    section = " ".join(section.split())
    bench = json.loads((ROOT / "bench" / "results" / "eval_throughput.json").read_text())
    per_s = bench["two_workers"]["episodes_per_s"]
    assert bench["machine"]["cpus"] == 2
    assert f"`two_workers.episodes_per_s` = {per_s}" in section
    assert f"{round(per_s * 3600):,} episodes an hour" in section
    for name in ("DATABASE_URL", "REDIS_URL", "ASPIRE_STORAGE", "ASPIRE_QUEUE_EPISODES", "deploy/docker-compose.yml"):
        assert name in section


def test_docker_compose_accepts_the_file(tmp_path):
    """``docker compose config`` validates the file where Docker's compose plugin is installed (it needs
    no engine); a copy of deploy/ with the env example as aspire.env, so the checkout is not touched."""
    if shutil.which("docker") is None:
        pytest.skip("no docker client here")
    if subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode:
        pytest.skip("the docker client has no compose plugin here")
    deploy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, deploy)
    shutil.copy(DEPLOY / "aspire.env.example", deploy / "aspire.env")
    done = subprocess.run(
        ["docker", "compose", "-f", str(deploy / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
