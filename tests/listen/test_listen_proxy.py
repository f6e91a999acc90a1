"""`hookyard listen` through the VM deployment's nginx site: the WebSocket upgrade is passed on."""

import asyncio
import re
import subprocess

import aiohttp
from listen_frames import SECRET, next_frame, signed

from helpers import REPO
from hookyard_cli.devstack import free_ports, port_open
from tools import nginx, nginx_config

SITE = REPO / "deploy" / "vm" / "hookyard-nginx.conf"


def plain_http_site(ingest_port: int, port: int, redirect_port: int) -> str:
    """The site as shipped, but on free local ports and without TLS (no certificate needed)."""
    site = SITE.read_text()
    site = re.sub(r"server 127\.0\.0\.1:\d+;", f"server 127.0.0.1:{ingest_port};", site)
    site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{port};")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{redirect_port};")
    site = re.sub(r"\n\s*listen \[::\]:\d+[^;]*;", "", site)
    return re.sub(r"\n\s*ssl_certificate(_key)? [^;]+;", "", site)


async def test_the_nginx_site_passes_listeners_websockets_on(start_ingest, tmp_path):
    ingest = await start_ingest()
    port, redirect_port = free_ports(2)
    config = nginx_config(tmp_path, plain_http_site(ingest.settings.ingest_port, port, redirect_port))
    server = subprocess.Popen(
        [str(nginx()), "-p", str(tmp_path), "-c", str(config), "-g", "daemon off;"],
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(100):
            if port_open(port):
                break
            assert server.poll() is None, server.stderr.read().decode()
            await asyncio.sleep(0.05)
        key = await ingest.tenant()
        source = await ingest.source(key, "hmac", secrets=[SECRET])
        proxied = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(
                f"{proxied}/v1/sources/{source['id']}/listen", headers={"Authorization": f"Bearer {key}"}
            )
            assert (await next_frame(ws)).type == "hello"
            raw, headers = signed({"type": "order.created"})
            async with session.post(f"{proxied}/in/{source['id']}", data=raw, headers=headers) as response:
                assert response.status == 200
                accepted = await response.json()
            frame = await next_frame(ws)
            assert frame.id == accepted["id"] and frame.request.raw_body == raw
            await ws.close()
    finally:
        server.terminate()
        server.wait(10)
