// The web chat widget on other origins, in a real browser (headless Debian Chromium,
// playwright-core). Started by tests/integration/browser.rs with two page URLs: a plain HTML
// page on an origin the clinic allows, and the same page on one it does not. On a phone-sized
// screen, with the keyboard (Tab to the button, Enter opens, Enter sends) and the option
// buttons, the widget books an appointment; from the other origin the request is refused and
// the widget says so. Prints one JSON line per step and, last, the conversation ids.
import { launch, close, check, artifacts } from "./common.mjs";
import path from "node:path";

const allowed = process.argv[2];
const refused = process.argv[3];
const STORAGE = "clinicflow:clinica-san-rafael";

const context = await launch({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, hasTouch: true });

const answers = (page) => page.locator(".cfw-bot").count();
// Types a message and sends it with Enter; waits for the assistant's answer.
async function say(page, text) {
  const before = await answers(page);
  await page.keyboard.type(text);
  await page.keyboard.press("Enter");
  await page.waitForFunction((n) => document.querySelectorAll(".cfw-bot").length > n, before);
  return page.locator(".cfw-bot").last().textContent();
}
const conversation = (page) => page.evaluate((k) => JSON.parse(localStorage.getItem(k) || "{}").id, STORAGE);

try {
  // 1. The allowed origin: open with the keyboard, book, options clicked as buttons.
  const page = await context.newPage();
  await page.goto(allowed);
  await page.waitForSelector(".cfw-btn");
  await page.keyboard.press("Tab");
  check(await page.evaluate(() => document.activeElement.classList.contains("cfw-btn")), "Tab reaches the chat button");
  check((await page.getAttribute(".cfw-btn", "aria-label")).length > 5, "the button has a label for screen readers");
  await page.keyboard.press("Enter");
  await page.waitForSelector(".cfw-panel.open");
  check(await page.evaluate(() => document.activeElement.tagName === "TEXTAREA"), "Enter opens the chat, the cursor in the message box");
  check((await say(page, "hola")).includes("Buenos días"), "Enter sends; the assistant greets");
  await say(page, "quiero un turno con cardiología");
  await say(page, "el jueves 26");
  const options = page.locator(".cfw-opts").last().locator("button");
  check((await options.count()) > 1, "numbered options are buttons");
  await page.screenshot({ path: path.join(artifacts, "widget_options.png") });
  const before = await answers(page);
  await options.first().click();
  await page.waitForFunction((n) => document.querySelectorAll(".cfw-bot").length > n, before);
  check((await page.locator(".cfw-bot").last().textContent()).includes("nombre"), "clicking an option answers it");
  await page.focus(".cfw-form textarea");
  await say(page, "María López");
  await say(page, "30.123.456");
  const confirm = await say(page, "OSDE");
  check(confirm.includes("Confirmo"), "the assistant asks to confirm");
  const booked = await say(page, "sí");
  check(booked.includes("reservado"), "booked (" + booked.slice(0, 60) + "…)");
  const uncovered = await page.evaluate(() => {
    const send = document.querySelector(".cfw-form button");
    const r = send.getBoundingClientRect();
    return document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2) === send;
  });
  check(uncovered, "on a phone nothing covers the send button");
  await page.screenshot({ path: path.join(artifacts, "widget_phone.png") });
  await page.keyboard.press("Escape");
  check(await page.evaluate(() => !document.querySelector(".cfw-panel").classList.contains("open")), "Escape closes the chat");
  const allowedId = await conversation(page);

  // 2. A page load continues the conversation.
  await page.reload();
  await page.waitForSelector(".cfw-btn");
  check((await page.locator(".cfw-msg").count()) > 10, "the conversation survives a page load");

  // 3. An origin the clinic does not allow: refused, and the widget says so plainly.
  const other = await context.newPage();
  await other.goto(refused);
  await other.waitForSelector(".cfw-btn");
  await other.click(".cfw-btn");
  await other.waitForSelector(".cfw-panel.open");
  const answer = await say(other, "hola");
  check(answer.includes("No pudimos enviar su mensaje"), "the widget shows a plain error (" + answer + ")");
  await other.screenshot({ path: path.join(artifacts, "widget_refused.png") });
  console.log(JSON.stringify({ done: true, allowed: allowedId, refused: await conversation(other) }));
} catch (e) {
  console.error(String(e && e.stack || e));
  process.exitCode = 1;
} finally {
  await close(context);
}
