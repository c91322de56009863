"""A private RabbitMQ node for tests that stop, start or reconfigure the broker.

The machine's RabbitMQ (``rabbit@localhost`` on 5672) is shared with other
test runs and must never be stopped. Fault-injection tests start their own
node instead: the same ``rabbitmq-server`` with its own node name
(``intake-test-<random>@localhost``), AMQP and distribution ports, data, log
and configuration in a temp dir, and its own Erlang cookie (``HOME`` points
into the temp dir, for the server and for ``rabbitmqctl`` alike). Its
``rabbitmq.conf`` sets a small ``max_message_size`` (64 KiB), so the broker
itself refuses an oversized message.

``stop_app`` / ``start_app`` are ``rabbitmqctl stop_app`` / ``start_app``:
the Erlang node stays up, the broker application stops, clients are
disconnected and new connections refused, durable queues keep their
messages. ``delete_namespace`` removes a test's queues and exchanges from
any broker by URL.

Fixtures ``rabbitmq_node`` (one node per session) and ``broker`` (the node,
running at the start and end of a test): import ``rabbitmq_node_fixture``
and ``broker_fixture`` into a test module.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.peers.processes import free_port, wait_until
from tests.peers.services import port_open

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
MAX_MESSAGE_SIZE = 65536
_CTL_TIMEOUT = 120


@dataclass
class RabbitNode:
    """One running private node; ``url`` is its AMQP URL (guest/guest, vhost /)."""

    name: str
    port: int
    root: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def ctl(self, *args: str, timeout: float = _CTL_TIMEOUT) -> str:
        done = subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.name, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"rabbitmqctl {' '.join(args)}: {done.stderr or done.stdout}")
        return done.stdout

    def stop_app(self) -> None:
        """The broker goes away (connections closed, port refused); its data stays."""
        self.ctl("stop_app")
        wait_until(lambda: not port_open("127.0.0.1", self.port, 0.2), "the AMQP port closed")

    def start_app(self) -> None:
        self.ctl("start_app")
        self.ctl("await_startup", "--timeout", "60")
        wait_until(lambda: port_open("127.0.0.1", self.port, 0.2), "the AMQP port open")

    def running(self) -> bool:
        return port_open("127.0.0.1", self.port, 0.2)

    def log(self) -> str:
        logs = sorted((self.root / "log").glob("*.log"))
        return "\n".join(path.read_text(errors="replace")[-3000:] for path in logs)


def require_rabbitmq_server() -> None:
    if not (RABBITMQ_BIN / "rabbitmq-server").exists():
        pytest.fail("rabbitmq-server is not installed (apt-get install rabbitmq-server)")


def _prepare(root: Path, port: int, max_message_size: int) -> dict[str, str]:
    for folder in ("home", "mnesia", "log"):
        (root / folder).mkdir()
    cookie = root / "home" / ".erlang.cookie"
    cookie.write_text(secrets.token_hex(20).upper())
    cookie.chmod(0o400)
    (root / "rabbitmq.conf").write_text(
        f"listeners.tcp.local = 127.0.0.1:{port}\n"
        f"max_message_size = {max_message_size}\n"
        "loopback_users = none\n"
    )
    (root / "rabbitmq-env.conf").write_text("")  # not the machine's /etc/rabbitmq one
    (root / "enabled_plugins").write_text("[].\n")
    name = f"intake-test-{secrets.token_hex(4)}@localhost"
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))},
        "HOME": str(root / "home"),
        "RABBITMQ_NODENAME": name,
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(free_port()),
        "RABBITMQ_MNESIA_BASE": str(root / "mnesia"),
        "RABBITMQ_LOG_BASE": str(root / "log"),
        "RABBITMQ_CONFIG_FILE": str(root / "rabbitmq.conf"),
        "RABBITMQ_CONF_ENV_FILE": str(root / "rabbitmq-env.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(root / "enabled_plugins"),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
    }


@contextmanager
def private_rabbitmq(max_message_size: int = MAX_MESSAGE_SIZE) -> Iterator[RabbitNode]:
    """Start a node for the block; stop it and delete its files after."""
    require_rabbitmq_server()
    root = Path(tempfile.mkdtemp(prefix="rabbitmq-"))
    port = free_port()
    env = _prepare(root, port, max_message_size)
    with (root / "server.out").open("wb") as out:
        process = subprocess.Popen(
            [str(RABBITMQ_BIN / "rabbitmq-server")], env=env, stdout=out, stderr=out
        )
    node = RabbitNode(env["RABBITMQ_NODENAME"], port, root, env, process)
    try:
        wait_until(lambda: _started(node), f"the private RabbitMQ on port {port}", timeout=90)
        node.ctl("await_startup", "--timeout", "60")
        yield node
    finally:
        _stop(node)
        shutil.rmtree(root, ignore_errors=True)


def _exit(manager: AbstractContextManager[RabbitNode]) -> None:
    manager.__exit__(None, None, None)


def _started(node: RabbitNode) -> bool:
    """The AMQP port answers once the broker is up (rabbitmqctl cannot wait for a node
    that has not registered with epmd yet)."""
    if node.process.poll() is not None:
        output = (node.root / "server.out").read_text(errors="replace")
        raise AssertionError(f"rabbitmq-server exited:\n{output[-3000:]}")
    return node.running()


def _stop(node: RabbitNode) -> None:
    """``rabbitmqctl stop``, then the process we started, and nothing else."""
    with suppress(Exception):
        node.ctl("stop", timeout=60)
    try:
        node.process.wait(30)
    except subprocess.TimeoutExpired:
        node.process.kill()
        node.process.wait(10)


def delete_namespace(url: str, prefix: str) -> None:
    """Delete the queues and exchanges declared under ``prefix`` on the broker at ``url``."""
    from kombu import Connection

    from router.topology import build_topology

    topology = build_topology(prefix)
    with Connection(url, connect_timeout=3) as connection:
        try:
            channel = connection.channel()
        except Exception:
            return  # the broker is away: nothing to clean that anyone can see
        for queue in topology.queues:
            try:
                channel.queue_delete(queue.name)
            except Exception:
                channel = connection.channel()
        for exchange in (topology.exchange, topology.dead_letter_exchange):
            try:
                channel.exchange_delete(exchange.name)
            except Exception:
                channel = connection.channel()


_NODE = pytest.StashKey[RabbitNode]()


@pytest.fixture(scope="session", name="rabbitmq_node")
def rabbitmq_node_fixture(request: pytest.FixtureRequest) -> RabbitNode:
    """One private node for the whole session, however many modules import this fixture.

    Kept on the session's stash (each importing module has its own fixture
    definition) and stopped when the session ends.
    """
    stash = request.config.stash
    if _NODE not in stash:
        manager = private_rabbitmq()
        stash[_NODE] = manager.__enter__()
        request.config.add_cleanup(lambda: _exit(manager))
    return stash[_NODE]


@pytest.fixture(name="broker")
def broker_fixture(rabbitmq_node: RabbitNode) -> Iterator[RabbitNode]:
    """The private node, running at the start and at the end of the test."""
    if not rabbitmq_node.running():
        rabbitmq_node.start_app()
    yield rabbitmq_node
    if not rabbitmq_node.running():
        rabbitmq_node.start_app()
