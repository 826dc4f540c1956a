#!/usr/bin/env python3
"""End-to-end browser test of `uso serve` in Debian's headless Chromium, driven by Playwright.

Starts the `uso` binary as a server on a free loopback port, opens the page, attaches a content and
a style image through the file pickers, generates, watches the progress bar reach 100 % with
"Step n/N", waits for the result image and the download link, checks the history gallery and the
PNG written to the output folder, and saves a full-page screenshot of the finished page. Then it
reuses the settings from the history and cancels a second, long job while it runs.

Not part of `swift test` (CI has no browser). Setup, once:
    apt-get install -y chromium        # Debian's browser; Playwright's own browser download is not used
    pip install playwright
Run (from the package root):
    swift build --product uso
    python3 tools/e2e/browser_test.py /tmp/uso-serve.png                # the model `uso serve` uses
    python3 tools/e2e/browser_test.py /tmp/uso-serve.png --synthetic    # test aid: no model weights

--synthetic starts the server with USO_SERVE_GENERATOR=synthetic, which swaps the model for the
synthetic test generator (patterns, not images of anything): it tests the page, the queue and the
API, not the model. Exit code 0 when every check passed.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
PRESETS = ROOT / "Sources" / "WebServer" / "Resources" / "presets"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_binary() -> Path:
    out = subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True, check=True)
    return Path(out.stdout.strip()) / "uso"


def wait_for_health(url: str, server: subprocess.Popen, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"uso serve exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as response:
                if json.load(response)["status"] == "ok":
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"uso serve did not answer /health within {timeout} s")


def wait_until(page, expression: str, timeout: float) -> None:
    """Polls a JS expression with page.evaluate (wait_for_function evaluates strings with eval,
    which the page's Content-Security-Policy rightly forbids)."""
    deadline = time.time() + timeout
    while not page.evaluate(expression):
        if time.time() > deadline:
            raise TimeoutError(f"not true within {timeout} s: {expression}")
        time.sleep(0.05)


def run(args) -> list:
    failures = []

    def check(condition, message):
        print(("ok   " if condition else "FAIL ") + message)
        if not condition:
            failures.append(message)

    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    outputs = Path(tempfile.mkdtemp(prefix="uso-e2e-outputs-"))
    env = dict(os.environ)
    if args.synthetic:
        env["USO_SERVE_GENERATOR"] = "synthetic"
    command = [str(args.binary), "serve", "--host", "127.0.0.1", "--port", str(port), "--save-path", str(outputs)]
    print("starting:", " ".join(command), "(synthetic test generator)" if args.synthetic else "")
    server = subprocess.Popen(command, env=env)
    try:
        wait_for_health(base, server, timeout=60)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, headless=True,
                                                 args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            console_errors = []
            page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
            page.on("pageerror", lambda error: console_errors.append(str(error)))
            page.on("response", lambda response: response.status >= 400
                    and console_errors.append(f"{response.status} {response.url}"))
            requests_elsewhere = []
            page.on("request", lambda request: request.url.startswith(("http:", "https:"))
                    and not request.url.startswith(base) and requests_elsewhere.append(request.url))

            page.goto(base + "/")
            wait_until(page, "document.getElementById('model-name').textContent !== 'connecting…'", 30)
            print("model:", page.text_content("#model-name"))
            page.wait_for_selector("#examples .card")
            check(page.locator("#examples .card").count() >= 5, "example preset cards are shown")

            page.fill("#prompt", args.prompt)
            page.set_input_files("#file-content", str(args.content))
            page.set_input_files("#file-style1", str(args.style))
            check(page.locator('.drop[data-slot="content"].filled').count() == 1, "content image preview is shown")
            check(page.locator('.drop[data-slot="style1"].filled').count() == 1, "style image preview is shown")
            page.fill("#seed", str(args.seed))
            if args.steps:
                page.eval_on_selector("#steps", "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", str(args.steps))

            started = time.time()
            page.click("#generate")
            seen_values, seen_texts = [], []
            deadline = started + args.timeout
            while time.time() < deadline:
                value = int(page.get_attribute("#progress", "aria-valuenow") or 0)
                text = page.text_content("#progress-text") or ""
                if not seen_values or value != seen_values[-1]:
                    seen_values.append(value)
                if not seen_texts or text != seen_texts[-1]:
                    seen_texts.append(text)
                if value >= 100 or text.startswith(("Failed", "Cancelled")):
                    break
                time.sleep(0.05)
            print("progress values seen:", seen_values)
            print("progress texts seen:", seen_texts[:3], "...", seen_texts[-2:])
            check(seen_values and seen_values[-1] == 100, "progress bar reached 100 %")
            check(len(seen_values) >= 3, "progress moved through intermediate values")
            check(any(t.startswith("Step ") and "/" in t for t in seen_texts), "step n/N was shown while denoising")

            wait_until(page, "document.getElementById('result-image').naturalWidth > 0", 30)
            size = page.evaluate("[document.getElementById('result-image').naturalWidth, document.getElementById('result-image').naturalHeight]")
            print(f"result image: {size[0]}x{size[1]} after {time.time() - started:.1f} s")
            check(size[0] > 0 and size[1] > 0, "the result image is displayed")
            check(page.is_visible("#download") and (page.get_attribute("#download", "href") or "").startswith("blob:"),
                  "the download link is offered")
            seed_text = page.text_content("#seed-used") or ""
            check(f"Seed used: {args.seed}" in seed_text, f"the seed used is shown ({seed_text!r})")
            page.wait_for_selector("#history .card .badge.succeeded")
            check(page.locator("#history .card").count() >= 1, "the history gallery lists the job")

            pngs = list(outputs.rglob("*.png"))
            check(len(pngs) == 1 and pngs[0].with_suffix(".json").exists(),
                  f"the result was written like the CLI's ({[str(p.relative_to(outputs)) for p in pngs]})")
            check(not requests_elsewhere, f"the page loaded nothing from elsewhere ({requests_elsewhere})")

            args.screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.screenshot), full_page=True)
            print("screenshot:", args.screenshot)

            # "Reuse these settings" from the history restores the prompt, seed and references.
            page.fill("#prompt", "something else")
            page.click("#history .card button:text('Reuse these settings')")
            wait_until(page, "document.querySelector('.drop[data-slot=\"style1\"]').classList.contains('filled')", 30)
            check(page.input_value("#prompt") == args.prompt and page.input_value("#seed") == str(args.seed),
                  "reuse restored the prompt and the seed")
            check(page.locator('.drop[data-slot="content"].filled').count() == 1, "reuse restored the content image")

            # A long job is cancelled from the page while it denoises.
            page.eval_on_selector("#steps", "el => { el.value = el.max; el.dispatchEvent(new Event('input')); }")
            page.click("#generate")
            wait_until(page, "document.getElementById('progress-text').textContent.startsWith('Step ')", args.timeout)
            page.click("#cancel")
            wait_until(page, "document.getElementById('progress-text').textContent.startsWith('Cancelled')", args.timeout)
            check(True, "a running job was cancelled from the page")
            check(len(list(outputs.rglob("*.png"))) == 1, "the cancelled job wrote nothing")
            check(not console_errors, f"no errors in the browser console ({console_errors})")
            browser.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("screenshot", type=Path, help="where to save the screenshot of the finished page (PNG)")
    parser.add_argument("--binary", type=Path, help="the uso executable (default: from `swift build --show-bin-path`)")
    parser.add_argument("--synthetic", action="store_true", help="test aid: run the synthetic test generator, not a model")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the browser binary (Debian's chromium)")
    parser.add_argument("--port", type=int, default=0, help="port for the server (default: a free one)")
    parser.add_argument("--prompt", default="Wool felt style, a clock in the jungle.")
    parser.add_argument("--content", type=Path, default=PRESETS / "4subject-ref1.jpg")
    parser.add_argument("--style", type=Path, default=PRESETS / "8style-ref2.jpg")
    parser.add_argument("--seed", type=int, default=3407)
    parser.add_argument("--steps", type=int, help="denoising steps (default: the generator's default)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the generation")
    args = parser.parse_args()
    args.binary = args.binary or default_binary()
    failures = run(args)
    print(f"{0 if failures else 1} passed, {1 if failures else 0} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
