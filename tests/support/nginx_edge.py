"""nginx from Debian in front of the scale-out tests' nodes, and the self-signed certificate
it serves TLS with."""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.free_ports import free_port
from tests.support.loopback import START_TIMEOUT, need_binary, port_open
from tests.support.paths import REPO

NGINX_CONF = REPO / "deploy" / "nginx" / "parley.conf"
NGINX = os.environ.get("PARLEY_TEST_NGINX", "/usr/sbin/nginx")


class Nginx:
    """nginx from Debian running ``deploy/nginx/parley.conf`` — the shipped file, with only
    the upstream addresses, the listen ports and the certificate paths replaced — as a child
    in the foreground. It serves TLS on ``tls_port`` with a self-signed certificate for
    127.0.0.1 (``ca_file`` verifies it), redirects plain HTTP on ``redirect_port``, and also
    listens in plain HTTP on ``port`` inside the TLS server block, so tests that are not
    about TLS reach the same locations without certificates."""

    def __init__(self, directory: Path, node_ports: list[int]) -> None:
        self.directory = directory
        self.port = free_port()
        self.tls_port = free_port()
        self.redirect_port = free_port()
        self.node_ports = node_ports
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        return f"https://127.0.0.1:{self.tls_port}"

    @property
    def ca_file(self) -> Path:
        return self.directory / "tls" / "cert.pem"

    def config(self) -> str:
        shipped = NGINX_CONF.read_text()
        servers = "".join(
            f"    server 127.0.0.1:{port} max_fails=2 fail_timeout=5s;\n"
            for port in self.node_ports
        )
        shipped, count = re.subn(r"(?m)^\s*server parley\d+:8000[^\n]*\n", "", shipped)
        assert count == 2, "deploy/nginx/parley.conf changed shape: update the test"
        head = "upstream parley_nodes {\n"
        shipped = shipped.replace(head, head + servers)
        tls = self.directory / "tls"
        replacements = {
            "    listen [::]:80;\n": "",
            "    listen [::]:443 ssl http2;\n": "",
            "listen 80;": f"listen 127.0.0.1:{self.redirect_port};",
            "listen 443 ssl http2;": (
                f"listen 127.0.0.1:{self.tls_port} ssl http2;\n"
                f"    listen 127.0.0.1:{self.port};"
            ),
            "/etc/parley/tls/fullchain.pem": str(tls / "cert.pem"),
            "/etc/parley/tls/privkey.pem": str(tls / "key.pem"),
        }
        for shipped_text, test_text in replacements.items():
            assert shipped_text in shipped, f"deploy/nginx/parley.conf lost {shipped_text!r}"
            shipped = shipped.replace(shipped_text, test_text)
        d = self.directory
        # Root drops to "nobody" for workers, who could not write the test's directory.
        user = "user root;\n" if os.geteuid() == 0 else ""
        return (
            f"{user}worker_processes 1;\n"
            f"error_log {d}/error.log warn;\npid {d}/nginx.pid;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            "  access_log off;\n"
            f"  client_body_temp_path {d}/client_body;\n  proxy_temp_path {d}/proxy;\n"
            f"  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n"
            f"  scgi_temp_path {d}/scgi;\n"
            + shipped
            + "\n}\n"
        )

    def start(self) -> Nginx:
        need_binary("nginx", NGINX, "Install it: apt-get install -y nginx (.ci/run does).")
        self.directory.mkdir(parents=True, exist_ok=True)
        write_self_signed_certificate(self.directory / "tls", "127.0.0.1")
        conf = self.directory / "nginx.conf"
        conf.write_text(self.config())
        log = (self.directory / "nginx.out").open("ab")
        self.process = subprocess.Popen(
            [NGINX, "-c", str(conf), "-p", str(self.directory), "-g", "daemon off;"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start:\n{self.log()}")
            time.sleep(0.02)
        return self

    def log(self) -> str:
        parts = [self.directory / "error.log", self.directory / "nginx.out"]
        return "\n".join(p.read_text(errors="replace") for p in parts if p.exists())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: workers finish, then exit
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def write_self_signed_certificate(directory: Path, address: str) -> None:
    """A P-256 certificate for ``address`` (and localhost), valid for a day, as
    ``cert.pem`` and ``key.pem`` in ``directory``: the certificate is its own CA."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "parley-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(address)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (directory / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file = directory / "key.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
