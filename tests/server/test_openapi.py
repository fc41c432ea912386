"""``GET /openapi.json``: a valid OpenAPI 3.1 document listing exactly the routes and methods the app serves."""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema
import requests
from openapi_spec_validator import validate
from starlette.routing import Mount, Route

from tests.support.api import Api, md5_hex
from tests.support.live_server import LiveServer
from updl_server.app import create_app
from updl_server.config import ServerConfig
from updl_server.openapi import spec

CONVERTOR = re.compile(r"\{(\w+):\w+\}")


def served(tmp_path: Path) -> set[tuple[str, str]]:
    """Every (path template, method) the app routes, as OpenAPI spells them."""
    app = create_app(ServerConfig(data_dir=tmp_path))
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        if isinstance(route, Route):
            assert route.methods, f"{route.path} answers any method"
            found.update((CONVERTOR.sub(r"{\1}", route.path), m.lower()) for m in route.methods)
        elif isinstance(route, Mount):  # the page's static files
            found.update({(route.path + "/{path}", "get"), (route.path + "/{path}", "head")})
        else:
            raise AssertionError(f"a route of an unknown kind: {route!r}")
    return found


def described() -> set[tuple[str, str]]:
    methods = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
    return {(path, m) for path, item in spec()["paths"].items() for m in item if m in methods}


def test_every_route_and_method_is_described_and_nothing_else(tmp_path: Path) -> None:
    app, doc = served(tmp_path), described()
    assert not app - doc, f"served but missing from the spec: {sorted(app - doc)}"
    assert not doc - app, f"in the spec but not served: {sorted(doc - app)}"


def test_the_document_is_valid_openapi_3_1() -> None:
    document = spec()
    assert document["openapi"].startswith("3.1")
    validate(document)
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_every_error_answer_is_the_json_error_schema() -> None:
    for path, item in spec()["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400 and method != "head":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (path, method, status)


def test_operations_need_the_bearer_token_unless_public() -> None:
    document = spec()
    assert document["security"] == [{"bearerToken": []}]
    assert document["components"]["securitySchemes"]["bearerToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["bearerToken"]["description"],
    }
    public = {
        (path, method)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if op.get("security") == []
    }
    assert ("/health", "get") in public and ("/files/{name}", "get") not in public


def test_the_server_serves_it_without_a_token(live_server: LiveServer) -> None:
    response = requests.get(f"{live_server.url}/openapi.json", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == spec()


def test_a_served_file_info_matches_its_schema_field_for_field(api: Api) -> None:
    answer = api.request(
        "POST",
        "/upload",
        files={"name": (None, "tool"), "mode": (None, "0755"), "file": ("tool", b"#!")},
        data={"md5": md5_hex(b"#!")},
        headers={"Updl-Expires-In": "3600"},
    )
    assert answer.status_code == 200, answer.text
    info = answer.json()
    schema = spec()["components"]["schemas"]["FileInfo"]
    jsonschema.validate(info, schema)
    assert set(info) == set(schema["properties"]), "a FileInfo field is undocumented, or documented but not sent"
    assert info["expires"] is not None and info["mode"] == "0755"
