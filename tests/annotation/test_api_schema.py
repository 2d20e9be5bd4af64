"""The OpenAPI schema at /api/schema/ and the interactive docs at /api/docs/."""
from __future__ import annotations

import json
import re

import pytest
from drf_spectacular.validation import validate_schema

pytestmark = pytest.mark.django_db


def _schema(client) -> dict:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return json.loads(response.content)


def test_it_serves_a_valid_openapi_schema_of_every_endpoint(client_for, member):
    schema = _schema(client_for(member))
    validate_schema(schema)  # raises on anything OpenAPI 3 does not allow
    assert schema["info"]["title"] == "Arbiter API"
    paths = schema["paths"]
    for path in ("/api/projects/", "/api/projects/{slug}/", "/api/projects/{slug}/members/", "/api/projects/{slug}/members/{username}/", "/api/projects/{slug}/statistics/"):
        assert path in paths, path
    assert set(paths["/api/projects/"]) >= {"get", "post"}
    assert set(paths["/api/projects/{slug}/"]) >= {"get", "patch", "put"}
    assert set(paths["/api/projects/{slug}/members/{username}/"]) >= {"get", "patch", "delete"}
    # Token auth is documented, so a script author knows how to call it.
    assert "tokenAuth" in schema["components"]["securitySchemes"]
    project = schema["components"]["schemas"]["Project"]["properties"]
    for field in ("kind", "overlap", "lease_seconds", "likert_points", "ranking_k", "rating_threshold", "role"):
        assert field in project, field
    # Enum names a client generator can use: no hash suffixes from name collisions.
    hashed = [n for n in schema["components"]["schemas"] if re.search(r"[0-9a-fA-F]{3}Enum$", n) and re.search(r"\d", n[-7:-4])]
    assert not hashed, hashed


def test_it_describes_every_operation(client_for, member):
    schema = _schema(client_for(member))
    undocumented = [
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        if path.startswith("/api/projects/") and path.count("/") <= 5
        for method, op in operations.items()
        if method in ("get", "post", "put", "patch", "delete") and not op.get("summary") and not op.get("description")
    ]
    assert not [u for u in undocumented if "/members" in u or u.endswith("/api/projects/") or u.endswith("{slug}/")], undocumented


def test_it_serves_the_interactive_docs(client_for, member):
    page = client_for(member).get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "swagger-ui" in html.lower() and "/api/schema/" in html


def test_it_hands_out_tokens_that_the_api_accepts(client, make_user, project, member):
    from rest_framework.test import APIClient

    from tests.conftest import PASSWORD

    token = client.post("/api/token/", {"username": "member", "password": PASSWORD}).json()["token"]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert [p["slug"] for p in api.get("/api/projects/").json()["results"]] == ["demo"]
    assert APIClient().get("/api/projects/").status_code in (401, 403)
