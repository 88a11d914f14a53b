// What every browser test script shares: Debian's Chromium started headless with the flags a
// machine without internet needs (no background networking, no component updates, no sync),
// a fresh profile, one JSON line per passed check, and full-page screenshots in $ARTIFACTS.
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export const artifacts = process.env.ARTIFACTS || "artifacts";
fs.mkdirSync(artifacts, { recursive: true });

const profiles = new Map();

// A persistent context on a new empty profile; `options` overrides the desktop defaults
// (e.g. a phone's viewport). End it with `close`.
export async function launch(options = {}) {
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
    ...options,
  });
  profiles.set(context, userDataDir);
  return context;
}

// Closes the browser and removes its profile.
export async function close(context) {
  await context.close();
  fs.rmSync(profiles.get(context), { recursive: true, force: true });
}

export function check(cond, what) {
  if (!cond) throw new Error("failed: " + what);
  console.log(JSON.stringify({ ok: what }));
}

export async function shot(page, name) {
  await page.screenshot({ path: path.join(artifacts, name + ".png"), fullPage: true });
}
