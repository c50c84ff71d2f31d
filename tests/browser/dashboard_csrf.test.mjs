// Browser test (ctest label `browser`): a page of another origin cannot
// drive `braid run --dashboard`. The job (examples/tabular.yaml, 2 rounds)
// waits in AwaitingApproval for tenant charite (--tenants with
// requireApproval). A page served from another loopback port (another
// origin, the same site) opened in Debian's chromium tries to approve
// charite: a form POST (text/plain, no token), a no-cors fetch, and a fetch
// with JSON and a guessed bearer token (which needs a CORS preflight). None
// may be recorded: no approvals/charite.json, no tenant_approved in the
// audit log, the job still AwaitingApproval. The dashboard's own page,
// opened with the URL braid printed, then approves, and the job goes on.
//
//   BRAID_BUILD_DIR=build BRAID_SOURCE_DIR=. node --test tests/browser/dashboard_csrf.test.mjs
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import path from "node:path";
import { after, before, test } from "node:test";

const source = path.resolve(process.env.BRAID_SOURCE_DIR ?? ".");
const build = path.resolve(process.env.BRAID_BUILD_DIR ?? path.join(source, "build"));
const chromiumPath = process.env.BRAID_CHROMIUM ?? "/usr/bin/chromium";
const jobName = "tabular-csrf";
const artifacts = path.join(build, "test-artifacts", "browser");

function loadPlaywright() {
  const require = createRequire(path.join(source, "web", "package.json"));
  try {
    return require("playwright-core");
  } catch (e) {
    assert.fail(`playwright-core is not installed in ${source}/web/node_modules (${e.message}); ` +
      "run `npm ci` in web/ (the braid_web build target does)");
  }
}

function writeJob(dir) {
  const examples = path.join(source, "examples");
  const yaml = readFileSync(path.join(examples, "tabular.yaml"), "utf8")
    .replace(/name: tabular-demo/, `name: ${jobName}`)
    .replace(/rounds: \d+/, "rounds: 2")
    .replaceAll("path: data/", `path: ${examples}/data/`);
  const file = path.join(dir, "job.yaml");
  writeFileSync(file, yaml);
  const tenants = path.join(dir, "tenants.yaml");
  writeFileSync(tenants, "apiVersion: braid.dev/v1alpha1\nkind: Tenant\nmetadata: {name: charite}\n" +
    "spec:\n  namespace: tenant-charite\n  policy: {requireApproval: true}\n");
  return { file, tenants };
}

// The page an attacker serves: three ways to make this browser approve.
function attackerPage(dashboard) {
  const approve = `${dashboard}api/jobs/default/${jobName}/tenants/charite/approve`;
  return `<!doctype html><title>cat pictures</title>
<iframe name="sink" style="display:none"></iframe>
<form id="f" method="POST" action="${approve}" enctype="text/plain" target="sink">
  <input name='{"comment":"csrf","x":"' value='"}'>
</form>
<script>
const results = {};
async function attack() {
  document.getElementById("f").submit();
  try {
    await fetch(${JSON.stringify(approve)}, { method: "POST", mode: "no-cors",
      headers: { "Content-Type": "text/plain" }, body: '{"comment":"csrf"}' });
    results.noCors = "sent";
  } catch (e) { results.noCors = "blocked: " + e.message; }
  try {
    const r = await fetch(${JSON.stringify(approve)}, { method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer guessed" },
      body: '{"comment":"csrf"}' });
    results.preflighted = "status " + r.status;
  } catch (e) { results.preflighted = "blocked: " + e.message; }
  try {
    const r = await fetch(${JSON.stringify(dashboard + "api/jobs")});
    results.read = "status " + r.status + " " + (await r.text());
  } catch (e) { results.read = "blocked: " + e.message; }
  window.results = results;
  document.title = "done";
}
attack();
</script>`;
}

let braid;
let braidOutput = "";
let context;
let attacker;
let url; // as printed: http://127.0.0.1:PORT/#token=...
let base; // http://127.0.0.1:PORT/
let token;
let work;

before(async () => {
  assert.ok(existsSync(chromiumPath), `${chromiumPath} not found: install Debian's chromium (scripts/deps.sh does)`);
  const { chromium } = loadPlaywright();
  const braidBin = path.join(build, "bin", "braid");
  assert.ok(existsSync(braidBin), `${braidBin} not found: build Braid first`);
  mkdirSync(artifacts, { recursive: true });
  const tmp = mkdtempSync(path.join(build, "browser-csrf-"));
  const { file, tenants } = writeJob(tmp);
  work = path.join(tmp, "work");
  braid = spawn(braidBin, ["run", file, "--allow-path", path.join(source, "examples"), "--tenants", tenants, "--dashboard", "127.0.0.1:0", "--workdir", work],
    { stdio: ["ignore", "pipe", "pipe"] });
  url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no dashboard URL within 60 s:\n${braidOutput}`)), 60_000);
    const onData = (d) => {
      braidOutput += d;
      const m = braidOutput.match(/dashboard: (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    braid.stdout.on("data", onData);
    braid.stderr.on("data", onData);
    braid.on("exit", (code) => reject(new Error(`braid exited with ${code} before serving:\n${braidOutput}`)));
  });
  const m = url.match(/^(http:\/\/127\.0\.0\.1:\d+\/)#token=([0-9a-f]{64})$/);
  assert.ok(m, `the printed URL carries the run's token: ${url}`);
  [, base, token] = m;

  attacker = createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/html" });
    res.end(attackerPage(base));
  });
  await new Promise((r) => attacker.listen(0, "127.0.0.1", r));

  context = await chromium.launchPersistentContext(mkdtempSync(path.join(tmp, "chromium-")), {
    executablePath: chromiumPath,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1280, height: 900 },
  });
});

after(async () => {
  await context?.close();
  attacker?.close();
  if (braid && braid.exitCode === null) {
    const exited = new Promise((r) => braid.on("exit", r));
    braid.kill("SIGINT");
    await exited;
  }
});

async function job() {
  const res = await fetch(`${base}api/jobs/default/${jobName}`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  return res.json();
}

function auditKinds() {
  const file = path.join(work, "checkpoint", "audit.jsonl");
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l).kind);
}

test("a page of another origin cannot approve a tenant", async () => {
  for (let i = 0; i < 300 && (await job()).phase !== "AwaitingApproval"; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal((await job()).phase, "AwaitingApproval");

  const page = await context.newPage();
  const attackerUrl = `http://127.0.0.1:${attacker.address().port}/`;
  await page.goto(attackerUrl);
  await page.waitForFunction(() => document.title === "done", null, { timeout: 30_000 });
  const results = await page.evaluate(() => window.results);
  console.log(`attacker page at ${attackerUrl}: ${JSON.stringify(results)}`);
  // The preflight is refused, so the request itself is never sent; the
  // read gets no CORS permission.
  assert.match(results.preflighted, /^blocked/);
  assert.match(results.read, /^blocked/);
  // The form post and the no-cors fetch did reach the server: their
  // answers (401, 403 or 415) must have recorded nothing. Wait until the
  // form's answer has loaded in its frame, so nothing is still in flight.
  await page.waitForFunction(() => {
    try {
      return document.querySelector("iframe").contentWindow.location.href !== "about:blank";
    } catch {
      return true; // cross-origin: it has navigated
    }
  }, null, { timeout: 10_000 });
  await page.screenshot({ path: path.join(artifacts, "csrf-attacker.png") });
  await page.close();

  const j = await job();
  assert.equal(j.phase, "AwaitingApproval", "the job still waits for charite");
  assert.equal(j.consent.find((c) => c.tenant === "charite").consent, "Pending");
  assert.ok(!existsSync(path.join(work, "approvals", "charite.json")), "no decision was written");
  assert.ok(!auditKinds().includes("tenant_approved"), `no approval in the audit log: ${auditKinds()}`);
});

test("without the printed URL the page asks for the token and shows no job", async () => {
  const page = await context.newPage();
  await page.goto(base);
  await page.locator("form.token").waitFor({ timeout: 30_000 });
  assert.equal(await page.locator(`tr[data-job="default/${jobName}"]`).count(), 0);
  await page.close();
});

test("the dashboard's own page, opened with the printed URL, approves", async () => {
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForFunction(() => !location.hash.includes("token"), null, { timeout: 10_000 });
  const row = page.locator(`tr[data-job="default/${jobName}"]`);
  await row.waitFor({ timeout: 30_000 });
  await row.getByRole("link", { name: jobName }).click();
  const consent = page.locator('tr[data-tenant="charite"]');
  await consent.waitFor({ timeout: 30_000 });
  await consent.locator('input[type="text"]').fill("DPO ok");
  await consent.locator('button[data-action="approve"]').click();
  // The decision as the page shows it from the job's data (the note beside
  // the buttons is gone once the page re-renders on the job's next event).
  await consent.locator('[data-field="consent"]').filter({ hasText: "Approved" }).waitFor({ timeout: 30_000 });
  await page.screenshot({ path: path.join(artifacts, "csrf-own-page-approved.png") });
  await page.close();
  assert.ok(existsSync(path.join(work, "approvals", "charite.json")));
  for (let i = 0; i < 100 && !auditKinds().includes("tenant_approved"); i++) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(auditKinds().filter((k) => k === "tenant_approved"), ["tenant_approved"]);
});
