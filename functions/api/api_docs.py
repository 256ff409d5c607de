"""The API's docs pages (Swagger UI and ReDoc), served by the function itself from packaged assets.

Why not FastAPI's own ``/docs``: it loads Swagger UI from a CDN (nothing may load from outside
here, and a fleet operator's network may not reach one either) and writes absolute URLs built
from ``root_path``. Behind the emulator the API lives under ``/_aws/execute-api/<id>/v1``, and
behind a custom domain under a base path, so ``/v1/openapi.json`` would miss. These pages use
only relative URLs: the assets, the schema and the "Try it out" server are all found next to
the page, wherever it is mounted. The assets come from ``fastapi-offline``'s wheel (Swagger UI
5 and ReDoc 2, pinned in the deps layer), not fetched at run time.

The pages and the schema are open (API Gateway lets them through without a key): the
description of an API is not a secret. Every operation still needs its key, which the page's
"Authorize" button lets the user enter.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["ASSETS_PATH", "DOCS_PATH", "REDOC_PATH", "install_docs"]

DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
ASSETS_PATH = "/docs-assets"
ASSET_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js")
# The browser itself holds the pages to this machine's origin: ReDoc's menu, for one, shows a
# logo from cdn.redoc.ly that no option turns off. Inline scripts are the pages' own bootstrap;
# ReDoc runs its search index in a blob: worker.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)

# The page's base (the API's URL up to the stage or base path) is the page's own URL without
# its last segment; the schema and the "Try it out" server are taken relative to it, so the
# same page works at /v1/docs on AWS and at /_aws/execute-api/<id>/v1/docs on the emulator.
_BASE_JS = "const base = window.location.pathname.replace(/\\/[^/]*\\/?$/, '');"

_SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} - API docs</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="docs-assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs-assets/swagger-ui-bundle.js"></script>
<script>
{base_js}
fetch(base + '/openapi.json')
  .then((response) => response.json())
  .then((spec) => {{
    spec.servers = [{{url: window.location.origin + base, description: 'this API'}}];
    window.ui = SwaggerUIBundle({{
      spec: spec,
      dom_id: '#swagger-ui',
      deepLinking: true,
      persistAuthorization: true,
      displayRequestDuration: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
      layout: 'BaseLayout',
    }});
  }})
  .catch((error) => {{
    document.getElementById('swagger-ui').textContent = 'Could not load openapi.json: ' + error;
  }});
</script>
</body>
</html>
"""

_REDOC_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} - API reference</title>
<link rel="icon" href="data:,">
</head>
<body>
<div id="redoc"></div>
<script src="docs-assets/redoc.standalone.js"></script>
<script>
{base_js}
Redoc.init(base + '/openapi.json', {{hideDownloadButton: false}}, document.getElementById('redoc'));
</script>
</body>
</html>
"""


def assets_dir() -> Path:
    """Where the packaged Swagger UI and ReDoc files are (a folder of the deps layer)."""
    folder = Path(str(files("fastapi_offline") / "static"))
    missing = [name for name in ASSET_FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"docs assets missing from {folder}: {', '.join(missing)}")
    return folder


def install_docs(api: FastAPI) -> None:
    """Add ``/docs``, ``/redoc`` and their assets to ``api`` (created with ``docs_url=None``)."""
    title = api.title
    swagger = _SWAGGER_PAGE.format(title=title, base_js=_BASE_JS)
    redoc = _REDOC_PAGE.format(title=title, base_js=_BASE_JS)
    api.mount(ASSETS_PATH, StaticFiles(directory=assets_dir()), name="docs-assets")

    headers = {"Content-Security-Policy": CONTENT_SECURITY_POLICY}

    @api.get(DOCS_PATH, include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return HTMLResponse(swagger, headers=headers)

    @api.get(REDOC_PATH, include_in_schema=False)
    def redoc_page() -> HTMLResponse:
        return HTMLResponse(redoc, headers=headers)
