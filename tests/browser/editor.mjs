// The file editor in a real browser (headless Debian Chromium, playwright-core). Started by
// tests/integration/browser.rs with the server's base URL (the server edits a copy of the
// demo clinic). An admin changes a reply and a patient gets it; breaks a flow, sees the
// diagnostic while the last good version keeps serving, fixes it; opens the history, sees the
// diff and rolls back, and the patient gets the original text again. One JSON line per step;
// screenshots in $ARTIFACTS. Exits non-zero on the first failure.
import { launch, close, check, shot } from "./common.mjs";

const base = process.argv[2];
const password = process.env.STAFF_PASSWORD;
const ORIGINAL = "¿en qué puedo ayudarlo?";
const CHANGED = "¿en qué le puedo ayudar hoy?";
const GREETING = "prompts/es/greeting.j2";
const FLOW = "flows/thanks.yaml";

const context = await launch();

let conversations = 0;
// A patient says "hola" on a new conversation through the HTTP API; returns the replies.
async function patient(text = "hola") {
  conversations += 1;
  const r = await fetch(`${base}/v1/conversations/editor-browser-${conversations}/messages`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ text, now: "2026-11-23T10:00" }),
  });
  if (!r.ok) throw new Error("the API answered " + r.status);
  return (await r.json()).replies.join(" ");
}
async function save(page) {
  await Promise.all([page.waitForNavigation(), page.click("button[value=save]")]);
}

try {
  const page = await context.newPage();
  await page.goto(base + "/console/login");
  await page.fill("#name", "root");
  await page.fill("#password", password);
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
  check((await patient()).includes(ORIGINAL), "the patient gets the original greeting");

  // 1. From the flows page to the reply template; change it, save: live.
  await page.goto(base + "/console/flows");
  await Promise.all([page.waitForNavigation(), page.click("a[href='/console/editor']")]);
  await Promise.all([page.waitForNavigation(), page.click(`a[href='/console/editor/file?path=${GREETING}']`)]);
  const original = await page.inputValue("#content");
  check(original.includes(ORIGINAL), "the editor shows the template's text");
  await page.fill("#content", original.replace(ORIGINAL, CHANGED));
  await page.fill("#note", "saludo más cercano");
  await shot(page, "editor");
  await save(page);
  check((await page.textContent(".notice")).includes("ya está en uso"), "saved: the page says it is live");
  check((await patient()).includes(CHANGED), "a patient gets the new text at once");

  // 2. Break a flow: the diagnostic with file:line:column; nothing saved, the last good serves.
  await page.goto(`${base}/console/editor/file?path=${FLOW}`);
  const flow = await page.inputValue("#content");
  await page.fill("#content", flow.replace("end: true", "next: nowhere"));
  await save(page);
  const where = await page.textContent(".diagnostic .where");
  check(/^flows\/thanks\.yaml:\d+:\d+$/.test(where), "the diagnostic says file:line:column (" + where + ")");
  check((await page.textContent(".diagnostic pre")).includes("next: nowhere"), "with the source excerpt");
  check((await page.textContent(".diagnostic .help")).length > 20, "and the help text");
  check((await page.textContent("p.error")).includes("no se guardó nada"), "the page says nothing was saved");
  await page.click("a.goto");
  check((await page.textContent("#cursor")).startsWith("Línea "), "the diagnostic's link moves the cursor there");
  await shot(page, "editor_diagnostic");
  check((await patient("gracias")).includes("De nada"), "the last good flows keep serving");
  check((await patient()).includes(CHANGED), "and the saved greeting with them");

  // 3. Fix it (the textarea still holds the broken text) and save.
  const broken = await page.inputValue("#content");
  await page.fill("#content", broken.replace("next: nowhere", "end: true").replace("Responder a un agradecimiento.", "Responder a un agradecimiento (revisado)."));
  await save(page);
  check((await page.textContent(".notice")).includes("ya está en uso"), "the fixed flow is saved and live");

  // 4. History of the template: the diff of v1 against now, then roll back to v1.
  await page.goto(`${base}/console/editor/history?path=${GREETING}`);
  const rows = await page.locator("table.versions tbody tr").count();
  check(rows === 2, "two versions: found on disk and the edit (" + rows + ")");
  await Promise.all([page.waitForNavigation(), page.click("a[href$='v=1']")]);
  check((await page.textContent("table.diff tr.removed")).includes(ORIGINAL), "the diff shows the removed line");
  check((await page.textContent("table.diff tr.added")).includes(CHANGED), "and the added one");
  await shot(page, "editor_history");
  await Promise.all([page.waitForNavigation(), page.click("button[data-version='1']")]);
  check((await page.textContent(".notice")).includes("Vuelta atrás"), "rolled back");
  check((await page.textContent("table.versions tbody tr:first-child")).includes("vuelta a la v1 por root"), "recorded as a new version");
  check((await patient()).includes(ORIGINAL), "the patient gets the original text again");
  console.log(JSON.stringify({ done: true }));
} catch (e) {
  console.error(String(e && e.stack || e));
  process.exitCode = 1;
} finally {
  await close(context);
}
