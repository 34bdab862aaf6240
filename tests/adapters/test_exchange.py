"""`tllm adapters export/import`: an adapter travels between two homes with the same base
and computes the same logits there; a bad archive is refused with its specific reason and
leaves the receiving home exactly as it was."""

import io
import json
import pickle
import tarfile

import pytest
import torch

from tests.conftest import run_tllm
from tests.tiny_models import one_torch_thread
from tests.train.conftest import LEARNABLE, chat_rows, write_dataset
from together_llm.adapters import archive_checks
from together_llm.adapters.exchange import export_adapter, import_adapter
from together_llm.errors import RefusedError, TllmError
from together_llm.home import Home

WEIGHTS, CONFIG, CARD, MANIFEST = (
    archive_checks.WEIGHTS,
    archive_checks.CONFIG,
    archive_checks.CARD,
    archive_checks.MANIFEST,
)
Q_PROJ_A = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"


@pytest.fixture(scope="module")
def sender(tmp_path_factory, tiny_llama):
    """A home that trained adapter `facts` on the tiny LLaMA, and the archive it exported."""
    from together_llm.models.registry import add_model
    from together_llm.train.recipe import load_recipe
    from together_llm.train.run import train_model

    root = tmp_path_factory.mktemp("sender")
    home = Home.open(root / "home")
    add_model(home, "tiny", str(tiny_llama))
    write_dataset(home, "sounds", "chat", chat_rows())
    with one_torch_thread():
        train_model(
            home,
            load_recipe(
                None,
                {
                    "data": "sounds",
                    "name": "facts",
                    "base": "tiny",
                    "max_steps": 10,
                    "batch_size": 4,
                    "auto": False,  # rank 8 on q and v: the shapes the refusals name
                    **LEARNABLE,
                },
            ),
        )
    exported = export_adapter(home, "facts", root)
    return home, exported


def snapshot(home: Home) -> list:
    """Every file and folder of the home, with sizes and modification times."""
    return sorted(
        (str(p.relative_to(home.path)), p.is_dir() or p.stat().st_size, p.stat().st_mtime_ns)
        for p in home.path.rglob("*")
    )


def logits(model_dir, adapter_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    inputs = tokenizer(["What does the owl say? The owl says hoot."], return_tensors="pt")
    base = AutoModelForCausalLM.from_pretrained(model_dir)
    with torch.no_grad():
        plain = base(**inputs).logits
        model = PeftModel.from_pretrained(base, adapter_dir).eval()
        return plain, model(**inputs).logits


def test_round_trip_gives_the_same_model(sender, tiny_home, tiny_llama):
    home, exported = sender
    with tarfile.open(exported["path"]) as tar:
        assert sorted(tar.getnames()) == sorted(archive_checks.MEMBERS)
    card = import_adapter(tiny_home, exported["path"], sha256=exported["sha256"]).to_dict()

    folder = tiny_home.adapters_dir / "facts"
    assert sorted(p.name for p in folder.iterdir()) == [CONFIG, WEIGHTS, CARD]
    assert card == json.loads((folder / CARD).read_text())
    sent = json.loads((home.adapters_dir / "facts" / CARD).read_text())
    assert card["base"] == "tiny" and card["base_fingerprint"] == sent["base_fingerprint"]
    assert (card["steps"], card["data"]) == (10, "sounds")
    assert card["imported"]["sha256"] == exported["sha256"]
    assert not list(tiny_home.path.glob(".import-*"))  # the work folder is gone

    base_logits, received = logits(tiny_llama, folder)
    _, original = logits(tiny_llama, home.adapters_dir / "facts")
    assert torch.equal(received, original)
    assert not torch.allclose(received, base_logits, atol=1e-3)  # the adapter does something

    # A second import under the same name is refused; another name works.
    with pytest.raises(TllmError, match="adapter named 'facts' already exists; import with --name"):
        import_adapter(tiny_home, exported["path"])
    assert import_adapter(tiny_home, exported["path"], name="facts-2").name == "facts-2"


def test_cli_export_import(sender, tiny_home, tmp_path):
    from click.testing import CliRunner

    from together_llm.cli.adapters import adapters

    home, _ = sender
    target = tmp_path / "out.tar"
    runner = CliRunner()
    result = runner.invoke(adapters, ["export", "facts", str(target), "--home", str(home.path)])
    assert result.exit_code == 0, result.output
    assert f"exported facts to {target}" in result.output and "sha256 " in result.output
    result = runner.invoke(
        adapters, ["import", str(target), "--name", "peer", "--home", str(tiny_home.path)]
    )
    assert result.exit_code == 0, result.output
    assert "imported adapter peer (base tiny, lora sft) from out.tar" in result.output
    listed = runner.invoke(adapters, ["list", "--json", "--home", str(tiny_home.path)])
    assert [a["name"] for a in json.loads(listed.output)] == ["peer"]


# --- building bad archives -------------------------------------------------------------


def read_members(path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def write_archive(path, files: dict[str, bytes], reseal: bool = True, extra=()) -> None:
    """A tar of `files` (after `extra` members, headers only); `reseal` rewrites the
    manifest's checksums to match the files, as a careful forger would."""
    import hashlib

    files = dict(files)
    if reseal:
        manifest = json.loads(files[MANIFEST])
        for name, entry in manifest["files"].items():
            entry.update(bytes=len(files[name]), sha256=hashlib.sha256(files[name]).hexdigest())
        files[MANIFEST] = json.dumps(manifest).encode()
    with tarfile.open(path, "w") as tar:
        for info in extra:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.size else None)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def edit_tensors(files, change) -> dict[str, bytes]:
    from safetensors.torch import load, save

    tensors = load(files[WEIGHTS])
    change(tensors)
    return {**files, WEIGHTS: save(tensors)}


def edit_json(files, member, **fields) -> dict[str, bytes]:
    return {**files, member: json.dumps({**json.loads(files[member]), **fields}).encode()}


def edit_card(files, **fields) -> dict[str, bytes]:
    return edit_json(files, CARD, **fields)


def member(name, kind=tarfile.REGTYPE, size=0, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size, link
    return info


def flip_last_byte(files):
    data = bytearray(files[WEIGHTS])
    data[-1] ^= 0xFF
    return {**files, WEIGHTS: bytes(data)}


def rename_tensor(old, new):
    def change(tensors):
        tensors[new] = tensors.pop(old)

    return change


def reshape_tensor(tensors):
    tensors[Q_PROJ_A] = tensors[Q_PROJ_A][:, :32].contiguous()


def rank_mismatch(tensors):
    tensors[Q_PROJ_A] = tensors[Q_PROJ_A][:4].contiguous()


REFUSALS = {
    "pickle member": (
        lambda f: (f, [member("adapter_model.bin", size=len(pickle.dumps({"w": 1})))]),
        "'adapter_model.bin' is a pickle-based weight file: only safetensors",
    ),
    "path with ..": (
        lambda f: (f, [member("../escape.json", size=2)]),
        "'../escape.json' has a path that leaves the target directory",
    ),
    "absolute path": (
        lambda f: (f, [member("/tmp/card.json", size=2)]),
        "'/tmp/card.json' has an absolute path",
    ),
    "symlink": (
        lambda f: (f, [member(CARD, tarfile.SYMTYPE, link="/etc/passwd")]),
        "'card.json' is a link (to '/etc/passwd')",
    ),
    "device": (lambda f: (f, [member(CONFIG, tarfile.CHRTYPE)]), "is a device or pipe"),
    "unexpected file": (
        lambda f: (f, [member("run.sh", size=3)]),
        "unexpected archive member 'run.sh'",
    ),
    "corrupted checksum": (
        lambda f: (flip_last_byte(f), [], False),
        "checksum mismatch for adapter_model.safetensors",
    ),
    "card changed after export": (
        lambda f: (edit_card(f, base_fingerprint="0" * 16), [], False),
        "checksum mismatch for card.json",
    ),
    "bad adapter name": (
        lambda f: (edit_card(f, name="../../escape"), []),
        "the archive names its adapter '../../escape', which is not a valid",
    ),
    "other base fingerprint": (
        lambda f: (edit_card(f, base_fingerprint="0123456789abcdef"), []),
        "no model in this home has base fingerprint 0123456789abcdef",
    ),
    "wrong shape": (
        lambda f: (edit_tensors(f, reshape_tensor), []),
        f"tensor '{Q_PROJ_A}' has shape [8, 32], but the base model needs [8, 64]",
    ),
    "inconsistent rank": (
        lambda f: (edit_tensors(f, rank_mismatch), []),
        "'model.layers.0.self_attn.q_proj' has LoRA ranks A=4, B=8",
    ),
    "unknown tensor": (
        lambda f: (
            edit_tensors(f, rename_tensor(Q_PROJ_A, Q_PROJ_A.replace("layers.0", "layers.7"))),
            [],
        ),
        "is for module 'model.layers.7.self_attn.q_proj', which the base model does not have",
    ),
    "untargeted module": (
        lambda f: (
            edit_tensors(f, rename_tensor(Q_PROJ_A, Q_PROJ_A.replace("q_proj", "k_proj"))),
            [],
        ),
        "'model.layers.0.self_attn.k_proj', which adapter_config.json does not target",
    ),
    "not LoRA": (
        lambda f: (
            edit_tensors(f, rename_tensor(Q_PROJ_A, "base_model.model.model.norm.weight")),
            [],
        ),
        "is not a LoRA weight and its module is not in the adapter's modules_to_save",
    ),
    "prompt-tuning config": (
        lambda f: (edit_json(f, CONFIG, peft_type="PROMPT_TUNING"), []),
        "only LoRA adapters can be exchanged; this one is 'PROMPT_TUNING'",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_bad_archives_are_refused_and_change_nothing(case, sender, tiny_home, tmp_path):
    _, exported = sender
    make, reason = REFUSALS[case]
    files, extra, *reseal = make(read_members(exported["path"]))
    bad = tmp_path / "bad.tar"
    write_archive(bad, files, reseal=bool(reseal == [] or reseal[0]), extra=extra)
    before = snapshot(tiny_home)
    with pytest.raises(RefusedError) as refused:
        import_adapter(tiny_home, bad)
    assert reason in str(refused.value)
    assert snapshot(tiny_home) == before


def test_oversized_and_foreign_archives_are_refused(sender, tiny_home, tmp_path, monkeypatch):
    _, exported = sender
    before = snapshot(tiny_home)
    with pytest.raises(RefusedError, match="hashes to [0-9a-f]+, not the expected 0000"):
        import_adapter(tiny_home, exported["path"], sha256="00" * 32)
    gz = tmp_path / "facts.tar.gz"
    with tarfile.open(gz, "w:gz") as tar:
        tar.add(exported["path"], arcname="facts.tar")
    with pytest.raises(RefusedError, match="is not an uncompressed tar archive"):
        import_adapter(tiny_home, gz)
    monkeypatch.setattr(archive_checks, "MAX_JSON_BYTES", 100)
    with pytest.raises(
        RefusedError, match=r"member 'manifest.json' is \d+ bytes, over the 100-byte"
    ):
        import_adapter(tiny_home, exported["path"])
    monkeypatch.setattr(archive_checks, "MAX_ARCHIVE_BYTES", 1000)
    with pytest.raises(RefusedError, match=r"facts.tar is \d+ bytes, over the 1000-byte limit"):
        import_adapter(tiny_home, exported["path"])
    monkeypatch.undo()
    monkeypatch.setattr(archive_checks, "MAX_WEIGHTS_TO_BASE", 0.001)
    with pytest.raises(RefusedError, match="larger than its base 'tiny'"):
        import_adapter(tiny_home, exported["path"])
    assert snapshot(tiny_home) == before


def test_cli_refusal_is_one_line(sender, tiny_home, tmp_path):
    """As a user sees it: exit status 1 and the reason, no traceback (the `..` check reads
    tar headers only, so this subprocess never imports torch)."""
    _, exported = sender
    bad = tmp_path / "bad.tar"
    write_archive(bad, read_members(exported["path"]), extra=[member("../../x.json", size=2)])
    result = run_tllm("adapters", "import", bad, home=tiny_home)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        "archive member '../../x.json' has a path that leaves the target directory" in result.stderr
    )
