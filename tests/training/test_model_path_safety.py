"""Registering a model from a path in the browser: staff only, only under ARBITER_MODEL_ROOTS, no
symlink out of the folder, and one message for every path that cannot be used, so nobody learns
from the page which files exist on the server."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from safetensors.numpy import save_file

from config.env import EnvError, env_paths
from training.models import ModelArtifact
from training.registry.services import PATH_REFUSED, model_path

pytestmark = pytest.mark.django_db

SECRET = b"TOP-SECRET-KEY-do-not-copy"


def make_folder(path: Path) -> Path:
    """A tiny encoder folder (as in test_registry.py), plus files a model does not need."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"architectures": ["BertModel"], "model_type": "bert"}))
    save_file({"weight": np.zeros((2, 2), dtype=np.float32)}, str(path / "model.safetensors"))
    (path / "tokenizer.json").write_text("{}")
    (path / "README.md").write_text("a model card")
    (path / "1_Pooling").mkdir()
    (path / "1_Pooling" / "config.json").write_text("{}")
    return path


@pytest.fixture
def inbox(settings, tmp_path) -> Path:
    root = tmp_path / "inbox"
    root.mkdir()
    settings.ARBITER_MODEL_ROOTS = [root]
    return root


@pytest.fixture
def secret(tmp_path) -> Path:
    """Stands in for the server's secret_key file: outside the roots, never to be copied."""
    path = tmp_path / "secret_key"
    path.write_bytes(SECRET)
    return path


def stored_bytes(settings) -> list[bytes]:
    return [p.read_bytes() for p in Path(settings.ARTIFACT_ROOT).rglob("*") if p.is_file()]


def register_error(response) -> str:
    found = re.search(r"data-register-error>(.*?)</p>", response.content.decode(), re.S)
    return found.group(1) if found else ""


def test_it_lets_a_manager_register_only_the_packaged_models(client_for, project, owner, member, outsider, inbox):
    make_folder(inbox / "tiny")
    client = client_for(owner)
    page = client.get("/training/models/add/").content.decode()
    assert 'value="minilm"' in page and 'value="folder"' not in page and 'value="gguf"' not in page
    assert "for staff" in page
    for source, path in (("folder", "tiny"), ("folder", str(inbox / "tiny")), ("gguf", str(inbox / "x.gguf"))):
        response = client.post("/training/models/add/", {"source": source, "path": path, "name": "tiny"})
        assert response.status_code == 403
    for user in (member, outsider):
        assert client_for(user).post("/training/models/add/", {"source": "folder", "path": "tiny", "name": "tiny"}).status_code == 403
    assert not ModelArtifact.objects.exists()
    response = client.post("/training/models/add/", {"source": "minilm"})
    assert response.status_code == 302 and ModelArtifact.objects.get().name == "all-minilm-l6-v2"


def test_it_shows_staff_the_roots(client_for, staff, inbox):
    page = client_for(staff).get("/training/models/add/").content.decode()
    assert 'value="folder"' in page and f"<code>{inbox}</code>" in page


def test_it_registers_a_folder_inside_the_root_copying_only_model_files(client_for, staff, inbox, tmp_path, settings):
    make_folder(inbox / "tiny")
    client = client_for(staff)
    response = client.post("/training/models/add/", {"source": "folder", "path": "tiny", "name": "tiny-rel"})
    artifact = ModelArtifact.objects.get(name="tiny-rel")
    assert response.status_code == 302 and response["Location"] == f"/training/models/{artifact.pk}/"
    assert {p.name for p in model_path(artifact).iterdir()} == {"config.json", "model.safetensors", "tokenizer.json"}
    response = client.post("/training/models/add/", {"source": "folder", "path": str(inbox / "tiny"), "name": "tiny-abs"})
    assert response.status_code == 302 and ModelArtifact.objects.filter(name="tiny-abs").exists()
    # An absolute path may name any root; a relative one starts at the first.
    second = tmp_path / "second"
    make_folder(second / "other")
    settings.ARBITER_MODEL_ROOTS = [inbox, second]
    response = client.post("/training/models/add/", {"source": "folder", "path": str(second / "other"), "name": "other"})
    assert response.status_code == 302 and ModelArtifact.objects.filter(name="other").exists()


@pytest.mark.parametrize("where", ["etc-passwd", "etc-folder", "absolute-outside", "dotdot", "absolute-dotdot", "linked-folder", "home", "dotdot-to-second-root"])
def test_it_refuses_staff_a_path_outside_the_roots(client_for, staff, inbox, secret, tmp_path, settings, where):
    outside = make_folder(tmp_path / "outside")
    (outside / "tokenizer.json").write_bytes(SECRET)
    (inbox / "linked").symlink_to(outside)
    settings.ARBITER_MODEL_ROOTS = [inbox, tmp_path]  # a relative path may not climb into the second
    if where != "dotdot-to-second-root":
        settings.ARBITER_MODEL_ROOTS = [inbox]
    source, path = {
        "etc-passwd": ("gguf", "/etc/passwd"),
        "etc-folder": ("folder", "/etc"),
        "absolute-outside": ("folder", str(outside)),
        "dotdot": ("folder", "../outside"),
        "absolute-dotdot": ("folder", f"{inbox}/../outside"),
        "linked-folder": ("folder", "linked"),
        "home": ("folder", "~"),
        "dotdot-to-second-root": ("folder", "../outside"),
    }[where]
    response = client_for(staff).post("/training/models/add/", {"source": source, "path": path, "name": "stolen"})
    assert response.status_code == 400
    assert register_error(response) == PATH_REFUSED
    assert not ModelArtifact.objects.exists()
    assert not any(SECRET in data for data in stored_bytes(settings))


def test_it_never_follows_a_symlink_out_of_the_folder(client_for, staff, inbox, secret, settings):
    folder = make_folder(inbox / "trap")
    (folder / "tokenizer.json").unlink()
    (folder / "tokenizer.json").symlink_to(secret)
    client = client_for(staff)
    response = client.post("/training/models/add/", {"source": "folder", "path": "trap", "name": "trap"})
    assert response.status_code == 400
    assert "tokenizer.json: a symlink to outside the model folder is never followed" in register_error(response)
    assert str(secret) not in response.content.decode()
    assert not ModelArtifact.objects.exists()
    assert not any(SECRET in data for data in stored_bytes(settings))
    # A link under a name a model does not use is not copied at all, so the folder registers.
    (folder / "tokenizer.json").unlink()
    (folder / "secret_key").symlink_to(secret)
    (folder / "notes.txt").symlink_to(secret)
    response = client.post("/training/models/add/", {"source": "folder", "path": "trap", "name": "trap"})
    assert response.status_code == 302
    assert not any(SECRET in data for data in stored_bytes(settings))


def test_it_reads_config_json_through_no_link_out(client_for, staff, inbox, secret, settings):
    # Checked before config.json is parsed: a parse error would tell what kind of file the target is.
    folder = make_folder(inbox / "cfg")
    (folder / "config.json").unlink()
    (folder / "config.json").symlink_to(secret)
    response = client_for(staff).post("/training/models/add/", {"source": "folder", "path": "cfg", "name": "cfg"})
    assert response.status_code == 400
    assert register_error(response) == f"{folder}/config.json: a symlink to outside the model folder is never followed; copy the file itself into the folder"
    assert not ModelArtifact.objects.exists()
    assert not any(SECRET in data for data in stored_bytes(settings))


@pytest.mark.parametrize("source", ["gguf", "folder"])
def test_it_gives_one_message_for_missing_unusable_and_outside(client_for, staff, inbox, tmp_path, source):
    real_gguf = tmp_path / "real.gguf"
    real_gguf.write_bytes(b"GGUF" + b"\0" * 60)  # outside: it would pass the magic check
    (inbox / "fake.gguf").write_bytes(b"PK\x03\x04 not a gguf")
    (inbox / "afile").write_text("a file, not a folder")
    make_folder(tmp_path / "outside-folder")
    paths = {
        "gguf": ["missing.gguf", "fake.gguf", str(real_gguf), "../real.gguf", "/etc/passwd", "/nonexistent/x.gguf"],
        "folder": ["missing", "afile", str(tmp_path / "outside-folder"), "../outside-folder", "/etc", "/nonexistent"],
    }[source]
    client = client_for(staff)
    errors = {register_error(client.post("/training/models/add/", {"source": source, "path": p, "name": "x"})) for p in paths}
    assert errors == {PATH_REFUSED}
    assert not ModelArtifact.objects.exists()


def test_it_refuses_every_path_when_there_are_no_roots(client_for, staff, inbox, settings):
    make_folder(inbox / "tiny")
    settings.ARBITER_MODEL_ROOTS = []
    response = client_for(staff).post("/training/models/add/", {"source": "folder", "path": str(inbox / "tiny"), "name": "tiny"})
    assert register_error(response) == PATH_REFUSED and not ModelArtifact.objects.exists()
    assert "none: registering from a path is off" in client_for(staff).get("/training/models/add/").content.decode()


def test_it_reads_the_roots_strictly(monkeypatch, tmp_path):
    monkeypatch.setenv("ARBITER_MODEL_ROOTS", f"{tmp_path}/a, {tmp_path}/b")
    assert env_paths("ARBITER_MODEL_ROOTS", []) == [tmp_path / "a", tmp_path / "b"]
    monkeypatch.setenv("ARBITER_MODEL_ROOTS", "models")
    with pytest.raises(EnvError, match="ARBITER_MODEL_ROOTS: 'models' is not an absolute path"):
        env_paths("ARBITER_MODEL_ROOTS", [])


def test_it_lets_the_shell_command_use_any_path_but_no_link_out(tmp_path, inbox, secret, settings):
    # add_model's user already has the disk (see its docstring): any folder, but the same copy rule.
    outside = make_folder(tmp_path / "anywhere")
    call_command("add_model", "--path", str(outside), "--name", "anywhere")
    assert ModelArtifact.objects.filter(name="anywhere").exists()
    (outside / "tokenizer.json").unlink()
    (outside / "tokenizer.json").symlink_to(secret)
    with pytest.raises(CommandError, match="tokenizer.json: a symlink to outside the model folder"):
        call_command("add_model", "--path", str(outside), "--name", "anywhere-2")
    assert not any(SECRET in data for data in stored_bytes(settings))
