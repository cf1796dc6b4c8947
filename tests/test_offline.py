"""ragline's start-up, an ingest and a chat on the embedded default make no connection
beyond loopback and no DNS query: every connect() and sendto() of `ragline db upgrade`,
`ragline serve` (with all its threads and children), and the `ragline ingest` client is
recorded by strace and read here."""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.services import RAGLINE, embedded_env, free_port, ragline_server

ADDRESS = re.compile(
    r"sa_family=AF_INET6?, (?:sin6?_port=htons\((?P<port>\d+)\)), "
    r'(?:sin_addr=inet_addr\("(?P<v4>[^"]+)"\)|.*?inet_pton\(AF_INET6, "(?P<v6>[^"]+)")'
)
RESOLVERS = ("/var/run/nscd/socket", "/run/nscd/socket", "/run/systemd/resolve/io.systemd.Resolve")


def strace_prefix(log: Path) -> list[str]:
    return [
        *("strace", "-f", "-qq", "--seccomp-bpf", "-o", str(log)),
        *("-e", "trace=connect,sendto,sendmsg"),
    ]


def recorded(logs: list[Path]) -> tuple[list[str], list[str], int]:
    """(non-loopback connects, DNS queries, loopback connects) in the strace logs."""
    outside: list[str] = []
    dns: list[str] = []
    loopback = 0
    for log in logs:
        for line in log.read_text().splitlines():
            if any(path in line for path in RESOLVERS):
                dns.append(line)
            match = ADDRESS.search(line)
            if not match:
                continue
            if match["port"] == "53":
                dns.append(line)
            address = ipaddress.ip_address(match["v4"] or match["v6"])
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
                address = address.ipv4_mapped
            if address.is_loopback:
                loopback += 1
            else:
                outside.append(line)
    return outside, dns, loopback


def test_start_ingest_and_chat_stay_on_loopback(tmp_path: Path) -> None:
    if shutil.which("strace") is None:
        pytest.fail("strace is missing: scripts/ensure-services.sh installs it")
    port = free_port()
    env = embedded_env(tmp_path / "data", port, LLM_MAX_TOKENS="8")
    server_log, client_log = tmp_path / "serve.strace", tmp_path / "ingest.strace"
    document = tmp_path / "helios.txt"
    document.write_text("The Helios project was started in 2019 by Mara Lindqvist in Uppsala.")
    with ragline_server(tmp_path, env, prefix=strace_prefix(server_log)) as (base, _):
        with httpx.Client(base_url=base, timeout=120) as client:
            chat = client.post("/chats", json={"title": "offline"}).json()
            ingest = subprocess.run(
                [
                    *strace_prefix(client_log),
                    *(RAGLINE, "ingest", str(document), "--chat", chat["id"], "--url", base),
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert ingest.returncode == 0, ingest.stderr
            files = client.get(f"/chats/{chat['id']}/files").json()["items"]
            assert [f["status"] for f in files] == ["indexed"]
            answer = client.post(
                f"/chats/{chat['id']}/chat", json={"text": "Who started the Helios project?"}
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["text"].strip()
            assert answer.json()["sources"]
        time.sleep(0.5)  # let strace flush the server's last lines before it is stopped
    outside, dns, loopback = recorded([server_log, client_log])
    assert loopback > 0  # the record works: the ingest client's connects to the server
    assert outside == []
    assert dns == []
