"""The Ray backend on a local instance with two actors: one run's records, resume, failures recorded.

Ray is the ``ray`` extra, in ``all``: CI installs it, so with CI=true a missing Ray fails
these tests instead of skipping them.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest
from typer.testing import CliRunner

from tests.scale.conftest import DIGITS, assert_same_run, config, manifest, records, time_limit
from xai_cli import api
from xai_cli.errors import UsageError

try:
    import ray
except ImportError:  # pragma: no cover - depends on the install
    ray = None


@pytest.fixture(scope="module")
def local_ray():
    if ray is None:
        message = "Ray is not installed: pip install -e '.[ray]'"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: these tests must run)")
        pytest.skip(message)
    # 4 logical CPUs on 2 cores: two actors x 1 CPU would otherwise leave the read tasks none (a deadlock).
    with time_limit(120):
        ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_two_actors_give_one_process_records_and_resume(local_ray, reference, tmp_path):
    out = tmp_path / "out"
    with time_limit(300):
        summary = api.run(config(out, backend="ray", device="cpu,cpu"))
    assert summary.ok == 20 and summary.exit_code == 0
    assert_same_run(out, reference)
    assert json.loads((out / "run.json").read_text())["device"]["type"] == "ray"
    before = records(out)
    with time_limit(300):
        again = api.run(config(out, backend="ray", device="cpu,cpu"))
    assert (again.ok, again.skipped) == (20, 20)  # finished inputs are not explained again
    assert records(out) == before and all(x.get("resumed") for x in manifest(out))


@pytest.mark.slow
def test_a_bad_input_is_recorded_once_and_the_rest_explained(local_ray, tmp_path):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for p in sorted(DIGITS.glob("*.png"))[:3]:
        shutil.copy(p, imgs / p.name)
    (imgs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not a picture")
    with time_limit(300):
        summary = api.run(config(tmp_path / "out", inputs=(imgs,), backend="ray", device="cpu,cpu"))
    assert (summary.ok, summary.failed, summary.exit_code) == (3, 1, 1)
    lines = {x["input"]: x for x in manifest(tmp_path / "out")}
    assert lines["broken.png"]["status"] == "error" and lines["broken.png"]["reason"]


def test_without_ray_the_flag_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(UsageError, match="pip install"):
        api.run(config(tmp_path / "out", backend="ray"))
    assert not any((tmp_path / "out").rglob("*"))  # nothing written
    from xai_cli.cli import app

    r = CliRunner().invoke(app, ["explain", "--model", "demo-digits", "--backend", "ray", str(DIGITS),
                                 "--out", str(tmp_path / "cli")])
    assert r.exit_code == 2 and "xai-cli[ray]" in r.output and "--backend ray" in r.output
