"""The studio's Measure tab in a real browser: Evaluate runs `tllm eval --report` as a job,
and its report is shown when it ends, with its charts."""

from tests.serve.conftest import live_server
from tests.serve.test_web_chat import browser_page
from tests.serve.test_web_share import wait_text
from tests.serve.test_web_train import tiny_home
from tests.train.conftest import text_rows, write_dataset


def test_evaluate_runs_a_report_and_shows_it_with_its_charts(tmp_path):
    home = tiny_home(tmp_path)
    write_dataset(home, "notes", "text", text_rows())
    with live_server(home, log_path=home.path / "serve.log") as base, browser_page(base) as page:
        page.get_by_role("tab", name="Measure").click()
        wait_text(page, "#eval-report", "No evaluation with a report yet")
        page.locator("#eval-data input").click()
        page.get_by_role("option", name="notes").click()
        page.click("#evaluate")
        wait_text(page, "#eval-status", "eval done", timeout=300_000)
        report = wait_text(page, "#eval-report", "perplexity")
        assert "notes" in report, report
        page.wait_for_selector("#eval-charts img", timeout=30_000)  # the report's chart
        page.screenshot(path=str(tmp_path / "measure.png"), full_page=True)
    [run] = list((home.path / "runs").glob("*-eval-*"))
    assert (run / "report.md").exists() and list((run / "plots").glob("*.png"))
