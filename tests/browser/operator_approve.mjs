// Browser half of the k8s test DashboardAuth.ApprovalClickedInTheBrowserAdmitsTheJob
// (tests/k8s/dashboard_auth_test.cc sets up the control plane, the operator
// with --dashboard-listen and a tenant admin's token, then runs this):
// Debian's chromium, driven by playwright-core, signs in with the token,
// finds the job listed in AwaitingApproval, clicks Approve for the tenant
// and waits until the page shows the job admitted (Pending or Running).
// Screenshots go to $BRAID_BUILD_DIR/test-artifacts/browser/operator-*.png.
// Exits 0 when all of that holds, 1 saying what did not.
//
//   BRAID_DASHBOARD_URL=http://127.0.0.1:PORT/ BRAID_TOKEN=... BRAID_JOB=ns/name \
//   BRAID_TENANT=t BRAID_SOURCE_DIR=. BRAID_BUILD_DIR=build node tests/browser/operator_approve.mjs
import { existsSync, mkdirSync, mkdtempSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";

const source = path.resolve(process.env.BRAID_SOURCE_DIR ?? ".");
const build = path.resolve(process.env.BRAID_BUILD_DIR ?? path.join(source, "build"));
const chromiumPath = process.env.BRAID_CHROMIUM ?? "/usr/bin/chromium";
const { BRAID_DASHBOARD_URL: url, BRAID_TOKEN: token, BRAID_JOB: job, BRAID_TENANT: tenant } = process.env;
const artifacts = path.join(build, "test-artifacts", "browser");

function fail(message) {
  console.error(`operator_approve: ${message}`);
  process.exit(1);
}

if (!url || !token || !job || !tenant) fail("BRAID_DASHBOARD_URL, BRAID_TOKEN, BRAID_JOB and BRAID_TENANT are required");
if (!existsSync(chromiumPath)) fail(`${chromiumPath} not found: install Debian's chromium (scripts/deps.sh does)`);
let chromium;
try {
  ({ chromium } = createRequire(path.join(source, "web", "package.json"))("playwright-core"));
} catch (e) {
  fail(`playwright-core is not installed in ${source}/web/node_modules (${e.message}); run npm ci in web/`);
}
mkdirSync(artifacts, { recursive: true });

const context = await chromium.launchPersistentContext(mkdtempSync(path.join(os.tmpdir(), "braid-chromium-")), {
  executablePath: chromiumPath,
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
  viewport: { width: 1280, height: 900 },
});
const page = context.pages()[0] ?? (await context.newPage());
async function shot(name) {
  const file = path.join(artifacts, `operator-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot: ${file}`);
}

try {
  // Without a token the API answers 401 and the page asks for one.
  await page.goto(url);
  await page.locator("form.token").waitFor({ timeout: 30_000 });
  await shot("sign-in");
  await page.locator("#token").fill(token);
  await page.getByRole("button", { name: "Use token" }).click();

  const [ns, name] = job.split("/");
  const row = page.locator(`tr[data-job="${job}"]`);
  await row.waitFor({ timeout: 30_000 });
  await row.locator('[data-phase="AwaitingApproval"]').waitFor({ timeout: 30_000 });
  await shot("jobs-awaiting");
  await row.getByRole("link", { name }).click();
  await page.locator('h1 [data-phase="AwaitingApproval"]').waitFor({ timeout: 30_000 });
  const consent = page.locator(`.consent tr[data-tenant="${tenant}"]`);
  await consent.locator('[data-field="consent"]', { hasText: "Pending" }).waitFor({ timeout: 30_000 });
  await shot("job-awaiting");

  await consent.getByRole("textbox").fill("approved in the browser test");
  await consent.locator('button[data-action="approve"]').click();
  // The page redraws on the operator's events: admitted means Pending, then Running.
  await page.locator('h1 [data-phase="Pending"], h1 [data-phase="Running"]').waitFor({ timeout: 60_000 });
  await page.locator(`.consent tr[data-tenant="${tenant}"] [data-field="consent"]`, { hasText: "Approved" })
    .waitFor({ timeout: 30_000 });
  await shot("job-admitted");
  console.log(`operator_approve: ${job} admitted after ${tenant}'s approval in the browser`);
} catch (e) {
  await shot("failure").catch(() => {});
  await context.close();
  fail(e.message);
}
await context.close();
