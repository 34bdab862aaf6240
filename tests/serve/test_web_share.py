"""The studio's Share tab in a real browser (Debian's chromium, driven by Playwright): an
adapter exported as a GGUF with its Ollama Modelfile by a background job and downloaded; an
adapter archive exported, downloaded and imported back with its sha256; a hostile archive
refused with its reason and the home left as it was; two adapters merged, and the chat's
selector offering what was added once the page is opened again."""

import contextlib
import io
import json
import tarfile

from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from tests.export.test_export import tiny_smol  # noqa: F401  (the module's fixture)
from tests.serve.conftest import live_server
from tests.serve.test_web_chat import browser_page
from tests.serve.test_web_teach import wait_until
from together_llm.home import Home
from together_llm.models.fingerprint import fingerprint
from together_llm.models.registry import add_model


def smol_home(path, smol) -> Home:
    """A home whose assistant is the tiny SmolLM2-shaped model, with LoRA adapters a and b."""
    home = Home.open(path)
    add_model(home, "smol", str(smol))
    config = home.load_config()
    config.model = "smol"
    home.save_config(config)
    for name in ("a", "b"):
        model = AutoModelForCausalLM.from_pretrained(smol)
        lora = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
        for parameter_name, parameter in lora.named_parameters():
            if "lora_B" in parameter_name:
                parameter.data.normal_(0, 0.1)
        lora.save_pretrained(home.adapters_dir / name)
        card = {"base": "smol", "base_fingerprint": fingerprint(smol), "method": "lora"}
        (home.adapters_dir / name / "card.json").write_text(json.dumps(card))
    return home


def hostile_archive(path) -> None:
    """An archive with a member whose path leaves the folder it is unpacked into."""
    with tarfile.open(path, "w") as tar:
        data = b"{}"
        member = tarfile.TarInfo("../escape.json")
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))


def wait_text(page, selector: str, text: str, timeout: int = 60_000) -> str:
    page.wait_for_function(
        f"document.querySelector({selector!r})?.innerText.includes({text!r})", timeout=timeout
    )
    return page.inner_text(selector)


def test_share_tab_exports_exchanges_refuses_and_merges(
    tmp_path,
    tiny_smol,  # noqa: F811
    monkeypatch,
):
    # The server's temporary folder is not above the home (as /tmp is not above
    # ~/.together-llm), so the downloads are offered from where the exports are.
    home = smol_home(tmp_path / "home", tiny_smol)
    hostile = tmp_path / "hostile.tar"
    hostile_archive(hostile)
    (tmp_path / "server-tmp").mkdir()
    with contextlib.ExitStack() as stack:
        monkeypatch.setenv("TMPDIR", str(tmp_path / "server-tmp"))
        base = stack.enter_context(live_server(home, log_path=home.path / "serve.log"))
        monkeypatch.undo()  # the browser keeps the machine's
        page = stack.enter_context(browser_page(base))
        page.get_by_role("tab", name="Share").click()

        # a GGUF for Ollama, written by a background job, then downloaded
        page.locator("#export-adapter input").click()
        page.get_by_role("option", name="a", exact=True).click()
        page.fill("#export-name textarea", "mine")
        page.click("#export-gguf")
        wait_text(page, "#export-status", "export done", timeout=300_000)
        offered = wait_text(page, "#exported", "Modelfile")
        assert "mine-q8_0\n.gguf" in offered, offered
        with page.expect_download() as download:
            page.locator("#exported tr", has_text="Modelfile").locator("td.download a").click()
        modelfile = download.value.path().read_text()
        assert "FROM ./mine-q8_0.gguf" in modelfile, modelfile
        page.screenshot(path=str(tmp_path / "share-export.png"), full_page=True)

        # an adapter archive out, downloaded, and back in under another name with its sha256
        page.locator("#share-adapter input").click()
        page.get_by_role("option", name="b", exact=True).click()
        page.click("#export-archive")
        said = wait_text(page, "#archive-result", "sha256")
        digest = said.rsplit(" ", 1)[-1].strip("`\n ")
        with page.expect_download() as download:
            page.locator("#archive td.download a").click()
        archive = tmp_path / "b.tar"
        download.value.save_as(archive)
        page.set_input_files("#import-archive input[type=file]", str(archive))
        page.fill("#import-adapter-name textarea", "b-again")
        page.fill("#import-adapter-sha256 textarea", digest)
        page.click("#import-adapter")
        wait_text(page, "#import-adapter-result", "Imported adapter b-again")
        assert (home.adapters_dir / "b-again" / "adapter_model.safetensors").exists()

        # a hostile archive: refused with its reason, nothing added
        before = sorted(p.name for p in home.adapters_dir.iterdir())
        page.locator("#import-archive").get_by_label("Clear").click()
        page.set_input_files("#import-archive input[type=file]", str(hostile))
        page.fill("#import-adapter-name textarea", "")
        page.fill("#import-adapter-sha256 textarea", "")
        page.click("#import-adapter")
        refused = wait_text(page, "#import-adapter-result", "Refused")
        assert "leaves the target directory" in refused, refused
        assert sorted(p.name for p in home.adapters_dir.iterdir()) == before
        assert not (tmp_path / "escape.json").exists()
        page.screenshot(path=str(tmp_path / "share-exchange.png"), full_page=True)

        # two adapters merged into a third
        page.get_by_role("tab", name="Knowledge").click()
        page.get_by_role("tab", name="Share").click()  # lists the adapters imported meanwhile
        for name in ("a", "b-again"):
            page.locator("#merge-from").get_by_label(name, exact=True).check()
        page.fill("#merge-name textarea", "ab")
        page.click("#merge")
        wait_text(page, "#merge-result", "into ab")
        wait_until(lambda: (home.adapters_dir / "ab" / "card.json").exists())

        # the page opened again: the chat can talk to the adapters added meanwhile
        page.reload()
        page.locator("#model input").click()
        for name in ("ab", "b-again"):
            page.get_by_role("option", name=name, exact=True).wait_for(timeout=30_000)
