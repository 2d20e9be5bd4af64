"""Registering a base model from the browser (managers and staff; a path, staff only and under
ARBITER_MODEL_ROOTS: test_model_path_safety.py): the same functions, checks and error messages as
`manage.py add_model`; a GGUF file converts in a child process."""
from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from tests.training.conftest import build_tiny_model
from training.models import ModelArtifact
from training.registry.services import PATH_REFUSED

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _roots(settings, tmp_path):
    settings.ARBITER_MODEL_ROOTS = [tmp_path]


def test_it_lets_managers_and_staff_register_and_nobody_else(client_for, project, owner, member, researcher, outsider, staff):
    assert client_for(owner).get("/training/models/add/").status_code == 200
    assert client_for(staff).get("/training/models/add/").status_code == 200
    for user in (member, researcher, outsider):
        assert client_for(user).get("/training/models/add/").status_code == 403
        assert client_for(user).post("/training/models/add/", {"source": "minilm"}).status_code == 403
    assert "Register a model" in client_for(owner).get("/training/models/").content.decode()
    assert "Register a model" not in client_for(researcher).get("/training/models/").content.decode()


def test_it_registers_a_folder_and_shows_the_model(client_for, project, staff, tmp_path):
    folder = build_tiny_model(tmp_path / "tiny")
    client = client_for(staff)
    response = client.post("/training/models/add/", {"source": "folder", "path": str(folder), "name": "tiny-web"})
    artifact = ModelArtifact.objects.get(name="tiny-web")
    assert response.status_code == 302 and response["Location"] == f"/training/models/{artifact.pk}/"
    assert artifact.kind == "causal_lm" and artifact.source == "local"
    page = client.get(response["Location"]).content.decode()
    assert "tiny-web registered (Causal language model, Local folder)" in page


def _command_error(*args) -> str:
    with pytest.raises(CommandError) as info:
        call_command("add_model", *args)
    return str(info.value)


@pytest.mark.parametrize("case", ["pickle", "no-folder", "bad-name", "not-gguf"])
def test_it_refuses_with_the_same_message_as_add_model(client_for, project, staff, tmp_path, case):
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04")
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"nope")
    form, args = {
        "pickle": ({"source": "folder", "path": str(pickled), "name": "p"}, ["--path", str(pickled), "--name", "p"]),
        "no-folder": ({"source": "folder", "path": str(tmp_path / "missing"), "name": "m"}, ["--path", str(tmp_path / "missing"), "--name", "m"]),
        "bad-name": ({"source": "folder", "path": str(pickled), "name": "../evil"}, ["--path", str(pickled), "--name", "../evil"]),
        "not-gguf": ({"source": "gguf", "path": str(fake), "name": "g"}, ["--gguf", str(fake), "--name", "g"]),
    }[case]
    response = client_for(staff).post("/training/models/add/", form)
    assert response.status_code == 400
    message = _command_error(*args)
    if case in ("no-folder", "not-gguf"):
        # The shell says which; the browser says one thing for every unusable path (no probing).
        assert message and message not in response.content.decode()
        message = PATH_REFUSED
    assert message and message.replace("'", "&#x27;") in response.content.decode()
    assert not ModelArtifact.objects.exists()


@pytest.mark.dbless
@pytest.mark.slow
def test_it_converts_the_packaged_smollm2_in_a_child_process(client_for, project, staff):
    import sys

    torch_before = "torch" in sys.modules
    client = client_for(staff)
    response = client.post("/training/models/add/", {"source": "smollm2"})
    artifact = ModelArtifact.objects.get(name="smollm2-135m-instruct")
    assert response.status_code == 302 and artifact.source == "gguf" and 100e6 < artifact.config["parameters"] < 200e6
    assert ("torch" in sys.modules) == torch_before  # converted in the child, not here
    again = client.post("/training/models/add/", {"source": "smollm2"}, follow=True).content.decode()
    assert "smollm2-135m-instruct was already registered" in again
