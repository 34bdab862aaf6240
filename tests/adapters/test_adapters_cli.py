"""`tllm adapters list | show | use` on adapters laid out as training writes them."""

import json

from tests.conftest import run_tllm


def make_adapter(home, name, card=None, weights=b"x" * 2048):
    folder = home.adapters_dir / name
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8}))
    (folder / "adapter_model.safetensors").write_bytes(weights)
    if card is not None:
        (folder / "card.json").write_text(json.dumps(card))
    return folder


CARD = {
    "method": "lora",
    "stage": "sft",
    "base": "default",
    "data": {"name": "facts"},
    "steps": 60,
    "metrics": {"train_loss": 0.4},
}


def test_list_show_and_use(home):
    make_adapter(home, "facts", CARD)
    make_adapter(home, "bare")  # imported without a card: the PEFT config still says what it is
    listed = json.loads(run_tllm("adapters", "list", "--json", home=home).stdout)
    assert [(a["name"], a["method"], a["active"]) for a in listed] == [
        ("bare", "lora", False),
        ("facts", "lora", False),
    ]
    assert listed[1]["stage"] == "sft" and listed[1]["data"] == "facts" and listed[1]["steps"] == 60

    shown = json.loads(run_tllm("adapters", "show", "facts", "--json", home=home).stdout)
    assert shown["metrics"] == {"train_loss": 0.4} and shown["path"].endswith("facts")

    used = run_tllm("adapters", "use", "facts", home=home)
    assert used.returncode == 0 and "active adapters: facts" in used.stdout
    assert home.load_config().adapters == ["facts"]
    assert "* facts" in run_tllm("adapters", "list", home=home).stdout

    assert run_tllm("adapters", "use", "--none", home=home).returncode == 0
    assert home.load_config().adapters == []


def test_use_refuses_what_cannot_load_or_answer(home):
    make_adapter(home, "facts", CARD)
    make_adapter(home, "judge", {**CARD, "stage": "rm"})
    make_adapter(home, "router", {**CARD, "stage": "classify"})
    pickled = make_adapter(home, "pickled")
    (pickled / "adapter_model.safetensors").unlink()
    (pickled / "adapter_model.bin").write_bytes(b"pickle")
    for args, message in (
        (["ghost"], "unknown adapter 'ghost'; adapters: facts, judge, pickled, router"),
        (["pickled"], "no adapter_model.safetensors"),
        (["judge"], "adapter 'judge' is a reward model (a scalar score head), not a chat model"),
        (["facts", "router"], "adapter 'router' is a classifier, not a chat model"),
        ([], "name the adapter(s) to use, or give --none"),
    ):
        result = run_tllm("adapters", "use", *args, home=home)
        assert result.returncode == 1 and message in result.stderr
    assert home.load_config().adapters == []
    listed = run_tllm("adapters", "list", home=home).stdout
    assert (
        "facts" in listed
        and "pickled" in listed
        and "UNUSABLE: adapter 'pickled' has no adapter_model.safetensors" in listed
    )
