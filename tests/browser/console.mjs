// The console in a real browser (headless Debian Chromium, playwright-core). Started by
// tests/integration/browser.rs with the server's base URL; it prints one JSON line per step
// and saves a screenshot of each page in $ARTIFACTS. Exits non-zero on the first failure.
import { launch, close, check, shot } from "./common.mjs";

const base = process.argv[2];
const password = process.env.STAFF_PASSWORD;
const reply = process.env.STAFF_REPLY;

const context = await launch();


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
  await close(context);
}
