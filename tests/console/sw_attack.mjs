// The outside review's Service Worker attack, in Debian's headless Chromium: tenant `evil`
// serves a page that registers a worker for the whole origin (its script says
// `service-worker-allowed: /`); one visit, and the console in the same browser profile would
// be served by the tenant's worker. Prints what happened as one JSON line; the Rust test
// (tests/console_e2e.rs) decides whether the attack failed.
//
//   node sw_attack.mjs DATA_BASE_URL CONSOLE_BASE_URL
import { chromium } from "playwright-core";

const [dataBase, consoleBase] = process.argv.slice(2);
if (!consoleBase) throw new Error("usage: node sw_attack.mjs DATA_BASE_URL CONSOLE_BASE_URL");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  // One profile for the whole visit, as the operator's browser would be.
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${dataBase}/evil/page`);
  // The page keeps its registration attempt in `window.attempt` (if its script ran at all).
  const attempt = await page.evaluate(() =>
    window.attempt
      ? window.attempt.then((r) => `registered with scope ${r.scope}`, (e) => `refused: ${e.message}`)
      : "the page's script did not run");
  // What the data origin holds, seen from a page of its own that pubfn serves (unsandboxed).
  await page.goto(`${dataBase}/healthz`);
  const dataRegistrations = await page.evaluate(async () =>
    (await navigator.serviceWorker.getRegistrations()).map((r) => r.scope));

  await page.goto(`${consoleBase}/console/`);
  const onConsole = await page.evaluate(async () => ({
    controlled: navigator.serviceWorker.controller !== null,
    registrations: (await navigator.serviceWorker.getRegistrations()).map((r) => r.scope),
    signIn: document.getElementById("sign-in") !== null,
  }));
  console.log(JSON.stringify({ attempt, dataRegistrations, ...onConsole }));
} finally {
  await browser.close();
}
