// The console in a real browser (headless Debian Chromium, playwright-core). Started by
// tests/integration/browser.rs with the server's base URL; it prints one JSON line per step
// and saves a screenshot of each page in $ARTIFACTS. Exits non-zero on the first failure.
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const base = process.argv[2];
const artifacts = process.env.ARTIFACTS || "artifacts";
const password = process.env.STAFF_PASSWORD;
const reply = process.env.STAFF_REPLY;
fs.mkdirSync(artifacts, { recursive: true });

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "cf-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
  viewport: { width: 1100, height: 800 },
  locale: "es-AR",
});

function check(cond, what) {
  if (!cond) throw new Error("failed: " + what);
  console.log(JSON.stringify({ ok: what }));
}
async function shot(page, name) {
  await page.screenshot({ path: path.join(artifacts, name + ".png"), fullPage: true });
}

try {
  // 1. A receptionist logs in, sees the handoff the WhatsApp webhook opened, replies.
  const page = await context.newPage();
  await page.goto(base + "/console/inbox");
  check(page.url().endsWith("/console/login"), "the inbox sends a stranger to the login page");
  await shot(page, "login");
  await page.fill("#name", "ana");
  await page.fill("#password", password);
  await page.click("button[type=submit]");
  await page.waitForURL("**/console/inbox");
  const row = page.locator("table.inbox a").first();
  await row.waitFor();
  check((await page.content()).includes("pidió hablar con una persona"), "the handoff is in the inbox, reason in Spanish");
  await shot(page, "inbox");
  await row.click();
  await page.waitForSelector("section.transcript");
  check((await page.content()).includes("¿me atiende alguien?"), "the transcript shows the message sent after the handoff");
  check((await page.content()).includes("Dermatología"), "the collected slots are shown");
  await page.fill("#text", reply);
  await page.click("form.reply button");
  await page.waitForSelector(".notice");
  const notice = await page.textContent(".notice");
  check(notice.includes("Enviado"), "the reply was sent (the page says: " + notice + ")");
  await shot(page, "escalation");

  // 2. A forged form (wrong CSRF token) is refused.
  const forged = await page.evaluate(async (url) => {
    const r = await fetch(url, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "csrf=forged&text=hola" });
    return r.status;
  }, page.url().split("?")[0] + "/reply");
  check(forged === 403, "a form without the session's CSRF token is refused (403)");

  // 3. Lockout: repeated wrong passwords lock the name, even for the right password.
  const other = await context.newPage();
  await context.clearCookies();
  for (let i = 0; i < 5; i++) {
    await other.goto(base + "/console/login");
    await other.fill("#name", "root");
    await other.fill("#password", "wrong password " + i);
    await other.click("button[type=submit]");
    await other.waitForSelector(".error");
  }
  await other.goto(base + "/console/login");
  await other.fill("#name", "root");
  await other.fill("#password", password);
  await other.click("button[type=submit]");
  await other.waitForSelector(".error");
  check((await other.textContent(".error")).includes("bloqueado"), "the name is locked after 5 wrong passwords");
  await shot(other, "lockout");
  console.log(JSON.stringify({ done: true }));
} catch (e) {
  console.error(String(e && e.stack || e));
  process.exitCode = 1;
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
