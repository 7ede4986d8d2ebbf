"""The deployment files in etc/: they parse, their configurations pass `-t`, their flags exist."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import nats_server_binary
from trionats import cli
from trionats.config.load import load

yaml = pytest.importorskip("yaml")

ETC = Path(__file__).parents[2] / "etc"


def check_config(path: Path, *, reference: bool = True) -> None:
    """`trionats -t` passes, and so does `nats-server -t` (the files stay portable)."""
    ours = subprocess.run(
        [sys.executable, "-m", "trionats", "-t", "-c", str(path)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert ours.returncode == 0, ours.stderr
    if reference:
        theirs = subprocess.run(
            [nats_server_binary(), "-t", "-c", str(path)], capture_output=True, text=True, timeout=30
        )
        assert theirs.returncode == 0, theirs.stderr


def test_systemd_unit():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # systemd keys are case-sensitive
    unit.read(ETC / "trionats.service")
    service = unit["Service"]
    argv = shlex.split(service["ExecStart"])
    assert argv[0].endswith("/trionats")
    cli.parse_args(argv[1:])  # every flag exists
    assert service["ExecReload"] == "/bin/kill -s HUP $MAINPID"
    assert service["KillSignal"] == "SIGUSR2"  # lame duck mode on stop
    # Longer than the default lame duck duration, so it is not cut short by SIGKILL.
    assert int(service["TimeoutStopSec"]) > 120
    assert "AF_UNIX" in service["RestrictAddressFamilies"]  # Trio's wakeup socketpair
    assert int(service["LimitNOFILE"]) >= 65536
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_dockerfile():
    lines = (ETC / "docker" / "Dockerfile").read_text().splitlines()
    instructions = {line.split()[0]: line for line in lines if line and not line.startswith("#")}
    assert "pip install" in "\n".join(lines) and instructions["USER"] == "USER trionats"
    assert instructions["ENTRYPOINT"] == 'ENTRYPOINT ["trionats"]'
    import json

    cli.parse_args(json.loads(instructions["CMD"].removeprefix("CMD ")))


def test_cluster_config_passes_check():
    check_config(ETC / "docker" / "cluster.conf")
    options = load(ETC / "docker" / "cluster.conf")
    assert options.cluster.port == 6222 and options.websocket.port == 8080
    assert options.lame_duck_duration == 30.0


def test_docker_compose_cluster():
    compose = yaml.safe_load((ETC / "docker" / "docker-compose.yml").read_text())
    services = compose["services"]
    assert sorted(services) == ["trionats-1", "trionats-2", "trionats-3"]
    routes = load(ETC / "docker" / "cluster.conf").cluster.routes
    for name, service in services.items():
        cli.parse_args(service["command"])
        assert service["command"][-2:] == ["-n", name]
        assert service["stop_signal"] == "SIGUSR2"
        assert int(service["stop_grace_period"].rstrip("s")) > 30  # the lame duck duration
        assert service["volumes"] == ["./cluster.conf:/etc/trionats/cluster.conf:ro"]
        assert f"nats-route://{name}:6222" in routes
    build = compose["x-trionats"]["build"]
    context = ETC / "docker" / build["context"]
    assert (context / build["dockerfile"]).resolve() == (ETC / "docker" / "Dockerfile").resolve()


def test_kubernetes_manifests(tmp_path):
    docs = list(yaml.safe_load_all((ETC / "k8s" / "trionats.yaml").read_text()))
    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    assert sorted(by_kind) == ["ConfigMap", "Service", "StatefulSet"]
    (config_map,) = by_kind["ConfigMap"]
    conf = tmp_path / "trionats.conf"
    conf.write_text(config_map["data"]["trionats.conf"])
    check_config(conf)
    options = load(conf)

    services = {s["metadata"]["name"]: s for s in by_kind["Service"]}
    headless = services["trionats-headless"]
    assert headless["spec"]["clusterIP"] == "None"
    assert {p["port"] for p in services["trionats"]["spec"]["ports"]} == {4222, 8080}

    (statefulset,) = by_kind["StatefulSet"]
    spec = statefulset["spec"]
    assert spec["serviceName"] == "trionats-headless"
    replicas = spec["replicas"]
    assert sorted(options.cluster.routes) == [
        f"nats-route://trionats-{i}.trionats-headless:6222" for i in range(replicas)
    ]
    pod = spec["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > options.lame_duck_duration
    (container,) = pod["containers"]
    cli.parse_args(container["args"])
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "monitor"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["monitor"] == options.http_port and ports["websocket"] == options.websocket.port
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop == ["trionats", "--signal", f"ldm={options.pid_file}"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert Path(options.pid_file).parent == Path(mounts["run"])
    assert mounts["config"] == "/etc/trionats"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is absent")
def test_systemd_analyze_verify(tmp_path):
    # The unit names /opt/trionats/bin/trionats; point it at this environment's trionats.
    trionats = Path(sys.executable).parent / "trionats"
    unit = tmp_path / "trionats.service"
    unit.write_text((ETC / "trionats.service").read_text().replace(
        "/opt/trionats/bin/trionats", str(trionats)
    ))  # fmt: skip
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


# --- the cluster configurations, run: three processes with the files' own settings -------------


def localised(text: str, names: list[str], client: list[int], route: list[int],
              http: list[int], ws: list[int], index: int, run_dir: Path) -> str:
    """Node `index`'s configuration with the deployment's host names and ports mapped to
    127.0.0.1 and free ports (containers and pods each have their own network namespace)."""
    text = text.replace('"0.0.0.0:4222"', f'"127.0.0.1:{client[index]}"')
    text = text.replace('"0.0.0.0:6222"', f'"127.0.0.1:{route[index]}"')
    text = text.replace('"0.0.0.0:8222"', f'"127.0.0.1:{http[index]}"')
    text = text.replace('"0.0.0.0:8080"', f'"127.0.0.1:{ws[index]}"')
    text = text.replace("/var/run/trionats", str(run_dir))
    for name, port in zip(names, route):
        text = text.replace(f"nats-route://{name}:6222", f"nats-route://127.0.0.1:{port}")
    return text


def run_cluster(text: str, names: list[str], tmp_path: Path) -> None:
    """Start the three nodes as the deployment does (`-c file -n name`), check that the routes
    form, and that a WebSocket subscriber on the first node gets a TCP publisher's messages
    from the last one."""
    import asyncio
    import json
    import time
    import urllib.request

    import nats

    from tests.helpers import TrionatsProcess, free_port

    count = len(names)
    client, route, http, ws = ([free_port() for _ in range(count)] for _ in range(4))
    nodes = []
    try:
        for index, name in enumerate(names):
            run_dir = tmp_path / name
            run_dir.mkdir()
            conf = tmp_path / f"{name}.conf"
            conf.write_text(localised(text, names, client, route, http, ws, index, run_dir))
            nodes.append(TrionatsProcess("-c", str(conf), "-n", name, port=client[index]))
        deadline = time.monotonic() + 15
        for port in http:
            while True:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/routez") as response:
                    routes = json.load(response)["routes"]  # (pools: several per peer)
                    if len({route["remote_id"] for route in routes}) == count - 1:
                        break
                assert time.monotonic() < deadline, [node.log() for node in nodes]
                time.sleep(0.1)

        async def main():
            over_ws = await nats.connect(f"ws://127.0.0.1:{ws[0]}", allow_reconnect=False)
            over_tcp = await nats.connect(f"nats://127.0.0.1:{client[-1]}", allow_reconnect=False)
            sub = await over_ws.subscribe("deploy.check")
            await over_ws.flush()
            for _ in range(100):  # until the interest has crossed the route
                await over_tcp.publish("deploy.check", b"across the cluster")
                try:
                    msg = await sub.next_msg(timeout=0.1)
                    break
                except nats.errors.TimeoutError:
                    continue
            await over_ws.close()
            await over_tcp.close()
            return msg.data

        assert asyncio.run(main()) == b"across the cluster"
    finally:
        for node in nodes:
            node.stop()


@pytest.mark.slow
def test_compose_cluster_configuration_runs(tmp_path):
    pytest.importorskip("aiohttp", reason="nats-py's websocket transport needs aiohttp")
    names = [f"trionats-{i}" for i in (1, 2, 3)]
    run_cluster((ETC / "docker" / "cluster.conf").read_text(), names, tmp_path)


@pytest.mark.slow
def test_kubernetes_cluster_configuration_runs(tmp_path):
    pytest.importorskip("aiohttp", reason="nats-py's websocket transport needs aiohttp")
    docs = yaml.safe_load_all((ETC / "k8s" / "trionats.yaml").read_text())
    (config_map,) = [doc for doc in docs if doc["kind"] == "ConfigMap"]
    names = [f"trionats-{i}.trionats-headless" for i in range(3)]
    # pods are named trionats-N; their route names are the headless Service's
    text = config_map["data"]["trionats.conf"]
    run_cluster(text, names, tmp_path)
