// Drives pubfn's web console in Debian's headless Chromium: sign in, create an endpoint, run
// the draft, deploy, make a token, call the endpoint, see its log line, roll back.
//
//   node e2e.mjs BASE_URL ADMIN_TOKEN TENANT SCREENSHOT.png
import { chromium } from "playwright-core";

const [base, adminToken, tenant, screenshot] = process.argv.slice(2);
if (!screenshot) throw new Error("usage: node e2e.mjs BASE_URL ADMIN_TOKEN TENANT SCREENSHOT.png");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const step = (name) => console.log(`console e2e: ${name}`);
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  // HTTP errors the test provokes (a syntax error's 400, a revoked token's 401) are logged by
  // Chromium as failed loads; anything else on the console is a bug in the page.
  page.on("console", (message) => {
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) errors.push(message.text());
  });
  const expectText = async (selector, text) => {
    await page.locator(selector).filter({ hasText: text }).first().waitFor({ timeout: 30_000 });
  };
  // The log sink writes a call's line to PostgreSQL after the response, in batches: on a loaded
  // machine one refresh can come before it. Refresh as a person would, until it is there.
  const refreshLogsUntil = async (text) => {
    const line = page.locator("#logs li").filter({ hasText: text }).first();
    for (let attempt = 0; attempt < 60; attempt++) {
      await page.click("#logs-refresh");
      try {
        await line.waitFor({ timeout: 1_000 });
        return;
      } catch {}
    }
    throw new Error(`no log line "${text}" after 60 refreshes`);
  };

  step("sign in");
  await page.goto(`${base}/console/`);
  await page.fill("#token", adminToken);
  await page.click("#sign-in");
  await expectText("#tenant-name", `tenant ${tenant}`);

  step("create an endpoint and run the draft");
  await page.click("#new-endpoint");
  await page.fill("#ep-name", "hello");
  await page.fill("#ep-route", "/hello");
  await page.fill("#code", 'def handler():\n    print("saying hello")\n    return {"hello": request.args.get("name", "world"), "v": 1}\n');
  await page.fill("#sample-query", "name=draft");
  await page.click("#run");
  await expectText("#run-result", '"hello":"draft"');
  await expectText("#run-result", "saying hello");
  if (!(await page.locator("#code-view .tok-kw").count())) throw new Error("no Python highlighting");

  step("deploy twice");
  await page.click("#deploy");
  await expectText("#status", "deployed version 1");
  await page.fill("#code", 'def handler():\n    return {"hello": request.args.get("name", "world"), "v": 2}\n');
  await page.click("#deploy");
  await expectText("#status", "deployed version 2");
  await expectText("#endpoints li", "GET /hello");

  step("a syntax error is shown with its line, not deployed");
  await page.fill("#code", "def handler(:\n    return 1\n");
  await page.click("#deploy");
  await expectText("#status", "line 1");

  step("make a token and call the endpoint");
  await page.fill("#token-name", "browser");
  await page.click("#create-token");
  await page.locator("#new-token-box").waitFor({ state: "visible" });
  if (!(await page.inputValue("#new-token")).startsWith("eyJ")) throw new Error("no token shown");
  await expectText("#tokens li", "browser");
  await page.fill("#try-path", "/hello?name=browser");
  await page.click("#try-send");
  await expectText("#try-response", "200");
  await expectText("#try-response", '"v":2');
  await expectText("#try-response", "server-timing");

  step("see the log line");
  await refreshLogsUntil("GET /hello → 200");

  step("roll back to version 1");
  await page.click('#versions button[data-version="1"]');
  await expectText("#status", "serving version 1 again");
  await page.click("#try-send");
  await expectText("#try-response", '"v":1');

  await page.screenshot({ path: screenshot, fullPage: true });

  step("revoke the token");
  await page.click("#tokens button");
  await page.locator("#tokens li", { hasText: "browser" }).waitFor({ state: "detached" });
  await page.click("#try-send");
  await expectText("#try-response", "401");

  step("a failed call offers its replay");
  await page.click("#new-endpoint");
  await page.fill("#ep-name", "boom");
  await page.fill("#ep-route", "/boom");
  await page.selectOption("#ep-auth", "public");
  await page.fill("#code", 'def handler():\n    raise ValueError("boom")\n');
  await page.click("#deploy");
  await expectText("#status", "deployed version 1");
  await page.fill("#try-path", "/boom");
  await page.click("#try-send");
  await expectText("#try-response", "500");
  // The recording is written beside the log line, not with it: ask again until it is there.
  for (let attempt = 0; ; attempt++) {
    await refreshLogsUntil("GET /boom → 500");
    await page.click("#logs button.replay");
    const panel = page.locator("#logs pre.replay").first();
    await panel.filter({ hasText: /pubfn replay|No recording/ }).waitFor({ timeout: 30_000 });
    if ((await panel.textContent()).includes(`pubfn replay --tenant ${tenant} `)) break;
    if (attempt === 5) throw new Error(`no replay offered: ${await panel.textContent()}`);
    await page.waitForTimeout(500);
  }
  await expectText("#logs pre.replay", "Download the recording");

  if (errors.length) throw new Error(`errors in the page: ${errors.join("; ")}`);
  step("passed");
} finally {
  await browser.close();
}
