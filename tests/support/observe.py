"""Reading a live server's metrics and audit log, as an operator's tools would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

METRICS_TOKEN = "metrics-secret-for-tests-0123456789"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(base: str, token: str = METRICS_TOKEN) -> Samples:
    """Every sample of ``GET /metrics``, by name and labels."""
    response = requests.get(f"{base}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the server has no such series (nothing counted yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def audit_lines(path: Path) -> list[dict[str, Any]]:
    """The audit log's lines, each parsed (a line that is not one JSON object fails the test)."""
    if not path.exists():
        return []
    lines = path.read_text("ascii").splitlines()
    parsed = [json.loads(line) for line in lines]
    assert all(isinstance(entry, dict) for entry in parsed)
    return parsed


def events(path: Path, event: str) -> list[dict[str, Any]]:
    """The audit log's lines of one event."""
    return [entry for entry in audit_lines(path) if entry["event"] == event]
