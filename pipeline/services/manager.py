"""Fetch, start, wait for, inspect and stop a single-node Kafka (KRaft) and Elasticsearch.

Layout under `<repo>/.cache/services/` (git-ignored):

    m2/                          Maven local repository (the only place downloads land)
    kafka-<v>/pom.xml, lib/      generated pom and the broker's runtime classpath
    elasticsearch-<v>/           the unpacked integ-test zip, owned by the `qinling-es` user
    run/env                      addresses for tests and the Makefile (shell syntax)
    run/state.json               ports and versions the running services were started with
    run/kafka.pid, kafka.log, kafka-data/, server.properties, log4j2.properties
    run/es/es.pid, logs/, data/  (owned by `qinling-es`: Elasticsearch refuses to run as root)

Kafka's and Elasticsearch's data directories are wiped on every `up`, so a test run starts clean.

A second, independent instance (fault tests that kill services without disturbing the shared
ones): another run directory and other ports, e.g.

    QINLING_SERVICES_DIR=/tmp/faults python -m pipeline.services up --kafka-port 19092 \
        --controller-port 19093 --es-port 19200

Every later command with the same `QINLING_SERVICES_DIR` (or `--run-dir`) addresses that instance.
Its Elasticsearch reads a copy of the configuration kept in the run directory (`es/config/`), so the
shared installation's configuration is left alone.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

KAFKA = "kafka"
ELASTICSEARCH = "elasticsearch"
SERVICES = (KAFKA, ELASTICSEARCH)

REPO = Path(__file__).resolve().parents[2]
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
ES_ARTIFACT = "org.elasticsearch.distribution.integ-test-zip:elasticsearch:{v}:zip"


class ServiceError(RuntimeError):
    """A service could not be fetched, started or stopped; the message says why and what to do."""


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ServiceError(f"{name}={raw!r} is not a port number") from None


def _default_java_home() -> str:
    java = shutil.which("java")
    if not java:
        raise ServiceError("no `java` on PATH: install a JDK 17+ (apt-get install openjdk-17-jdk-headless)")
    return str(Path(java).resolve().parents[1])


@dataclass
class Settings:
    """Versions, ports and paths; every field can be overridden by a QINLING_* variable or a CLI flag."""

    kafka_version: str = field(default_factory=lambda: os.environ.get("QINLING_KAFKA_VERSION", "4.3.1"))
    log4j_version: str = field(default_factory=lambda: os.environ.get("QINLING_LOG4J_VERSION", "2.25.3"))
    es_version: str = field(default_factory=lambda: os.environ.get("QINLING_ES_VERSION", "8.19.21"))
    kafka_port: int = field(default_factory=lambda: _env_int("QINLING_KAFKA_PORT", 9092))
    controller_port: int = field(default_factory=lambda: _env_int("QINLING_KAFKA_CONTROLLER_PORT", 9093))
    es_port: int = field(default_factory=lambda: _env_int("QINLING_ES_PORT", 9200))
    kafka_heap: str = field(default_factory=lambda: os.environ.get("QINLING_KAFKA_HEAP", "512m"))
    es_heap: str = field(default_factory=lambda: os.environ.get("QINLING_ES_HEAP", "1g"))
    es_user: str = "qinling-es"
    java_home: str = field(default_factory=lambda: os.environ.get("QINLING_KAFKA_JAVA_HOME", ""))
    es_java_home: str = field(default_factory=lambda: os.environ.get("QINLING_ES_JAVA_HOME", ""))
    cache: Path = field(default_factory=lambda: Path(os.environ.get("QINLING_SERVICES_CACHE", REPO / ".cache" / "services")))
    # empty: <cache>/run; another directory runs an independent instance (with other ports)
    run_dir: str = field(default_factory=lambda: os.environ.get("QINLING_SERVICES_DIR", ""))

    def __post_init__(self) -> None:
        self.cache = Path(self.cache).resolve()
        self.run_dir = str(Path(self.run_dir).resolve()) if self.run_dir else ""
        if not self.java_home:
            self.java_home = _default_java_home()
        if not self.es_java_home:
            major = int(self.es_version.split(".")[0])
            temurin = Path("/usr/lib/jvm/temurin-25-jdk-amd64")
            # 8.x runs on Java 17; 9.x needs 21+.
            self.es_java_home = str(temurin) if major >= 9 and temurin.is_dir() else self.java_home

    # ------------------------------------------------------------ paths
    @property
    def m2(self) -> Path:
        return self.cache / "m2"

    @property
    def kafka_home(self) -> Path:
        return self.cache / f"kafka-{self.kafka_version}"

    @property
    def es_home(self) -> Path:
        return self.cache / f"elasticsearch-{self.es_version}"

    @property
    def run(self) -> Path:
        return Path(self.run_dir) if self.run_dir else self.cache / "run"

    @property
    def es_conf(self) -> Path:
        """The installation's config/ for the default instance; a copy in the run directory for another."""
        return self.es_run / "config" if self.run_dir else self.es_home / "config"

    @property
    def es_run(self) -> Path:
        return self.run / "es"

    def pid_file(self, svc: str) -> Path:
        return self.run / "kafka.pid" if svc == KAFKA else self.es_run / "es.pid"

    def log_file(self, svc: str) -> Path:
        return self.run / "kafka.log" if svc == KAFKA else self.es_run / "logs" / "qinling.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def es_url(self) -> str:
        return f"http://127.0.0.1:{self.es_port}"


# ---------------------------------------------------------------- helpers


def _log(msg: str) -> None:
    print(f"[services] {msg}", file=sys.stderr, flush=True)


def _port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _tail(path: Path, n: int = 50) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return "\n".join(lines[-n:])


def _mvn(args: Sequence[str], settings: Settings, cwd: Path) -> None:
    mvn = shutil.which("mvn")
    if not mvn:
        raise ServiceError("`mvn` not found: apt-get install maven")
    cmd = [mvn, "-B", "-q", f"-Dmaven.repo.local={settings.m2}", *args]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip().splitlines()
        raise ServiceError(
            "Maven could not fetch the artifacts (is Maven Central reachable?)\n  $ "
            + " ".join(cmd)
            + "\n"
            + "\n".join(out[-40:])
        )


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


# ---------------------------------------------------------------- fetch

KAFKA_POM = """\
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>qinling.services</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencyManagement>
    <dependencies>
      <dependency>
        <groupId>org.apache.logging.log4j</groupId>
        <artifactId>log4j-bom</artifactId>
        <version>{log4j}</version>
        <type>pom</type>
        <scope>import</scope>
      </dependency>
    </dependencies>
  </dependencyManagement>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version>
    </dependency>
    <!-- Logging is not in Kafka's POM. Kafka logs through slf4j-api 1.7: the log4j2 binding for it. -->
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
    </dependency>
  </dependencies>
</project>
"""


def fetch_kafka(settings: Settings) -> Path:
    home = settings.kafka_home
    lib = home / "lib"
    marker = lib / ".complete"
    if marker.exists():
        return lib
    home.mkdir(parents=True, exist_ok=True)
    (home / "pom.xml").write_text(KAFKA_POM.format(kafka=settings.kafka_version, log4j=settings.log4j_version))
    tmp = home / "lib.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    _log(f"fetching Kafka {settings.kafka_version} from Maven Central into {lib}")
    _mvn(
        [
            "-f",
            str(home / "pom.xml"),
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={tmp}",
        ],
        settings,
        home,
    )
    shutil.rmtree(lib, ignore_errors=True)
    tmp.rename(lib)
    marker.write_text(settings.kafka_version + "\n")
    return lib


def _ensure_es_user(user: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(user)
    except KeyError:
        pass
    if os.geteuid() != 0:
        raise ServiceError(f"Elasticsearch refuses to run as root and user {user!r} does not exist: run once as root to create it")
    _log(f"creating system user {user} (Elasticsearch refuses to run as root)")
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", user],
        check=True,
    )
    return pwd.getpwnam(user)


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, gid)


def fetch_elasticsearch(settings: Settings) -> Path:
    home = settings.es_home
    marker = home / ".qinling-complete"
    if marker.exists():
        return home
    v = settings.es_version
    dl = settings.cache / "downloads"
    dl.mkdir(parents=True, exist_ok=True)
    zip_path = dl / f"elasticsearch-{v}.zip"
    if not zip_path.exists():
        _log(f"fetching Elasticsearch {v} integ-test zip from Maven Central")
        _mvn(
            [
                f"{DEPENDENCY_PLUGIN}:copy",
                f"-Dartifact={ES_ARTIFACT.format(v=v)}",
                f"-DoutputDirectory={dl}",
                "-Dmdep.stripVersion=false",
            ],
            settings,
            dl,
        )
    staging = settings.cache / f".unpack-es-{v}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    # unzip (not Python's zipfile): keeps the executable bits of bin/ and the JDK-less launcher
    proc = subprocess.run(["unzip", "-q", str(zip_path), "-d", str(staging)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ServiceError(f"unzip {zip_path} failed: {proc.stderr.strip()} (delete it and retry)")
    (top,) = list(staging.iterdir())
    shutil.rmtree(home, ignore_errors=True)
    top.rename(home)
    shutil.rmtree(staging)
    # The zip stays in m2 only; the copy here is no longer needed.
    zip_path.unlink()
    marker.write_text(v + "\n")
    return home


def fetch(services: Iterable[str] = SERVICES, settings: Settings | None = None) -> dict[str, float]:
    """Download what is missing. Returns seconds spent per service (0.0 when cached)."""
    settings = settings or Settings()
    took: dict[str, float] = {}
    for svc in services:
        t0 = time.monotonic()
        if svc == KAFKA:
            fetch_kafka(settings)
        elif svc == ELASTICSEARCH:
            fetch_elasticsearch(settings)
        else:
            raise ServiceError(f"unknown service {svc!r}: choose from {', '.join(SERVICES)}")
        took[svc] = time.monotonic() - t0
    return took


# ---------------------------------------------------------------- process bookkeeping


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _marker(svc: str, settings: Settings) -> tuple[str, str]:
    """Two strings the command line of *our* JVM contains (guards against recycled pids)."""
    if svc == KAFKA:
        return "kafka.Kafka", str(settings.run / "server.properties")
    return "org.elasticsearch.bootstrap.Elasticsearch", str(settings.es_home)


def running_pid(svc: str, settings: Settings) -> int | None:
    """Pid of the JVM `up` started for `svc`, if it is still alive; None otherwise."""
    pid = _read_pid(settings.pid_file(svc))
    if pid is None:
        return None
    cmd = _cmdline(pid)
    a, b = _marker(svc, settings)
    if a in cmd and b in cmd:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return None
        return None if state == "Z" else pid
    return None


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _load_state(settings: Settings) -> Settings:
    """The settings the running services were started with (ports may differ from the defaults)."""
    path = settings.run / "state.json"
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return settings
    for k in ("kafka_version", "es_version", "kafka_port", "controller_port", "es_port"):
        if k in saved:
            setattr(settings, k, saved[k])
    return settings


def _save_state(settings: Settings) -> None:
    settings.run.mkdir(parents=True, exist_ok=True)
    d = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(settings).items()}
    (settings.run / "state.json").write_text(json.dumps(d, indent=2) + "\n")
    env = settings.run / "env"
    lines = [f"# written by `python -m pipeline.services up` at {time.strftime('%Y-%m-%dT%H:%M:%S')}"]
    if running_pid(KAFKA, settings) or _port_open(settings.kafka_port):
        lines.append(f"QINLING_TEST_KAFKA={settings.bootstrap}")
    if running_pid(ELASTICSEARCH, settings) or _port_open(settings.es_port):
        lines.append(f"QINLING_TEST_ES={settings.es_url}")
    env.write_text("\n".join(lines) + "\n")


def read_env_file(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        text = path.read_text()
    except OSError:
        return out
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        k, v = line.removeprefix("export ").split("=", 1)
        out[k.strip()] = v.strip().strip("'\"")
    return out


# ---------------------------------------------------------------- Kafka

LOG4J2_PROPERTIES = """\
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.org.name = org.apache.kafka
logger.org.level = INFO
logger.zk.name = org.apache.zookeeper
logger.zk.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


def _kafka_properties(settings: Settings, data: Path) -> str:
    p, c = settings.kafka_port, settings.controller_port
    return textwrap.dedent(
        f"""\
        # generated by pipeline.services: single KRaft node, broker and controller, loopback only
        process.roles=broker,controller
        node.id=1
        controller.quorum.bootstrap.servers=127.0.0.1:{c}
        listeners=PLAINTEXT://127.0.0.1:{p},CONTROLLER://127.0.0.1:{c}
        advertised.listeners=PLAINTEXT://127.0.0.1:{p},CONTROLLER://127.0.0.1:{c}
        controller.listener.names=CONTROLLER
        inter.broker.listener.name=PLAINTEXT
        listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
        log.dirs={data}
        num.partitions=1
        offsets.topic.replication.factor=1
        offsets.topic.num.partitions=6
        transaction.state.log.replication.factor=1
        transaction.state.log.min.isr=1
        share.coordinator.state.topic.replication.factor=1
        share.coordinator.state.topic.min.isr=1
        group.initial.rebalance.delay.ms=0
        # lets tests use a short session.timeout.ms, so a killed worker's partitions move in seconds
        group.min.session.timeout.ms=1000
        auto.create.topics.enable=true
        log.retention.hours=24
        log.segment.bytes=67108864
        num.network.threads=2
        num.io.threads=4
        """
    )


RESTART_MARK = "[pipeline.services] restarting the broker with its data kept"


def _java(settings: Settings) -> str:
    return str(Path(settings.java_home) / "bin" / "java")


def _kafka_cluster_id() -> str:
    while True:  # Kafka's Uuid.randomUuid: 16 random bytes, base64url, never starting with '-'
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def start_kafka(settings: Settings, fresh: bool = True) -> subprocess.Popen[bytes] | None:
    """Start the broker; `fresh=False` keeps the data directory (a restarted broker keeps its log)."""
    if running_pid(KAFKA, settings):
        _log(f"kafka already running (pid {running_pid(KAFKA, settings)}) on {settings.bootstrap}")
        return None
    for port in (settings.kafka_port, settings.controller_port):
        if _port_open(port):
            raise ServiceError(
                f"port 127.0.0.1:{port} is already in use by a process pipeline.services did not start; "
                "stop it, or choose other ports with QINLING_KAFKA_PORT / QINLING_KAFKA_CONTROLLER_PORT "
                "(or --kafka-port / --controller-port)"
            )
    lib = fetch_kafka(settings)
    run = settings.run
    run.mkdir(parents=True, exist_ok=True)
    data = run / "kafka-data"
    if fresh:
        shutil.rmtree(data, ignore_errors=True)  # fresh per `up`: test runs start clean
    data.mkdir(exist_ok=True)
    props = run / "server.properties"
    props.write_text(_kafka_properties(settings, data))
    log4j = run / "log4j2.properties"
    log4j.write_text(LOG4J2_PROPERTIES)
    cp = f"{lib}/*"
    base = [_java(settings), f"-Dlog4j2.configurationFile={log4j}", "-cp", cp]
    fmt = subprocess.CompletedProcess([], 0, "", "") if not fresh and (data / "meta.properties").exists() else subprocess.run(
        [*base, "-Xmx256m", "kafka.tools.StorageTool", "format", "--standalone", "--ignore-formatted",
         "-t", _kafka_cluster_id(), "-c", str(props)],
        capture_output=True,
        text=True,
    )
    if fmt.returncode != 0:
        raise ServiceError(f"Kafka StorageTool format failed:\n{fmt.stdout}{fmt.stderr}")
    logf = open(settings.log_file(KAFKA), "wb" if fresh else "ab")
    if not fresh:
        logf.write(f"\n{RESTART_MARK} {time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode())
        logf.flush()
    heap = settings.kafka_heap
    cmd = [
        _java(settings),
        f"-Xms{heap}",
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:InitiatingHeapOccupancyPercent=35",
        "-XX:+ExplicitGCInvokesConcurrent",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j}",
        f"-Dkafka.logs.dir={run}",
        "-cp",
        cp,
        "kafka.Kafka",
        str(props),
    ]
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, cwd=run)
    logf.close()
    settings.pid_file(KAFKA).write_text(f"{proc.pid}\n")
    _log(f"kafka starting (pid {proc.pid}) on {settings.bootstrap}, log {settings.log_file(KAFKA)}")
    return proc


def kafka_ready(settings: Settings) -> bool:
    if not _port_open(settings.kafka_port):
        return False
    try:
        text = settings.log_file(KAFKA).read_text(errors="replace")
    except OSError:
        return False
    # after a restart the log is appended to: the last start must be followed by "started"
    return "Kafka Server started" in text[max(0, text.rfind(RESTART_MARK)) :]


# ---------------------------------------------------------------- Elasticsearch


def _es_yml(settings: Settings) -> str:
    return textwrap.dedent(
        f"""\
        # generated by pipeline.services
        cluster.name: qinling
        node.name: qinling-1
        discovery.type: single-node
        network.host: 127.0.0.1
        http.port: {settings.es_port}
        transport.port: {settings.es_port + 100}
        path.data: {settings.es_run / "data"}
        path.logs: {settings.es_run / "logs"}
        xpack.security.enabled: false
        cluster.routing.allocation.disk.threshold_enabled: false
        action.destructive_requires_name: true
        """
    )


def _es_get(settings: Settings, path: str, timeout: float = 5.0) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(settings.es_url + path, timeout=timeout) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]
    except (OSError, ValueError, urllib.error.URLError):
        return None


def _es_put(settings: Settings, path: str, body: dict[str, object]) -> None:
    req = urllib.request.Request(
        settings.es_url + path, data=json.dumps(body).encode(), method="PUT", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()


def start_elasticsearch(settings: Settings, fresh: bool = True) -> subprocess.Popen[bytes] | None:
    """Start the node; `fresh=False` keeps its data directory (a restarted node keeps its indices)."""
    if running_pid(ELASTICSEARCH, settings):
        _log(f"elasticsearch already running (pid {running_pid(ELASTICSEARCH, settings)}) on {settings.es_url}")
        return None
    for port in (settings.es_port, settings.es_port + 100):
        if _port_open(port):
            raise ServiceError(
                f"port 127.0.0.1:{port} is already in use by a process pipeline.services did not start; "
                "stop it, or choose another port with QINLING_ES_PORT (or --es-port; transport uses port+100)"
            )
    user = _ensure_es_user(settings.es_user)
    home = fetch_elasticsearch(settings)
    run = settings.es_run
    if fresh:
        shutil.rmtree(run, ignore_errors=True)  # fresh per `up`
    (run / "data").mkdir(parents=True, exist_ok=True)
    (run / "logs").mkdir(exist_ok=True)
    conf = settings.es_conf
    if conf != home / "config" and not conf.exists():
        shutil.copytree(home / "config", conf)
    (conf / "elasticsearch.yml").write_text(_es_yml(settings))
    (conf / "jvm.options.d").mkdir(exist_ok=True)
    (conf / "jvm.options.d" / "heap.options").write_text(f"-Xms{settings.es_heap}\n-Xmx{settings.es_heap}\n")
    settings.run.mkdir(parents=True, exist_ok=True)
    _chown_tree(home, user.pw_uid, user.pw_gid)
    _chown_tree(run, user.pw_uid, user.pw_gid)
    console = open(run / "console.log", "wb")
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ES_JAVA_HOME": settings.es_java_home,
        "ES_PATH_CONF": str(conf),
        "LANG": "C.UTF-8",
    }
    cmd = ["runuser", "-u", settings.es_user, "--", str(home / "bin" / "elasticsearch"), "-d", "-p", str(settings.pid_file(ELASTICSEARCH))]
    if os.geteuid() != 0:
        raise ServiceError("starting Elasticsearch needs root (to run it as the qinling-es user)")
    # The launcher daemonizes the server and exits once it is up (or exits non-zero when it failed).
    proc = subprocess.Popen(cmd, stdout=console, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True, cwd=run)
    console.close()
    _log(f"elasticsearch {settings.es_version} starting on {settings.es_url} (ES_JAVA_HOME={settings.es_java_home}), log {settings.log_file(ELASTICSEARCH)}")
    return proc


def es_ready(settings: Settings) -> bool:
    if not _port_open(settings.es_port):
        return False
    h = _es_get(settings, "/_cluster/health?wait_for_status=yellow&timeout=1s")
    return bool(h) and h.get("status") in ("yellow", "green")  # type: ignore[union-attr]


# ---------------------------------------------------------------- commands


def _ready(svc: str, settings: Settings) -> bool:
    return kafka_ready(settings) if svc == KAFKA else es_ready(settings)


def _failure(svc: str, settings: Settings, why: str) -> ServiceError:
    logs = [settings.log_file(svc)]
    if svc == ELASTICSEARCH:
        logs.insert(0, settings.es_run / "console.log")
    tails = "\n".join(f"--- last 50 lines of {p}:\n{_tail(p)}" for p in logs)
    return ServiceError(f"{svc} {why}\n{tails}")


def _wait(services: Sequence[str], settings: Settings, procs: dict[str, subprocess.Popen[bytes] | None], timeout: float, t0: float) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    pending = list(services)
    ready_at: dict[str, float] = {}
    while pending:
        for svc in list(pending):
            proc = procs.get(svc)
            if _ready(svc, settings):
                ready_at[svc] = time.monotonic() - t0
                pending.remove(svc)
                _log(f"{svc} ready after {ready_at[svc]:.1f}s")
                continue
            if proc is not None and proc.poll() is not None:
                # Kafka: the broker itself died. ES: the launcher exits 0 once the daemon is up.
                if svc == KAFKA or proc.returncode != 0:
                    raise _failure(svc, settings, f"exited with status {proc.returncode} before it was ready")
                procs[svc] = None
                if not running_pid(svc, settings):
                    raise _failure(svc, settings, "launcher finished but the server is not running")
        if pending and time.monotonic() > deadline:
            raise _failure(", ".join(pending), settings, f"not ready after {timeout:.0f}s") if len(pending) == 1 else ServiceError(
                "\n\n".join(str(_failure(s, settings, f"not ready after {timeout:.0f}s")) for s in pending)
            )
        if pending:
            time.sleep(0.25)
    return ready_at


def up(services: Sequence[str] = SERVICES, settings: Settings | None = None, timeout: float = 240.0) -> dict[str, float]:
    """Fetch if needed, start every service in parallel, wait until all are ready. Returns seconds to ready."""
    settings = settings or Settings()
    services = list(dict.fromkeys(services or SERVICES))
    for s in services:
        if s not in SERVICES:
            raise ServiceError(f"unknown service {s!r}: choose from {', '.join(SERVICES)}")
    fetch(services, settings)  # sequential: one Maven local repo
    t0 = time.monotonic()
    procs: dict[str, subprocess.Popen[bytes] | None] = {}
    errors: list[BaseException] = []

    def start(svc: str) -> None:
        try:
            procs[svc] = start_kafka(settings) if svc == KAFKA else start_elasticsearch(settings)
        except BaseException as e:  # noqa: BLE001 - re-raised below
            errors.append(e)

    threads = [threading.Thread(target=start, args=(s,)) for s in services]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        down(services, settings)
        raise errors[0]
    try:
        ready = _wait(services, settings, procs, timeout, t0)
        if ELASTICSEARCH in services:
            _es_put(settings, "/_cluster/settings", {"persistent": {"cluster.routing.allocation.disk.threshold_enabled": False}})
    except BaseException:
        down(services, settings)
        raise
    _save_state(settings)
    return ready


def wait(services: Sequence[str] = SERVICES, settings: Settings | None = None, timeout: float = 240.0) -> dict[str, float]:
    settings = _load_state(settings or Settings())
    return _wait(list(services or SERVICES), settings, {}, timeout, time.monotonic())


def _stop_pid(pid: int, timeout: float = 60.0) -> None:
    try:
        os.kill(pid, signal.SIGCONT)  # a test may have paused it
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        # our own child: reap it
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            pass
        if not _cmdline(pid):
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)


def down(services: Sequence[str] = SERVICES, settings: Settings | None = None) -> list[str]:
    """Stop the services `up` started (by pid file). Returns the ones it stopped."""
    settings = _load_state(settings or Settings())
    stopped: list[str] = []
    for svc in services or SERVICES:
        pid = running_pid(svc, settings)
        if pid is not None:
            _log(f"stopping {svc} (pid {pid})")
            _stop_pid(pid)
            stopped.append(svc)
        settings.pid_file(svc).unlink(missing_ok=True)
    if settings.run.exists():
        _save_state(settings)
    return stopped


def status(settings: Settings | None = None) -> dict[str, dict[str, object]]:
    settings = _load_state(settings or Settings())
    out: dict[str, dict[str, object]] = {}
    for svc in SERVICES:
        pid = running_pid(svc, settings)
        addr = settings.bootstrap if svc == KAFKA else settings.es_url
        out[svc] = {
            "version": settings.kafka_version if svc == KAFKA else settings.es_version,
            "address": addr,
            "pid": pid,
            "ready": _ready(svc, settings),
            "rss_mib": round(rss_mib(pid) or 0, 1) if pid else None,
            "fetched": (settings.kafka_home / "lib" / ".complete").exists() if svc == KAFKA else (settings.es_home / ".qinling-complete").exists(),
        }
    return out


def logs(services: Sequence[str] = SERVICES, settings: Settings | None = None, lines: int = 50) -> str:
    settings = _load_state(settings or Settings())
    parts = []
    for svc in services or SERVICES:
        p = settings.log_file(svc)
        parts.append(f"--- {svc}: {p}\n{_tail(p, lines)}")
    return "\n".join(parts)


def cache_size(settings: Settings | None = None) -> dict[str, int]:
    settings = settings or Settings()
    out = {}
    for name, p in (("m2", settings.m2), ("kafka", settings.kafka_home), ("elasticsearch", settings.es_home)):
        out[name] = _dir_size(p) if p.exists() else 0
    return out


# ---------------------------------------------------------------- faults (integration tests)


def signal_service(svc: str, sig: int, settings: Settings | None = None) -> int:
    """Send `sig` to the JVM `up` started for `svc` (SIGKILL, SIGSTOP, SIGCONT, ...). Returns its pid."""
    settings = _load_state(settings or Settings())
    pid = running_pid(svc, settings)
    if pid is None:
        raise ServiceError(f"{svc} is not running (no live pid in {settings.pid_file(svc)}); start it with `up {svc}`")
    os.kill(pid, sig)
    return pid


def kill(svc: str, settings: Settings | None = None, timeout: float = 30.0) -> int:
    """SIGKILL the service (no clean shutdown) and wait until the process is gone. Returns the pid."""
    pid = signal_service(svc, signal.SIGKILL, settings)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                break
        except ChildProcessError:
            pass
        if not Path(f"/proc/{pid}").exists():
            break
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                break
        except OSError:
            break
        time.sleep(0.05)
    return pid


def pause(svc: str, settings: Settings | None = None) -> int:
    """SIGSTOP: the process keeps its sockets open but answers nothing (a hung node)."""
    return signal_service(svc, signal.SIGSTOP, settings)


def resume(svc: str, settings: Settings | None = None) -> int:
    return signal_service(svc, signal.SIGCONT, settings)


def restart(svc: str, settings: Settings | None = None, timeout: float = 120.0) -> float:
    """Start a stopped or killed service again on the same ports, keeping its data; wait until ready.
    Returns seconds to ready."""
    settings = _load_state(settings or Settings())
    if running_pid(svc, settings):
        raise ServiceError(f"{svc} is still running; kill or stop it first")
    t0 = time.monotonic()
    deadline = t0 + 30
    ports = (settings.kafka_port, settings.controller_port) if svc == KAFKA else (settings.es_port, settings.es_port + 100)
    while any(_port_open(p) for p in ports) and time.monotonic() < deadline:
        time.sleep(0.1)  # the old listener sockets are closing
    proc = start_kafka(settings, fresh=False) if svc == KAFKA else start_elasticsearch(settings, fresh=False)
    if proc is not None:
        _RESTARTED.append(proc)  # the broker outlives this call: keep its Popen (no "still running" warning)
    return _wait([svc], settings, {svc: proc}, timeout, t0)[svc]


_RESTARTED: list[subprocess.Popen[bytes]] = []
