"""The Improve tab's "Train with chosen settings" in a real browser: the main fields of a
recipe become a `tllm train` job in the background, its progress and end are shown, the
fields given are the run's and those left empty are chosen as `tllm train` chooses them; a
name that is not the studio's to give is refused before anything starts."""

import json

import yaml

from tests.serve.conftest import live_server
from tests.serve.test_web_chat import browser_page
from tests.tiny_models import make_long_llama
from tests.train.conftest import chat_rows, write_dataset
from together_llm.home import Home
from together_llm.models.registry import add_model


def tiny_home(tmp_path) -> Home:
    """A home whose assistant is the tiny LLaMA (trains and evaluates in seconds)."""
    home = Home.open(tmp_path / "home")
    add_model(home, "tiny", str(make_long_llama(tmp_path / "llama")))
    config = home.load_config()
    config.model = "tiny"
    home.save_config(config)
    return home


def test_train_with_chosen_settings_runs_as_a_job(tmp_path):
    home = tiny_home(tmp_path)
    write_dataset(home, "sounds", "chat", chat_rows())
    with live_server(home, log_path=home.path / "serve.log") as base, browser_page(base) as page:
        page.get_by_role("tab", name="Improve").click()
        page.get_by_text("Train with chosen settings").click()
        page.locator("#train-data input").click()
        page.get_by_role("option", name="sounds").click()
        page.fill("#train-name textarea", "me")
        page.click("#train")
        page.wait_for_selector("text=the assistant's own adapter", timeout=30_000)
        assert not (home.path / "jobs").exists()  # refused before any job started

        page.fill("#train-name textarea", "sounds-web")
        page.fill("#train-epochs input", "2")
        page.fill("#train-lr textarea", "0.003")
        page.click("#train")
        page.wait_for_function(
            "document.querySelector('#improve-state')?.innerText.includes('train done')",
            timeout=300_000,
        )
        page.wait_for_function(
            "document.querySelector('#improve-report').innerText.includes('trained sounds-web')",
            timeout=30_000,
        )
        page.screenshot(path=str(tmp_path / "train.png"), full_page=True)
    assert (home.adapters_dir / "sounds-web" / "adapter_model.safetensors").exists()
    [run] = [p for p in (home.path / "runs").iterdir() if p.name.endswith("sounds-web")]
    recipe = yaml.safe_load((run / "config.yaml").read_text())
    assert recipe["epochs"] == 2 and recipe["lr"] == 0.003  # as given
    assert recipe["rank"] == 16  # left empty: chosen for a small dataset
    [job] = [json.loads(p.read_text()) for p in (home.path / "jobs").glob("*/job.json")]
    assert job["state"] == "done" and job["args"][:2] == ["train", "--data"]
