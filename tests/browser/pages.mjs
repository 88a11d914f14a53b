// The agenda, conversations and dashboard in a real browser (headless Debian Chromium,
// playwright-core). Started by tests/integration/browser.rs with the server's base URL; prints
// one JSON line per step and saves a screenshot of each page in $ARTIFACTS.
import { launch, close, check, shot } from "./common.mjs";

const base = process.argv[2];
const password = process.env.STAFF_PASSWORD;

const context = await launch();

async function login(page, name) {
  await page.goto(base + "/console/login");
  await page.fill("#name", name);
  await page.fill("#password", password);
  await page.click("button[type=submit]");
  await page.waitForURL("**/console/inbox");
}

try {
  // 1. A receptionist books Rosa on Thursday 26 from the agenda, then cancels it.
  const page = await context.newPage();
  await login(page, "ana");
  // The inbox has an h1 too: wait for the agenda itself, not for any h1.
  await page.click("nav a[href='/console/agenda']");
  await page.waitForURL("**/console/agenda");
  check((await page.textContent("h1")).includes("lunes 23/11/2026"), "the agenda opens on today");
  await page.fill("#date", "2026-11-26");
  await page.click("nav.daynav button[type=submit]");
  await page.waitForURL("**/console/agenda?date=2026-11-26");
  check((await page.content()).includes("María López"), "María's booking (made on WhatsApp) is on Thursday");
  await shot(page, "agenda");

  await page.selectOption("#specialty", "Cardiología");
  await page.fill("#book-date", "2026-11-26");
  await page.click("section.book button[type=submit]");
  await page.waitForSelector("fieldset input[type=radio]");
  const taken = await page.locator("input[value='2026-11-26|10:00|Dra. Laura Gómez']").count();
  check(taken === 0, "María's 10:00 is not offered");
  await page.check("input[value='2026-11-26|10:30|Dra. Laura Gómez']");
  await page.fill("#patient_name", "Rosa Díaz");
  await page.fill("#document", "28.555.666");
  await page.fill("#phone", "+54 9 11 5555-0009");
  await shot(page, "agenda_book");
  await page.click("form.booking > button[type=submit]");
  await page.waitForSelector(".notice");
  check((await page.textContent(".notice")).includes("Turno reservado"), "booked from the agenda");
  check((await page.content()).includes("Rosa Díaz"), "Rosa is on Thursday's agenda");

  await page.click("button[aria-label='Cancelar: 10:30 Rosa Díaz']");
  await page.waitForSelector(".notice");
  check((await page.textContent(".notice")).includes("Turno cancelado"), "cancelled from the agenda");
  const row = await page.locator("tr.st-cancelled", { hasText: "Rosa Díaz" }).count();
  check(row === 1, "Rosa's appointment shows as cancelled");

  // 2. An admin opens the dashboard and a conversation.
  await context.clearCookies();
  await login(page, "root");
  await page.click("nav a[href='/console/dashboard']");
  await page.waitForSelector("svg.chart");
  check((await page.locator("svg.chart").count()) >= 6, "the dashboard draws its charts");
  check((await page.content()).includes("Contención en el período"), "containment is shown");
  await shot(page, "dashboard");
  await page.click("nav a[href='/console/conversations']");
  await page.waitForSelector("table.conversations");
  await shot(page, "conversations");
  await page.click("a[href='/console/conversations/wa-maria']");
  await page.waitForSelector("article.turn");
  const text = await page.content();
  check(text.includes("María López") && text.includes("book_appointment"), "the conversation's turns and states");
  await shot(page, "conversation");
  console.log(JSON.stringify({ done: true }));
} catch (e) {
  console.error(String(e && e.stack || e));
  process.exitCode = 1;
} finally {
  await close(context);
}
