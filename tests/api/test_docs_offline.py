"""``/docs`` and ``/redoc`` load everything from the server itself (no CDN): they work offline."""

from __future__ import annotations

import re

import httpx

from engine.api.app import create_app
from engine.config import Config
from engine.facade import Engine


async def test_swagger_ui_and_redoc_load_only_local_assets(make_config: object) -> None:
    config: Config = make_config()  # type: ignore[operator]
    async with Engine(config) as engine:
        transport = httpx.ASGITransport(app=create_app(engine))
        async with httpx.AsyncClient(transport=transport, base_url="http://kjobs.test") as client:
            for page in ("/docs", "/redoc"):
                html = (await client.get(page)).text
                urls = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(
                    r"url: '([^']+)'", html
                )
                assert urls, html
                for url in urls:
                    assert url.startswith("/"), f"{page} loads {url} from elsewhere"
                    response = await client.get(url)
                    assert response.status_code == 200, url
                    assert len(response.content) > 100, url
