"""cluster.yaml is a config Ray's own cluster launcher accepts, and it starts the hub."""

from __future__ import annotations

from pathlib import Path

import yaml
from ray.autoscaler._private.util import prepare_config, validate_config
from typer.testing import CliRunner

from transports.cli import app

CONFIG = Path(__file__).resolve().parents[1] / "cluster.yaml"


def test_ray_accepts_the_cluster_config() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    validate_config(prepare_config(config))  # raises on any schema error
    assert config["provider"]["worker_ips"]


def test_the_head_starts_the_hub_with_options_chitty_up_has() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    start = next(c for c in config["head_start_ray_commands"] if "chitty up" in c)
    assert "CHITTY_RAY_ADDRESS=auto" in start
    help_text = CliRunner().invoke(app, ["up", "--help"]).output
    for option in ("--data-dir", "--hosts"):
        assert option in start and option in help_text
